import { afterEach, describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import { gql, connect, disposeAll, live } from '../harness/clients.js';
import { seedOrg } from '../harness/seed.js';
import { EVENTS, ACK, RAISE, events, listed, raise, seen, settle } from './ops.js';

afterEach(disposeAll);

const future = (ms = 3_600_000) => new Date(Date.now() + ms).toISOString();

describe('raiseAlert', () => {
  it('stores every attribute, normalised, and pushes AlertRaised to subscribers', async ({ app }) => {
    const org = await seedOrg(app);
    const sub = await live(app, connect(app, org.provider), EVENTS);
    const expiresAt = future();
    const alert = await raise(app, org.service, {
      level: 'HIGH',
      type: 'outbreak',
      title: 'Measles cluster',
      body: 'Check vaccination status.',
      location: { lat: -33.8688, lng: 151.2093 },
      regionCode: 'au-nsw',
      riskScore: 0.75,
      actionRequired: true,
      actionUrl: 'https://health.example/measles',
      expiresAt,
    });
    expect(alert).toMatchObject({
      level: 'HIGH',
      type: 'outbreak',
      title: 'Measles cluster',
      body: 'Check vaccination status.',
      location: { lat: -33.8688, lng: 151.2093 },
      regionCode: 'AU-NSW',
      riskScore: 0.75,
      actionRequired: true,
      actionUrl: 'https://health.example/measles',
      expiresAt,
      audience: { kind: 'ORG', roles: [], userIds: [] },
      raisedById: org.service.id,
      escalatedAt: null,
    });
    await settle([[sub, 1]], 100);
    expect(events(sub)[0]).toMatchObject({ __typename: 'AlertRaised', alert: { id: alert.id, title: 'Measles cluster', level: 'HIGH' } });
  });

  it('refuses bad input with BAD_USER_INPUT and writes nothing', async ({ app }) => {
    const org = await seedOrg(app);
    const sub = await live(app, connect(app, org.admin), EVENTS);
    const base = { level: 'LOW', type: 'outbreak', title: 'ok' };
    const invalid: Array<Record<string, unknown>> = [
      { ...base, title: '   ' },
      { ...base, title: 'x'.repeat(201) },
      { ...base, type: 'has spaces' },
      { ...base, type: '' },
      { ...base, level: 'SEVERE' },
      { ...base, body: 'x'.repeat(4_001) },
      { ...base, location: { lat: 90.5, lng: 0 } },
      { ...base, location: { lat: 0, lng: -180.01 } },
      { ...base, regionCode: 'no spaces please' },
      { ...base, riskScore: 1.01 },
      { ...base, riskScore: -0.1 },
      { ...base, actionUrl: 'ftp://files.example/x' },
      { ...base, actionUrl: 'javascript:alert(1)' },
      { ...base, actionUrl: 'not a url' },
      { ...base, expiresAt: new Date(Date.now() - 1_000).toISOString() },
      { ...base, expiresAt: 'tomorrow' },
      { ...base, audience: { roles: [] } },
      { ...base, audience: { userIds: ['nobody-here'] } },
      { ...base, clientKey: '' },
      { ...base, clientKey: 'k'.repeat(129) },
    ];
    for (const i of invalid) {
      const r = await gql(app, org.service.token, RAISE, { i });
      expect(r.errors?.[0]?.extensions?.code, JSON.stringify(i).slice(0, 100)).toBe('BAD_USER_INPUT');
      expect(r.data ?? null).toBeNull();
    }
    expect(await listed(app, org.admin, undefined, true)).toEqual([]);
    await raise(app, org.service, { ...base, title: 'valid' });
    await settle([[sub, 1]], 200);
    expect(seen(sub)).toEqual(['valid']); // the first event anyone saw is the valid alert
  });

  it('is idempotent on clientKey: same alert back, one row and one event; different content is a CONFLICT', async ({ app }) => {
    const org = await seedOrg(app);
    const sub = await live(app, connect(app, org.admin), EVENTS);
    const input = { level: 'CRITICAL', type: 'device', title: 'Ventilator alarm', location: { lat: 1, lng: 2 }, clientKey: 'dev-42' };
    const [a, b] = await Promise.all([raise(app, org.service, input), raise(app, org.service, input)]);
    const c = await raise(app, org.service, input);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    const changed = await gql(app, org.service.token, RAISE, { i: { ...input, title: 'Other alarm' } });
    expect(changed.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    // the key belongs to its raiser: another raiser's same key is a new alert
    const other = await raise(app, org.provider, input);
    expect(other.id).not.toBe(a.id);
    await settle([[sub, 2]], 300);
    expect(events(sub).map((e) => e.alert.id)).toEqual([a.id, other.id]);
    expect(await listed(app, org.admin)).toEqual(['Ventilator alarm', 'Ventilator alarm']);
  });
});

describe('acknowledgeAlert', () => {
  it('records who and when per recipient, is idempotent, and tells every recipient', async ({ app }) => {
    const org = await seedOrg(app);
    const provider2 = await org.user('provider');
    const watchProvider = await live(app, connect(app, org.provider), EVENTS);
    const watchPatient = await live(app, connect(app, org.patient), EVENTS);
    const alert = await raise(app, org.service, { title: 'Ward 3 outbreak', level: 'HIGH' });

    const before = Date.now();
    const first = await gql(app, org.provider.token, ACK, { id: alert.id });
    expect(first.errors).toBeUndefined();
    const again = await gql(app, org.provider.token, ACK, { id: alert.id });
    expect(again.data).toEqual(first.data);
    const acks = first.data.acknowledgeAlert.acknowledgements;
    expect(acks).toEqual([{ user: { id: org.provider.id, name: org.provider.name, role: 'PROVIDER' }, at: expect.any(String) }]);
    expect(Math.abs(Date.parse(acks[0].at) - before)).toBeLessThan(5_000);
    expect(first.data.acknowledgeAlert.acknowledgedByMe).toBe(true);

    const second = await gql(app, provider2.token, ACK, { id: alert.id });
    expect(second.data.acknowledgeAlert.acknowledgements.map((a: { user: { id: string } }) => a.user.id)).toEqual([
      org.provider.id,
      provider2.id,
    ]);
    const view = await gql(
      app,
      org.patient.token,
      `{ alerts { edges { node { id acknowledgedByMe acknowledgements { user { id } } } } } }`,
    );
    expect(view.data.alerts.edges[0].node).toMatchObject({ id: alert.id, acknowledgedByMe: false });

    // one AlertAcknowledged per new acknowledgement, to every recipient
    await settle(
      [
        [watchProvider, 3],
        [watchPatient, 3],
      ],
      300,
    );
    for (const sub of [watchProvider, watchPatient]) {
      expect(events(sub).map((e) => e.__typename)).toEqual(['AlertRaised', 'AlertAcknowledged', 'AlertAcknowledged']);
      expect(events(sub)[1]).toMatchObject({
        alertId: alert.id,
        userId: org.provider.id,
        user: { name: org.provider.name },
        at: acks[0].at,
      });
      expect(events(sub)[2]).toMatchObject({ alertId: alert.id, userId: provider2.id });
    }
  });

  it('only recipients may acknowledge: anyone else gets NOT_FOUND, like a missing alert', async ({ app }) => {
    const org = await seedOrg(app);
    const watchPatient = await live(app, connect(app, org.patient), EVENTS);
    const forProviders = await raise(app, org.service, { title: 'providers only', audience: { roles: ['PROVIDER'] } });
    const forAdmin = await raise(app, org.service, { title: 'admin only', audience: { userIds: [org.admin.id] } });
    for (const [token, id] of [
      [org.patient.token, forProviders.id],
      [org.provider.token, forAdmin.id],
      [org.provider.token, '00000000-0000-4000-8000-000000000000'],
      [org.provider.token, 'not-a-uuid'],
    ] as const) {
      const r = await gql(app, token, ACK, { id });
      expect(r.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    }
    expect((await gql(app, org.provider.token, ACK, { id: forProviders.id })).errors).toBeUndefined();
    expect((await gql(app, org.admin.token, ACK, { id: forAdmin.id })).errors).toBeUndefined();
    const everyone = await raise(app, org.service, { title: 'barrier' });
    await settle([[watchPatient, 1]], 300);
    // the patient saw neither targeted alert nor its acknowledgement
    expect(events(watchPatient).map((e) => e.alert.id)).toEqual([everyone.id]);
  });
});
