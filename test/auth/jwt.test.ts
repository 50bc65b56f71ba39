// The JWT backend: tokens signed here with each algorithm, and every way a token must be refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, createHmac, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, type JWTPayload } from 'jose';
import { pino } from 'pino';
import { createJwtBackend, type JwtAuthOptions } from '../../src/auth/jwt.ts';
import type { AuthBackend, AuthBackendContext } from '../../src/auth/types.ts';
import { ConfigError } from '../../src/core/errors.ts';
import type { Storage } from '../../src/storage/types.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const secret = randomBytes(32).toString('base64url');
const pem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }) as string;

const ctx: AuthBackendContext = { host: 'localhost', storage: {} as Storage, log: pino({ level: 'silent' }), scramIterations: 4096 };
const now = (): number => Math.floor(Date.now() / 1000);

function backend(opts: Partial<JwtAuthOptions>): AuthBackend {
  return createJwtBackend({ algorithms: ['HS256'], claim: 'sub', clock_tolerance: 30, ...opts }, ctx);
}
const hs = (): AuthBackend => backend({ algorithms: ['HS256'], secret });
const rs = (): AuthBackend => backend({ algorithms: ['RS256'], public_key: pem(rsa.publicKey) });
const es = (): AuthBackend => backend({ algorithms: ['ES256'], public_key: pem(ec.publicKey) });

type Alg = 'HS256' | 'RS256' | 'ES256';
const signingKey = (alg: Alg): KeyObject | Uint8Array =>
  alg === 'HS256' ? new TextEncoder().encode(secret) : alg === 'RS256' ? rsa.privateKey : ec.privateKey;

/** A token valid for five minutes unless the claims say otherwise (`exp: undefined` leaves exp out). */
async function token(claims: JWTPayload, alg: Alg = 'HS256', key = signingKey(alg)): Promise<string> {
  const payload: JWTPayload = { sub: 'alice', iat: now(), exp: now() + 300, ...claims };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg }).sign(key);
}

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('jwt backend', () => {
  it('accepts HS256, RS256 and ES256 tokens and names the user from the claim', async () => {
    assert.equal(await hs().checkPassword?.('alice', await token({}, 'HS256')), 'alice');
    assert.equal(await rs().checkPassword?.('alice', await token({ sub: 'alice@localhost' }, 'RS256')), 'alice');
    assert.equal(await es().checkPassword?.('alice', await token({}, 'ES256')), 'alice');
    assert.equal(hs().verification, 'plain');
  });

  it('prepares the claimed user and compares the authcid with it', async () => {
    assert.equal(await hs().checkPassword?.('Alice', await token({ sub: 'ALICE@LocalHost' })), 'alice');
    assert.equal(await hs().checkPassword?.('bob', await token({ sub: 'alice' })), false, 'another authcid is refused');
    assert.equal(await hs().checkPassword?.('', await token({ sub: 'alice' })), 'alice', 'no authcid: the claim decides');
  });

  it('reads the configured claim', async () => {
    const b = backend({ secret, claim: 'jid' });
    assert.equal(await b.checkPassword?.('carol', await token({ sub: 'someone-else', jid: 'carol@localhost' })), 'carol');
    assert.equal(await b.checkPassword?.('alice', await token({ sub: 'alice' })), false, 'the claim is missing');
    assert.equal(await b.checkPassword?.('alice', await token({ jid: 42 as unknown as string })), false, 'the claim is not a string');
  });

  it('refuses a claim naming another host, a full JID or an invalid user', async () => {
    assert.equal(await hs().checkPassword?.('alice', await token({ sub: 'alice@example.org' })), false);
    assert.equal(await hs().checkPassword?.('alice', await token({ sub: 'alice@localhost/phone' })), false);
    assert.equal(await hs().checkPassword?.('alice', await token({ sub: '@localhost' })), false);
    assert.equal(await hs().checkPassword?.('alice', await token({ sub: '' })), false);
  });

  it('refuses expired tokens and tokens without exp', async () => {
    assert.equal(await hs().checkPassword?.('alice', await token({ exp: now() - 3600 })), false);
    assert.equal(await hs().checkPassword?.('alice', await token({ exp: undefined })), false);
    // Within the configured clock tolerance an expired token still passes; outside it, not.
    assert.equal(await backend({ secret, clock_tolerance: 120 }).checkPassword?.('alice', await token({ exp: now() - 60 })), 'alice');
    assert.equal(await backend({ secret, clock_tolerance: 0 }).checkPassword?.('alice', await token({ exp: now() - 60 })), false);
  });

  it('refuses tokens that are not yet valid', async () => {
    assert.equal(await hs().checkPassword?.('alice', await token({ nbf: now() + 3600 })), false);
  });

  it('refuses a wrong signature', async () => {
    assert.equal(await hs().checkPassword?.('alice', await token({}, 'HS256', new TextEncoder().encode(randomBytes(32).toString('hex')))), false);
    assert.equal(await rs().checkPassword?.('alice', await token({}, 'RS256', otherRsa.privateKey)), false);
    const good = await token({});
    const [h, , s] = good.split('.');
    assert.equal(await hs().checkPassword?.('alice', `${h}.${b64url({ sub: 'alice', exp: now() + 300, admin: true })}.${s}`), false, 'a changed payload');
  });

  it('refuses an algorithm that is not configured', async () => {
    assert.equal(await rs().checkPassword?.('alice', await token({}, 'HS256')), false);
    assert.equal(await rs().checkPassword?.('alice', await token({}, 'ES256')), false);
    assert.equal(await hs().checkPassword?.('alice', await token({}, 'RS256')), false);
  });

  it('refuses algorithm confusion: an HS256 token keyed with the RSA public key', async () => {
    const b = backend({ algorithms: ['HS256', 'RS256'], secret, public_key: pem(rsa.publicKey) });
    assert.equal(await b.checkPassword?.('alice', await token({}, 'RS256')), 'alice');
    const header = b64url({ alg: 'HS256', typ: 'JWT' });
    const payload = b64url({ sub: 'alice', exp: now() + 300 });
    const forged = createHmac('sha256', pem(rsa.publicKey)).update(`${header}.${payload}`).digest('base64url');
    assert.equal(await b.checkPassword?.('alice', `${header}.${payload}.${forged}`), false);
  });

  it('refuses alg none', async () => {
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', exp: now() + 300 })}.`;
    assert.equal(await hs().checkPassword?.('alice', unsigned), false);
    assert.equal(await rs().checkPassword?.('alice', unsigned), false);
  });

  it('checks issuer and audience when configured', async () => {
    const b = backend({ secret, issuer: 'https://app.example', audience: 'xmpp' });
    assert.equal(await b.checkPassword?.('alice', await token({ iss: 'https://app.example', aud: 'xmpp' })), 'alice');
    assert.equal(await b.checkPassword?.('alice', await token({ iss: 'https://evil.example', aud: 'xmpp' })), false);
    assert.equal(await b.checkPassword?.('alice', await token({ iss: 'https://app.example', aud: 'web' })), false);
    assert.equal(await b.checkPassword?.('alice', await token({ iss: 'https://app.example' })), false);
  });

  it('refuses what is not a JWT at all', async () => {
    assert.equal(await hs().checkPassword?.('alice', 'hunter2'), false);
    assert.equal(await hs().checkPassword?.('alice', 'a.b.c'), false);
    assert.equal(await hs().checkPassword?.('alice', ''), false);
  });

  it('knows no users while they are offline', async () => {
    assert.equal(await hs().userExists('alice'), false);
    assert.equal(hs().register, undefined);
  });

  it('reads the public key from a PEM file and checks it fits the algorithms', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-jwt-'));
    try {
      const file = join(dir, 'key.pem');
      writeFileSync(file, pem(ec.publicKey));
      assert.ok(backend({ algorithms: ['ES256'], public_key: file }));
      assert.throws(() => backend({ algorithms: ['RS256'], public_key: file }), ConfigError);
      assert.throws(() => backend({ algorithms: ['RS256', 'ES256'], public_key: file }), ConfigError);
      assert.throws(() => backend({ algorithms: ['ES256'], public_key: join(dir, 'missing.pem') }), ConfigError);
      assert.throws(() => backend({ algorithms: ['HS256'] }), ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('jwt backend end to end', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ auth: { methods: ['jwt'], jwt: { algorithms: ['ES256'], public_key: pem(ec.publicKey), audience: 'parley' } } });
  });
  after(() => t?.stop());

  it('logs in with PLAIN over STARTTLS, the token as the password', async () => {
    const c = await RawClient.connect(t.port);
    assert.equal(await c.login('dora', await token({ sub: 'dora@localhost', aud: 'parley' }, 'ES256'), 'tab'), 'dora@localhost/tab');
    c.destroy();
  });

  it('refuses an expired token', async () => {
    const c = await RawClient.connect(t.port);
    await c.openStream();
    await c.starttls();
    await c.openStream();
    const expired = await token({ sub: 'dora', aud: 'parley', exp: now() - 3600 }, 'ES256');
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0dora\0${expired}`).toString('base64')}</auth>`);
    await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/>/);
    c.destroy();
  });
});
