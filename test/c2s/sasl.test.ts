// Tests for the server-side SASL mechanisms: SCRAM (RFC 5802, RFC 7677, RFC 9266), PLAIN (RFC 4616), base64 (RFC 6120 §6.4.2).
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SaslFailure, type SaslCondition } from '../../src/core/errors.ts';
import { decodeSaslPayload, encodeSaslPayload } from '../../src/c2s/sasl/base64.ts';
import {
  deriveScramCredentials,
  verifyPasswordWithScram,
  type ScramCredentials,
  type ScramHash,
} from '../../src/c2s/sasl/credentials.ts';
import {
  createMechanism,
  type SaslMechanismName,
  type SaslServerContext,
  type SaslServerMechanism,
  type SaslStep,
} from '../../src/c2s/sasl/mechanism.ts';
import { createScramMechanism } from '../../src/c2s/sasl/scram.ts';
import { ScramClient, b, hmac, digest, xor, HASH_LEN, NODE_HASH } from '../helpers/scram-client.ts';

// ---------------------------------------------------------------------------------------------
// Helpers

const CB_DATA = Buffer.from('0123456789abcdef0123456789abcdef'); // a fake 32-byte tls-exporter value

const USERS: Record<string, string> = {
  juliet: 'r0m30myr0m30',
  'we,ird=name': 'secret',
  romeo: 'pass word',
};

const credCache = new Map<string, ScramCredentials>();
function credsFor(username: string, hash: ScramHash): ScramCredentials | undefined {
  const password = USERS[username];
  if (password === undefined) return undefined;
  const key = `${hash}\0${username}`;
  let creds = credCache.get(key);
  if (!creds) {
    creds = deriveScramCredentials(password, hash, 4096);
    credCache.set(key, creds);
  }
  return creds;
}

type TestCtx = SaslServerContext & { lookups: string[]; plainCalls: [string, string][] };

function makeCtx(over: Partial<SaslServerContext> = {}): TestCtx {
  const lookups: string[] = [];
  const plainCalls: [string, string][] = [];
  return {
    secure: true,
    plusOffered: true,
    channelBinding: () => CB_DATA,
    getScramCredentials: async (username, hash) => {
      lookups.push(username);
      return credsFor(username, hash);
    },
    verifyPlain: async (username, password) => {
      plainCalls.push([username, password]);
      const creds = credsFor(username, 'SHA-256');
      return creds !== undefined && verifyPasswordWithScram(password, creds);
    },
    authzidMatches: (authzid, username) => authzid === `${username}@localhost`,
    ...over,
    lookups,
    plainCalls,
  };
}

async function rejectsWith(p: Promise<unknown>, condition: SaslCondition): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SaslFailure, `expected SaslFailure, got ${String(err)}`);
    assert.equal(err.condition, condition, `expected ${condition}, got ${err.condition} (${err.message})`);
    return true;
  });
}

function challengeText(step: SaslStep): string {
  assert.equal(step.kind, 'challenge');
  return step.kind === 'challenge' ? step.data.toString('utf8') : '';
}

const PLUS_OF = { 'SHA-1': 'SCRAM-SHA-1-PLUS', 'SHA-256': 'SCRAM-SHA-256-PLUS' } as const;
const BARE_OF = { 'SHA-1': 'SCRAM-SHA-1', 'SHA-256': 'SCRAM-SHA-256' } as const;

async function fullExchange(mech: SaslServerMechanism, client: ScramClient): Promise<SaslStep> {
  const sf = challengeText(await mech.step(client.first()));
  return mech.step(client.final(sf));
}

// ---------------------------------------------------------------------------------------------
// RFC test vectors

const RFC5802 = {
  hash: 'SHA-1' as const,
  salt: 'QSXCR+Q6sek8bf92',
  serverNonce: '3rfcNHYJY1ZVvWVs7j',
  clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
  serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
  clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
};
const RFC7677 = {
  hash: 'SHA-256' as const,
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

describe('SCRAM RFC test vectors', () => {
  for (const [rfc, v] of [['RFC 5802', RFC5802], ['RFC 7677', RFC7677]] as const) {
    it(`${rfc}: derived keys reproduce the example's proof and server signature`, () => {
      const creds = deriveScramCredentials('pencil', v.hash, 4096, Buffer.from(v.salt, 'base64'));
      assert.equal(creds.hash, v.hash);
      assert.equal(creds.iterations, 4096);
      assert.equal(creds.salt.toString('base64'), v.salt);
      assert.equal(creds.storedKey.length, HASH_LEN[v.hash]);
      const bare = v.clientFirst.slice(3);
      const withoutProof = v.clientFinal.slice(0, v.clientFinal.lastIndexOf(',p='));
      const authMessage = `${bare},${v.serverFirst},${withoutProof}`;
      const proof = Buffer.from(v.clientFinal.slice(v.clientFinal.lastIndexOf(',p=') + 3), 'base64');
      const clientKey = xor(proof, hmac(v.hash, creds.storedKey, authMessage));
      assert.deepEqual(digest(v.hash, clientKey), creds.storedKey);
      assert.equal(`v=${hmac(v.hash, creds.serverKey, authMessage).toString('base64')}`, v.serverFinal);
    });

    it(`${rfc}: the example exchange yields the RFC's server-first and server-final`, async () => {
      const creds = deriveScramCredentials('pencil', v.hash, 4096, Buffer.from(v.salt, 'base64'));
      const ctx = makeCtx({ plusOffered: false, getScramCredentials: async (u) => (u === 'user' ? creds : undefined) });
      const mech = createScramMechanism(BARE_OF[v.hash], ctx, { serverNonce: v.serverNonce });
      assert.equal(challengeText(await mech.step(b(v.clientFirst))), v.serverFirst);
      const done = await mech.step(b(v.clientFinal));
      assert.equal(done.kind, 'success');
      assert.equal(done.kind === 'success' && done.username, 'user');
      assert.equal(done.kind === 'success' && done.data?.toString('utf8'), v.serverFinal);
    });

    it(`${rfc}: a one-bit change in the example proof is refused`, async () => {
      const creds = deriveScramCredentials('pencil', v.hash, 4096, Buffer.from(v.salt, 'base64'));
      const ctx = makeCtx({ plusOffered: false, getScramCredentials: async () => creds });
      const mech = createScramMechanism(BARE_OF[v.hash], ctx, { serverNonce: v.serverNonce });
      await mech.step(b(v.clientFirst));
      const at = v.clientFinal.lastIndexOf(',p=') + 3;
      const proof = Buffer.from(v.clientFinal.slice(at), 'base64');
      proof[0]! ^= 1;
      await rejectsWith(mech.step(b(v.clientFinal.slice(0, at) + proof.toString('base64'))), 'not-authorized');
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Credentials

describe('deriveScramCredentials / verifyPasswordWithScram', () => {
  it('uses a fresh random 16-byte salt by default', () => {
    const a = deriveScramCredentials('pw', 'SHA-256', 4096);
    const c = deriveScramCredentials('pw', 'SHA-256', 4096);
    assert.equal(a.salt.length, 16);
    assert.notDeepEqual(a.salt, c.salt);
    assert.notDeepEqual(a.storedKey, c.storedKey);
    assert.equal(a.serverKey.length, 32);
    assert.equal(deriveScramCredentials('pw', 'SHA-1', 4096).storedKey.length, 20);
  });

  it('verifies the right password and refuses others', () => {
    const creds = deriveScramCredentials('correct horse', 'SHA-1', 4096);
    assert.equal(verifyPasswordWithScram('correct horse', creds), true);
    assert.equal(verifyPasswordWithScram('correct horsf', creds), false);
    assert.equal(verifyPasswordWithScram('', creds), false);
    assert.equal(verifyPasswordWithScram('\u0007', creds), false);
  });

  it('SASLpreps passwords (RFC 4013 §3 examples)', () => {
    const creds = deriveScramCredentials('I\u00ADX', 'SHA-256', 4096); // soft hyphen maps to nothing
    assert.equal(verifyPasswordWithScram('IX', creds), true);
    const spaced = deriveScramCredentials('a b', 'SHA-256', 4096);
    assert.equal(verifyPasswordWithScram('a\u00A0b', spaced), true); // non-ASCII space maps to SPACE
    assert.equal(verifyPasswordWithScram('\u2168', deriveScramCredentials('IX', 'SHA-256', 4096)), true); // NFKC
  });

  it('throws malformed-request for prohibited passwords', () => {
    assert.throws(() => deriveScramCredentials('bad\u0007', 'SHA-256', 4096), (e: unknown) => e instanceof SaslFailure && e.condition === 'malformed-request');
    assert.throws(() => deriveScramCredentials('', 'SHA-256', 4096), (e: unknown) => e instanceof SaslFailure && e.condition === 'malformed-request');
  });
});

// ---------------------------------------------------------------------------------------------
// SCRAM exchanges with the test client

describe('SCRAM full exchanges', () => {
  for (const hash of ['SHA-1', 'SHA-256'] as const) {
    it(`${BARE_OF[hash]} authenticates and proves the server`, async () => {
      const ctx = makeCtx({ plusOffered: false });
      const mech = createMechanism(BARE_OF[hash], ctx);
      assert.equal(mech.name, BARE_OF[hash]);
      const client = new ScramClient({ hash, username: 'juliet', password: USERS.juliet! });
      const sf = challengeText(await mech.step(client.first()));
      assert.match(sf, /^r=clientNonce\+\/0123[A-Za-z0-9+/=]{24,},s=[A-Za-z0-9+/]+=*,i=4096$/);
      const done = await mech.step(client.final(sf));
      assert.equal(done.kind, 'success');
      assert.equal(done.kind === 'success' && done.username, 'juliet');
      assert.equal(done.kind === 'success' && done.data?.toString('utf8'), client.expectedServerFinal());
      assert.deepEqual(ctx.lookups, ['juliet']);
    });

    it(`${PLUS_OF[hash]} authenticates with tls-exporter channel binding`, async () => {
      const mech = createMechanism(PLUS_OF[hash], makeCtx());
      const client = new ScramClient({ hash, username: 'juliet', password: USERS.juliet!, flag: 'p=tls-exporter', cbData: CB_DATA });
      const done = await fullExchange(mech, client);
      assert.equal(done.kind === 'success' && done.data?.toString('utf8'), client.expectedServerFinal());
    });

    it(`${PLUS_OF[hash]} refuses a client bound to a different channel`, async () => {
      const mech = createMechanism(PLUS_OF[hash], makeCtx());
      const other = Buffer.from(CB_DATA);
      other[31]! ^= 0xff;
      const client = new ScramClient({ hash, username: 'juliet', password: USERS.juliet!, flag: 'p=tls-exporter', cbData: other });
      await rejectsWith(fullExchange(mech, client), 'not-authorized');
    });
  }

  it('sends an empty challenge when there is no initial response, then continues', async () => {
    const mech = createMechanism('SCRAM-SHA-256', makeCtx({ plusOffered: false }));
    const first = await mech.step(undefined);
    assert.equal(first.kind, 'challenge');
    assert.equal(first.kind === 'challenge' && first.data.length, 0);
    const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: USERS.juliet! });
    const done = await fullExchange(mech, client);
    assert.equal(done.kind, 'success');
  });

  it('decodes =2C and =3D in the username', async () => {
    const ctx = makeCtx();
    const mech = createMechanism('SCRAM-SHA-1', ctx);
    const client = new ScramClient({ hash: 'SHA-1', username: 'we,ird=name', password: 'secret' });
    assert.match(client.first().toString(), /n=we=2Cird=3Dname,/);
    const done = await fullExchange(mech, client);
    assert.equal(done.kind === 'success' && done.username, 'we,ird=name');
    assert.deepEqual(ctx.lookups, ['we,ird=name']);
  });

  it('SASLpreps the username before lookup', async () => {
    const ctx = makeCtx();
    const mech = createMechanism('SCRAM-SHA-256', ctx);
    const client = new ScramClient({ hash: 'SHA-256', username: 'jul\u00ADiet', password: USERS.juliet! });
    const done = await fullExchange(mech, client);
    assert.equal(done.kind === 'success' && done.username, 'juliet');
    assert.deepEqual(ctx.lookups, ['juliet']);
  });

  it('accepts flag y when no -PLUS mechanism is offered', async () => {
    const mech = createMechanism('SCRAM-SHA-256', makeCtx({ plusOffered: false }));
    const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: USERS.juliet!, flag: 'y' });
    assert.equal((await fullExchange(mech, client)).kind, 'success');
  });

  it('accepts a matching authzid and ignores unknown extensions', async () => {
    const mech = createMechanism('SCRAM-SHA-256', makeCtx());
    const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: USERS.juliet!, authzid: 'juliet@localhost', extraBare: ',x=ignored' });
    const sf = challengeText(await mech.step(client.first()));
    const done = await mech.step(client.final(sf, { ext: ',y=also-ignored' }));
    assert.equal(done.kind === 'success' && done.username, 'juliet');
  });

  it('uses a fresh server nonce for each exchange', async () => {
    const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'x' });
    const a = challengeText(await createMechanism('SCRAM-SHA-256', makeCtx()).step(client.first()));
    const c = challengeText(await createMechanism('SCRAM-SHA-256', makeCtx()).step(client.first()));
    assert.notEqual(a.split(',')[0], c.split(',')[0]);
  });
});

describe('SCRAM failures', () => {
  const juliet = (over: Partial<ConstructorParameters<typeof ScramClient>[0]> = {}): ScramClient =>
    new ScramClient({ hash: 'SHA-256', username: 'juliet', password: USERS.juliet!, ...over });

  it('wrong password -> not-authorized', async () => {
    const mech = createMechanism('SCRAM-SHA-256', makeCtx());
    await rejectsWith(fullExchange(mech, juliet({ password: 'wrong' })), 'not-authorized');
  });

  it('unknown user: a plausible server-first, then not-authorized', async () => {
    const ctx = makeCtx();
    const client = juliet({ username: 'nobody', password: 'whatever' });
    const mech = createMechanism('SCRAM-SHA-256', ctx);
    const sf = challengeText(await mech.step(client.first()));
    const m = /^r=clientNonce\+\/0123[A-Za-z0-9+/=]{24,},s=([A-Za-z0-9+/]+=*),i=4096$/.exec(sf);
    assert.ok(m, sf);
    assert.equal(Buffer.from(m[1]!, 'base64').length, 16);
    await rejectsWith(mech.step(client.final(sf)), 'not-authorized');
    // The fake salt is stable per name (so probing twice reveals nothing) and differs between names.
    const again = challengeText(await createMechanism('SCRAM-SHA-256', ctx).step(client.first()));
    assert.equal(again.split(',')[1], sf.split(',')[1]);
    const other = challengeText(await createMechanism('SCRAM-SHA-256', ctx).step(juliet({ username: 'nobody2' }).first()));
    assert.notEqual(other.split(',')[1], sf.split(',')[1]);
  });

  it('mismatched authzid -> invalid-authzid, but only with a valid proof', async () => {
    await rejectsWith(fullExchange(createMechanism('SCRAM-SHA-256', makeCtx()), juliet({ authzid: 'romeo@localhost' })), 'invalid-authzid');
    await rejectsWith(
      fullExchange(createMechanism('SCRAM-SHA-256', makeCtx()), juliet({ authzid: 'romeo@localhost', password: 'bad' })),
      'not-authorized',
    );
  });

  it('nonce mismatch in client-final -> not-authorized', async () => {
    const mech = createMechanism('SCRAM-SHA-256', makeCtx());
    const client = juliet();
    const sf = challengeText(await mech.step(client.first()));
    await rejectsWith(mech.step(client.final(sf, { r: 'clientNonce+/0123forged' })), 'not-authorized');
  });

  it("c= that does not repeat the gs2 header -> not-authorized", async () => {
    const client = juliet({ flag: 'y' });
    const mech = createMechanism('SCRAM-SHA-256', makeCtx({ plusOffered: false }));
    const sf = challengeText(await mech.step(client.first()));
    await rejectsWith(mech.step(client.final(sf, { c: 'biws' })), 'not-authorized'); // base64('n,,')
  });

  it('flag y while -PLUS is offered -> not-authorized (downgrade)', async () => {
    await rejectsWith(createMechanism('SCRAM-SHA-1', makeCtx({ plusOffered: true })).step(juliet({ flag: 'y' }).first()), 'not-authorized');
  });

  it('p= with a non-PLUS mechanism -> not-authorized', async () => {
    await rejectsWith(createMechanism('SCRAM-SHA-256', makeCtx()).step(juliet({ flag: 'p=tls-exporter' }).first()), 'not-authorized');
  });

  for (const flag of ['n', 'y']) {
    it(`-PLUS mechanism with flag ${flag} -> not-authorized`, async () => {
      await rejectsWith(createMechanism('SCRAM-SHA-256-PLUS', makeCtx()).step(juliet({ flag }).first()), 'not-authorized');
    });
  }

  for (const name of ['tls-unique', 'tls-server-end-point']) {
    it(`unsupported channel-binding type ${name} -> not-authorized`, async () => {
      await rejectsWith(createMechanism('SCRAM-SHA-256-PLUS', makeCtx()).step(juliet({ flag: `p=${name}` }).first()), 'not-authorized');
    });
  }

  it('p=tls-exporter without exporter data (not TLS 1.3) -> not-authorized', async () => {
    const ctx = makeCtx({ channelBinding: () => undefined });
    await rejectsWith(createMechanism('SCRAM-SHA-1-PLUS', ctx).step(juliet({ hash: 'SHA-1', flag: 'p=tls-exporter' }).first()), 'not-authorized');
  });

  it('no user lookup happens when channel binding is refused', async () => {
    const ctx = makeCtx();
    await rejectsWith(createMechanism('SCRAM-SHA-256-PLUS', ctx).step(juliet().first()), 'not-authorized');
    assert.deepEqual(ctx.lookups, []);
  });

  const badFirsts: [string, string | Buffer][] = [
    ['empty message', ''],
    ['no gs2 header', 'n=juliet,r=abc'],
    ['unknown flag', 'x,,n=juliet,r=abc'],
    ['flag p without a name', 'p=,,n=juliet,r=abc'],
    ['bad cb-name characters', 'p=tls_exporter,,n=juliet,r=abc'],
    ['gs2 header only', 'n,,'],
    ['authzid without a=', 'n,z=juliet,n=juliet,r=abc'],
    ['empty authzid', 'n,a=,n=juliet,r=abc'],
    ['missing username', 'n,,r=abc'],
    ['empty username', 'n,,n=,r=abc'],
    ['invalid escape =2X', 'n,,n=jul=2Xiet,r=abc'],
    ['lone = at the end', 'n,,n=juliet=,r=abc'],
    ['lower-case escape', 'n,,n=jul=2ciet,r=abc'],
    ['invalid escape in authzid', 'n,a=x=41,n=juliet,r=abc'],
    ['mandatory extension m= first', 'n,,m=foo,n=juliet,r=abc'],
    ['mandatory extension m= after the nonce', 'n,,n=juliet,r=abc,m=foo'],
    ['missing nonce', 'n,,n=juliet'],
    ['empty nonce', 'n,,n=juliet,r='],
    ['nonce with a space', 'n,,n=juliet,r=ab c'],
    ['nonce with non-ASCII', 'n,,n=juliet,r=ab\u00e9'],
    ['bad extension', 'n,,n=juliet,r=abc,xyz'],
    ['invalid UTF-8', Buffer.concat([b('n,,n=jul'), Buffer.from([0xc3, 0x28]), b(',r=abc')])],
    ['NUL byte', 'n,,n=jul\0iet,r=abc'],
    ['SASLprep-prohibited username', 'n,,n=jul\u0007iet,r=abc'],
    ['username empty after SASLprep', 'n,,n=\u00AD,r=abc'],
  ];
  for (const [what, msg] of badFirsts) {
    it(`client-first: ${what} -> malformed-request`, async () => {
      const ctx = makeCtx({ plusOffered: false });
      await rejectsWith(createMechanism('SCRAM-SHA-256', ctx).step(typeof msg === 'string' ? b(msg) : msg), 'malformed-request');
      assert.deepEqual(ctx.lookups, []);
    });
  }

  it('client-first after an empty challenge must not be empty', async () => {
    const mech = createMechanism('SCRAM-SHA-256', makeCtx());
    await mech.step(undefined);
    await rejectsWith(mech.step(Buffer.alloc(0)), 'malformed-request');
  });

  const badFinals: [string, (good: string) => string][] = [
    ['missing proof', (g) => g.slice(0, g.lastIndexOf(',p='))],
    ['missing c=', (g) => g.slice(g.indexOf(',') + 1)],
    ['c= not base64', (g) => g.replace(/^c=[^,]+/, 'c=bi*s')],
    ['c= with non-zero pad bits', (g) => g.replace(/^c=[^,]+/, 'c=bix=')],
    ['p= not base64', (g) => g.replace(/,p=.*$/, ',p=@@@@')],
    ['missing nonce', (g) => g.replace(/,r=[^,]+/, '')],
    ['reserved m= extension', (g) => g.replace(/,p=/, ',m=x,p=')],
    ['attributes out of order', (g) => {
      const [c, r, p] = g.split(',') as [string, string, string];
      return `${r},${c},${p}`;
    }],
  ];
  for (const [what, mangle] of badFinals) {
    it(`client-final: ${what} -> malformed-request`, async () => {
      const mech = createMechanism('SCRAM-SHA-256', makeCtx());
      const client = juliet();
      const sf = challengeText(await mech.step(client.first()));
      await rejectsWith(mech.step(b(mangle(client.final(sf).toString()))), 'malformed-request');
    });
  }

  it('a proof of the wrong length -> not-authorized', async () => {
    const mech = createMechanism('SCRAM-SHA-256', makeCtx());
    const client = juliet();
    const sf = challengeText(await mech.step(client.first()));
    await rejectsWith(mech.step(client.final(sf, { proof: (p) => p.subarray(0, 20).toString('base64') })), 'not-authorized');
  });

  it('any step after success -> malformed-request', async () => {
    const mech = createMechanism('SCRAM-SHA-1', makeCtx());
    const client = juliet({ hash: 'SHA-1' });
    const sf = challengeText(await mech.step(client.first()));
    const final = client.final(sf);
    assert.equal((await mech.step(final)).kind, 'success');
    await rejectsWith(mech.step(final), 'malformed-request');
    await rejectsWith(mech.step(Buffer.alloc(0)), 'malformed-request');
  });

  it('any step after a failure -> malformed-request (no second guess)', async () => {
    const mech = createMechanism('SCRAM-SHA-256', makeCtx());
    const bad = juliet({ password: 'wrong' });
    const sf = challengeText(await mech.step(bad.first()));
    await rejectsWith(mech.step(bad.final(sf)), 'not-authorized');
    await rejectsWith(mech.step(juliet().final(sf)), 'malformed-request');
  });
});

// ---------------------------------------------------------------------------------------------
// PLAIN

describe('PLAIN', () => {
  const msg = (authzid: string, authcid: string, passwd: string): Buffer => b(`${authzid}\0${authcid}\0${passwd}`);
  const plain = (over: Partial<SaslServerContext> = {}): { mech: SaslServerMechanism; ctx: TestCtx } => {
    const ctx = makeCtx(over);
    return { mech: createMechanism('PLAIN', ctx), ctx };
  };

  it('succeeds with the right password in the initial response', async () => {
    const { mech } = plain();
    assert.equal(mech.name, 'PLAIN');
    const done = await mech.step(msg('', 'juliet', USERS.juliet!));
    assert.deepEqual(done, { kind: 'success', username: 'juliet' });
  });

  for (const [what, initial] of [['no initial response', undefined], ['an empty initial response', Buffer.alloc(0)]] as const) {
    it(`answers ${what} with an empty challenge, then takes the response`, async () => {
      const { mech } = plain();
      const ch = await mech.step(initial);
      assert.equal(ch.kind, 'challenge');
      assert.equal(ch.kind === 'challenge' && ch.data.length, 0);
      assert.equal((await mech.step(msg('', 'juliet', USERS.juliet!))).kind, 'success');
    });
  }

  it('an empty response to the empty challenge -> malformed-request', async () => {
    const { mech } = plain();
    await mech.step(undefined);
    await rejectsWith(mech.step(Buffer.alloc(0)), 'malformed-request');
  });

  it('wrong password or unknown user -> not-authorized', async () => {
    await rejectsWith(plain().mech.step(msg('', 'juliet', 'nope')), 'not-authorized');
    await rejectsWith(plain().mech.step(msg('', 'nobody', 'nope')), 'not-authorized');
  });

  it('refuses without TLS -> encryption-required, before looking at the password', async () => {
    const { mech, ctx } = plain({ secure: false });
    await rejectsWith(mech.step(msg('', 'juliet', USERS.juliet!)), 'encryption-required');
    assert.deepEqual(ctx.plainCalls, []);
    await rejectsWith(plain({ secure: false }).mech.step(undefined), 'encryption-required');
  });

  it('matching authzid -> success; mismatching -> invalid-authzid', async () => {
    const ok = await plain().mech.step(msg('juliet@localhost', 'juliet', USERS.juliet!));
    assert.equal(ok.kind === 'success' && ok.username, 'juliet');
    await rejectsWith(plain().mech.step(msg('romeo@localhost', 'juliet', USERS.juliet!)), 'invalid-authzid');
    // A wrong password never reveals the authzid verdict.
    await rejectsWith(plain().mech.step(msg('romeo@localhost', 'juliet', 'nope')), 'not-authorized');
  });

  it('SASLpreps authcid and password before verifying', async () => {
    const { mech, ctx } = plain();
    const done = await mech.step(msg('', 'ro\u00ADmeo', 'pass\u00A0word'));
    assert.equal(done.kind === 'success' && done.username, 'romeo');
    assert.deepEqual(ctx.plainCalls, [['romeo', 'pass word']]);
  });

  const bad: [string, Buffer][] = [
    ['one NUL', b('juliet\0pw')],
    ['no NUL', b('julietpw')],
    ['three NULs', b('\0juliet\0pw\0')],
    ['empty authcid', msg('', '', 'pw')],
    ['empty password', msg('', 'juliet', '')],
    ['invalid UTF-8 in the password', Buffer.concat([b('\0juliet\0'), Buffer.from([0xff, 0xfe])])],
    ['invalid UTF-8 in the authzid', Buffer.concat([Buffer.from([0xc0, 0x80]), b('\0juliet\0pw')])],
    ['prohibited character in the password', msg('', 'juliet', 'pw\u0007')],
    ['prohibited character in the authcid', msg('', 'jul\u0007iet', 'pw')],
  ];
  for (const [what, data] of bad) {
    it(`${what} -> malformed-request`, async () => {
      const { mech, ctx } = plain();
      await rejectsWith(mech.step(data), 'malformed-request');
      assert.deepEqual(ctx.plainCalls, []);
    });
  }

  it('any step after success or failure -> malformed-request', async () => {
    const { mech } = plain();
    await mech.step(msg('', 'juliet', USERS.juliet!));
    await rejectsWith(mech.step(msg('', 'juliet', USERS.juliet!)), 'malformed-request');
    const failed = plain().mech;
    await rejectsWith(failed.step(msg('', 'juliet', 'nope')), 'not-authorized');
    await rejectsWith(failed.step(msg('', 'juliet', USERS.juliet!)), 'malformed-request');
  });
});

// ---------------------------------------------------------------------------------------------
// base64

describe('SASL base64', () => {
  it("'=' alone is empty data", () => {
    assert.deepEqual(decodeSaslPayload('='), Buffer.alloc(0));
  });

  it('decodes canonical base64', () => {
    assert.equal(decodeSaslPayload('Zm9v').toString(), 'foo');
    assert.equal(decodeSaslPayload('Zm8=').toString(), 'fo');
    assert.equal(decodeSaslPayload('Zg==').toString(), 'f');
    assert.deepEqual(decodeSaslPayload('+/8='), Buffer.from([0xfb, 0xff]));
  });

  for (const text of ['Zm9v\n', ' Zm9v', 'Zm 9v', 'Zm9', 'Zm9v=', '====', 'Zm9v====', '==', 'Z===', 'Zg=', 'Zm9v_-==', 'Zh==', 'Zm9=', 'Zm9v\r\nYmFy', 'Zg==Zm9v', 'Zm9v\0']) {
    it(`rejects ${JSON.stringify(text)} with incorrect-encoding`, () => {
      assert.throws(() => decodeSaslPayload(text), (e: unknown) => e instanceof SaslFailure && e.condition === 'incorrect-encoding');
    });
  }

  it("encodes empty or missing data as '=' and round-trips the rest", () => {
    assert.equal(encodeSaslPayload(undefined), '=');
    assert.equal(encodeSaslPayload(Buffer.alloc(0)), '=');
    assert.equal(encodeSaslPayload(b('foo')), 'Zm9v');
    for (const n of [1, 2, 3, 31, 32, 33]) {
      const data = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff));
      assert.deepEqual(decodeSaslPayload(encodeSaslPayload(data)), data);
    }
  });
});

// Every mechanism name the API lists can be created.
describe('createMechanism', () => {
  it('creates each mechanism under its name', () => {
    const names: SaslMechanismName[] = ['SCRAM-SHA-1', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'PLAIN'];
    for (const name of names) assert.equal(createMechanism(name, makeCtx()).name, name);
  });
});
