// Presence benchmark: setPresence over HTTP on instance A → delivered to subscribers on instance B.
//   node --import tsx test/bench/presence.ts [--users 200] [--subscribers 50] [--updates 10000] [--concurrency 32]
// Needs the test PostgreSQL and Redis (TEST_DATABASE_URL / TEST_REDIS_URL, see test/harness/env.ts).
// Two runs: PRESENCE_COALESCE_MS=0 (every update is published: the end-to-end updates/s figure), then
// the default 250 ms window (rapid updates of one user are coalesced: fewer, final-state events).
import { parseArgs } from 'node:util';
import type { Client } from 'graphql-ws';
import { wsClient } from '../harness/clients.js';
import setup from '../harness/global-setup.js';
import { type SeededUser, seedOrg } from '../harness/seed.js';
import { newPrefix, startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { limitsEnv } from './common.js';

const { values: opt } = parseArgs({
  options: {
    users: { type: 'string', default: '200' },
    subscribers: { type: 'string', default: '50' },
    updates: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '32' },
  },
});
const USERS = Number(opt.users);
const SUBSCRIBERS = Number(opt.subscribers);
const UPDATES = Number(opt.updates);
const CONCURRENCY = Number(opt.concurrency);
const SET = 'mutation($s:PresenceStatus!,$t:String){ setPresence(status:$s, statusText:$t){ status } }';
const SUB = 'subscription($u:[ID!]!){ presenceChanged(userIds:$u){ userId status statusText updatedAt } }';
const STATUSES = ['ONLINE', 'BUSY', 'AWAY', 'IN_CALL'];

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number) : Number.NaN;
};

const connected = (client: Client) => new Promise<void>((r) => client.on('connected', () => r()));

interface Subscriber {
  client: Client;
  /** statusText of every update received, and its latency from the change (ms). */
  seen: Set<string>;
  latencies: number[];
  events: number;
}

async function subscribe(app: TestApp, by: SeededUser, ids: string[]): Promise<Subscriber> {
  const s: Subscriber = { client: wsClient(app, by.token), seen: new Set(), latencies: [], events: 0 };
  let initial = ids.length;
  await new Promise<void>((ready, fail) => {
    s.client.subscribe<{ presenceChanged: { statusText: string | null; updatedAt: string } }>(
      { query: SUB, variables: { u: ids } },
      {
        next: ({ data }) => {
          if (initial > 0) {
            if (--initial === 0) ready();
            return;
          }
          const p = data?.presenceChanged;
          if (!p) return;
          s.events++;
          if (p.statusText) s.seen.add(p.statusText);
          s.latencies.push(Date.now() - Date.parse(p.updatedAt));
        },
        error: fail,
        complete: () => {},
      },
    );
  });
  return s;
}

async function run(coalesceMs: number) {
  const prefix = newPrefix();
  const env = { PRESENCE_COALESCE_MS: String(coalesceMs), LOG_LEVEL: 'silent', ...limitsEnv(process.env.BENCH_LIMITS) };
  const a = await startApp({ prefix, env });
  const b = await startApp({ prefix, env });
  const org = await seedOrg(a);
  const users = await Promise.all(Array.from({ length: USERS }, (_, i) => org.user('provider', `bench-${i}`)));
  // every user has a device (a socket) on instance A; subscribers watch all of them on instance B
  const devices = users.map((u) => wsClient(a, u.token, { lazy: false }));
  await Promise.all(devices.map(connected));
  const ids = users.map((u) => u.id);
  const subs = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => subscribe(b, org.admin, ids)));
  await new Promise((r) => setTimeout(r, Math.max(500, 3 * coalesceMs)));
  for (const s of subs) {
    s.seen.clear();
    s.latencies.length = 0;
    s.events = 0;
  }

  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (;;) {
      const n = next++;
      if (n >= UPDATES) return;
      const user = users[n % USERS] as SeededUser;
      const res = await fetch(a.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: user.token },
        body: JSON.stringify({ query: SET, variables: { s: STATUSES[Math.floor(n / USERS) % STATUSES.length], t: `u${n}` } }),
      });
      const body = (await res.json()) as { errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const sentMs = performance.now() - started;
  // the last update of every user must arrive at every subscriber (coalescing keeps final states)
  const finals = users.map((_, i) => `u${UPDATES - 1 - ((UPDATES - 1 - i) % USERS)}`);
  const deadline = Date.now() + 30_000;
  while (!subs.every((s) => finals.every((f) => s.seen.has(f))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const doneMs = performance.now() - started;
  const complete = subs.every((s) => finals.every((f) => s.seen.has(f)));
  const events = subs.reduce((n, s) => n + s.events, 0);
  const latencies = subs.flatMap((s) => s.latencies);
  const perSub = subs.map((s) => s.seen.size);
  const result = {
    coalesceMs,
    users: USERS,
    subscribers: SUBSCRIBERS,
    updates: UPDATES,
    concurrency: CONCURRENCY,
    mutationsPerSec: Math.round(UPDATES / (sentMs / 1000)),
    updatesDeliveredPerSec: Math.round(Math.min(...perSub) / (doneMs / 1000)),
    distinctUpdatesSeen: Math.min(...perSub),
    eventsPerSubscriber: Math.round(events / SUBSCRIBERS),
    deliveriesPerSec: Math.round(events / (doneMs / 1000)),
    latencyMs: { p50: pct(latencies, 50), p99: pct(latencies, 99), max: pct(latencies, 100) },
    finalStatesDelivered: complete,
  };
  await Promise.all([...devices, ...subs.map((s) => s.client)].map((c) => c.dispose()));
  await stopAll();
  return result;
}

await setup();
for (const coalesceMs of [0, 250]) {
  const r = await run(coalesceMs);
  console.log(
    `presence (coalesce ${r.coalesceMs} ms): ${r.mutationsPerSec} setPresence/s over HTTP; ` +
      `${r.updatesDeliveredPerSec} updates/s delivered to each of ${r.subscribers} subscribers ` +
      `(${r.distinctUpdatesSeen}/${r.updates} distinct updates seen, ${r.deliveriesPerSec} deliveries/s); ` +
      `latency p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms; final states ${r.finalStatesDelivered ? 'all delivered' : 'MISSING'}`,
  );
  console.log(JSON.stringify({ bench: 'presence', ...r }));
}
process.exit(0);
