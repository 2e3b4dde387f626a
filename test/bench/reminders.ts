// Reminder throughput benchmark (issue 3, item 7): N one-off reminders for M patients fall due at
// the same instant; a real worker process delivers each as a REMINDER notification, and every
// patient's socket must receive each of its reminders exactly once. Target ≥ 2,000 reminders/s.
//
//   node --import tsx test/bench/reminders.ts                 # 10,000 reminders, 1,000 sockets
//   BENCH_QUICK=1 node --import tsx test/bench/reminders.ts   # 2,000 reminders, 200 sockets
//
// Knobs: BENCH_REMINDERS (10000), BENCH_REMINDER_USERS (1000 subscribed patients; reminders are
// spread round-robin), BENCH_REMINDER_WORKERS (1 worker process), WORKER_CONCURRENCY (config
// default 200, passed through to the workers), BENCH_LEAD_MS (time from the start of creation to
// the due instant; default 5 s + 2 ms per reminder), BENCH_DUE_OFFSET_MS (0: the due instant is a whole
// second; e.g. 1 puts it just after one, the worst case of the due-second ticks), BENCH_QUICK=1, BENCH_MAX_MS (115000: hard
// stop), BENCH_WORKER_CPU_PROF=<dir> (run the first worker under node --cpu-prof),
// BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/wardline_bench, created and migrated if
// missing), BENCH_REDIS_URL (redis://127.0.0.1:6379), BENCH_KEEP_DATA=1 (keep the bench org).
//
// CPU per occurrence (`cpu` line) is measured from the due instant to the last delivery: the API and
// worker processes (their /proc utime+stime), the PostgreSQL backends connected to the bench
// database, and the redis-server process of BENCH_REDIS_URL when it runs on this machine (every
// client of that Redis counts: point BENCH_REDIS_URL at a redis-server of your own for a clean
// figure). Resolution is one 10 ms tick per process.
//
// Processes: this driver (seeds through the services, creates the reminders, prints the report),
// one API instance (`server`), the worker process(es) (`worker`: loadConfig + createContainer +
// startWorkers, i.e. `wardline worker`), and a raw-`ws` graphql-transport-ws load generator
// (`loadgen`). Latency is due → socket: from the occurrence instant to the frame's arrival.
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import { Histogram, benchInstance, pool, sleep, limitsEnv } from './common.js';

const SECRET = 'bench-secret-bench-secret-bench-secret-01';
const env = process.env;
const QUICK = env.BENCH_QUICK === '1';
const N = Number(env.BENCH_REMINDERS ?? (QUICK ? 2_000 : 10_000));
const USERS = Math.min(N, Number(env.BENCH_REMINDER_USERS ?? (QUICK ? 200 : 1_000)));
const WORKERS = Number(env.BENCH_REMINDER_WORKERS ?? 1);
const LEAD_MS = Number(env.BENCH_LEAD_MS ?? 5_000 + 2 * N);
const DUE_OFFSET_MS = Number(env.BENCH_DUE_OFFSET_MS ?? 0);
const MAX_MS = Number(env.BENCH_MAX_MS ?? 115_000);
const DATABASE_URL = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/wardline_bench';
const REDIS_URL = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SUBSCRIPTION = `subscription{ notificationEvents { __typename ... on NotificationAdded { notification { data } } } }`;

type Msg =
  | { t: 'ready'; port?: number }
  | { t: 'subscribed'; n: number; failed: number }
  | { t: 'progress'; received: number }
  | { t: 'result'; stats: LoadStats };

interface LoadStats {
  received: number;
  unique: number;
  missing: number;
  duplicates: number;
  unexpected: number;
  errors: number;
  closed: number;
  firstAt: number;
  lastAt: number;
  latency: ReturnType<Histogram['summary']>;
}

const self = fileURLToPath(import.meta.url);
const child = (role: string, extraEnv: Record<string, string> = {}, execArgv: string[] = []) =>
  fork(self, [role], {
    execArgv: [...execArgv, '--import', 'tsx'],
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
const next = <T extends Msg['t']>(p: ChildProcess, t: T, ms: number) =>
  new Promise<Extract<Msg, { t: T }>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${t} not received within ${ms} ms`)), ms);
    const on = (m: Msg) => {
      if (m.t !== t) return;
      clearTimeout(timer);
      p.off('message', on);
      resolve(m as Extract<Msg, { t: T }>);
    };
    p.on('message', on);
    p.once('exit', (code) => reject(new Error(`child exited (${code}) before ${t}`)));
  });
const onStop = (stop: () => Promise<void>) => {
  process.on('message', (m: { t?: string }) => m.t === 'stop' && void stop());
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
};

// ---- server / worker: the real entry points ----------------------------------------------------

async function server() {
  const api = await benchInstance('api');
  process.send?.({ t: 'ready', port: api.port } satisfies Msg);
  onStop(() => api.stop().then(() => process.exit(0)));
}

async function worker() {
  const w = await benchInstance('worker');
  process.send?.({ t: 'ready' } satisfies Msg);
  onStop(() => w.stop().then(() => process.exit(0)));
}

// ---- loadgen: one raw graphql-transport-ws socket per patient ----------------------------------

async function loadgen() {
  const { mintToken } = await import('../../src/http/auth.js');
  const setup = await new Promise<{ url: string; userIds: string[]; orgId: string }>((r) => process.once('message', r as never));
  const got = new Map<string, number>();
  const latency = new Histogram();
  let received = 0;
  let errors = 0;
  let closed = 0;
  let firstAt = 0;
  let lastAt = 0;
  const sockets: WebSocket[] = [];
  const open = async (userId: string) => {
    const token = await mintToken(SECRET, { sub: userId, org: setup.orgId, role: 'patient', name: 'Bench patient' }, 3600);
    const ws = new WebSocket(setup.url, 'graphql-transport-ws', { perMessageDeflate: false });
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      ws.on('close', () => closed++);
      ws.on('message', (raw) => {
        const now = Date.now();
        const m = JSON.parse(raw.toString()) as { type: string; payload?: any };
        if (m.type === 'connection_ack') {
          ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SUBSCRIPTION } }));
          resolve();
        } else if (m.type === 'next') {
          const data = m.payload?.data?.notificationEvents?.notification?.data;
          if (!data?.reminderId) return void errors++;
          got.set(data.reminderId, (got.get(data.reminderId) ?? 0) + 1);
          received++;
          if (!firstAt) firstAt = now;
          lastAt = now;
          latency.add(now - Date.parse(data.occurrenceAt));
        } else if (m.type === 'error') errors++;
        else if (m.type === 'ping') ws.send('{"type":"pong"}');
      });
    });
  };
  let failed = 0;
  await pool(setup.userIds, 100, (u) => open(u).catch(() => void failed++));
  process.send?.({ t: 'subscribed', n: setup.userIds.length - failed, failed } satisfies Msg);
  const progress = setInterval(() => process.send?.({ t: 'progress', received } satisfies Msg), 250);
  const expected = await new Promise<string[]>((r) =>
    process.on('message', (m: { t?: string; ids?: string[] }) => m.t === 'finish' && r(m.ids ?? [])),
  );
  clearInterval(progress);
  const want = new Set(expected);
  let missing = 0;
  let duplicates = 0;
  for (const id of want) {
    const n = got.get(id) ?? 0;
    if (n === 0) missing++;
    duplicates += Math.max(0, n - 1);
  }
  const unexpected = [...got.keys()].filter((id) => !want.has(id)).length;
  const stats: LoadStats = {
    received,
    unique: got.size,
    missing,
    duplicates,
    unexpected,
    errors,
    closed,
    firstAt,
    lastAt,
    latency: latency.summary(),
  };
  process.send?.({ t: 'result', stats } satisfies Msg);
  for (const ws of sockets) ws.terminate();
  setTimeout(() => process.exit(0), 100);
}

// ---- driver ------------------------------------------------------------------------------------

/** utime+stime of a process in ms (0 when it is gone or this is not Linux). */
function cpuMsOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/** CPU ms of the roles that deliver: API, workers, the bench database's PostgreSQL backends, Redis. */
interface CpuSample {
  api: number;
  worker: number;
  postgres: Map<number, number>;
  redis: number;
}
async function sampleCpu(sql: ReturnType<typeof admin>, database: string, api: ChildProcess, workers: ChildProcess[], redisPid: number) {
  const pids = (await sql`select pid from pg_stat_activity where datname = ${database}`).map((r) => Number(r.pid));
  return {
    api: cpuMsOf(api.pid),
    worker: workers.reduce((n, w) => n + cpuMsOf(w.pid), 0),
    postgres: new Map(pids.map((p) => [p, cpuMsOf(p)])),
    redis: cpuMsOf(redisPid),
  } satisfies CpuSample;
}
/** µs of CPU per occurrence between two samples (a backend new in `b` counts whole). */
function cpuPerOccurrence(a: CpuSample, b: CpuSample, n: number) {
  let pg = 0;
  for (const [pid, ms] of b.postgres) pg += ms - (a.postgres.get(pid) ?? 0);
  const per = (ms: number) => Math.round((ms * 1000) / Math.max(1, n));
  return { apiUs: per(b.api - a.api), workerUs: per(b.worker - a.worker), postgresUs: per(pg), redisUs: per(b.redis - a.redis) };
}

function admin(database?: string) {
  const url = new URL(DATABASE_URL);
  return postgres({
    host: url.hostname,
    port: Number(url.port || 5432),
    username: decodeURIComponent(url.username || 'postgres'),
    password: decodeURIComponent(url.password || ''),
    database: database ?? url.pathname.slice(1),
    max: 1,
    onnotice: () => {},
  });
}

async function ensureDatabase() {
  const sql = admin('postgres');
  const name = new URL(DATABASE_URL).pathname.slice(1);
  const [exists] = await sql`select 1 from pg_database where datname = ${name}`;
  if (!exists) await sql.unsafe(`create database "${name}"`);
  await sql.end();
}

async function subscriptionsLive(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^wardline_ws_subscriptions (\d+)/m.exec(text)?.[1] ?? 0);
}

/** What PostgreSQL says happened: the ground truth behind "none lost or doubled". */
async function stored(orgId: string) {
  const sql = admin();
  const [n] = await sql`select count(*)::int as n, count(distinct client_key)::int as keys,
    (extract(epoch from min(created_at)) * 1000)::float8 as first, (extract(epoch from max(created_at)) * 1000)::float8 as last
    from notifications where org_id = ${orgId} and kind = 'reminder'`;
  const [o] = await sql`select count(*)::int as n from reminder_occurrences where org_id = ${orgId}`;
  const [a] = await sql`select count(*)::int as n from reminders where org_id = ${orgId} and status = 'active'`;
  await sql.end();
  return {
    notifications: n?.n ?? 0,
    distinctKeys: n?.keys ?? 0,
    occurrences: o?.n ?? 0,
    stillActive: a?.n ?? 0,
    firstCreatedMs: Number(n?.first ?? 0),
    lastCreatedMs: Number(n?.last ?? 0),
  };
}

async function cleanup(orgId: string, prefix: string) {
  if (env.BENCH_KEEP_DATA === '1') return;
  const sql = admin();
  await sql`delete from reminders where org_id = ${orgId}`;
  await sql`delete from notifications where org_id = ${orgId}`;
  await sql`delete from stream_events where org_id = ${orgId}`;
  await sql`delete from stream_heads where org_id = ${orgId}`;
  await sql`delete from users where org_id = ${orgId}`;
  await sql`delete from orgs where id = ${orgId}`;
  await sql.end();
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [c, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = c;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
}

async function driver() {
  const started = Date.now();
  const children: ChildProcess[] = [];
  const hardStop = setTimeout(() => {
    console.error(`reminders bench: exceeded BENCH_MAX_MS=${MAX_MS}; stopping`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }, MAX_MS);
  hardStop.unref();
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const orgId = `bench-${randomUUID()}`;
  const runEnv = {
    NODE_ENV: 'production',
    ...limitsEnv(process.env.BENCH_LIMITS),
    DATABASE_URL,
    REDIS_URL,
    REDIS_PREFIX: prefix,
    JWT_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    WS_KEEPALIVE_MS: '0',
  };
  let container: Awaited<ReturnType<typeof import('../../src/container.js')['createContainer']>> | undefined;
  try {
    await ensureDatabase();
    const { Redis } = await import('ioredis');
    const probe = new Redis(REDIS_URL);
    const redisPid = Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1] ?? 0);
    await probe.quit();
    const cpuSql = admin();
    const dbName = new URL(DATABASE_URL).pathname.slice(1);
    const srv = child('server', runEnv);
    children.push(srv);
    const port = (await next(srv, 'ready', 60_000)).port as number;
    const prof = env.BENCH_WORKER_CPU_PROF;
    const workerProcs: ChildProcess[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const w = child('worker', runEnv, i === 0 && prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []);
      children.push(w);
      workerProcs.push(w);
      await next(w, 'ready', 60_000);
    }

    // seed through the services, like the API would
    const { loadConfig } = await import('../../src/config.js');
    const { createContainer } = await import('../../src/container.js');
    container = await createContainer(loadConfig({ ...env, ...runEnv, LOG_LEVEL: 'silent' }), { migrate: false });
    const services = container.services;
    await services.identity.createOrg(orgId, 'Reminder bench');
    const userIds = Array.from({ length: USERS }, (_, i) => `${orgId}:patient-${i}`);
    await pool(userIds, 32, (id, i) => services.identity.upsertUser({ id, orgId, role: 'patient', name: `Patient ${i}` }));

    const gen = child('loadgen');
    children.push(gen);
    const tConnect = Date.now();
    gen.send({ url: `ws://127.0.0.1:${port}/graphql`, userIds, orgId });
    const sub = await next(gen, 'subscribed', 90_000);
    let live = 0;
    for (let i = 0; i < 200 && live < sub.n; i++) {
      live = await subscriptionsLive(port);
      if (live < sub.n) await sleep(100);
    }
    const connectMs = Date.now() - tConnect;
    let received = 0;
    gen.on('message', (m: Msg) => {
      if (m.t === 'progress') received = m.received;
    });

    // N one-off reminders, all due at D
    const tCreate = Date.now();
    const due = new Date(Math.ceil((tCreate + LEAD_MS) / 1000) * 1000 + DUE_OFFSET_MS);
    const ids: string[] = [];
    let createFailures = 0;
    await pool(
      Array.from({ length: N }, (_, i) => i),
      64,
      async (i) => {
        const userId = userIds[i % USERS] as string;
        const viewer = { userId, orgId, role: 'patient' as const, name: 'Bench patient' };
        try {
          const r = await services.reminders.create(viewer, { kind: 'medication', title: `Dose ${i}`, at: due, clientKey: `bench-${i}` });
          ids.push(r.id);
        } catch {
          createFailures++;
        }
      },
    );
    const createMs = Date.now() - tCreate;
    const slackMs = due.getTime() - Date.now();
    if (slackMs < 500) console.warn(`reminders bench: creation ended ${-slackMs} ms after the due instant; raise BENCH_LEAD_MS`);

    // wait for the due instant, then until every reminder arrived and nothing moved for 2 s
    await sleep(Math.max(0, due.getTime() - Date.now() - 50));
    const cpu0 = await sampleCpu(cpuSql, dbName, srv, workerProcs, redisPid);
    let cpu1 = cpu0;
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    let last = -1;
    let quietSince = Date.now();
    while (Date.now() - started < MAX_MS - 8_000) {
      await sleep(100);
      if (received !== last) {
        last = received;
        quietSince = Date.now();
        // the last sample taken while deliveries still arrived closes the CPU window
        cpu1 = await sampleCpu(cpuSql, dbName, srv, workerProcs, redisPid);
      }
      const idle = Date.now() - quietSince;
      if ((received >= ids.length && idle >= 2_000) || idle >= 15_000) break;
    }
    await cpuSql.end();
    gen.send({ t: 'finish', ids });
    const { stats } = await next(gen, 'result', 30_000);
    const db = await stored(orgId);
    const drainMs = Math.max(1, stats.lastAt - due.getTime());
    const counts = await container.queues.counts();
    // BullMQ's own timestamps of the retained completed jobs: time in the handler vs. overall span
    const done = await container.queues.queue('reminders').getJobs(['completed'], 0, 999);
    const run = done.map((j) => (j.finishedOn ?? 0) - (j.processedOn ?? 0)).sort((x, y) => x - y);
    const span = Math.max(0, ...done.map((j) => j.finishedOn ?? 0)) - Math.min(Date.now(), ...done.map((j) => j.processedOn ?? Date.now()));
    // how late BullMQ started each job after the instant it was delayed to
    const instantOf = (d: { second?: number; occurrenceMs?: number }) => (d.second !== undefined ? d.second * 1000 : (d.occurrenceMs ?? 0));
    const late = done.map((j) => (j.processedOn ?? 0) - instantOf(j.data)).sort((x, y) => x - y);
    const jobs = {
      sampled: done.length,
      startLateMsP50: late[Math.floor(late.length / 2)] ?? 0,
      startLateMsMax: late[late.length - 1] ?? 0,
      handlerMsP50: run[Math.floor(run.length / 2)] ?? 0,
      handlerMsP99: run[Math.floor(run.length * 0.99)] ?? 0,
      meanInFlight: Math.round((run.reduce((x, y) => x + y, 0) / Math.max(1, span)) * 10) / 10,
    };
    const report = {
      bench: 'reminders-throughput',
      reminders: ids.length,
      createFailures,
      patients: sub.n,
      subscribeFailures: sub.failed,
      subscriptionsLive: live,
      workers: WORKERS,
      workerConcurrency: container.config.worker.concurrency,
      connectAndSubscribeMs: connectMs,
      createMs,
      createPerSec: Math.round((ids.length / createMs) * 1000),
      dueAt: due.toISOString(),
      deliveredUnique: stats.unique,
      received: stats.received,
      missing: stats.missing,
      duplicates: stats.duplicates,
      unexpected: stats.unexpected,
      socketErrors: stats.errors,
      socketsClosed: stats.closed,
      remindersPerSec: Math.round((stats.unique / drainMs) * 1000),
      committedPerSec: Math.round((db.notifications / Math.max(1, db.lastCreatedMs - due.getTime())) * 1000),
      dueToLastCommitMs: Math.round(db.lastCreatedMs - due.getTime()),
      dueToLastMs: drainMs,
      firstToLastMs: stats.lastAt - stats.firstAt,
      latencyMs: {
        p50: Math.round(stats.latency.p50),
        p95: Math.round(stats.latency.p95),
        p99: Math.round(stats.latency.p99),
        max: Math.round(stats.latency.max),
      },
      stored: db,
      queue: counts.reminders,
      jobs,
      cpuUsPerOccurrence: cpuPerOccurrence(cpu0, cpu1, stats.unique),
      loadAverage: load,
      wallMs: Date.now() - started,
    };
    const cpu = report.cpuUsPerOccurrence;
    const exact =
      report.missing + report.duplicates + report.unexpected === 0 && db.notifications === ids.length && db.distinctKeys === ids.length;
    const ok = exact && createFailures === 0;
    console.log(
      [
        `reminders throughput: ${report.reminders} one-off reminders due at one instant for ${report.patients} subscribed patients; ${WORKERS} worker process(es), concurrency ${report.workerConcurrency}`,
        `  setup              subscribe ${connectMs} ms (${live} live); create ${createMs} ms (${report.createPerSec}/s, ${createFailures} failed)`,
        `  delivered          ${stats.unique} of ${ids.length}: missing ${stats.missing}, duplicated ${stats.duplicates}, unexpected ${stats.unexpected}, socket errors ${stats.errors}`,
        `  stored             ${db.notifications} notifications (${db.distinctKeys} distinct keys), ${db.occurrences} occurrence rows, ${db.stillActive} still active`,
        `  throughput         ${report.remindersPerSec} reminders/s (due → last delivery ${drainMs} ms; first → last ${report.firstToLastMs} ms)  target ≥ 2,000/s: ${report.remindersPerSec >= 2_000 ? 'met' : 'NOT met'}`,
        `  worker commits     ${report.committedPerSec} reminders/s (due → last notification committed ${report.dueToLastCommitMs} ms)`,
        `  jobs (last ${jobs.sampled})    handler p50 ${jobs.handlerMsP50} ms, p99 ${jobs.handlerMsP99} ms, mean in flight ${jobs.meanInFlight}; started after their instant p50 ${jobs.startLateMsP50} ms, max ${jobs.startLateMsMax} ms`,
        `  cpu per occurrence worker ${cpu.workerUs} µs, API ${cpu.apiUs} µs, PostgreSQL ${cpu.postgresUs} µs, Redis ${cpu.redisUs} µs (load average at the due instant ${load})`,
        `  latency (due→socket) p50 ${report.latencyMs.p50} ms, p95 ${report.latencyMs.p95} ms, p99 ${report.latencyMs.p99} ms, max ${report.latencyMs.max} ms`,
        `  verdict            ${exact ? 'none lost or doubled' : 'LOST OR DOUBLED'}${createFailures ? `; setup incomplete: ${createFailures} creates failed (raise BENCH_LEAD_MS)` : ''}`,
      ].join('\n'),
    );
    console.log(JSON.stringify(report));
    process.exitCode = ok ? 0 : 1;
  } finally {
    await container?.close().catch(() => {});
    for (const c of children) c.connected ? c.send({ t: 'stop' }) : c.kill();
    await Promise.race([
      Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(0) : c.once('exit', r))))),
      sleep(10_000),
    ]);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await cleanup(orgId, prefix).catch((err) => console.warn('reminders bench: cleanup failed:', err instanceof Error ? err.message : err));
    clearTimeout(hardStop);
  }
}

const role = process.argv[2] ?? 'driver';
const run = role === 'server' ? server : role === 'worker' ? worker : role === 'loadgen' ? loadgen : driver;
run().catch((err) => {
  console.error(`reminders bench (${role}) failed:`, err instanceof Error ? err.message : err);
  process.exit(1);
});
