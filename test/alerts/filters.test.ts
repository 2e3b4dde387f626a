import { afterEach, describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import { type Collector, type GqlResponse, gql, sleep, connect, disposeAll, live } from '../harness/clients.js';
import { seedOrg } from '../harness/seed.js';
import { EVENTS, events, listed, raise, seen, settle } from './ops.js';

afterEach(disposeAll);

const LONDON = { lat: 51.5074, lng: -0.1278 };
// great-circle distances from London: Oxford ~83 km, Cambridge ~79 km, Paris ~344 km
const ALERTS = [
  { title: 'A1', level: 'LOW', type: 'outbreak', location: LONDON, regionCode: 'GB-LND', riskScore: 0.2 },
  { title: 'A2', level: 'HIGH', type: 'outbreak', location: { lat: 51.752, lng: -1.2577 }, regionCode: 'GB-OXF', riskScore: 0.7 },
  { title: 'A3', level: 'CRITICAL', type: 'heat', location: { lat: 48.8566, lng: 2.3522 }, regionCode: 'FR-IDF', riskScore: 0.9 },
  { title: 'A4', level: 'MEDIUM', type: 'heat', regionCode: 'gb-lnd' },
  { title: 'A5', level: 'EMERGENCY', type: 'device', location: { lat: 52.2053, lng: 0.1218 }, riskScore: 0.5 },
];

/** Each filter with exactly the alerts it must deliver, in raise order. */
const CASES: Array<[string, Record<string, unknown> | undefined, string[]]> = [
  ['no filter', undefined, ['A1', 'A2', 'A3', 'A4', 'A5']],
  ['within 100 km of London', { near: { ...LONDON, radiusKm: 100 } }, ['A1', 'A2', 'A5']],
  ['within 50 km of London', { near: { ...LONDON, radiusKm: 50 } }, ['A1']],
  ['within 400 km of London', { near: { ...LONDON, radiusKm: 400 } }, ['A1', 'A2', 'A3', 'A5']],
  ['region (case-insensitive)', { regions: ['gb-lnd'] }, ['A1', 'A4']],
  ['two regions', { regions: ['GB-OXF', 'FR-IDF'] }, ['A2', 'A3']],
  ['minimum level HIGH', { minLevel: 'HIGH' }, ['A2', 'A3', 'A5']],
  ['minimum level EMERGENCY', { minLevel: 'EMERGENCY' }, ['A5']],
  ['minimum risk 0.6', { minRisk: 0.6 }, ['A2', 'A3']],
  ['types', { types: ['heat'] }, ['A3', 'A4']],
  ['near + minimum level', { near: { ...LONDON, radiusKm: 100 }, minLevel: 'HIGH' }, ['A2', 'A5']],
  ['types + region + risk', { types: ['outbreak'], regions: ['GB-LND', 'GB-OXF'], minRisk: 0.5 }, ['A2']],
];

/** The cases A6 (HIGH, heat, London, GB-LND, risk 1) does not match. */
const A6_MISSES = ['two regions', 'minimum level EMERGENCY', 'types + region + risk'];

describe('alert filters', () => {
  it('deliver exactly the matching subset live, on replay after a cursor, and in the alerts query', async ({ app }) => {
    const org = await seedOrg(app);
    const client = connect(app, org.provider);
    const start = await live(app, client, EVENTS);
    await raise(app, org.service, { title: 'A0', type: 'start' });
    const [first] = await start.waitFor(1);
    const cursor = first.alertRaised.cursor as string;

    const current: Collector[] = [];
    for (const [, f] of CASES) current.push(await live(app, client, EVENTS, { f }));
    for (const a of ALERTS) await raise(app, org.service, a);
    await settle(current.map((s, i) => [s, CASES[i]?.[2].length ?? 0]));
    CASES.forEach(([name, , expected], i) => expect(seen(current[i]!), `live: ${name}`).toEqual(expected));

    // a new connection resumes after A0: the replay applies the same filter
    const later = connect(app, org.provider);
    const replayed: Collector[] = [];
    for (const [, f] of CASES) replayed.push(await live(app, later, EVENTS, { f, a: cursor }));
    await settle(replayed.map((s, i) => [s, CASES[i]?.[2].length ?? 0]));
    CASES.forEach(([name, , expected], i) => expect(seen(replayed[i]!), `replay: ${name}`).toEqual(expected));

    // ...then continues live with no gap and no duplicate
    await raise(app, org.service, { title: 'A6', level: 'HIGH', type: 'heat', location: LONDON, regionCode: 'GB-LND', riskScore: 1 });
    const withA6 = CASES.map(([name, f, expected]) => [name, f, A6_MISSES.includes(name) ? expected : [...expected, 'A6']] as const);
    await settle(replayed.map((s, i) => [s, withA6[i]?.[2].length ?? 0]));
    withA6.forEach(([name, , expected], i) => expect(seen(replayed[i]!), `replay then live: ${name}`).toEqual(expected));

    // the query applies the same filter (newest first; A0 matches only the empty filter)
    for (const [name, f, expected] of withA6) {
      const want = [...expected].reverse();
      expect(await listed(app, org.provider, f), `query: ${name}`).toEqual(f ? want : [...want, 'A0']);
    }
  });

  it('pages the alerts query with first/after', async ({ app }) => {
    const org = await seedOrg(app);
    for (const t of ['p1', 'p2', 'p3', 'p4', 'p5']) await raise(app, org.service, { title: t });
    const LIST = `query($a:String){ alerts(first: 2, after: $a) { edges { node { title } } pageInfo { hasNextPage endCursor } } }`;
    const titles: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 5; i++) {
      const r: GqlResponse = await gql(app, org.patient.token, LIST, { a: after });
      titles.push(...r.data.alerts.edges.map((e: { node: { title: string } }) => e.node.title));
      if (!r.data.alerts.pageInfo.hasNextPage) break;
      after = r.data.alerts.pageInfo.endCursor;
    }
    expect(titles).toEqual(['p5', 'p4', 'p3', 'p2', 'p1']);
  });

  it('refuses a bad filter with BAD_USER_INPUT on the query and the subscription', async ({ app }) => {
    const org = await seedOrg(app);
    const bad = [
      { near: { lat: 91, lng: 0, radiusKm: 10 } },
      { near: { lat: 0, lng: 181, radiusKm: 10 } },
      { near: { lat: 0, lng: 0, radiusKm: 0 } },
      { minRisk: 1.5 },
      { regions: ['not a region!'] },
      { types: [''] },
    ];
    for (const f of bad) {
      const q = await gql(app, org.provider.token, `query($f:AlertFilter){ alerts(filter:$f){ edges { cursor } } }`, { f });
      expect(q.errors?.[0]?.extensions?.code, JSON.stringify(f)).toBe('BAD_USER_INPUT');
      const client = connect(app, org.provider);
      const sub = await live(app, client, EVENTS, { f });
      await sub.ended();
      const errs = sub.errors.flat() as Array<{ extensions?: { code?: string } }>;
      expect(errs[0]?.extensions?.code, JSON.stringify(f)).toBe('BAD_USER_INPUT');
    }
  });
});

describe('alert audience', () => {
  it('delivers an alert only to its audience: org-wide, a role, or named users — live, on replay and in the query', async ({ app }) => {
    const org = await seedOrg(app);
    const patient2 = await org.user('patient');
    const provider2 = await org.user('provider');
    const users = { patient: org.patient, patient2, provider: org.provider, provider2, admin: org.admin };
    const start = await live(app, connect(app, org.admin), EVENTS);
    await raise(app, org.service, { title: 'start' });
    const cursor = (await start.waitFor(1))[0].alertRaised.cursor as string;

    // identical operation and variables for every user: only the scope tells them apart
    const subs = new Map<string, Collector>();
    for (const [name, u] of Object.entries(users)) subs.set(name, await live(app, connect(app, u), EVENTS));
    await raise(app, org.service, { title: 'everyone' });
    await raise(app, org.service, { title: 'providers', audience: { roles: ['PROVIDER'] } });
    await raise(app, org.service, { title: 'patient-1', audience: { userIds: [org.patient.id] } });
    await raise(app, org.provider, { title: 'admins+patient2', audience: { userIds: [org.admin.id, patient2.id] } });
    const expected: Record<string, string[]> = {
      patient: ['everyone', 'patient-1'],
      patient2: ['everyone', 'admins+patient2'],
      provider: ['everyone', 'providers'],
      provider2: ['everyone', 'providers'],
      admin: ['everyone', 'admins+patient2'],
    };
    await settle([...subs].map(([n, s]) => [s, expected[n]?.length ?? 0]));
    for (const [n, s] of subs) expect(seen(s), `live: ${n}`).toEqual(expected[n]);

    for (const [n, u] of Object.entries(users)) {
      const replay = await live(app, connect(app, u), EVENTS, { a: cursor });
      await settle([[replay, expected[n]?.length ?? 0]], 200);
      expect(seen(replay), `replay: ${n}`).toEqual(expected[n]);
      expect(await listed(app, u), `query: ${n}`).toEqual([...(expected[n] ?? [])].reverse().concat('start'));
    }
  });

  it('refuses an audience of users outside the organisation or mixing roles and users', async ({ app }) => {
    const org = await seedOrg(app);
    const other = await seedOrg(app);
    const foreign = await gql(app, org.service.token, `mutation($i:RaiseAlertInput!){ raiseAlert(input:$i){ id } }`, {
      i: { level: 'LOW', type: 't', title: 'x', audience: { userIds: [other.patient.id] } },
    });
    expect(foreign.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const both = await gql(app, org.service.token, `mutation($i:RaiseAlertInput!){ raiseAlert(input:$i){ id } }`, {
      i: { level: 'LOW', type: 't', title: 'x', audience: { userIds: [org.patient.id], roles: ['PATIENT'] } },
    });
    expect(both.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await listed(app, org.admin, undefined, true)).toEqual([]);
  });
});

describe('alert expiry', () => {
  it('never delivers an expired alert (checked at delivery, live and on replay) and leaves it out of the query', async ({ app }) => {
    const org = await seedOrg(app);
    const client = connect(app, org.provider);
    const start = await live(app, client, EVENTS);
    await raise(app, org.service, { title: 'start' });
    const cursor = (await start.waitFor(1))[0].alertRaised.cursor as string;
    const soon = await raise(app, org.service, { title: 'short-lived', expiresAt: new Date(Date.now() + 1_200).toISOString() });
    await raise(app, org.service, { title: 'lasting', expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    await settle([[start, 3]], 100);
    expect(seen(start)).toEqual(['start', 'short-lived', 'lasting']); // live while unexpired
    await sleep(1_500);

    // expired now: an acknowledgement of it is not pushed, replay skips it, the query omits it
    const ack = await gql(app, org.provider.token, `mutation($id:ID!){ acknowledgeAlert(id:$id){ id } }`, { id: soon.id });
    expect(ack.errors).toBeUndefined();
    await raise(app, org.service, { title: 'after' });
    await settle([[start, 4]], 300);
    expect(seen(start)).toEqual(['start', 'short-lived', 'lasting', 'after']);
    const replay = await live(app, connect(app, org.provider), EVENTS, { a: cursor });
    await settle([[replay, 2]], 300);
    expect(seen(replay)).toEqual(['lasting', 'after']);
    expect(await listed(app, org.provider)).toEqual(['after', 'lasting', 'start']);
    expect(await listed(app, org.provider, undefined, true)).toEqual(['after', 'lasting', 'short-lived', 'start']);
    expect(events(replay).every((e) => e.__typename === 'AlertRaised')).toBe(true);
  });
});

describe('alert tenancy', () => {
  it('no alert, acknowledgement or cursor crosses organisations', async ({ app }) => {
    const org1 = await seedOrg(app);
    const org2 = await seedOrg(app);
    const watcher1 = await live(app, connect(app, org1.admin), EVENTS);
    const watcher2 = await live(app, connect(app, org2.admin), EVENTS);
    const watcher2b = await live(app, connect(app, org2.provider), EVENTS, { f: { minLevel: 'LOW' } });
    const a = await raise(app, org1.service, { title: 'org1-a', level: 'EMERGENCY', location: LONDON });
    await raise(app, org1.provider, { title: 'org1-b', audience: { roles: ['ADMIN', 'PROVIDER', 'PATIENT', 'SERVICE'] } });
    const ack = await gql(app, org1.provider.token, `mutation($id:ID!){ acknowledgeAlert(id:$id){ id } }`, { id: a.id });
    expect(ack.errors).toBeUndefined();
    await settle([[watcher1, 3]], 500);
    expect(watcher2.items).toEqual([]);
    expect(watcher2b.items).toEqual([]);

    // another org's alert is NOT_FOUND, its cursor is refused, its alerts never listed
    const foreignAck = await gql(app, org2.admin.token, `mutation($id:ID!){ acknowledgeAlert(id:$id){ id } }`, { id: a.id });
    expect(foreignAck.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(await listed(app, org2.admin, undefined, true)).toEqual([]);
    const stolen = await live(app, connect(app, org2.admin), EVENTS, { a: events(watcher1)[0].cursor });
    await stolen.ended();
    expect((stolen.errors.flat() as Array<{ extensions?: { code?: string } }>)[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('patients may not raise alerts', async ({ app }) => {
    const org = await seedOrg(app);
    const r = await gql(app, org.patient.token, `mutation{ raiseAlert(input:{level:LOW, type:"t", title:"x"}){ id } }`);
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await listed(app, org.patient, undefined, true)).toEqual([]);
  });
});
