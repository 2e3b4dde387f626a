// Alert fan-out benchmark (issue 3, item 7): N graphql-ws subscribers, each with its own geo
// filter, spread over two API instances; a service raises alerts at random points and every
// subscriber whose circle contains the point must receive it exactly once.
//
//   node --import tsx test/bench/alerts.ts          # 5,000 subscribers, 200 alerts
//   BENCH_QUICK=1 node --import tsx test/bench/alerts.ts
//
// Knobs: BENCH_ALERT_SUBSCRIBERS (5000), BENCH_ALERT_COUNT (200), BENCH_ALERT_CONCURRENCY (4
// raises in flight), BENCH_ALERT_INSTANCES (2), BENCH_QUICK=1 (500 subscribers, 30 alerts),
// BENCH_MAX_MS (115000: hard stop), BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/
// wardline_bench, created and migrated if missing), BENCH_REDIS_URL (redis://127.0.0.1:6379).
//
// Processes: this driver (seeds, raises alerts over HTTP, prints the report), one child per API
// instance (`server`), and a raw-`ws` graphql-transport-ws load generator (`loadgen`). Traffic
// stays on 127.0.0.1. Latency is end to end: from the alert's createdAt (set by the API before
// its transaction) to the frame arriving at the subscriber's socket.
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import WebSocket from 'ws';
import { limitsEnv } from './common.js';

const SECRET = 'bench-secret-bench-secret-bench-secret-01';
const env = process.env;
const QUICK = env.BENCH_QUICK === '1';
const SUBSCRIBERS = Number(env.BENCH_ALERT_SUBSCRIBERS ?? (QUICK ? 500 : 5_000));
const ALERTS = Number(env.BENCH_ALERT_COUNT ?? (QUICK ? 30 : 200));
const CONCURRENCY = Number(env.BENCH_ALERT_CONCURRENCY ?? 4);
const INSTANCES = Number(env.BENCH_ALERT_INSTANCES ?? 2);
const MAX_MS = Number(env.BENCH_MAX_MS ?? 115_000);
const DATABASE_URL = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/wardline_bench';
const REDIS_URL = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Subscribers' centres and alert points fall in this box (about 440 x 280 km of southern England). */
const BOX = { lat: [50.5, 54.5], lng: [-3, 1] } as const;
const RADIUS_KM = [25, 150] as const;

type Msg =
  | { t: 'ready'; port: number }
  | { t: 'subscribed'; n: number; failed: number }
  | { t: 'result'; stats: LoadStats }
  | { t: 'progress'; received: number };

interface LoadStats {
  deliveries: number;
  expected: number;
  missing: number;
  unexpected: number;
  duplicates: number;
  errors: number;
  closed: number;
  firstAt: number;
  lastAt: number;
  latency: { p50: number; p90: number; p99: number; max: number };
}

// ---- helpers ---------------------------------------------------------------------------------

const rnd = (a: number, b: number) => a + Math.random() * (b - a);
const rad = (d: number) => (d * Math.PI) / 180;
function km(lat1: number, lng1: number, lat2: number, lng2: number) {
  const h = Math.sin(rad(lat2 - lat1) / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lng2 - lng1) / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(h)));
}
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const self = fileURLToPath(import.meta.url);
const child = (role: string, extraEnv: Record<string, string> = {}) =>
  fork(self, [role], { execArgv: ['--import', 'tsx'], env: { ...env, ...extraEnv }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

// ---- server: one API instance ------------------------------------------------------------------

async function server() {
  const { loadConfig } = await import('../../src/config.js');
  const { createContainer } = await import('../../src/container.js');
  const { createApi } = await import('../../src/api.js');
  const config = loadConfig(process.env);
  const container = await createContainer(config);
  const api = createApi(container);
  const port = await api.listen(0, '127.0.0.1');
  process.send?.({ t: 'ready', port } satisfies Msg);
  const stop = async () => {
    await api.close().catch(() => {});
    await container.close().catch(() => {});
    process.exit(0);
  };
  process.on('message', (m: { t?: string }) => m.t === 'stop' && void stop());
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
}

// ---- loadgen: raw graphql-transport-ws subscribers ---------------------------------------------

const SUBSCRIPTION = `subscription($f: AlertFilter){ alertRaised(filter: $f) { __typename ... on AlertRaised { alert { id createdAt } } } }`;

async function loadgen() {
  const { mintToken } = await import('../../src/http/auth.js');
  const setup = await new Promise<{ urls: string[]; n: number; orgId: string }>((r) => process.once('message', r as never));
  const subs = Array.from({ length: setup.n }, (_, i) => ({
    i,
    lat: rnd(BOX.lat[0], BOX.lat[1]),
    lng: rnd(BOX.lng[0], BOX.lng[1]),
    radiusKm: rnd(RADIUS_KM[0], RADIUS_KM[1]),
    got: new Set<string>(),
    dups: 0,
  }));
  const latencies: number[] = [];
  let deliveries = 0;
  let errors = 0;
  let closed = 0;
  let firstAt = 0;
  let lastAt = 0;
  const sockets: WebSocket[] = [];
  const open = async (s: (typeof subs)[number]) => {
    const token = await mintToken(
      SECRET,
      { sub: `${setup.orgId}:sub-${s.i}`, org: setup.orgId, role: 'provider', name: `Subscriber ${s.i}` },
      3600,
    );
    const ws = new WebSocket(setup.urls[s.i % setup.urls.length] as string, 'graphql-transport-ws', { perMessageDeflate: false });
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      ws.on('close', () => closed++);
      ws.on('message', (raw) => {
        const now = Date.now();
        const m = JSON.parse(raw.toString()) as { type: string; payload?: any };
        if (m.type === 'connection_ack') {
          const f = { near: { lat: s.lat, lng: s.lng, radiusKm: s.radiusKm } };
          ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SUBSCRIPTION, variables: { f } } }));
          resolve();
        } else if (m.type === 'next') {
          const alert = m.payload?.data?.alertRaised?.alert;
          if (!alert) return void errors++;
          if (s.got.has(alert.id)) s.dups++;
          s.got.add(alert.id);
          deliveries++;
          if (!firstAt) firstAt = now;
          lastAt = now;
          latencies.push(now - Date.parse(alert.createdAt));
        } else if (m.type === 'error') errors++;
        else if (m.type === 'ping') ws.send('{"type":"pong"}');
      });
    });
  };
  let failed = 0;
  for (let i = 0; i < subs.length; i += 250) {
    const batch = subs.slice(i, i + 250).map((s) => open(s).catch(() => void failed++));
    await Promise.all(batch);
  }
  process.send?.({ t: 'subscribed', n: subs.length - failed, failed } satisfies Msg);
  const progress = setInterval(() => process.send?.({ t: 'progress', received: deliveries } satisfies Msg), 250);
  const alerts = await new Promise<Array<{ id: string; lat: number; lng: number }>>((r) =>
    process.on('message', (m: { t?: string; alerts?: never }) => m.t === 'alerts' && r(m.alerts as never)),
  );
  // the driver waits for deliveries to stop, then asks for the verdict
  await new Promise<void>((r) => process.on('message', (m: { t?: string }) => m.t === 'finish' && r()));
  clearInterval(progress);
  let expected = 0;
  let missing = 0;
  let unexpected = 0;
  let duplicates = 0;
  for (const s of subs) {
    const want = new Set(alerts.filter((a) => km(s.lat, s.lng, a.lat, a.lng) <= s.radiusKm).map((a) => a.id));
    expected += want.size;
    for (const id of want) if (!s.got.has(id)) missing++;
    for (const id of s.got) if (!want.has(id)) unexpected++;
    duplicates += s.dups;
  }
  latencies.sort((a, b) => a - b);
  const stats: LoadStats = {
    deliveries,
    expected,
    missing,
    unexpected,
    duplicates,
    errors,
    closed,
    firstAt,
    lastAt,
    latency: { p50: pct(latencies, 50), p90: pct(latencies, 90), p99: pct(latencies, 99), max: latencies.at(-1) ?? 0 },
  };
  process.send?.({ t: 'result', stats } satisfies Msg);
  for (const ws of sockets) ws.terminate();
  setTimeout(() => process.exit(0), 100);
}

// ---- driver ------------------------------------------------------------------------------------

async function ensureDatabase() {
  const url = new URL(DATABASE_URL);
  const admin = postgres({
    host: url.hostname,
    port: Number(url.port || 5432),
    username: decodeURIComponent(url.username || 'postgres'),
    password: decodeURIComponent(url.password || ''),
    database: 'postgres',
    max: 1,
    onnotice: () => {},
  });
  const name = url.pathname.slice(1);
  const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
  if (!exists) await admin.unsafe(`create database "${name}"`);
  await admin.end();
}

async function subscriptionsLive(ports: number[]): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^wardline_ws_subscriptions (\d+)/m.exec(text);
    total += Number(m?.[1] ?? 0);
  }
  return total;
}

async function driver() {
  const started = Date.now();
  const children: ChildProcess[] = [];
  const hardStop = setTimeout(() => {
    console.error(`alerts bench: exceeded BENCH_MAX_MS=${MAX_MS}; stopping`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }, MAX_MS);
  hardStop.unref();
  try {
    await ensureDatabase();
    const serverEnv = {
      NODE_ENV: 'production',
      ...limitsEnv(process.env.BENCH_LIMITS),
      DATABASE_URL,
      REDIS_URL,
      REDIS_PREFIX: `bench-${randomUUID().slice(0, 8)}`,
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      WS_KEEPALIVE_MS: '0',
    };
    // the first instance migrates alone, then the others start
    const servers = [child('server', serverEnv)];
    children.push(...servers);
    const ports = [(await next(servers[0] as ChildProcess, 'ready', 60_000)).port];
    for (let i = 1; i < INSTANCES; i++) {
      const s = child('server', serverEnv);
      children.push(s);
      servers.push(s);
      ports.push((await next(s, 'ready', 60_000)).port);
    }
    const urls = ports.map((p) => `ws://127.0.0.1:${p}/graphql`);
    const orgId = `bench-${randomUUID()}`;
    const { mintToken } = await import('../../src/http/auth.js');
    const service = `Bearer ${await mintToken(SECRET, { sub: `${orgId}:service`, org: orgId, role: 'service', name: 'Bench service' }, 3600)}`;

    const gen = child('loadgen');
    children.push(gen);
    const tConnect = Date.now();
    gen.send({ urls, n: SUBSCRIBERS, orgId });
    const sub = await next(gen, 'subscribed', 90_000);
    let live = 0;
    for (let i = 0; i < 200 && live < sub.n; i++) {
      live = await subscriptionsLive(ports);
      if (live < sub.n) await sleep(100);
    }
    const connectMs = Date.now() - tConnect;
    let received = 0;
    gen.on('message', (m: Msg) => {
      if (m.t === 'progress') received = m.received;
    });

    // raise the alerts, CONCURRENCY in flight, alternating instances
    const raised: Array<{ id: string; lat: number; lng: number }> = [];
    let failures = 0;
    const raiseStart = Date.now();
    let k = 0;
    const worker = async () => {
      while (k < ALERTS) {
        const i = k++;
        const lat = rnd(BOX.lat[0], BOX.lat[1]);
        const lng = rnd(BOX.lng[0], BOX.lng[1]);
        const res = await fetch(`http://127.0.0.1:${ports[i % ports.length]}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: service },
          body: JSON.stringify({
            query: `mutation($i: RaiseAlertInput!){ raiseAlert(input: $i) { id } }`,
            variables: {
              i: { level: 'MEDIUM', type: 'bench', title: `bench alert ${i}`, location: { lat, lng }, clientKey: `bench-${i}` },
            },
          }),
        });
        const body = (await res.json()) as { data?: { raiseAlert?: { id: string } } };
        const id = body.data?.raiseAlert?.id;
        if (id) raised.push({ id, lat, lng });
        else failures++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const raiseMs = Date.now() - raiseStart;
    gen.send({ t: 'alerts', alerts: raised });
    // deliveries are done when the count stops moving for a second
    let last = -1;
    let quietSince = Date.now();
    while (Date.now() - quietSince < 1_000 && Date.now() - started < MAX_MS - 5_000) {
      await sleep(100);
      if (received !== last) {
        last = received;
        quietSince = Date.now();
      }
    }
    gen.send({ t: 'finish' });
    const { stats } = await next(gen, 'result', 30_000);
    const spanMs = Math.max(1, stats.lastAt - raiseStart);
    const report = {
      bench: 'alerts-fanout',
      instances: INSTANCES,
      subscribers: sub.n,
      subscribeFailures: sub.failed,
      subscriptionsLive: live,
      connectAndSubscribeMs: connectMs,
      alerts: raised.length,
      raiseFailures: failures,
      raisePerSec: Math.round((raised.length / raiseMs) * 1000),
      deliveries: stats.deliveries,
      expected: stats.expected,
      missing: stats.missing,
      unexpected: stats.unexpected,
      duplicates: stats.duplicates,
      socketErrors: stats.errors,
      socketsClosed: stats.closed,
      deliveriesPerSec: Math.round((stats.deliveries / spanMs) * 1000),
      meanMatchesPerAlert: Math.round(stats.expected / Math.max(1, raised.length)),
      latencyMs: stats.latency,
      wallMs: Date.now() - started,
    };
    console.log(
      [
        `alerts fan-out: ${report.subscribers} subscribers (own geo filter each) on ${INSTANCES} instances, ${report.alerts} alerts`,
        `  connect+subscribe  ${connectMs} ms (${report.subscriptionsLive} live)`,
        `  raised             ${report.alerts} in ${raiseMs} ms (${report.raisePerSec}/s, ${failures} failed), ~${report.meanMatchesPerAlert} matching subscribers each`,
        `  delivered          ${report.deliveries} of ${report.expected} expected: missing ${report.missing}, unexpected ${report.unexpected}, duplicates ${report.duplicates}`,
        `  throughput         ${report.deliveriesPerSec} deliveries/s (first raise to last delivery: ${spanMs} ms)`,
        `  latency (raise→socket) p50 ${stats.latency.p50} ms, p90 ${stats.latency.p90} ms, p99 ${stats.latency.p99} ms, max ${stats.latency.max} ms`,
      ].join('\n'),
    );
    console.log(JSON.stringify(report));
    process.exitCode = report.missing + report.unexpected + report.duplicates + failures === 0 ? 0 : 1;
  } finally {
    for (const c of children) c.connected ? c.send({ t: 'stop' }) : c.kill();
    await Promise.race([
      Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(0) : c.once('exit', r))))),
      sleep(10_000),
    ]);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    clearTimeout(hardStop);
  }
}

const role = process.argv[2] ?? 'driver';
const run = role === 'server' ? server : role === 'loadgen' ? loadgen : driver;
run().catch((err) => {
  console.error(`alerts bench (${role}) failed:`, err instanceof Error ? err.message : err);
  process.exit(1);
});
