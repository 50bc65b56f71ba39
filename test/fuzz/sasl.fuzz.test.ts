// Fuzzing the SASL mechanisms (SCRAM, PLAIN) as a server reads them: any client message either moves the
// exchange on or fails with a SASL failure; nothing else is thrown, and no garbage authenticates anyone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createMechanism, type SaslMechanismName, type SaslServerContext } from '../../src/c2s/sasl/mechanism.ts';
import { deriveScramCredentials, verifyPasswordWithScram } from '../../src/c2s/sasl/credentials.ts';
import { SaslFailure } from '../../src/core/errors.ts';
import { fuzzOptions } from './runs.ts';

const sha1 = deriveScramCredentials('secret', 'SHA-1', 64);
const sha256 = deriveScramCredentials('secret', 'SHA-256', 64);

const ctx: SaslServerContext = {
  secure: true,
  plusOffered: true,
  channelBinding: () => Buffer.alloc(32, 7),
  getScramCredentials: async (username, hash) => (username === 'alice' ? (hash === 'SHA-1' ? sha1 : sha256) : undefined),
  verifyPlain: async (username, password) => username === 'alice' && verifyPasswordWithScram(password, sha256),
  authzidMatches: (authzid, username) => authzid === `${username}@localhost`,
};

const mechanisms: SaslMechanismName[] = ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS', 'PLAIN'];

/** A client message: random bytes, or SCRAM-looking text with random attribute values. */
const message = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc.tuple(
    fc.constantFrom('n,,', 'y,,', 'p=tls-exporter,,', 'p=tls-unique,,', 'n,a=alice@localhost,', 'n,a=bob,', 'x,,', ''),
    fc.array(fc.tuple(fc.constantFrom('n', 'r', 'c', 'p', 'm', 's', 'i', 'e', 'v', 'z'), fc.string({ maxLength: 30 })), { maxLength: 5 }),
  ).map(([gs2, kv]) => Buffer.from(gs2 + kv.map(([k, v]) => `${k}=${v}`).join(','))),
  fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }))
    .map(([a, u, p]) => Buffer.from(`${a}\0${u}\0${p}`)),
);

async function exchange(name: SaslMechanismName, steps: Array<Buffer | undefined>): Promise<void> {
  const mech = createMechanism(name, ctx);
  for (const data of steps) {
    try {
      const r = await mech.step(data);
      // Random input must never authenticate: PLAIN needs the exact password, SCRAM a valid proof.
      assert.notEqual(r.kind, 'success', `${name} accepted random input`);
    } catch (err) {
      assert.ok(err instanceof SaslFailure, `${name} threw ${String(err)}`);
      return;
    }
  }
}

test('random client messages only ever get a challenge or a SASL failure', async () => {
  await fc.assert(fc.asyncProperty(fc.constantFrom(...mechanisms), fc.array(fc.option(message, { nil: undefined }), { minLength: 1, maxLength: 3 }),
    (name, steps) => exchange(name, steps)), fuzzOptions(1000));
});

test('a valid SCRAM client-first followed by random client-finals never authenticates', async () => {
  await fc.assert(fc.asyncProperty(fc.constantFrom<SaslMechanismName>('SCRAM-SHA-1', 'SCRAM-SHA-256'), fc.string({ maxLength: 24 }), message,
    async (name, nonce, final) => {
      await exchange(name, [Buffer.from(`n,,n=alice,r=${nonce.replace(/,/g, '') || 'x'}`), final]);
    }), fuzzOptions(1000));
});
