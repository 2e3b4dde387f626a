// `npm run bench` — Wardline's benchmark (not a test). Prints a table per scenario and a summary
// against the targets of issue 2 §14, and writes the full results as JSON to
// bench-results/<timestamp>.json (gitignored).
//
// Topology: this orchestrator sets up an org, users and conversations through the services, then
// forks TWO API instances (test/bench/server.ts: loadConfig + createContainer + createApi, each its
// own process, same REDIS_PREFIX so they form one deployment) and ONE load generator
// (test/bench/loadgen.ts: raw graphql-transport-ws sockets with `ws`, and the HTTP publisher, so
// publish and receive times share one clock). All traffic stays on 127.0.0.1.
//
// Scenarios (BENCH_SCENARIOS, comma-separated, default all five):
//   fanout1  N subscribers of conversationEvents in ONE conversation, split over both instances;
//            sendMessage over HTTP to alternating instances at the BENCH_STEPS rates (msgs/s), so
//            deliveries/s = rate × N. Per step: delivered/s, publish→receive p50/p95/p99, lost and
//            duplicated (every subscriber must get every message exactly once: tracked per
//            subscriber by message and by cursor position), server CPU % per instance; per
//            scenario: server KiB per subscribed socket ((RSS after − RSS before) / sockets, both
//            after a forced GC). Also per step: the sendMessage round trip, "at→recv" (the event's
//            `at`, stamped inside the send transaction, to receipt: the server-side share of the
//            latency), CPU of PostgreSQL, Redis and of everything else on the machine (/proc), and
//            server / loadgen CPU µs per delivery (the cost model, independent of the rate).
//   fanout5  N subscribers in N/5 conversations of 5; messages to random conversations at the
//            BENCH_STEPS5 rates (msgs/s; deliveries/s = 5 × rate); same metrics.
//   send     sendMessage throughput over HTTP with persistence against one instance: closed-loop
//            clients at each BENCH_CONCURRENCY (keep-alive), senders spread over BENCH_SEND_CONVS
//            conversations; mutations/s and p50/p95/p99; the best mutations/s with p99 < 50 ms.
//   storm    reconnect storm (issue 12): N sockets connect and subscribe to their conversation of 5
//            with a cursor, each having missed BENCH_STORM_MISSED events; time until every replay
//            is complete, per-socket p50/p99, server CPU, Redis commands and PostgreSQL
//            transactions per socket (test/bench/storm.ts).
//   sendab   rate limits and the audit log, off against on (issue 9): instance A runs with
//            RATE_LIMITS=off AUDIT=off, instance B with both on at their defaults (the per-address
//            budgets lifted, as BENCH_LIMITS=on does), on the same database, Redis and loadgen; the
//            send step alternates between them, A B B A ..., BENCH_AB_ROUNDS rounds per
//            BENCH_CONCURRENCY after BENCH_AB_WARMUP warm-up steps each, so drift (a database that grows, a
//            neighbour that starts) falls on both alike. Prints every step and, per client count,
//            the median of each, on/off − 1 of the medians and the median of the rounds' on/off − 1
//            (paired), and where the difference in CPU per mutation goes (API, PostgreSQL, Redis,
//            machine). Runs alone (not with other scenarios).
//   idle     BENCH_IDLE_SOCKETS idle subscribed sockets per instance (several loadgen processes);
//            KiB per socket (RSS, heap) and each instance's RSS at start, before any socket.
//            With BENCH_LIMITS=on, the per-user socket cap refuses most of them (8 per user).
//
// Options (env):
//   BENCH_SUBSCRIBERS   subscribers (and users) per fan-out scenario        default 5000
//   BENCH_STEPS         fanout1 publish rates, msgs/s                        default 5,10,20,40
//   BENCH_STEPS5        fanout5 publish rates, msgs/s                        default 50,100,200,400
//   BENCH_CONCURRENCY   send scenario client counts                          default 8,32,64
//   BENCH_SECONDS       seconds per step                                     default 8
//   BENCH_SCENARIOS     which scenarios                                      default fanout1,fanout5,send,storm,idle
//   BENCH_SEND_CONVS    conversations the send scenario spreads over         default 100
//   BENCH_AB_ROUNDS     sendab: A/B pairs per client count                   default 6
//   BENCH_AB_WARMUP     sendab: warm-up steps per instance and client count  default 2
//   BENCH_AB_ON         sendab: what instance B turns on (limits, audit)     default limits,audit
//   BENCH_STORM_MISSED  events each storm subscriber missed (replayed)       default 3
//   BENCH_STORM_CONCURRENCY  sockets connecting at a time in the storm       default 100
//   BENCH_RUNTIME       tsx (default, as `npm start`) or dist: the servers run compiled JavaScript
//                       (built by tsc -p tsconfig.bench.json), as the Docker images do
//   BENCH_HEAP_SNAPSHOT dir: heap snapshots of instance A before and after the idle sockets
//   BENCH_IDLE_SOCKETS  idle subscribed sockets per instance                 default 20000
//                       (capped by `ulimit -n` less 500: one process holds one descriptor each)
//   BENCH_PROFILE       dir: CPU-profile Wardline's instance A (node:inspector) during the highest
//                       fanout1, fanout5 and send steps and the storm only, written as
//                       <dir>/fanout1-A-<rate>msgs-<ts>.cpuprofile (fanout5-A-…), <dir>/send-A-c<n>-<ts>.cpuprofile
//   BENCH_CPU_PROF      dir: run instance A under `node --cpu-prof --cpu-prof-dir=<dir>` (whole
//                       life; combine with BENCH_SCENARIOS=fanout1 BENCH_STEPS=40 to focus)
//   BENCH_DATABASE_URL  default $TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/wardline_test
//   BENCH_REDIS_URL     default $TEST_REDIS_URL or redis://127.0.0.1:6379
//   BENCH_REDIS_CLUSTER_NODES  run Wardline on this Redis Cluster (REDIS_CLUSTER_NODES, e.g. the one of
//                       scripts/redis-cluster.sh start: 127.0.0.1:7101,...); the baseline stays on BENCH_REDIS_URL
//   BENCH_KEEP_DATA=1   keep the bench org's rows (default: deleted at the end, like the Redis keys)
//   BENCH_MAX_SECONDS   watchdog for the whole run                           default 600
//   BENCH_BASELINE=0    skip the baseline: by default the fanout scenarios run again, same loadgen
//                       and rates, against two baseline instances (test/bench/baseline-server.ts:
//                       ws + Redis pub/sub, nothing stored), printed beside Wardline with ratios
//   BENCH_LIMITS        on: rate limits and caps on (RATE_LIMITS=on) at their defaults per user,
//                       with the per-address budgets lifted (every simulated client comes from
//                       127.0.0.1), so each operation pays the check and no per-user budget is
//                       reached; off (the default): RATE_LIMITS=off
// Server instances run with NODE_ENV=production, LOG_LEVEL=warn, REALTIME_POLL_MS=30000 and the
// config defaults for everything else (WS_MAX_BUFFERED_BYTES, ...); WS_*/other config variables
// set in the environment are passed through to them: e.g. AUDIT=off (default on) to compare the
// audit log's cost on the same scenarios (docs/audit.md).
//
// The loadgen retries a POST once when a reused keep-alive socket was reset (same clientMessageId,
// so the retry is idempotent); retries are counted in the output.
// Caveat: one loadgen process drains the 5,000 frames of one event in ~40 ms (~8 µs each), so
// publish→receive percentiles below ~50 ms are not resolvable at 5,000 subscribers per event.
// The machine has 2 cores for everything: the "others %" column shows what else was running.
//
// Quick smoke (~35 s):    BENCH_SUBSCRIBERS=500 BENCH_SECONDS=2 npm run bench
// Full run (~2-3 min):    npm run bench
// Summarise a profile:    node --import tsx test/bench/profile-summary.ts <file.cpuprofile> [15]
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { inArray, sql } from 'drizzle-orm';
import { loadConfig } from '../../src/config.js';
import { rowsOf } from '../../src/db/client.js';
import { createContainer, type Container } from '../../src/container.js';
import { streamHeads } from '../../src/realtime/tables.js';
import { isCluster } from '../../src/shared/redis-client.js';
import { createLogger } from '../../src/shared/logger.js';
import type { Viewer } from '../../src/shared/viewer.js';
import { cpuPercent, fmt, fmtInt, limitsEnv, pool, rpc, sampleSystem, type ServerStats, sleep, systemCpu, table } from './common.js';
import type { FanoutReport, SendResult, StepResult } from './loadgen.js';
import { type IdleReport, type ScenarioCtx, type StormConv, type StormReport, runIdle, runStorm, summaryMs } from './storm.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

// ---- options ----------------------------------------------------------------------------------

const env = process.env;
const list = (v: string | undefined, d: string) =>
  (v?.trim() ? v : d)
    .split(',')
    .map((x) => Number(x.trim()))
    .filter((x) => Number.isFinite(x) && x > 0);
const opts = {
  subscribers: Math.max(5, Math.floor(Number(env.BENCH_SUBSCRIBERS ?? 5000))),
  steps: list(env.BENCH_STEPS, '5,10,20,40'),
  steps5: list(env.BENCH_STEPS5, '50,100,200,400'),
  concurrency: list(env.BENCH_CONCURRENCY, '8,32,64').map(Math.floor),
  seconds: Math.max(1, Number(env.BENCH_SECONDS ?? 8)),
  scenarios: (env.BENCH_SCENARIOS ?? 'fanout1,fanout5,send,storm,idle')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  sendConvs: Math.max(1, Math.floor(Number(env.BENCH_SEND_CONVS ?? 100))),
  abRounds: Math.max(1, Math.floor(Number(env.BENCH_AB_ROUNDS ?? 6))),
  abWarmup: Math.max(0, Math.floor(Number(env.BENCH_AB_WARMUP ?? 2))),
  abOn: (env.BENCH_AB_ON ?? 'limits,audit').split(',').map((x) => x.trim()),
  stormMissed: Math.max(1, Math.floor(Number(env.BENCH_STORM_MISSED ?? 3))),
  stormConcurrency: Math.max(1, Math.floor(Number(env.BENCH_STORM_CONCURRENCY ?? 100))),
  idleSockets: Math.max(2, Math.floor(Number(env.BENCH_IDLE_SOCKETS ?? 20_000))),
  profileDir: env.BENCH_PROFILE || undefined,
  cpuProfDir: env.BENCH_CPU_PROF || undefined,
  databaseUrl: env.BENCH_DATABASE_URL ?? env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/wardline_test',
  redisUrl: env.BENCH_REDIS_URL ?? env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  keepData: env.BENCH_KEEP_DATA === '1',
  maxSeconds: Number(env.BENCH_MAX_SECONDS ?? 600),
  baseline: env.BENCH_BASELINE !== '0',
  runtime: env.BENCH_RUNTIME === 'dist' ? 'dist' : 'tsx',
};
for (const s of opts.scenarios)
  if (!['fanout1', 'fanout5', 'send', 'sendab', 'storm', 'idle'].includes(s))
    throw new Error(`BENCH_SCENARIOS: unknown scenario ${s} (fanout1, fanout5, send, sendab, storm, idle)`);
if (opts.scenarios.includes('sendab') && opts.scenarios.length > 1)
  throw new Error('BENCH_SCENARIOS: sendab runs alone (its two instances are configured differently)');
const has = (s: string) => opts.scenarios.includes(s);

const TARGET = { deliveries: 100_000, p99FanoutMs: 100, kibPerSocket: 20, sends: 2_000, p99SendMs: 50, subscribers: 5_000 };

const runId = `bench${randomUUID().slice(0, 8)}`;
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const orgId = `${runId}-org`;
const secret = `bench-secret-${randomUUID()}`;
const baseEnv: Record<string, string> = {
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  PORT: '0',
  DATABASE_URL: opts.databaseUrl,
  REDIS_URL: opts.redisUrl,
  ...(env.BENCH_REDIS_CLUSTER_NODES ? { REDIS_CLUSTER_NODES: env.BENCH_REDIS_CLUSTER_NODES } : {}),
  REDIS_PREFIX: runId,
  JWT_SECRET: secret,
  LOG_LEVEL: 'warn',
  REALTIME_POLL_MS: '30000',
  SEED_ON_EMPTY: 'false',
  ...limitsEnv(env.BENCH_LIMITS),
};

const log = (...a: unknown[]) => console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const t0 = performance.now();

// ---- children ---------------------------------------------------------------------------------

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killChildren(signal: NodeJS.Signals = 'SIGKILL') {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) c.kill(signal);
}

interface Instance {
  name: string;
  child: ChildProcess;
  port: number;
}

/**
 * BENCH_RUNTIME=dist: the server children run compiled JavaScript (tsconfig.bench.json, built once
 * per run into node_modules/.cache/wardline-bench), as the Docker images do; tsx (the default, as
 * `npm start`) compiles on load and keeps every function's name as an own property, which adds
 * memory per closure (and so per socket) and to the RSS at start.
 */
let distRoot: string | undefined;
function serverEntry(script: string): { file: string; execArgv: string[] } {
  if (opts.runtime !== 'dist') return { file: join(here, script), execArgv: ['--import', 'tsx'] };
  if (!distRoot) {
    const out = spawnSync('npx', ['tsc', '-p', 'tsconfig.bench.json'], { cwd: root, encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`BENCH_RUNTIME=dist: tsc -p tsconfig.bench.json failed\n${out.stdout}${out.stderr}`);
    distRoot = join(root, 'node_modules/.cache/wardline-bench');
    copyFileSync(join(root, 'src/http/graphiql-page.js'), join(distRoot, 'src/http/graphiql-page.js'));
  }
  return { file: join(distRoot, 'test/bench', script.replace(/\.ts$/, '.js')), execArgv: [] };
}

async function startServer(
  name: string,
  extraArgv: string[],
  script = 'server.ts',
  envOverride: Record<string, string> = {},
): Promise<Instance> {
  const entry = serverEntry(script);
  const child = track(
    fork(entry.file, [], {
      cwd: root,
      execArgv: [...entry.execArgv, '--expose-gc', ...extraArgv],
      env: { PREDICTIONS_MODELS_DIR: join(root, 'models'), ...env, ...baseEnv, ...envOverride },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    }),
  );
  let logLines = 0;
  let port = 0;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!port && line.startsWith('{"port":')) {
      port = (JSON.parse(line) as { port: number }).port;
      return;
    }
    if (++logLines <= 40) console.error(`[${name}] ${line.slice(0, 400)}`);
    else if (logLines === 41) console.error(`[${name}] (more log lines suppressed)`);
  });
  const ready = await new Promise<number>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready within 60 s`)), 60_000);
    child.on('message', (m: { ready?: boolean; port?: number }) => {
      if (m?.ready && m.port) {
        clearTimeout(timer);
        resolveReady(m.port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name}: exited with ${code} before ready`));
    });
  });
  return { name, child, port: ready };
}

async function startLoadgen(): Promise<ChildProcess> {
  const child = track(
    fork(join(here, 'loadgen.ts'), [], {
      cwd: root,
      execArgv: ['--import', 'tsx'],
      env: { ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error('loadgen: not ready within 30 s')), 30_000);
    child.on('message', (m: { ready?: boolean }) => {
      if (m?.ready) {
        clearTimeout(timer);
        resolveReady();
      }
    });
    child.once('exit', (code) => reject(new Error(`loadgen exited with ${code}`)));
  });
  return child;
}

async function stopChild(child: ChildProcess, graceful: boolean) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  if (graceful && child.connected) await rpc(child, 'stop', undefined, 5_000).catch(() => {});
  else child.kill('SIGTERM');
  await Promise.race([exited, sleep(20_000)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5_000)]);
  }
}

// ---- setup ------------------------------------------------------------------------------------

interface BenchUser {
  id: string;
  orgId: string;
  name: string;
  role: 'patient' | 'admin';
}

interface Setup {
  users: BenchUser[];
  /** fanout1: one conversation with every user. */
  convA: string | undefined;
  /** Conversations of 5: conversation j has users 5j..5j+4 (wrapping). */
  convsB: Array<{ id: string; members: number[] }>;
  ms: Record<string, number>;
}

async function setup(c: Container): Promise<Setup> {
  const { identity, messaging } = c.services;
  const ms: Record<string, number> = {};
  let t = performance.now();
  await identity.createOrg(orgId, 'Benchmark org');
  const n = opts.subscribers;
  const users: BenchUser[] = Array.from({ length: n }, (_, i) => ({
    id: `${orgId}:u${i}`,
    orgId,
    name: `User ${i}`,
    role: 'patient' as const,
  }));
  const admin: BenchUser = { id: `${orgId}:admin`, orgId, name: 'Bench admin', role: 'admin' };
  await pool([...users, admin], 8, (u) => identity.upsertUser(u));
  ms.users = performance.now() - t;
  const viewer: Viewer = { userId: admin.id, orgId, role: 'admin', name: admin.name };

  t = performance.now();
  let convA: string | undefined;
  if (has('fanout1')) {
    const ids = users.map((u) => u.id);
    const conv = await messaging.createConversation(viewer, {
      kind: 'group',
      title: 'Fan-out (one conversation)',
      memberIds: ids.slice(0, 200),
    });
    for (let i = 200; i < ids.length; i += 200) await messaging.addMembers(viewer, conv.id, ids.slice(i, i + 200));
    convA = conv.id;
  }
  ms.convA = performance.now() - t;

  t = performance.now();
  const countB = Math.max(
    has('fanout5') || has('storm') || has('idle') ? Math.ceil(n / 5) : 0,
    has('send') || has('sendab') ? opts.sendConvs : 0,
  );
  const convsB: Setup['convsB'] = new Array(countB);
  await pool(
    Array.from({ length: countB }, (_, j) => j),
    8,
    async (j) => {
      const members = [...new Set([0, 1, 2, 3, 4].map((r) => (5 * j + r) % n))];
      const conv = await messaging.createConversation(viewer, {
        kind: 'group',
        title: `Group ${j}`,
        memberIds: members.map((i) => users[i]!.id),
      });
      convsB[j] = { id: conv.id, members };
    },
  );
  ms.convsB = performance.now() - t;
  return { users: [...users, admin], convA, convsB, ms };
}

// ---- scenarios --------------------------------------------------------------------------------

let servers: Instance[] = [];
let loadgen: ChildProcess;

const statsOf = (i: Instance) => rpc<ServerStats>(i.child, 'stats', undefined, 30_000);
const statsAll = () => Promise.all(servers.map(statsOf));
const gcAll = () => Promise.all(servers.map((i) => rpc(i.child, 'gc', undefined, 30_000)));

/** Each instance's RSS right after it started, after a forced GC (before any socket). */
async function startRss(): Promise<number[]> {
  await gcAll();
  await sleep(300);
  return (await statsAll()).map((s) => s.mem.rss);
}

/** What the storm and idle scenarios need, for Wardline (`c` given) or the baseline. */
function scenarioCtx(c: Container | undefined, users: BenchUser[]): ScenarioCtx {
  const baselinePrefix = `${runId}:bl`;
  return {
    log,
    loadgen,
    ports: servers.map((x) => x.port),
    statsAll,
    gcAll,
    async heads(ids) {
      if (!c) {
        const vals = ids.length ? await c0().redis.commands.mget(...ids.map((id) => `${baselinePrefix}:p:${id}`)) : [];
        return new Map(ids.map((id, i) => [id, Number(vals[i] ?? 0)]));
      }
      const rows = await c.database.db
        .select({ stream: streamHeads.stream, position: streamHeads.position })
        .from(streamHeads)
        .where(
          inArray(
            streamHeads.stream,
            ids.map((id) => `conv:${id}`),
          ),
        );
      return new Map(rows.map((r) => [r.stream.slice('conv:'.length), Number(r.position)]));
    },
    cursor: (id, position) => (c ? c.cursors.encode(`conv:${id}`, position) : Buffer.from(String(position)).toString('base64url')),
    transactions: c
      ? async () => {
          const rows = (await c.database.db.execute(
            sql`select xact_commit + xact_rollback as n from pg_stat_database where datname = current_database()`,
          )) as unknown as Array<{ n: string | number }>;
          return Number([...rows][0]?.n ?? Number.NaN);
        }
      : undefined,
    profile:
      c && opts.profileDir
        ? {
            start: () => rpc(servers[0]!.child, 'profStart', undefined, 10_000),
            stop: async () => {
              const file = await rpc<string>(
                servers[0]!.child,
                'profStop',
                { file: resolve(opts.profileDir!, `storm-A-${stamp}.cpuprofile`) },
                60_000,
              );
              log(`storm: CPU profile of instance A written to ${file}`);
              return file;
            },
          }
        : undefined,
    heapSnapshot:
      c && env.BENCH_HEAP_SNAPSHOT
        ? async (label) => {
            const file = await rpc<string>(
              servers[0]!.child,
              'heapSnapshot',
              { file: resolve(env.BENCH_HEAP_SNAPSHOT!, `idle-A-${label}-${stamp}.heapsnapshot`) },
              120_000,
            );
            log(`idle: heap snapshot of instance A written to ${file}`);
          }
        : undefined,
    async startLoadgen() {
      const g = await startLoadgen();
      await rpc(g, 'init', { secret, users }, 120_000);
      return g;
    },
    stopLoadgen: (g) => stopChild(g, false),
  };
}

let containerRef: Container | undefined;
const c0 = () => containerRef!;

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number) {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await cond()) return true;
    await sleep(200);
  }
  log(`gave up waiting for ${what} after ${timeoutMs} ms`);
  return false;
}

/** Machine-wide CPU during a step: machine busy % (of 100 × cores), PostgreSQL and Redis (all their clients), and everything else. */
type SystemCpu = ReturnType<typeof systemCpu> & { others: number };

interface MemoryRow {
  instance: string;
  sockets: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  kibPerSocketRss: number;
  kibPerSocketHeap: number;
}

interface FanoutResult {
  scenario: string;
  subscribers: number;
  conversations: number;
  connect: { sockets: number; failed: number; firstFailure?: string; ms: number };
  subscribedMs: number;
  warmup: unknown;
  memory: MemoryRow[];
  steps: Array<StepResult & { serverCpu: number[]; serverCpuMs: number; serverRssMiB: number[]; system: SystemCpu }>;
  report: Omit<FanoutReport, 'steps'>;
  profile?: string;
}

async function runFanout(
  name: 'fanout1' | 'fanout5',
  convs: Array<{ id: string; subUsers: number[]; senders: number[] }>,
  rates: number[],
): Promise<FanoutResult> {
  const total = convs.reduce((n, c) => n + c.subUsers.length, 0);
  log(`${name}: ${total} subscribers in ${convs.length} conversation(s); rates ${rates.join(', ')} msgs/s × ${opts.seconds} s`);
  await gcAll();
  await sleep(300);
  const before = await statsAll();
  const baseSubs = before.reduce((n, s) => n + s.fanout.subscriptions, 0);
  const maxMsgs = rates.reduce((n, r) => n + Math.round(r * opts.seconds), 0) + 64;
  const connect = await rpc<FanoutResult['connect']>(
    loadgen,
    'connect',
    { name, ports: servers.map((s) => s.port), convs, maxMsgs, concurrency: 100, timeoutMs: 90_000 },
    120_000,
  );
  log(
    `${name}: ${connect.sockets - connect.failed}/${connect.sockets} sockets acknowledged in ${fmtInt(connect.ms)} ms${connect.failed ? ` (first failure: ${connect.firstFailure})` : ''}`,
  );
  const subStart = performance.now();
  const want = connect.sockets - connect.failed;
  await waitFor(
    'every subscription to be active',
    async () => (await statsAll()).reduce((n, s) => n + s.fanout.subscriptions, 0) - baseSubs >= want,
    60_000,
  );
  const subscribedMs = performance.now() - subStart + connect.ms;
  const warmup = await rpc<{ expected: number; received: number; ms: number; errors: number; firstError?: string }>(
    loadgen,
    'warmup',
    { timeoutMs: 30_000, perConv: name === 'fanout1' ? 2 : 1 },
    60_000,
  );
  log(
    `${name}: warm-up ${warmup.received}/${warmup.expected} deliveries in ${fmtInt(warmup.ms)} ms${warmup.errors ? ` (${warmup.errors} send errors: ${warmup.firstError})` : ''}`,
  );
  await sleep(500);
  await gcAll();
  await sleep(300);
  const after = await statsAll();
  const memory: MemoryRow[] = servers.map((s, i) => {
    const b = before[i]!;
    const a = after[i]!;
    const sockets = Math.max(1, a.sockets - b.sockets);
    return {
      instance: s.name,
      sockets: a.sockets - b.sockets,
      rssBeforeMiB: b.mem.rss / 2 ** 20,
      rssAfterMiB: a.mem.rss / 2 ** 20,
      kibPerSocketRss: (a.mem.rss - b.mem.rss) / 1024 / sockets,
      kibPerSocketHeap:
        (a.mem.heapUsed + a.mem.external + a.mem.arrayBuffers - b.mem.heapUsed - b.mem.external - b.mem.arrayBuffers) / 1024 / sockets,
    };
  });

  const steps: FanoutResult['steps'] = [];
  let profile: string | undefined;
  for (const [si, rate] of rates.entries()) {
    // the baseline's instances take no profile (their profStart answers false)
    const profileThis = opts.profileDir && si === rates.length - 1 && !servers[0]!.name.startsWith('base-');
    if (profileThis) await rpc(servers[0]!.child, 'profStart', undefined, 10_000);
    const s0 = await statsAll();
    const y0 = sampleSystem();
    const me0 = process.cpuUsage();
    const r = await rpc<StepResult>(loadgen, 'fanoutStep', { rate, seconds: opts.seconds, drainMs: 10_000 }, opts.seconds * 2000 + 90_000);
    const me = process.cpuUsage(me0);
    const y1 = sampleSystem();
    const s1 = await statsAll();
    if (profileThis) {
      profile = await rpc<string>(
        servers[0]!.child,
        'profStop',
        { file: resolve(opts.profileDir!, `${name}-A-${rate}msgs-${stamp}.cpuprofile`) },
        60_000,
      );
      log(`${name}: CPU profile of instance A written to ${profile}`);
    }
    const serverCpu = servers.map((_, i) => cpuPercent(s0[i]!, s1[i]!));
    const system = systemCpu(y0, y1, cpus().length);
    const mine = serverCpu.reduce((a, b) => a + b, 0) + r.loadgenCpu + (me.user + me.system) / 10 / (y1.atMs - y0.atMs);
    const serverCpuMs = servers.reduce(
      (n, _, i) => n + (s1[i]!.cpu.user + s1[i]!.cpu.system - s0[i]!.cpu.user - s0[i]!.cpu.system) / 1000,
      0,
    );
    steps.push({
      ...r,
      serverCpu,
      serverCpuMs,
      serverRssMiB: s1.map((s) => s.mem.rss / 2 ** 20),
      system: { ...system, others: system.machine - mine - system.postgres - system.redis },
    });
    log(
      `${name} ${rate} msgs/s: ${fmtInt(r.deliveredPerSec)} deliveries/s, p99 ${fmt(r.latency.p99)} ms, lost ${r.lost}, dup ${r.dup}, CPU ${serverCpu.map((c) => fmt(c, 0)).join('/')}% (loadgen ${fmt(r.loadgenCpu, 0)}%)`,
    );
  }
  const report = await rpc<FanoutReport>(loadgen, 'fanoutReport', { settleMs: 3_000 }, 30_000);
  // final accounting: late deliveries are credited to their step
  for (const [i, st] of report.steps.entries()) {
    const cur = steps[i]!;
    steps[i] = {
      ...cur,
      ...st,
      deliveredPerSec: cur.deliveredPerSec,
      loadgenCpu: cur.loadgenCpu,
      drainMs: cur.drainMs,
      deliveredAtDrain: cur.deliveredAtDrain,
    };
  }
  const { steps: _omit, ...rest } = report;
  await rpc(loadgen, 'disconnect', { timeoutMs: 15_000 }, 30_000);
  await waitFor('sockets to close on the servers', async () => (await statsAll()).every((s, i) => s.sockets <= before[i]!.sockets), 20_000);
  return {
    scenario: name,
    subscribers: total,
    conversations: convs.length,
    connect,
    subscribedMs,
    warmup,
    memory,
    steps,
    report: rest,
    profile,
  };
}

interface SendRow extends SendResult {
  serverCpu: number;
  commitsPerMutation?: number;
  system: SystemCpu;
  profile?: string;
}

/**
 * Transactions committed in the bench database so far (pg_stat_database). Backends flush their
 * counts at most once a second, so a reading waits 1.5 s for the step's last ones.
 */
let readCommits: (() => Promise<number>) | undefined;

/** One closed-loop send step against `servers[idx]`, with its CPU and commit figures. */
async function sendStepOn(idx: number, concurrency: number, profileThis: boolean): Promise<SendRow> {
  const a = servers[idx]!;
  if (profileThis) await rpc(a.child, 'profStart', undefined, 10_000);
  await sleep(1500);
  const commits0 = await readCommits?.();
  const s0 = await statsAll();
  const y0 = sampleSystem();
  const me0 = process.cpuUsage();
  const r = await rpc<SendResult>(
    loadgen,
    'sendStep',
    { port: a.port, concurrency, seconds: opts.seconds, convs: sendConvs },
    opts.seconds * 1000 + 90_000,
  );
  const me = process.cpuUsage(me0);
  const y1 = sampleSystem();
  const s1 = await statsAll();
  const system = systemCpu(y0, y1, cpus().length);
  const serverCpu = servers.map((_, i) => cpuPercent(s0[i]!, s1[i]!));
  const mine = serverCpu.reduce((x, y) => x + y, 0) + r.loadgenCpu + (me.user + me.system) / 10 / (y1.atMs - y0.atMs);
  await sleep(1500);
  const commits1 = await readCommits?.();
  let profile: string | undefined;
  if (profileThis) {
    profile = await rpc<string>(
      a.child,
      'profStop',
      { file: resolve(opts.profileDir!, `send-${a.name}-c${concurrency}-${stamp}.cpuprofile`) },
      60_000,
    );
    log(`send: CPU profile of instance ${a.name} written to ${profile}`);
  }
  log(
    `send ${a.name} c=${concurrency}: ${fmtInt(r.perSec)} mutations/s, p99 ${fmt(r.latency.p99)} ms, errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ''}`,
  );
  return {
    ...r,
    serverCpu: serverCpu[idx]!,
    // every committed transaction of the step (the sends' and the audit writer's), per mutation
    commitsPerMutation: commits0 !== undefined && commits1 !== undefined && r.ok > 0 ? (commits1 - commits0) / r.ok : undefined,
    profile,
    system: { ...system, others: system.machine - mine - system.postgres - system.redis },
  };
}

let sendConvs: Array<{ id: string; senders: number[] }> = [];

async function runSend(): Promise<SendRow[]> {
  const rows: SendRow[] = [];
  log(
    `send: closed-loop sendMessage against instance A, concurrency ${opts.concurrency.join(', ')} × ${opts.seconds} s over ${sendConvs.length} conversations`,
  );
  for (const [ci, concurrency] of opts.concurrency.entries())
    rows.push(await sendStepOn(0, concurrency, !!opts.profileDir && ci === opts.concurrency.length - 1));
  return rows;
}

/** One A/B pair of the sendab scenario: the same client count against A (off) and B (on). */
interface AbRound {
  round: number;
  concurrency: number;
  off: SendRow;
  on: SendRow;
}

/**
 * sendab: after `abWarmup` warm-up steps on each instance per client count, `abRounds` pairs per client
 * count, in the order A B, B A, A B, ... so that a trend over the sitting weighs on both alike.
 */
async function runSendAb(): Promise<AbRound[]> {
  const out: AbRound[] = [];
  log(
    `sendab: A = limits and audit off, B = on at defaults; ${opts.abWarmup} warm-up and ${opts.abRounds} counted rounds × concurrency ${opts.concurrency.join(', ')} × ${opts.seconds} s`,
  );
  // warm-up, not counted: JIT, heap growth and leases settle on both instances (one step was not
  // enough for B, which runs more code: its first counted rounds at 32 clients were 20-30 % down)
  for (const concurrency of opts.concurrency)
    for (let w = 0; w < opts.abWarmup; w++) {
      await sendStepOn(0, concurrency, false);
      await sendStepOn(1, concurrency, false);
    }
  for (let round = 1; round <= opts.abRounds; round++)
    for (const concurrency of opts.concurrency) {
      const profileThis = !!opts.profileDir && round === opts.abRounds;
      if (round % 2 === 1) {
        const off = await sendStepOn(0, concurrency, profileThis);
        const on = await sendStepOn(1, concurrency, profileThis);
        out.push({ round, concurrency, off, on });
      } else {
        const on = await sendStepOn(1, concurrency, profileThis);
        const off = await sendStepOn(0, concurrency, profileThis);
        out.push({ round, concurrency, off, on });
      }
    }
  return out;
}

// ---- output -----------------------------------------------------------------------------------

const ms = (v: number) => fmt(v, 1);

function printFanout(f: FanoutResult) {
  console.log(`\n== ${f.scenario}: ${fmtInt(f.subscribers)} subscribers in ${fmtInt(f.conversations)} conversation(s), 2 instances ==`);
  console.log(
    `connect+subscribe: ${fmtInt(f.connect.sockets - f.connect.failed)}/${fmtInt(f.connect.sockets)} sockets in ${fmt(f.subscribedMs / 1000)} s` +
      (f.connect.failed ? `; ${f.connect.failed} failed (${f.connect.firstFailure})` : ''),
  );
  console.log(
    table(
      [
        'msgs/s',
        'sent/s',
        'offered dlv/s',
        'delivered/s',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'max ms',
        'sent',
        'lost',
        'dup',
        'cursor gap/dup',
        'send err',
        'send p50/p99 ms',
        'at→recv p50/p99 ms',
      ],
      f.steps.map((s) => [
        s.rate,
        fmt(s.publishRate, 1),
        fmtInt(s.offeredPerSec),
        fmtInt(s.deliveredPerSec),
        ms(s.latency.p50),
        ms(s.latency.p95),
        ms(s.latency.p99),
        ms(s.latency.max),
        fmtInt(s.sent),
        fmtInt(s.lost),
        fmtInt(s.dup),
        `${s.cursorGap}/${s.cursorDup}`,
        fmtInt(s.sendErrors),
        `${ms(s.http.p50)}/${ms(s.http.p99)}`,
        `${fmt(s.fromAt.p50, 0)}/${fmt(s.fromAt.p99, 0)}`,
      ]),
    ),
  );
  console.log(
    'latency: p50..max = sendMessage POST sent → frame received (loadgen clock); send = the POST round trip; at→recv = event `at` (stamped in the send transaction) → received (ms resolution)',
  );
  console.log('CPU per step (% of one core) and CPU time per delivery (server: both instances, mutations included):');
  console.log(
    table(
      [
        'msgs/s',
        'CPU A %',
        'CPU B %',
        'loadgen %',
        'PG %',
        'Redis %',
        'others %',
        'machine %',
        'server µs/dlv',
        'loadgen µs/dlv',
        'RSS A/B MiB',
      ],
      f.steps.map((s) => [
        s.rate,
        fmt(s.serverCpu[0] ?? Number.NaN, 0),
        fmt(s.serverCpu[1] ?? Number.NaN, 0),
        fmt(s.loadgenCpu, 0),
        fmt(s.system.postgres, 0),
        fmt(s.system.redis, 0),
        fmt(s.system.others, 0),
        fmt(s.system.machine, 0),
        fmt((s.serverCpuMs * 1000) / Math.max(1, s.deliveredAtDrain), 1),
        fmt((s.loadgenCpuMs * 1000) / Math.max(1, s.deliveredAtDrain), 1),
        s.serverRssMiB.map((m) => fmt(m, 0)).join('/'),
      ]),
    ),
  );
  console.log(
    table(
      ['instance', 'sockets', 'RSS before MiB', 'RSS after MiB', 'KiB/socket (RSS)', 'KiB/socket (heap+ext)'],
      f.memory.map((m) => [
        m.instance,
        fmtInt(m.sockets),
        fmt(m.rssBeforeMiB),
        fmt(m.rssAfterMiB),
        fmt(m.kibPerSocketRss),
        fmt(m.kibPerSocketHeap),
      ]),
    ),
  );
  const r = f.report;
  const closes = Object.entries(r.closes)
    .map(([c, n]) => `${c}×${n}`)
    .join(', ');
  console.log(
    `frames: ${r.errorFrames} error, ${r.otherFrames} other; sockets open at end ${r.openSockets}${closes ? `; closes ${closes}` : ''}; ` +
      `HTTP retries so far (reset keep-alive socket, same clientMessageId): ${r.httpRetries}` +
      (r.firstErrorFrame ? `; first error: ${r.firstErrorFrame}` : ''),
  );
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};
const pct = (on: number, off: number) => `${on >= off ? '+' : '−'}${fmt(Math.abs(on / off - 1) * 100, 1)} %`;

/** µs of CPU per mutation of a process (group) during a step, from its % of one core. */
const usPer = (r: SendRow, percent: number) => (r.perSec > 0 ? (percent * 10_000) / r.perSec : Number.NaN);
/** The server instance's CPU per mutation, µs. */
const usPerMutation = (r: SendRow) => usPer(r, r.serverCpu);

function printSendAb(rounds: AbRound[]) {
  console.log('\n== sendab: sendMessage with rate limits and audit off (A) and on at defaults (B), alternating ==');
  console.log(
    table(
      [
        'round',
        'clients',
        'off mutations/s',
        'on mutations/s',
        'off p99 ms',
        'on p99 ms',
        'off server µs/mutation',
        'on server µs/mutation',
        'errors',
      ],
      rounds.map((x) => [
        x.round,
        x.concurrency,
        fmtInt(x.off.perSec),
        fmtInt(x.on.perSec),
        ms(x.off.latency.p99),
        ms(x.on.latency.p99),
        fmt(usPerMutation(x.off), 0),
        fmt(usPerMutation(x.on), 0),
        fmtInt(x.off.errors + x.on.errors),
      ]),
    ),
  );
  const rows = opts.concurrency.map((c) => {
    const r = rounds.filter((x) => x.concurrency === c);
    const off = median(r.map((x) => x.off.perSec));
    const on = median(r.map((x) => x.on.perSec));
    const offUs = median(r.map((x) => usPerMutation(x.off)));
    const onUs = median(r.map((x) => usPerMutation(x.on)));
    const wins = r.filter((x) => x.on.perSec >= x.off.perSec).length;
    // the rounds are pairs run back to back: the median of each pair's ratio is the paired estimate
    const paired = median(r.map((x) => (x.off.perSec > 0 ? x.on.perSec / x.off.perSec : Number.NaN)));
    return [
      c,
      r.length,
      fmtInt(off),
      fmtInt(on),
      pct(on, off),
      pct(paired, 1),
      `${wins} of ${r.length}`,
      fmt(offUs, 0),
      fmt(onUs, 0),
      pct(onUs, offUs),
    ];
  });
  console.log(
    '\nmedians per client count (on vs off: of the two medians, and paired: the median of the rounds’ on/off; issue 9 asks for mutations/s within 10 %):',
  );
  console.log(
    table(
      [
        'clients',
        'rounds',
        'off mutations/s',
        'on mutations/s',
        'on vs off',
        'on vs off, paired',
        'rounds on ≥ off',
        'off µs/mutation',
        'on µs/mutation',
        'CPU on vs off',
      ],
      rows,
    ),
  );
  // where the difference goes: the median over rounds of on − off, in µs of CPU per mutation, for
  // the API instance, PostgreSQL and Redis (every client of theirs) and the whole machine
  const costs = opts.concurrency.map((c) => {
    const r = rounds.filter((x) => x.concurrency === c);
    const d = (f: (x: SendRow) => number) => fmt(median(r.map((x) => f(x.on) - f(x.off))), 0);
    return [
      c,
      d(usPerMutation),
      d((x) => usPer(x, x.system.postgres)),
      d((x) => usPer(x, x.system.redis)),
      d((x) => usPer(x, x.system.machine)),
      fmt(median(r.map((x) => usPer(x.off, x.off.system.machine))), 0),
    ];
  });
  console.log('\nCPU per mutation, on − off (median over the rounds, µs; PostgreSQL and Redis count every client of theirs):');
  console.log(table(['clients', 'API instance', 'PostgreSQL', 'Redis', 'whole machine', 'whole machine, off'], costs));
}

function printSend(rows: SendRow[]) {
  console.log('\n== send: sendMessage over HTTP with persistence, one instance ==');
  console.log(
    table(
      [
        'clients',
        'mutations/s',
        'ok',
        'errors',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'max ms',
        'CPU A %',
        'server µs/mutation',
        'PG commits/mutation',
        'loadgen %',
        'PG %',
        'Redis %',
        'others %',
        'machine %',
      ],
      rows.map((r) => [
        r.concurrency,
        fmtInt(r.perSec),
        fmtInt(r.ok),
        fmtInt(r.errors),
        ms(r.latency.p50),
        ms(r.latency.p95),
        ms(r.latency.p99),
        ms(r.latency.max),
        fmt(r.serverCpu, 0),
        r.perSec > 0 ? fmt(usPerMutation(r), 0) : '-',
        r.commitsPerMutation === undefined ? '-' : fmt(r.commitsPerMutation, 2),
        fmt(r.loadgenCpu, 0),
        fmt(r.system.postgres, 0),
        fmt(r.system.redis, 0),
        fmt(r.system.others, 0),
        fmt(r.system.machine, 0),
      ]),
    ),
  );
}

/** A step is "sustained" when deliveries kept up with the offer, p99 < target and nothing was lost or duplicated. */
const sustained = (s: FanoutResult['steps'][number]) => {
  return (
    s.deliveredPerSec >= 0.95 * s.offeredPerSec && s.latency.p99 < TARGET.p99FanoutMs && s.lost === 0 && s.dup === 0 && s.sendErrors === 0
  );
};

function summary(f1: FanoutResult | undefined, f5: FanoutResult | undefined, send: SendRow[] | undefined) {
  const rows: Array<[string, string, string, string]> = [];
  if (f1) {
    const ok = f1.steps.filter(sustained);
    const best = ok.reduce((m, s) => Math.max(m, s.deliveredPerSec), 0);
    const top = f1.steps.at(-1);
    rows.push([
      `fan-out, ${fmtInt(f1.subscribers)} subscribers, 1 conversation`,
      `>= ${fmtInt(TARGET.deliveries)} deliveries/s, p99 < ${TARGET.p99FanoutMs} ms, 0 lost`,
      `${fmtInt(best)} deliveries/s sustained` +
        (top ? ` (top step: ${fmtInt(top.deliveredPerSec)}/s, p99 ${ms(top.latency.p99)} ms, lost ${top.lost})` : ''),
      best >= TARGET.deliveries && f1.subscribers >= TARGET.subscribers
        ? 'MET'
        : f1.subscribers < TARGET.subscribers
          ? 'n/a (fewer subscribers)'
          : 'MISSED',
    ]);
    const kib = Math.max(...f1.memory.map((m) => m.kibPerSocketRss));
    rows.push([
      'server memory per subscribed socket',
      `<= ${TARGET.kibPerSocket} KiB`,
      `${fmt(kib)} KiB (RSS; heap+external ${fmt(Math.max(...f1.memory.map((m) => m.kibPerSocketHeap)))} KiB)`,
      kib <= TARGET.kibPerSocket ? 'MET' : 'MISSED',
    ]);
    const lost = f1.steps.reduce((n, s) => n + s.lost + s.dup, 0);
    rows.push([
      'fan-out exactly-once (all fanout1 steps)',
      '0 lost, 0 duplicated',
      `${f1.steps.reduce((n, s) => n + s.lost, 0)} lost, ${f1.steps.reduce((n, s) => n + s.dup, 0)} dup`,
      lost === 0 ? 'MET' : 'MISSED',
    ]);
  }
  if (f5) {
    const best = f5.steps.filter(sustained).reduce((m, s) => Math.max(m, s.deliveredPerSec), 0);
    const lost = f5.steps.reduce((n, s) => n + s.lost, 0);
    const dup = f5.steps.reduce((n, s) => n + s.dup, 0);
    rows.push([
      `fan-out, ${fmtInt(f5.subscribers)} subscribers, conversations of 5`,
      '(no target) 0 lost',
      `${fmtInt(best)} deliveries/s sustained; ${lost} lost, ${dup} dup`,
      lost + dup === 0 ? 'exactly-once' : 'LOSS/DUP',
    ]);
  }
  if (send) {
    const ok = send.filter((r) => r.latency.p99 < TARGET.p99SendMs && r.errors === 0);
    const best = ok.reduce((m, r) => Math.max(m, r.perSec), 0);
    const peak = send.reduce((m, r) => Math.max(m, r.perSec), 0);
    rows.push([
      'sendMessage per instance',
      `>= ${fmtInt(TARGET.sends)}/s with p99 < ${TARGET.p99SendMs} ms`,
      `${fmtInt(best)}/s with p99 < ${TARGET.p99SendMs} ms (peak ${fmtInt(peak)}/s)`,
      best >= TARGET.sends ? 'MET' : 'MISSED',
    ]);
  }
  if (rows.length) {
    console.log('\n== summary against the targets (issue 2 §14) ==');
    console.log(table(['what', 'target', 'reached', 'verdict'], rows, true));
  }
  const others = [...(f1?.steps ?? []), ...(f5?.steps ?? []), ...(send ?? [])].map((s) => s.system.others).filter(Number.isFinite);
  if (others.length)
    console.log(
      `other processes on the machine used ${fmt(Math.min(...others), 0)}-${fmt(Math.max(...others), 0)}% CPU (of one core) during the steps` +
        (Math.max(...others) > 25 ? ': the bench did not have the 2 cores to itself, so the numbers above understate an idle machine' : ''),
    );
  return rows;
}

/** The storm and idle-memory results of one server kind. */
function printStorm(label: string, st: StormReport | undefined, idle: IdleReport | undefined) {
  if (st) {
    const r = st.result;
    console.log(
      `\n== storm (${label}): ${fmtInt(st.sockets)} sockets resume with a cursor in conversations of 5, ${st.missed} events missed each, ${st.concurrency} connecting at a time, 2 instances ==`,
    );
    console.log(
      table(
        ['figure', 'value'],
        [
          ['acknowledged', `${fmtInt(st.acked)}/${fmtInt(st.sockets)} in ${fmt(st.ackMs / 1000, 2)} s`],
          [
            'every replay complete',
            `${fmtInt(r.resumed)}/${fmtInt(r.expected)}, ${fmt(r.allMs / 1000, 2)} s (last at ${fmt(r.lastMs / 1000, 2)} s)`,
          ],
          ['per socket open → replay complete p50/p99/max ms', summaryMs(r.perSocket)],
          ['server CPU (both instances) per socket, µs', fmt((st.serverCpuMs * 1000) / st.sockets, 0)],
          ['Redis commands per socket (both instances)', fmt(st.redisPerSocket, 2)],
          ['PostgreSQL transactions per socket (bench database)', fmt(st.transactionsPerSocket, 2)],
          [
            'error frames; cursor gaps/dups; closes',
            `${r.errors}${r.firstErrorFrame ? ` (${r.firstErrorFrame})` : ''}; ${r.cursorGap}/${r.cursorDup}; ${JSON.stringify(r.closes)}`,
          ],
        ],
        true,
      ),
    );
    if (st.profile) console.log(`CPU profile (instance A, storm): ${st.profile}`);
  }
  if (idle) {
    console.log(
      `\n== idle (${label}): ${fmtInt(idle.perInstance)} subscribed sockets per instance from ${idle.loadgens} loadgen processes, connected in ${fmt(idle.connectMs / 1000)} s${idle.failed ? `, ${idle.failed} failed (${idle.firstFailure})` : ''} ==`,
    );
    console.log(
      table(
        ['instance', 'sockets', 'RSS at start MiB', 'RSS before MiB', 'RSS after MiB', 'KiB/socket (RSS)', 'KiB/socket (heap+ext)'],
        idle.rows.map((m) => [
          m.instance,
          fmtInt(m.sockets),
          fmt(m.startRssMiB),
          fmt(m.rssBeforeMiB),
          fmt(m.rssAfterMiB),
          fmt(m.kibPerSocketRss),
          fmt(m.kibPerSocketHeap),
        ]),
      ),
    );
  }
}

/**
 * Wardline beside the baseline (the same load on a ws + Redis server that stores nothing), and the
 * ratio. Sustained = the highest step with p99 under the scenario's bound and nothing lost.
 */
function printBaseline(
  f1: FanoutResult | undefined,
  f5: FanoutResult | undefined,
  b1: FanoutResult | undefined,
  b5: FanoutResult | undefined,
  x: { storm?: StormReport; idle?: IdleReport; bStorm?: StormReport; bIdle?: IdleReport } = {},
) {
  const best = (f?: FanoutResult) => (f ? f.steps.filter(sustained).reduce((m, x) => Math.max(m, x.deliveredPerSec), 0) : Number.NaN);
  const usPerDelivery = (f?: FanoutResult) => {
    const x = f?.steps[0];
    return x ? (x.serverCpuMs * 1000) / Math.max(1, x.delivered) : Number.NaN;
  };
  const p99 = (f?: FanoutResult) => f?.steps.at(-1)?.latency.p99 ?? Number.NaN;
  const kib = (f?: FanoutResult) => (f ? Math.max(...f.memory.map((m) => m.kibPerSocketRss)) : Number.NaN);
  const rss = (f?: FanoutResult) => (f ? f.memory.reduce((n, m) => n + m.rssBeforeMiB, 0) : Number.NaN);
  const rows: Array<[string, string, string, string]> = [];
  const row = (what: string, w: number, b: number, digits = 0) => rows.push([what, fmt(w, digits), fmt(b, digits), fmt(w / b, 2)]);
  if (f1 || b1) {
    row('fanout1: deliveries/s sustained', best(f1), best(b1));
    row(
      `fanout1: server µs per delivery (both instances, ${f1?.steps[0]?.rate ?? '?'} msgs/s step)`,
      usPerDelivery(f1),
      usPerDelivery(b1),
      1,
    );
    row('fanout1: p99 ms at the top step', p99(f1), p99(b1), 1);
    row('connect + subscribe all sockets, s', (f1?.subscribedMs ?? Number.NaN) / 1000, (b1?.subscribedMs ?? Number.NaN) / 1000, 1);
    row('KiB per subscribed socket (RSS)', kib(f1), kib(b1), 1);
    row('RSS of both instances before the sockets, MiB', rss(f1), rss(b1));
  }
  if (f5 || b5) {
    row('fanout5: deliveries/s sustained', best(f5), best(b5));
    row(`fanout5: server µs per delivery (${f5?.steps[0]?.rate ?? '?'} msgs/s step)`, usPerDelivery(f5), usPerDelivery(b5), 1);
    row('fanout5: p99 ms at the top step', p99(f5), p99(b5), 1);
  }
  if (x.storm || x.bStorm) {
    const n = x.storm?.sockets ?? x.bStorm?.sockets ?? 0;
    row(
      `storm: ${fmtInt(n)} sockets connect + resume (all replays complete), s`,
      (x.storm?.result.allMs ?? Number.NaN) / 1000,
      (x.bStorm?.result.allMs ?? Number.NaN) / 1000,
      2,
    );
    row(
      'storm: per socket open → replay complete p99, ms',
      x.storm?.result.perSocket.p99 ?? Number.NaN,
      x.bStorm?.result.perSocket.p99 ?? Number.NaN,
      0,
    );
    row(
      'storm: server CPU per socket, µs',
      ((x.storm?.serverCpuMs ?? Number.NaN) * 1000) / n,
      ((x.bStorm?.serverCpuMs ?? Number.NaN) * 1000) / n,
      0,
    );
  }
  if (x.idle || x.bIdle) {
    const worst = (r: IdleReport | undefined, k: 'kibPerSocketRss' | 'kibPerSocketHeap') =>
      r ? Math.max(...r.rows.map((m) => m[k])) : Number.NaN;
    const per = x.idle?.rows[0]?.sockets ?? x.bIdle?.rows[0]?.sockets ?? 0;
    row(
      `idle: KiB per subscribed socket (RSS), ${fmtInt(per)} per instance`,
      worst(x.idle, 'kibPerSocketRss'),
      worst(x.bIdle, 'kibPerSocketRss'),
      1,
    );
    row('idle: KiB per subscribed socket (heap + external)', worst(x.idle, 'kibPerSocketHeap'), worst(x.bIdle, 'kibPerSocketHeap'), 1);
    const start = (r?: IdleReport) => (r ? Math.max(...r.rows.map((m) => m.startRssMiB)) : Number.NaN);
    row('idle RSS per instance at start (no socket), MiB', start(x.idle), start(x.bIdle), 0);
  }
  console.log('\n== Wardline beside the baseline (ws + Redis pub/sub, nothing stored; same loadgen, same run) ==');
  console.log(table(['figure', 'Wardline', 'baseline', 'ratio'], rows, true));
}

// ---- cleanup ----------------------------------------------------------------------------------

async function cleanupData(c: Container) {
  if (opts.keepData) return;
  const db = c.database.db;
  const started = performance.now();
  for (const q of [
    sql`delete from messages where org_id = ${orgId}`,
    sql`delete from conversation_members where org_id = ${orgId}`,
    sql`delete from conversations where org_id = ${orgId}`,
    sql`delete from stream_events where org_id = ${orgId}`,
    sql`delete from stream_heads where org_id = ${orgId}`,
    sql`delete from audit_events where org_id = ${orgId}`,
    sql`delete from users where org_id = ${orgId}`,
    sql`delete from orgs where id = ${orgId}`,
  ]) {
    await db.execute(q).catch((err: Error) => log(`cleanup: ${err.message.split('\n')[0]}`));
  }
  let keys = 0;
  // SCAN sees one server: on a cluster every master is scanned, and its keys (other slots) unlinked one by one
  const redis = c.redis.commands;
  const clustered = isCluster(redis);
  for (const node of clustered ? redis.nodes('master') : [redis]) {
    let cursor = '0';
    for (let i = 0; i < 10_000; i++) {
      // `{runId:bull}:…` too: a cluster's queue prefix is hash-tagged
      const [next, batch] = await node.scan(cursor, 'MATCH', clustered ? `*${runId}*` : `${runId}:*`, 'COUNT', 1000);
      if (batch.length && clustered) keys += (await Promise.all(batch.map((k) => node.unlink(k)))).reduce((a, b) => a + b, 0);
      else if (batch.length) keys += await node.del(...batch);
      cursor = next;
      if (cursor === '0') break;
    }
  }
  log(`cleanup: bench rows deleted, ${keys} Redis keys under ${runId}: removed (${fmtInt(performance.now() - started)} ms)`);
}

// ---- main -------------------------------------------------------------------------------------

async function main() {
  log(
    `run ${runId}: servers on ${opts.runtime}, AUDIT=${env.AUDIT ?? 'on'}, ${opts.subscribers} subscribers, scenarios ${opts.scenarios.join(', ')}, ${opts.seconds} s per step; ${cpus().length} cores, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  // the loadgen holds one descriptor per socket (children inherit this shell's limit)
  const nofile = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  if (Number.isFinite(nofile) && nofile < opts.subscribers + 1_000)
    log(
      `WARNING: ulimit -n is ${nofile}; ${opts.subscribers} sockets need about ${opts.subscribers + 1_000}: raise it (ulimit -n 65536) before npm run bench`,
    );
  // how busy the machine is before we start: anything here competes with the bench for 2 cores
  const q0 = sampleSystem();
  await sleep(2_000);
  const background = systemCpu(q0, sampleSystem(), cpus().length);
  log(
    `machine before start: ${fmt(background.machine, 0)}% busy (of ${cpus().length * 100}%), PostgreSQL ${fmt(background.postgres, 0)}%, Redis ${fmt(background.redis, 0)}%`,
  );
  if (background.machine > 30) log('WARNING: other processes are using the CPU; results will be lower than on an idle machine');
  const config = loadConfig({ ...env, ...baseEnv });
  const container = await createContainer(config, { logger: createLogger('warn') });
  containerRef = container;
  readCommits = async () => {
    const res = await container.database.db.execute(sql`select xact_commit from pg_stat_database where datname = current_database()`);
    return Number(rowsOf<{ xact_commit: string | number }>(res)[0]?.xact_commit ?? Number.NaN);
  };
  let f1: FanoutResult | undefined;
  let f5: FanoutResult | undefined;
  let send: SendRow[] | undefined;
  let sendAb: AbRound[] | undefined;
  let b1: FanoutResult | undefined;
  let b5: FanoutResult | undefined;
  let storm: StormReport | undefined;
  let idle: IdleReport | undefined;
  let bStorm: StormReport | undefined;
  let bIdle: IdleReport | undefined;
  const loadBefore = loadavg();
  try {
    const s = await setup(container);
    log(
      `setup: ${s.users.length} users in ${fmtInt(s.ms.users!)} ms, conversation A in ${fmtInt(s.ms.convA!)} ms, ${s.convsB.length} conversations of 5 in ${fmtInt(s.ms.convsB!)} ms`,
    );
    // sendab: A with limits and audit off, B with both on (defaults, per-address budgets lifted)
    const ab = has('sendab');
    servers = [
      await startServer(
        'A',
        opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(opts.cpuProfDir)}`] : [],
        'server.ts',
        ab ? { ...limitsEnv('off'), AUDIT: 'off' } : {},
      ),
      await startServer(
        'B',
        [],
        'server.ts',
        ab ? { ...limitsEnv(opts.abOn.includes('limits') ? 'on' : 'off'), AUDIT: opts.abOn.includes('audit') ? 'on' : 'off' } : {},
      ),
    ];
    const rssAtStart = await startRss();
    log(`instances' RSS at start (after a GC, no socket): ${rssAtStart.map((r) => fmt(r / 2 ** 20, 0)).join(' / ')} MiB`);
    loadgen = await startLoadgen();
    await rpc(loadgen, 'init', { secret, users: s.users }, 120_000);
    log(`instances on ports ${servers.map((x) => x.port).join(', ')}; loadgen ready`);
    const patients = s.users.filter((u) => u.role === 'patient').map((_, i) => i);

    if (has('fanout1') && s.convA) {
      f1 = await runFanout('fanout1', [{ id: s.convA, subUsers: patients, senders: patients }], opts.steps);
    }
    if (has('fanout5')) {
      const n = opts.subscribers;
      const convs = s.convsB.slice(0, Math.ceil(n / 5)).map((c, j) => {
        const subUsers = [0, 1, 2, 3, 4].map((r) => 5 * j + r).filter((i) => i < n);
        return { id: c.id, subUsers, senders: c.members };
      });
      f5 = await runFanout('fanout5', convs, opts.steps5);
    }
    if (has('send')) {
      sendConvs = s.convsB.slice(0, opts.sendConvs).map((c) => ({ id: c.id, senders: c.members }));
      send = await runSend();
    }
    if (has('sendab')) {
      sendConvs = s.convsB.slice(0, opts.sendConvs).map((c) => ({ id: c.id, senders: c.members }));
      sendAb = await runSendAb();
    }
    const small: StormConv[] = s.convsB.slice(0, Math.ceil(opts.subscribers / 5)).map((c) => ({ id: c.id, members: c.members }));
    if (has('storm'))
      storm = await runStorm(scenarioCtx(container, s.users), small, { missed: opts.stormMissed, concurrency: opts.stormConcurrency });
    if (has('idle'))
      idle = await runIdle(scenarioCtx(container, s.users), small, {
        perInstance: opts.idleSockets,
        names: servers.map((x) => x.name),
        startRss: rssAtStart,
      });
    if (opts.baseline && (f1 || f5 || storm || idle)) {
      // the same load generator, conversations and rates against two baseline instances (ws + Redis)
      await Promise.all(servers.map((x) => stopChild(x.child, true)));
      servers = [await startServer('base-A', [], 'baseline-server.ts'), await startServer('base-B', [], 'baseline-server.ts')];
      const baseRss = await startRss();
      log(`baseline (ws + Redis pub/sub, nothing stored) on ports ${servers.map((x) => x.port).join(', ')}`);
      if (f1 && s.convA) b1 = await runFanout('fanout1', [{ id: s.convA, subUsers: patients, senders: patients }], opts.steps);
      if (f5) {
        const n = opts.subscribers;
        const convs = s.convsB.slice(0, Math.ceil(n / 5)).map((c, j) => ({
          id: c.id,
          subUsers: [0, 1, 2, 3, 4].map((r) => 5 * j + r).filter((i) => i < n),
          senders: c.members,
        }));
        b5 = await runFanout('fanout5', convs, opts.steps5);
      }
      if (storm)
        bStorm = await runStorm(scenarioCtx(undefined, s.users), small, { missed: opts.stormMissed, concurrency: opts.stormConcurrency });
      if (idle)
        bIdle = await runIdle(scenarioCtx(undefined, s.users), small, {
          perInstance: opts.idleSockets,
          names: servers.map((x) => x.name),
          startRss: baseRss,
        });
    }
  } finally {
    await Promise.all([...servers.map((x) => stopChild(x.child, true)), loadgen ? stopChild(loadgen, false) : Promise.resolve()]);
    await cleanupData(container).catch((err: Error) => log(`cleanup failed: ${err.message}`));
    await container.close();
  }

  console.log(
    `\nWardline bench ${runId} (servers on ${opts.runtime}): ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}; ${opts.subscribers} subscribers, ${opts.seconds} s per step; ` +
      `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}; ` +
      `machine ${fmt(background.machine, 0)}% busy before start` +
      `\n(CPU columns: % of one core; "others %" = machine busy − servers − loadgen − orchestrator − PostgreSQL − Redis, i.e. anything else running on the machine)`,
  );
  if (f1) printFanout(f1);
  if (f5) printFanout(f5);
  if (send) printSend(send);
  if (sendAb) printSendAb(sendAb);
  const verdicts = summary(f1, f5, send);
  if (storm || idle) printStorm('Wardline', storm, idle);
  if (bStorm || bIdle) printStorm('baseline', bStorm, bIdle);
  if (b1 || b5 || bStorm || bIdle) printBaseline(f1, f5, b1, b5, { storm, idle, bStorm, bIdle });
  if (f1?.profile) console.log(`\nCPU profile (instance A, top fanout1 step): ${f1.profile}`);
  if (f5?.profile) console.log(`CPU profile (instance A, top fanout5 step): ${f5.profile}`);
  const sendProfile = send?.find((r) => r.profile)?.profile;
  if (sendProfile) console.log(`CPU profile (instance A, top send step): ${sendProfile}`);
  const file = join(root, 'bench-results', `${stamp}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        runId,
        startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
        durationS: (performance.now() - t0) / 1000,
        machine: {
          cores: cpus().length,
          cpu: cpus()[0]?.model,
          memGiB: totalmem() / 2 ** 30,
          node: process.version,
          loadBefore,
          loadAfter: loadavg(),
          busyBeforeStart: background,
        },
        options: opts,
        serverEnv: { ...baseEnv, JWT_SECRET: '(random)' },
        targets: TARGET,
        fanout1: f1,
        fanout5: f5,
        send,
        sendAb,
        storm,
        idle,
        baseline: { fanout1: b1, fanout5: b5, storm: bStorm, idle: bIdle },
        summary: verdicts,
      },
      null,
      2,
    ),
  );
  console.log(`\nresults: ${file} (${fmt((performance.now() - t0) / 1000)} s)`);
}

const watchdog = setTimeout(() => {
  log(`watchdog: run exceeded BENCH_MAX_SECONDS=${opts.maxSeconds}; stopping`);
  killChildren();
  process.exit(2);
}, opts.maxSeconds * 1000);
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    killChildren();
    process.exit(130);
  });
process.on('exit', () => killChildren());

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killChildren();
    process.exit(1);
  },
);
