// XEP-0077: In-Band Registration <https://xmpp.org/extensions/xep-0077.html> 2.5 — register before authentication,
// change the password and cancel the account after it, with ejabberd-style access rules, a per-address and a
// server-wide rate limit, and invitation tokens (XEP-0445, see invites.ts) for invite-only servers.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { AccountError } from '../../accounts.ts';
import { DEFAULT_ACCESS } from '../../auth/access.ts';
import { ConfigError, StanzaError, StreamError } from '../../core/errors.ts';
import type { StanzaEvent } from '../../core/hook-map.ts';
import type { Host } from '../../core/host.ts';
import { defineModule } from '../../core/module.ts';
import { SessionKey, type C2sSession } from '../../core/session.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { FORM_TYPE, NS_DATA, readForm, registrationForm } from './form.ts';
import { DEFAULT_RESERVED, checkPassword, type PasswordRules } from './policy.ts';
import { RegistrationRateLimit } from './rate-limit.ts';
import { NS_IBR_TOKEN, NS_PARS, consumeInvite, inviteExists, validInvite } from './invites.ts';

export const NS_REGISTER = 'jabber:iq:register';
export const NS_REGISTER_FEATURE = 'http://jabber.org/features/iq-register';

declare module '../../core/hook-map.ts' {
  interface HookMap {
    /** An account was created in-band (after the account exists, before the client is answered). */
    'account/registered': { host: Host; user: Jid; ip: string };
  }
}

/** Set once a connection has registered an account: XEP-0077 §3.1.1 lets a server refuse a second one. */
const REGISTERED = new SessionKey<true>('register:done');
/** The digest of the invitation token this connection presented (XEP-0445 <preauth/>). */
const PREAUTH = new SessionKey<string>('register:preauth');

export const registerOptions = z.strictObject({
  access: z.string().default('register')
    .describe('access rule deciding who may register, by source address (the built-in "register" rule allows loopback only)'),
  rate_limit: z.strictObject({
    registrations: z.number().int().min(0).default(1)
      .describe('successful registrations allowed per IP address (IPv6: per /64) within the window; 0 turns the limit off'),
    window: z.number().int().min(1).default(600).describe('the window, in seconds'),
    global_per_hour: z.number().int().min(0).default(100)
      .describe('successful registrations per hour on this host from all addresses together; 0 turns the cap off'),
  }).prefault({}).describe('limits on successful registrations (invited ones are not counted)'),
  invite_only: z.boolean().default(false)
    .describe('register only with an invitation token (`parley invite create`, XEP-0445); the access rule then applies to nobody'),
  reserved: z.array(z.string()).default([...DEFAULT_RESERVED])
    .describe('usernames nobody may register (compared after PRECIS preparation, so case does not matter)'),
  min_password_length: z.number().int().min(1).default(8).describe('minimum password length in Unicode code points'),
  min_password_entropy: z.number().min(0).default(0)
    .describe('minimum estimated strength in bits (length x log2 of the character pool); 0 turns the check off'),
  instructions: z.string().min(1).default('Choose a username and password to create an account on this server.')
    .describe('the <instructions/> text of the registration form'),
  welcome_message: z.strictObject({
    subject: z.string().optional(),
    body: z.string().min(1),
  }).optional().describe('a normal message from the host to each new account (kept only if an offline-storage module takes it)'),
  require_encryption: z.boolean().default(true)
    .describe('offer registration and accept password changes only over TLS (XEP-0077 §11)'),
  password_change: z.boolean().default(true).describe('allow in-band password changes'),
  cancel: z.boolean().default(true).describe('allow in-band account removal'),
});

export type RegisterOptions = z.output<typeof registerOptions>;

type Credentials = { username: string | undefined; password: string | undefined; oldPassword: string | undefined; formType: string | undefined };

export default defineModule({
  id: 'register',
  xeps: [{ xep: 77, version: '2.5', status: 'complete' }],
  options: registerOptions,
  setup(ctx) {
    const { host, options: o, log } = ctx;
    const { accounts, access } = ctx.server;
    const domain = host.jid.domain;

    // A misspelt rule name would silently refuse everyone: say so at start-up instead.
    if (!Object.hasOwn(DEFAULT_ACCESS, o.access) && !Object.hasOwn(ctx.server.config.access, o.access)) {
      throw new ConfigError([`modules.register.access: no access rule named "${o.access}" (define it under access)`]);
    }
    const reserved = new Set<string>();
    const problems: string[] = [];
    for (const name of o.reserved) {
      try {
        reserved.add(accounts.username(name));
      } catch {
        problems.push(`modules.register.reserved: "${name}" is not a valid username`);
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);

    const limit = o.rate_limit.registrations > 0
      ? new RegistrationRateLimit({ count: o.rate_limit.registrations, windowMs: o.rate_limit.window * 1000 })
      : undefined;
    if (limit) ctx.timer(Math.min(o.rate_limit.window * 1000, 60_000), () => limit.prune());
    // The server-wide cap: one key for every address.
    const globalLimit = o.rate_limit.global_per_hour > 0
      ? new RegistrationRateLimit({ count: o.rate_limit.global_per_hour, windowMs: 3_600_000, maxKeys: 1 })
      : undefined;
    const kv = ctx.storage.kv;
    /** Invitations being redeemed right now: two connections cannot both use one. */
    const redeeming = new Set<string>();
    const rules: PasswordRules = { minLength: o.min_password_length, minEntropy: o.min_password_entropy };
    const passwordHint = `At least ${o.min_password_length} characters`;

    const secureEnough = (s: C2sSession | undefined): boolean => !o.require_encryption || s === undefined || s.secure;
    const mayRegister = (s: C2sSession): boolean =>
      s.get(PREAUTH) !== undefined || (!o.invite_only && access.allowed(o.access, { ip: s.remoteAddress, host: host.name }));

    ctx.disco.feature(NS_REGISTER);

    // XEP-0445 §3: invitation tokens are accepted wherever registration could be offered; with invite_only the
    // registration feature is offered too, for clients holding a token.
    ctx.fold('c2s/features-preauth', ({ session }, features) => {
      if (!secureEnough(session)) return features;
      const out = [...features, xml('register', { xmlns: NS_IBR_TOKEN })];
      if (o.invite_only || mayRegister(session)) out.push(xml('register', { xmlns: NS_REGISTER_FEATURE }));
      return out;
    });

    // ---- Before authentication: the registration use case (§3.1) ----

    ctx.hook('c2s/unauthenticated-stanza', async ({ session, stanza }) => {
      const query = stanza.firstElement();
      const type = stanza.attrs.type;
      if (stanza.name === 'iq' && type === 'set' && query?.is('preauth', NS_PARS)) {
        await preauth(session, stanza, query);
        return true;
      }
      if (stanza.name !== 'iq' || !query?.is('query', NS_REGISTER) || (type !== 'get' && type !== 'set')) return false;
      try {
        if (stanza.attrs.id === undefined || stanza.attrs.id === '') throw StanzaError.badRequest('IQ without id');
        if (stanza.getElements().length !== 1) throw StanzaError.badRequest('IQ get/set must contain exactly one child element');
        if (stanza.attrs.to !== undefined) {
          const to = Jid.tryParse(stanza.attrs.to);
          if (!to) throw StanzaError.jidMalformed();
          if (!(to.local === '' && to.resource === '' && to.domain === domain)) {
            throw StanzaError.serviceUnavailable('Only this server can be registered with before authentication');
          }
        }
        if (!secureEnough(session)) throw new StanzaError('not-authorized', 'Registration needs an encrypted connection: start TLS first');
        if (!mayRegister(session)) {
          throw StanzaError.notAllowed(o.invite_only
            ? 'Registration is by invitation only: present your invitation token first (XEP-0445)'
            : 'Registration is not allowed from your network');
        }
        if (type === 'get') {
          session.send(reply(stanza, 'result', registrationFields()));
        } else {
          const jid = await register(session, query);
          session.send(reply(stanza, 'result', undefined));
          welcome(jid);
        }
      } catch (err) {
        const error = toStanzaError(err);
        log.debug({ ip: session.remoteAddress, type, condition: error.condition, text: error.text }, 'registration request refused');
        session.send(reply(stanza, 'error', error.toElement()));
      }
      return true;
    });

    /** XEP-0445 §4: a token presented before registering; checked (and its expiry) now, used up on success. */
    async function preauth(session: C2sSession, stanza: Element, query: Element): Promise<void> {
      try {
        if (stanza.attrs.id === undefined || stanza.attrs.id === '') throw StanzaError.badRequest('IQ without id');
        if (!secureEnough(session)) throw new StanzaError('not-authorized', 'Registration needs an encrypted connection: start TLS first');
        const digest = await validInvite(kv, host.name, query.attrs.token ?? '');
        if (digest === undefined) throw StanzaError.itemNotFound('The provided token is invalid or expired');
        session.set(PREAUTH, digest);
        session.send(reply(stanza, 'result', undefined));
      } catch (err) {
        const error = toStanzaError(err);
        log.debug({ ip: session.remoteAddress, condition: error.condition }, 'invitation token refused');
        session.send(reply(stanza, 'error', error.toElement()));
      }
    }

    function registrationFields(): Element {
      // x:data form plus the legacy fields (XEP-0077 §6: "x:data form + iq:register fields").
      return xml('query', { xmlns: NS_REGISTER },
        xml('instructions', null, o.instructions),
        xml('username'),
        xml('password'),
        registrationForm(o.instructions, passwordHint));
    }

    async function register(session: C2sSession, query: Element): Promise<Jid> {
      if (query.getChild('remove', NS_REGISTER)) {
        throw new StanzaError('unexpected-request', 'Authenticate before cancelling a registration');
      }
      if (session.get(REGISTERED)) throw StanzaError.notAcceptable('One registration per connection: log in with the new account');
      const creds = credentials(query, [FORM_TYPE.REGISTER]);
      // §3.1: missing information, an empty password included, is not-acceptable.
      if (!creds.username || !creds.password) throw StanzaError.notAcceptable('Both a username and a password are required');
      const user = accounts.username(creds.username);
      if (reserved.has(user)) throw StanzaError.notAcceptable(`The username "${user}" is reserved`);
      checkPassword(creds.password, rules);
      const invite = session.get(PREAUTH);
      let release: (() => void) | undefined;
      if (invite !== undefined) {
        // An invitation is its own limit: single use, and not counted against the address or the host.
        if (redeeming.has(invite) || !(await inviteExists(kv, host.name, invite))) {
          session.set(PREAUTH, undefined);
          throw StanzaError.notAllowed('The invitation has been used meanwhile');
        }
        redeeming.add(invite);
        release = () => redeeming.delete(invite);
      } else {
        const releaseGlobal = globalLimit?.reserve('*');
        if (globalLimit && !releaseGlobal) {
          throw new StanzaError('resource-constraint', 'Too many new accounts on this server in the last hour: try again later');
        }
        const releaseIp = limit?.reserve(session.remoteAddress);
        if (limit && !releaseIp) {
          releaseGlobal?.();
          throw new StanzaError('resource-constraint', `Too many registrations from your address: try again in ${o.rate_limit.window} seconds`);
        }
        release = () => {
          releaseGlobal?.();
          releaseIp?.();
        };
      }
      try {
        await accounts.register(user, host.name, creds.password);
      } catch (err) {
        release?.();
        throw err;
      }
      if (invite !== undefined) {
        await consumeInvite(kv, host.name, invite);
        redeeming.delete(invite);
        session.set(PREAUTH, undefined);
        log.info({ user, ip: session.remoteAddress }, 'invitation redeemed');
      }
      session.set(REGISTERED, true);
      const jid = Jid.of(user, domain);
      log.info({ user: jid.toString(), ip: session.remoteAddress }, 'account registered in-band');
      try {
        await host.bus.run('account/registered', { host, user: jid, ip: session.remoteAddress });
      } catch {
        // The account exists; a failing listener (already logged by the bus) does not undo it.
      }
      return jid;
    }

    /**
     * Parley keeps no messages for offline accounts itself: the welcome message is routed like any other, so an
     * offline-storage module (message/offline) keeps it, and without one it is refused per RFC 6121 §8.5.2.2.
     */
    function welcome(jid: Jid): void {
      if (!o.welcome_message) return;
      const m = o.welcome_message;
      const message = xml('message', { type: 'normal', from: domain, to: jid.toString(), id: randomBytes(9).toString('base64url') },
        m.subject !== undefined ? xml('subject', null, m.subject) : undefined,
        xml('body', null, m.body));
      void ctx.router.route(message, host.jid, jid);
    }

    // ---- After authentication: registered info, password change (§3.3) and cancellation (§3.2) ----

    /** The account a request may manage: the sender's own, addressed to the host or to its own bare JID. */
    function own(e: StanzaEvent): Jid {
      if (e.to.local !== '' && e.to.bareString !== e.from.bareString) throw StanzaError.serviceUnavailable();
      if (e.from.domain !== domain || e.from.local === '') throw StanzaError.notAllowed('Only accounts of this server can manage their registration');
      return e.from.bare;
    }

    ctx.iq.get(NS_REGISTER, 'query', (e) => {
      const user = own(e);
      // §3.1: <registered/>, what is on file (never the password) and instructions for what can be done now.
      const can = [o.password_change ? 'send a new password to change it' : '', o.cancel ? 'send <remove/> to delete the account' : ''].filter(Boolean);
      return xml('query', { xmlns: NS_REGISTER },
        xml('registered'),
        xml('instructions', null, `You are registered as ${user.toString()}.${can.length > 0 ? ` You may ${can.join(', or ')}.` : ''}`),
        xml('username', null, user.local),
        xml('password'));
    }, { to: ['host', 'account'] });

    ctx.iq.set(NS_REGISTER, 'query', async (e, query) => {
      try {
        return await manage(e, query);
      } catch (err) {
        // The error reply copies the request: drop the payload so no password is echoed (§3.3 SHOULD NOT).
        e.stanza.children = e.stanza.children.filter((c) => c !== query);
        throw toStanzaError(err);
      }
    }, { to: ['host', 'account'] });

    async function manage(e: StanzaEvent, query: Element): Promise<undefined> {
      const user = own(e);
      if (!secureEnough(e.origin)) throw new StanzaError('not-authorized', 'Not over an unencrypted connection');
      if (query.getChild('remove', NS_REGISTER)) {
        if (query.getElements().length !== 1) throw StanzaError.badRequest('<remove/> must be the only child of <query/>');
        return cancel(user);
      }
      const creds = credentials(query, [FORM_TYPE.REGISTER, FORM_TYPE.CHANGE_PASSWORD, FORM_TYPE.CANCEL]);
      if (creds.formType === FORM_TYPE.CANCEL) {
        if (creds.username && !sameUser(creds.username, user)) throw StanzaError.forbidden('You can only remove your own account');
        if (creds.password !== undefined && !(await passwordMatches(user, creds.password))) throw new StanzaError('not-authorized', 'Wrong password');
        return cancel(user);
      }
      return changePassword(user, creds);
    }

    async function changePassword(user: Jid, creds: Credentials): Promise<undefined> {
      if (!o.password_change) throw StanzaError.notAllowed('In-band password changes are disabled here');
      if (!creds.username) throw StanzaError.badRequest('Include your <username/>');
      if (!sameUser(creds.username, user)) throw StanzaError.forbidden('You can only change your own password');
      // §3.3: an empty password never replaces the current one.
      if (!creds.password) throw StanzaError.badRequest('An empty password: the current password is kept');
      if (creds.oldPassword !== undefined && !(await passwordMatches(user, creds.oldPassword))) {
        throw new StanzaError('not-authorized', 'The old password is wrong');
      }
      checkPassword(creds.password, rules);
      await accounts.setPassword(user.local, host.name, creds.password);
      log.info({ user: user.toString() }, 'password changed in-band');
      return undefined;
    }

    async function cancel(user: Jid): Promise<undefined> {
      if (!o.cancel) throw StanzaError.notAllowed('In-band account removal is disabled here');
      await host.removeAccount(user);
      log.info({ user: user.toString() }, 'account removed in-band');
      // §3.2: the result goes out first (the core sends it once this returns, without yielding to I/O), then every
      // session of the account ends with not-authorized.
      setImmediate(() => {
        for (const s of ctx.sessions.resources(user)) s.close(new StreamError('not-authorized', 'Account removed'));
      });
      return undefined;
    }

    async function passwordMatches(user: Jid, password: string): Promise<boolean> {
      return (await host.auth.checkPassword(user.local, password)) !== false;
    }

    function sameUser(raw: string, user: Jid): boolean {
      if (raw.includes('@')) {
        const j = Jid.tryParse(raw);
        return j !== undefined && j.resource === '' && j.bareString === user.bareString;
      }
      try {
        return accounts.username(raw) === user.local;
      } catch {
        return false;
      }
    }

    function toStanzaError(err: unknown): StanzaError {
      if (err instanceof StanzaError) return err;
      if (err instanceof AccountError) {
        switch (err.code) {
          case 'EXISTS': return new StanzaError('conflict', 'That username is taken');
          case 'INVALID_USERNAME': return StanzaError.notAcceptable(err.message);
          case 'INVALID_PASSWORD': return StanzaError.notAcceptable(`Unusable password: ${err.message}`);
          case 'NOT_FOUND': return new StanzaError('registration-required', 'No such account');
          case 'NOT_SUPPORTED': return StanzaError.notAllowed('The account store of this server cannot do that');
          default: break;
        }
      }
      log.error({ err }, 'in-band registration failed');
      return StanzaError.internal();
    }
  },
});

/** Username, password and old password from the submitted data form (which takes precedence, §4) or the legacy fields. */
function credentials(query: Element, formTypes: readonly string[]): Credentials {
  const x = query.getChild('x', NS_DATA);
  if (x) {
    const form = readForm(x);
    if (form.type !== 'submit') throw StanzaError.badRequest('Submit the form with type "submit"');
    if (form.formType !== undefined && !formTypes.includes(form.formType)) throw StanzaError.badRequest(`Unexpected FORM_TYPE ${form.formType}`);
    return { username: form.values.get('username'), password: form.values.get('password'), oldPassword: form.values.get('old_password'), formType: form.formType };
  }
  return {
    username: query.getChildText('username', NS_REGISTER),
    password: query.getChildText('password', NS_REGISTER),
    oldPassword: undefined,
    formType: undefined,
  };
}

/**
 * A reply on a stream whose client has no address yet: no 'to', 'from' only if the request named us. Errors
 * carry no copy of the request, which holds a password.
 */
function reply(request: Element, type: 'result' | 'error', payload: Element | undefined): Element {
  return xml('iq', { type, id: request.attrs.id, from: request.attrs.to }, payload);
}
