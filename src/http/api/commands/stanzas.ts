// send_message and send_stanza: stanzas injected through the router, so delivery, offline storage, archives and
// push apply as for any stanza between these addresses.
import { randomUUID } from 'node:crypto';
import { StanzaError } from '../../../core/errors.ts';
import { xml } from '../../../xml/element.ts';
import { parseElement } from '../../../xml/parse.ts';
import { checkStanzaShape } from '../../../xmpp/stanza.ts';
import type { Jid } from '../../../xmpp/jid.ts';
import type { CommandContext } from '../context.ts';
import { ApiError, badArgument } from '../errors.ts';
import { OK, type ApiCommand } from './types.ts';

const MESSAGE_TYPES = ['chat', 'normal', 'headline', 'groupchat'] as const;

/** The sender must be on a host the caller may act on (an unrestricted caller may name any sender). */
function sender(ctx: CommandContext): Jid {
  const from = ctx.args.jid('from');
  ctx.checkScope(from.domain);
  return from;
}

/** A recipient the server can reach: an existing local account or host, or a component's domain. */
async function recipient(ctx: CommandContext): Promise<Jid> {
  const to = ctx.args.jid('to');
  const host = ctx.server.hosts.get(to.domain);
  if (host) {
    const exists = to.local === '' || ctx.server.sessions.resources(to.bare).length > 0 || (await host.auth.userExists(to.local));
    if (!exists) throw new ApiError('USER_NOT_FOUND', `no user ${to.bareString}`, { argument: 'to' });
  } else if (!ctx.server.router.hasRoute(to.domain)) {
    throw badArgument('to', `no route to ${to.domain}`);
  }
  return to;
}

export const stanzaCommands: ApiCommand[] = [
  {
    name: 'send_message',
    async run(ctx) {
      const type = ctx.args.choice('type', MESSAGE_TYPES, 'chat');
      const from = sender(ctx);
      const to = await recipient(ctx);
      const subject = ctx.args.optionalString('subject') ?? '';
      const body = ctx.args.optionalString('body') ?? '';
      if (subject === '' && body === '') throw badArgument('body', 'a message needs a body or a subject');
      const message = xml('message', { type, from: from.toString(), to: to.toString(), id: randomUUID() },
        subject !== '' ? xml('subject', null, subject) : undefined,
        body !== '' ? xml('body', null, body) : undefined);
      await ctx.server.router.route(message, from, to);
      return OK;
    },
  },
  {
    name: 'send_stanza',
    async run(ctx) {
      const from = sender(ctx);
      const to = await recipient(ctx);
      const stanza = parseElement(ctx.args.string('stanza'), ctx.server.config.limits.stanza_size);
      if (!stanza) throw badArgument('stanza', 'not well-formed XML, or larger than limits.stanza_size');
      if (stanza.name !== 'message' && stanza.name !== 'presence' && stanza.name !== 'iq') {
        throw badArgument('stanza', `<${stanza.name}/> is not a stanza (message, presence or iq)`);
      }
      // As in ejabberd, the addresses are the arguments', whatever the stanza says.
      stanza.attrs.from = from.toString();
      stanza.attrs.to = to.toString();
      try {
        checkStanzaShape(stanza);
      } catch (err) {
        if (err instanceof StanzaError) throw badArgument('stanza', err.text ?? err.condition);
        throw err;
      }
      await ctx.server.router.route(stanza, from, to);
      return OK;
    },
  },
];
