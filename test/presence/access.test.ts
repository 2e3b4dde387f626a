import { describe, expect } from 'vitest';
import { collect, gql, sleep, wsClient } from '../harness/clients.js';
import { withTwoInstances } from '../harness/fixtures.js';
import { seedOrg } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import { CHANGED, PRESENCE, PRESENCE_ENV, SET, changes, device, query, setOverHttp, waitForPresence, watch } from './ops.js';

const it = withTwoInstances(PRESENCE_ENV)
  /** A second org. */
  .extend('other', { scope: 'file' }, ({ a }) => seedOrg(a));

const code = (r: { errors?: Array<{ extensions?: { code?: string } }> }) => r.errors?.[0]?.extensions?.code;
const subscriptionError = async (a: TestApp, token: string, userIds: string[]) => {
  const client = wsClient(a, token);
  const sub = collect(client, CHANGED, { u: userIds });
  await sub.ended();
  await client.dispose();
  return { items: sub.items, error: (sub.errors[0] as Array<{ message: string; extensions?: { code?: string } }>)[0] };
};

describe('who may see whose presence', () => {
  it('another organisation’s user is NOT_FOUND, exactly like an unknown id, and no event crosses over', async ({ a, b, org, other }) => {
    const foreign = await gql(a, other.provider.token, PRESENCE, { u: [org.provider.id] });
    const unknown = await gql(a, other.provider.token, PRESENCE, { u: ['no-such-user'] });
    const mixed = await gql(a, other.provider.token, PRESENCE, { u: [other.patient.id, org.provider.id] });
    expect(code(foreign)).toBe('NOT_FOUND');
    expect(foreign.errors?.[0]?.message).toBe(unknown.errors?.[0]?.message);
    expect(code(mixed)).toBe('NOT_FOUND');
    expect(foreign.data).toBeNull();

    const sub = await subscriptionError(a, other.provider.token, [org.provider.id]);
    expect(sub.items).toEqual([]);
    expect(sub.error).toMatchObject({ extensions: { code: 'NOT_FOUND' }, message: unknown.errors?.[0]?.message });

    // an org-2 subscriber sees its own colleague, and nothing of org 1
    const nurse = await other.user('provider');
    const { client, sub: watcher } = await watch(b, other.admin, [nurse.id]);
    const phone = await device(a, org.provider);
    await setOverHttp(a, org.provider, 'BUSY', 'org one only');
    await sleep(500);
    expect(changes(watcher).map((c) => c.userId)).toEqual([nurse.id]);
    await Promise.all([phone.dispose(), client.dispose()]);
  });

  it('patients see themselves and people they share a conversation with; staff see their organisation', async ({ a, b, org }) => {
    const patient = await org.user('patient');
    const stranger = await org.user('patient');
    const nurse = await org.user('provider');
    expect(code(await gql(a, patient.token, PRESENCE, { u: [nurse.id] }))).toBe('NOT_FOUND');
    expect(code(await gql(a, patient.token, PRESENCE, { u: [stranger.id] }))).toBe('NOT_FOUND');
    expect((await subscriptionError(a, patient.token, [nurse.id])).error?.extensions?.code).toBe('NOT_FOUND');
    expect(await query(a, patient, [patient.id])).toHaveLength(1);
    // staff need no conversation
    expect((await query(a, nurse, [patient.id, stranger.id])).map((p) => p.userId)).toEqual([patient.id, stranger.id]);
    expect(await query(a, org.service, [patient.id])).toHaveLength(1);

    const conv = await gql(a, nurse.token, `mutation($m:[ID!]!){ createConversation(input:{kind:DIRECT, memberIds:$m}){ id } }`, {
      m: [patient.id],
    });
    expect(conv.errors).toBeUndefined();
    expect((await query(a, patient, [nurse.id, patient.id])).map((p) => p.userId)).toEqual([nurse.id, patient.id]);
    expect(code(await gql(a, patient.token, PRESENCE, { u: [nurse.id, stranger.id] }))).toBe('NOT_FOUND');
    const { client, sub } = await watch(b, patient, [nurse.id]);
    const phone = await device(a, nurse);
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE');
    await Promise.all([phone.dispose(), client.dispose()]);
  });
});

describe('bad input', () => {
  it('is refused with BAD_USER_INPUT and changes nothing', async ({ a, b, org }) => {
    const nurse = await org.user('provider');
    // another user opens the sockets of the subscription checks: a socket of the nurse's own would be
    // a device (ONLINE, then OFFLINE), and would publish changes of her presence if it outlived the
    // coalescing window
    const colleague = await org.user('provider');
    const { client, sub } = await watch(b, org.admin, [nurse.id]);
    await setOverHttp(a, nurse, 'BUSY', 'ward 3');
    // that change has been sent: nothing later may be
    await waitForPresence(sub, nurse.id, (p) => p.statusText === 'ward 3');
    expect(sub.items).toHaveLength(2);
    const tooMany = Array.from({ length: 201 }, (_, i) => `${org.orgId}:u${i}`);
    expect(code(await gql(a, nurse.token, PRESENCE, { u: tooMany }))).toBe('BAD_USER_INPUT');
    expect((await subscriptionError(a, colleague.token, tooMany)).error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await subscriptionError(a, colleague.token, [])).error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await query(a, nurse, [])).toEqual([]);
    for (const variables of [{ s: 'AWAY', t: 'x'.repeat(141) }, { s: 'AWAY', t: 'line\nbreak' }, { s: 'SLEEPING' }, { s: null }]) {
      const r = await gql(a, nurse.token, SET, variables);
      expect(code(r), JSON.stringify(variables).slice(0, 60)).toBe('BAD_USER_INPUT');
    }
    expect(code(await gql(a, undefined, SET, { s: 'AWAY' }))).toBe('UNAUTHENTICATED');
    expect(code(await gql(a, undefined, PRESENCE, { u: [nurse.id] }))).toBe('UNAUTHENTICATED');
    expect((await query(a, nurse, [nurse.id]))[0]).toMatchObject({ status: 'OFFLINE', statusText: 'ward 3' });
    await sleep(300); // past the coalescing window: no change was sent
    expect(sub.items).toHaveLength(2);
    await client.dispose();
  });
});
