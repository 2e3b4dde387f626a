import type { Client } from 'graphql-ws';
import { describe, expect } from 'vitest';
import { connect, gql, live, settled, until } from '../harness/clients.js';
import { withTwoInstances } from '../harness/fixtures.js';
import { type SeededUser, seedOrg, token } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import { EVENTS, conversation } from '../messaging/ops.js';
import { openRaw } from './raw.js';

const it = withTwoInstances();

const REVOKE = 'mutation($u:ID!){ revokeUserSessions(userId:$u) }';

const run = (client: Client, query: string) =>
  new Promise<{ data?: any; errors?: Array<{ extensions?: { code?: string } }> }>((resolve) => {
    let result: any;
    client.subscribe(
      { query },
      { next: (r) => (result = r), error: (e) => resolve({ errors: e as never }), complete: () => resolve(result) },
    );
  });

/** A stock client that stays connected, with a live conversation subscription, and its close recorded. */
async function socketOf(app: TestApp, user: SeededUser, c: string) {
  const closes: Array<{ code: number; reason: string }> = [];
  const client = connect(app, user, {
    lazy: false,
    onNonLazyError: () => {},
    on: { closed: (e) => closes.push({ code: (e as { code: number }).code, reason: (e as { reason: string }).reason }) },
  });
  const sub = await live(app, client, EVENTS, { c });
  return { client, closes, sub };
}

it.afterEach(async ({ a, b }) => {
  await settled(a);
  await settled(b);
});

describe('revokeUserSessions', () => {
  it("ends every socket of the user on both instances, and no other user's", async ({ a, b, org }) => {
    const patient = await org.user('patient');
    const c = await conversation(a, org.provider, [patient]);
    const onA = await socketOf(a, patient, c);
    const onB = await socketOf(b, patient, c);
    const otherA = await socketOf(a, org.provider, c);
    const otherB = await socketOf(b, org.provider, c);

    const r = await gql(a, org.admin.token, REVOKE, { u: patient.id });
    expect(r.errors).toBeUndefined();
    const notBefore = Date.parse(r.data.revokeUserSessions);
    expect(notBefore).toBeGreaterThan(Date.now() - 1_000);

    await until(() => onA.closes.length > 0 && onB.closes.length > 0, 5_000, "the user's sockets to close on A and B");
    for (const s of [onA, onB]) expect(s.closes[0]).toEqual({ code: 4403, reason: 'Forbidden: sessions revoked' });
    // the provider's sockets on both instances are untouched and still serve
    for (const s of [otherA, otherB]) {
      expect(s.closes).toEqual([]);
      expect((await run(s.client, '{ me { id } }')).data.me.id).toBe(org.provider.id);
      expect(s.sub.completed).toBe(false);
    }

    // the tokens issued before the revocation are refused on both instances, over HTTP and at connect
    for (const app of [a, b]) {
      expect((await gql(app, patient.token, '{ me { id } }')).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      const raw = await openRaw(app);
      raw.send({ type: 'connection_init', payload: { authorization: patient.token } });
      expect((await raw.closed).code).toBe(4403);
    }
    // a token issued from the returned instant on works
    await until(() => Date.now() >= notBefore, 3_000, 'the revocation instant');
    const fresh = `Bearer ${await token({ id: patient.id, orgId: org.orgId, role: 'patient', name: patient.name })}`;
    for (const app of [a, b]) expect((await gql(app, fresh, '{ me { id } }')).data.me.id).toBe(patient.id);
  });

  it('is for admins of the same organisation only: NOT_FOUND across orgs, FORBIDDEN for other roles', async ({ a, b, org }) => {
    const patient = await org.user('patient');
    const c = await conversation(a, org.provider, [patient]);
    const onB = await socketOf(b, patient, c);
    const elsewhere = await seedOrg(a);

    const foreign = await gql(a, elsewhere.admin.token, REVOKE, { u: patient.id });
    expect(foreign.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(foreign.errors?.[0]?.message).toBe('User not found.');
    expect((await gql(a, org.admin.token, REVOKE, { u: 'no-such-user' })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    for (const u of [org.provider, org.service, patient]) {
      expect((await gql(b, u.token, REVOKE, { u: patient.id })).errors?.[0]?.extensions?.code, u.role).toBe('FORBIDDEN');
    }
    // nothing changed for the user
    expect((await run(onB.client, '{ me { id } }')).data.me.id).toBe(patient.id);
    expect(onB.closes).toEqual([]);
    expect((await gql(a, patient.token, '{ me { id } }')).data.me.id).toBe(patient.id);
  });

  it('accepts a new connection with a token issued after the revocation', async ({ a, b, org }) => {
    const patient = await org.user('patient');
    const c = await conversation(a, org.provider, [patient]);
    const s = await socketOf(b, patient, c);
    const r = await gql(a, org.admin.token, REVOKE, { u: patient.id });
    await until(() => s.closes.length > 0, 5_000, 'the socket to close');
    // a new connection with a token issued after the revocation
    await until(() => Date.now() >= Date.parse(r.data.revokeUserSessions), 3_000, 'the revocation instant');
    const fresh = { ...patient, token: `Bearer ${await token({ id: patient.id, orgId: org.orgId, role: 'patient', name: patient.name })}` };
    const again = await socketOf(b, fresh, c);
    expect((await run(again.client, '{ me { id } }')).data.me.id).toBe(patient.id);
    expect(again.closes).toEqual([]);
  });
});
