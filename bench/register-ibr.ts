// XEP-0077: In-Band Registration, as a bulk client: creates user1..userN on a server under test (ejabberd, Prosody).
//
// Used by bench/compare.sh in a setup phase only, over STARTTLS (both servers refuse registration in the clear).
// Several connections each keep a window of registration IQs in flight, so 10,000 accounts take seconds, not
// the hour that one CLI call per account would. An account that already exists (<conflict/>) counts as done,
// so a second run is harmless. Bounded: a global deadline ends everything.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { StreamParser, DEFAULT_PARSER_LIMITS } from '../src/xml/parser.ts';
import { escapeText, type Element } from '../src/xml/element.ts';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_REGISTER = 'jabber:iq:register';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export type RegisterOptions = {
  host: string;
  port: number;
  domain: string;
  users: number;
  first: number;
  prefix: string;
  password: string;
  connections: number;
  window: number;
  timeoutMs: number;
};

export type RegisterResult = { created: number; existed: number; failed: number; errors: string[]; ms: number };

/** Reads top-level elements of one XMPP stream, in order; a stream restart gets a fresh parser. */
class ElementReader {
  private queue: Element[] = [];
  private waiter: { resolve: (el: Element) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private parser: StreamParser;

  constructor() {
    this.parser = this.newParser();
  }

  private newParser(): StreamParser {
    return new StreamParser({
      streamStart: () => undefined,
      stanza: (el) => this.push(el),
      streamEnd: () => this.fail(new Error('server closed the stream')),
      error: (err) => this.fail(new Error(`stream error from parser: ${err.message}`)),
    }, DEFAULT_PARSER_LIMITS);
  }

  restart(): void {
    this.parser = this.newParser();
  }

  write(chunk: Uint8Array): void {
    this.parser.write(chunk);
  }

  private push(el: Element): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(el);
    } else {
      this.queue.push(el);
    }
  }

  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(err);
    }
  }

  read(): Promise<Element> {
    const el = this.queue.shift();
    if (el) return Promise.resolve(el);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
  }
}

function streamHeader(domain: string): string {
  return `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' ` +
    `xmlns:stream='${NS_STREAM}' version='1.0'>`;
}

function errorCondition(el: Element): string {
  const err = el.getChild('error');
  if (!err) return 'unknown';
  const cond = err.getElements().find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== 'text');
  const text = err.getChildText('text', NS_STANZAS);
  return `${err.attrs.type ?? '?'}/${cond?.name ?? '?'}${text ? ` (${text})` : ''}`;
}

/** Opens a stream, negotiates STARTTLS and returns a stream ready for pre-authentication IQs. */
async function openSecureStream(opts: RegisterOptions): Promise<{ sock: TLSSocket; reader: ElementReader }> {
  const reader = new ElementReader();
  const raw: Socket = connect({ host: opts.host, port: opts.port });
  raw.on('data', (d: Buffer) => reader.write(d));
  raw.on('error', (err) => reader.fail(err));
  raw.on('close', () => reader.fail(new Error('connection closed')));
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  raw.write(streamHeader(opts.domain));
  const features = await reader.read();
  if (!features.getChild('starttls', NS_TLS)) throw new Error(`no STARTTLS offered: ${features.name}`);
  raw.write(`<starttls xmlns='${NS_TLS}'/>`);
  const proceed = await reader.read();
  if (proceed.name !== 'proceed') throw new Error(`STARTTLS refused: ${proceed.name}`);
  raw.removeAllListeners('data');
  raw.removeAllListeners('close');
  reader.restart();
  // The benchmark certificate is self-signed and generated per run: there is nothing to verify against.
  const sock = tlsConnect({ socket: raw, servername: opts.domain, rejectUnauthorized: false });
  sock.on('data', (d: Buffer) => reader.write(d));
  sock.on('error', (err) => reader.fail(err));
  sock.on('close', () => reader.fail(new Error('connection closed')));
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', resolve);
    sock.once('error', reject);
  });
  sock.write(streamHeader(opts.domain));
  await reader.read(); // stream features after TLS; servers differ in whether they list <register/>
  return { sock, reader };
}

export async function registerUsers(opts: RegisterOptions): Promise<RegisterResult> {
  const started = Date.now();
  const result: RegisterResult = { created: 0, existed: 0, failed: 0, errors: [], ms: 0 };
  const last = opts.first + opts.users - 1;
  let next = opts.first;
  const retries: number[] = [];
  const tries = new Map<number, number>();
  let done = 0;
  let lastReport = 0;
  const deadline = started + opts.timeoutMs;

  const take = (): number | undefined => {
    const r = retries.shift();
    if (r !== undefined) return r;
    if (next > last) return undefined;
    return next++;
  };

  const progress = (): void => {
    const now = Date.now();
    if (now - lastReport < 1000 && done < opts.users) return;
    lastReport = now;
    process.stderr.write(`\rregistered ${done}/${opts.users} (${result.created} new, ${result.existed} existing, ` +
      `${result.failed} failed)   `);
  };

  const worker = async (): Promise<void> => {
    const { sock, reader } = await openSecureStream(opts);
    const inFlight = new Map<string, number>();
    let seq = 0;
    try {
      for (;;) {
        if (Date.now() > deadline) throw new Error(`timed out after ${opts.timeoutMs} ms`);
        while (inFlight.size < opts.window) {
          const n = take();
          if (n === undefined) break;
          const id = `r${seq++}`;
          inFlight.set(id, n);
          sock.write(`<iq type='set' id='${id}'><query xmlns='${NS_REGISTER}'>` +
            `<username>${escapeText(opts.prefix + n)}</username><password>${escapeText(opts.password)}</password>` +
            `</query></iq>`);
        }
        if (inFlight.size === 0) break;
        const el = await reader.read();
        if (el.name !== 'iq') {
          if (el.name === 'error' && el.attrs.xmlns === undefined) throw new Error('stream error from server');
          continue;
        }
        const id = el.attrs.id ?? '';
        const n = inFlight.get(id);
        if (n === undefined) continue;
        inFlight.delete(id);
        if (el.attrs.type === 'result') {
          result.created++;
          done++;
        } else {
          const cond = errorCondition(el);
          if (cond.includes('/conflict')) {
            result.existed++;
            done++;
          } else if (cond.startsWith('wait/') && (tries.get(n) ?? 0) < 5) {
            // A throttle that the setup configuration did not lift after all: back off and retry.
            tries.set(n, (tries.get(n) ?? 0) + 1);
            await new Promise((r) => setTimeout(r, 200));
            retries.push(n);
          } else {
            result.failed++;
            done++;
            if (result.errors.length < 10) result.errors.push(`${opts.prefix}${n}: ${cond}`);
          }
        }
        progress();
      }
    } finally {
      sock.end('</stream:stream>');
    }
  };

  const workers = Array.from({ length: Math.max(1, Math.min(opts.connections, opts.users)) }, () => worker());
  const settled = await Promise.allSettled(workers);
  for (const s of settled) {
    if (s.status === 'rejected') result.errors.push(String((s.reason as Error)?.message ?? s.reason));
  }
  // Users a failed connection had taken but not finished are simply not counted as done.
  result.failed += opts.users - done;
  result.ms = Date.now() - started;
  progress();
  process.stderr.write('\n');
  return result;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '5222' },
      domain: { type: 'string', default: 'localhost' },
      users: { type: 'string', default: '1000' },
      first: { type: 'string', default: '1' },
      prefix: { type: 'string', default: 'user' },
      password: { type: 'string', default: 'pw' },
      connections: { type: 'string', default: '8' },
      window: { type: 'string', default: '16' },
      timeout: { type: 'string', default: '600' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: node bench/register-ibr.ts --port P [--host H] [--domain D] [--users N] [--first 1]\n' +
      '       [--prefix user] [--password pw] [--connections 8] [--window 16] [--timeout SECONDS]\n');
    return 0;
  }
  const num = (s: string, name: string): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
    return n;
  };
  const opts: RegisterOptions = {
    host: values.host, port: num(values.port, 'port'), domain: values.domain,
    users: num(values.users, 'users'), first: num(values.first, 'first'), prefix: values.prefix,
    password: values.password, connections: Math.max(1, num(values.connections, 'connections')),
    window: Math.max(1, num(values.window, 'window')), timeoutMs: num(values.timeout, 'timeout') * 1000,
  };
  const r = await registerUsers(opts);
  process.stdout.write(JSON.stringify({ created: r.created, existed: r.existed, failed: r.failed, ms: r.ms }) + '\n');
  for (const e of r.errors) process.stderr.write(`  ${e}\n`);
  return r.failed === 0 && r.created + r.existed === opts.users ? 0 : 1;
}

if (import.meta.main) {
  main().then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`register-ibr: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
