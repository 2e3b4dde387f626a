// Ledger benchmark (issue 12, item 5): the cost of the head poll with many idle joined streams.
// One API container joins BENCH_LEDGER_STREAMS streams (default 100,000) that each hold an event,
// then times `hub.poll()` while nothing changes and while 100 streams change between polls, beside
// the previous design's read (the heads of every joined stream, in chunks of 10,000 names).
//   npm run bench:ledger
// Knobs: BENCH_LEDGER_STREAMS, BENCH_DATABASE_URL (…/wardline_bench_ledger), BENCH_REDIS_URL.
import { randomUUID } from 'node:crypto';
import { env } from 'node:process';
import { ensureDatabase, pgClient } from './common.js';

const N = Number(env.BENCH_LEDGER_STREAMS ?? 100_000);
const DATABASE_URL = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/wardline_bench_ledger';
const REDIS_URL = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const { loadConfig } = await import('../../src/config.js');
const { createContainer } = await import('../../src/container.js');
await ensureDatabase(DATABASE_URL);
const config = loadConfig({
  NODE_ENV: 'production',
  DATABASE_URL,
  REDIS_URL,
  JWT_SECRET: 'bench-secret-bench-secret-bench-secret-01',
  REDIS_PREFIX: `bl${randomUUID().slice(0, 6)}`,
  LOG_LEVEL: 'warn',
  SEED_ON_EMPTY: 'false',
  REALTIME_POLL_MS: '600000', // polls are driven by the bench
});
const c = await createContainer(config, { role: 'serve' });
if (!('hub' in c)) throw new Error('expected an API container');
const org = `bench-ledger-${randomUUID().slice(0, 8)}`;
const sql = pgClient(DATABASE_URL, undefined, 4);
const name = (i: number) => `bench:${org}:${i}`;

let t = performance.now();
await sql`insert into stream_heads (stream, org_id, position)
  select 'bench:' || ${org} || ':' || i, ${org}, 1 from generate_series(0, ${N - 1}) i`;
await sql`insert into stream_events (stream, position, org_id, type, payload)
  select 'bench:' || ${org} || ':' || i, 1, ${org}, 'Bench', '{}'::jsonb from generate_series(0, ${N - 1}) i`;
console.log(`seeded ${N.toLocaleString('en')} streams with one event each in ${((performance.now() - t) / 1000).toFixed(1)} s`);

let delivered = 0;
const listener = { onEvent: () => void delivered++ };
t = performance.now();
for (let i = 0; i < N; i += 500)
  await Promise.all(Array.from({ length: Math.min(500, N - i) }, (_, k) => c.hub.join(name(i + k), org, listener)));
console.log(`joined ${c.hub.stats().streams.toLocaleString('en')} streams on one hub in ${((performance.now() - t) / 1000).toFixed(1)} s`);

const timePolls = async (label: string, between?: () => Promise<void>) => {
  const ms: number[] = [];
  for (let i = 0; i < 10; i++) {
    await between?.();
    const s = performance.now();
    await c.hub.poll();
    ms.push(performance.now() - s);
  }
  ms.sort((a, b) => a - b);
  console.log(`hub.poll(), ${label}: median ${ms[5]!.toFixed(1)} ms, max ${ms[9]!.toFixed(1)} ms`);
};
await timePolls('nothing changed');
let next = 2;
// 100 streams change between polls, written without publishing (as if pub/sub lost them): the poll must find them
await timePolls('100 streams changed since the last poll (unpublished)', async () => {
  const p = next++;
  const picked = Array.from({ length: 100 }, (_, k) => name((p * 7919 + k * 997) % N));
  await sql.begin(async (tx) => {
    await tx`update stream_heads set position = position + 1 where stream in ${tx(picked)}`;
    await tx`insert into stream_events (stream, position, org_id, type, payload)
      select h.stream, h.position, h.org_id, 'Bench', '{}'::jsonb from stream_heads h where h.stream in ${tx(picked)}`;
  });
});
await new Promise((r) => setTimeout(r, 500)); // the catch-ups the last poll started
console.log(`events found by the polls and delivered: ${delivered.toLocaleString('en')} (1,000 written)`);

// the previous design: every poll read the heads of every joined stream
const names = Array.from({ length: N }, (_, i) => name(i));
t = performance.now();
for (let i = 0; i < N; i += 10_000) await sql`select stream, position from stream_heads where stream in ${sql(names.slice(i, i + 10_000))}`;
console.log(
  `previous design's poll read (heads of all ${N.toLocaleString('en')} joined streams): ${(performance.now() - t).toFixed(1)} ms`,
);

await c.hub.close();
await sql`delete from stream_events where org_id = ${org}`;
await sql`delete from stream_heads where org_id = ${org}`;
await sql.end();
await c.close();
process.exit(0);
