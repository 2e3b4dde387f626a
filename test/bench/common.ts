// Shared pieces of the benchmark (not a test): latency histogram, IPC request/response, formatting.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import postgres from 'postgres';

/** Fixed-bin latency histogram: 0.1 ms bins up to 60 s (larger values land in the last bin). */
export class Histogram {
  static readonly BIN_MS = 0.1;
  static readonly BINS = 600_001;
  private bins = new Uint32Array(Histogram.BINS);
  count = 0;
  sum = 0;
  max = 0;

  add(ms: number): void {
    const v = Math.max(ms, 0);
    let b = Math.floor(v / Histogram.BIN_MS);
    if (b >= Histogram.BINS) b = Histogram.BINS - 1;
    this.bins[b]!++;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** The value at percentile `p` (0..100), in ms (upper edge of its bin), or NaN when empty. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < Histogram.BINS; i++) {
      seen += this.bins[i]!;
      if (seen >= rank) return Math.min((i + 1) * Histogram.BIN_MS, this.max);
    }
    return this.max;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      mean: this.count ? this.sum / this.count : Number.NaN,
      p50: this.percentile(50),
      p95: this.percentile(95),
      p99: this.percentile(99),
      max: this.count ? this.max : Number.NaN,
    };
  }
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

// ---- IPC: request/response over the child_process channel -------------------------------------

interface RpcRequest {
  rpc: number;
  cmd: string;
  args?: unknown;
}
interface RpcResponse {
  rpc: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

let rpcSeq = 0;

/** Sends `cmd` to a forked child and resolves with its answer (rejects on error, exit or timeout). */
export function rpc<T = unknown>(child: ChildProcess, cmd: string, args?: unknown, timeoutMs = 60_000): Promise<T> {
  const id = ++rpcSeq;
  return new Promise<T>((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: unknown) => {
      const r = m as RpcResponse;
      if (!r || typeof r !== 'object' || r.rpc !== id) return;
      cleanup();
      if (r.ok) resolve(r.result as T);
      else reject(new Error(`${cmd}: ${r.error}`));
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`${cmd}: child exited (code ${code}, signal ${signal})`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${cmd}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (!child.connected) {
      cleanup();
      reject(new Error(`${cmd}: child not connected`));
      return;
    }
    child.send({ rpc: id, cmd, args } satisfies RpcRequest);
  });
}

/** In a forked child: answers rpc requests with these handlers; exits when the parent goes away. */
export function serveRpc(handlers: Record<string, (args: any) => unknown>, onParentGone: () => void): void {
  process.on('message', (m: unknown) => {
    const req = m as RpcRequest;
    if (!req || typeof req !== 'object' || typeof req.rpc !== 'number') return;
    const h = handlers[req.cmd];
    const reply = (r: RpcResponse) => {
      if (process.connected) process.send?.(r);
    };
    if (!h) return reply({ rpc: req.rpc, ok: false, error: `unknown command ${req.cmd}` });
    Promise.resolve()
      .then(() => h(req.args))
      .then(
        (result) => reply({ rpc: req.rpc, ok: true, result }),
        (err: unknown) => reply({ rpc: req.rpc, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  process.on('disconnect', onParentGone);
}

// ---- small helpers ----------------------------------------------------------------------------

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** What a server child reports about itself. */
export interface ServerStats {
  /** process.cpuUsage(), µs. */
  cpu: { user: number; system: number };
  /** performance.timeOrigin + performance.now(), ms. */
  wallMs: number;
  mem: NodeJS.MemoryUsage;
  sockets: number;
  fanout: { streams: number; groups: number; subscriptions: number };
  /** Redis commands sent by the instance so far (Wardline only). */
  redisCommands?: number;
}

export const cpuPercent = (a: ServerStats, b: ServerStats) =>
  ((b.cpu.user + b.cpu.system - a.cpu.user - a.cpu.system) / 1000 / (b.wallMs - a.wallMs)) * 100;

export const fmt = (v: number, digits = 1) =>
  Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-';
export const fmtInt = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: Array<Array<string | number>>, leftAlign = false): string {
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 || leftAlign ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

// ---- machine-wide CPU (Linux /proc; zeros elsewhere) ------------------------------------------

export interface SystemSample {
  atMs: number;
  /** Busy and total jiffies of the whole machine (/proc/stat). */
  busy: number;
  total: number;
  /** utime+stime jiffies per pid of every PostgreSQL and redis-server process. */
  postgres: Map<number, number>;
  redis: Map<number, number>;
}

const CLK_TCK = 100;

/** Reads machine CPU and the CPU time of PostgreSQL and Redis processes (all databases/clients). */
export function sampleSystem(): SystemSample {
  const s: SystemSample = { atMs: Date.now(), busy: 0, total: 0, postgres: new Map(), redis: new Map() };
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    s.total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    s.busy = s.total - idle;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue;
      }
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const isPg = comm === 'postgres' || comm.startsWith('postgres:');
      const isRedis = comm.startsWith('redis-server');
      if (!isPg && !isRedis) continue;
      const f = stat.slice(close + 2).split(' ');
      const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
      (isPg ? s.postgres : s.redis).set(Number(pid), ticks);
    }
  } catch {
    // not Linux: leave zeros
  }
  return s;
}

/** Ticks used between two samples by the processes of `b` (a process new in `b` counts whole). */
const delta = (a: Map<number, number>, b: Map<number, number>) => {
  let n = 0;
  for (const [pid, t] of b) n += t - (a.get(pid) ?? 0);
  return n;
};

/**
 * CPU % between two samples, each as % of one core: the machine's busy time (up to 100 × cores),
 * PostgreSQL and Redis (every client of theirs, not only the bench's).
 */
export function systemCpu(a: SystemSample, b: SystemSample, cores: number) {
  const sec = (b.atMs - a.atMs) / 1000;
  const total = b.total - a.total;
  return {
    machine: total > 0 ? ((b.busy - a.busy) / total) * 100 * cores : Number.NaN,
    postgres: sec > 0 ? (delta(a.postgres, b.postgres) / CLK_TCK / sec) * 100 : Number.NaN,
    redis: sec > 0 ? (delta(a.redis, b.redis) / CLK_TCK / sec) * 100 : Number.NaN,
  };
}

/** A postgres.js client for `url` (or another `database` on the same server), for bench setup and checks. */
export function pgClient(url: string, database?: string, max = 2) {
  const u = new URL(url);
  return postgres({
    host: u.hostname,
    port: Number(u.port || 5432),
    username: decodeURIComponent(u.username || 'postgres'),
    password: decodeURIComponent(u.password || ''),
    database: database ?? u.pathname.slice(1),
    max,
    onnotice: () => {},
  });
}

/** Creates the database of `url` when it does not exist yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const admin = pgClient(url, 'postgres', 1);
  const name = new URL(url).pathname.slice(1);
  const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
  if (!exists) await admin.unsafe(`create database "${name}"`);
  await admin.end();
}

/**
 * Rate limits for bench servers (BENCH_LIMITS): `on` keeps the per-user defaults and lifts the
 * per-address budgets (every simulated client comes from 127.0.0.1), so each operation pays the
 * check and no budget is reached; anything else (the default) turns limits off (RATE_LIMITS=off).
 */
export function limitsEnv(mode: string | undefined): Record<string, string> {
  if (mode !== 'on') return { RATE_LIMITS: 'off' };
  const lifted = '1000000/1000000';
  return {
    RATE_LIMITS: 'on',
    ...Object.fromEntries(['QUERY', 'MUTATION', 'SUBSCRIBE', 'CONNECT', 'SIGNAL'].map((k) => [`RATE_LIMIT_${k}_IP`, lifted])),
  };
}

/**
 * The inside of a bench child process: an API instance or a worker built from the environment, as
 * `wardline serve` / `wardline worker` would (dynamic imports: only the role's code loads). `stop`
 * closes it (never throws). `metrics` is the instance's Prometheus text.
 */
export async function benchInstance(role: 'api' | 'worker', opts: { migrate?: boolean; apiRole?: 'serve' } = {}) {
  const { loadConfig } = await import('../../src/config.js');
  const { createContainer } = await import('../../src/container.js');
  const config = loadConfig(process.env);
  if (role === 'worker') {
    const { startWorkers } = await import('../../src/worker.js');
    const container = await createContainer(config, { migrate: false, role: 'worker' });
    const workers = startWorkers(container);
    return {
      port: undefined,
      metrics: () => container.metrics.registry.metrics(),
      stop: async () => {
        await workers.close().catch(() => {});
        await container.close().catch(() => {});
      },
    };
  }
  const { createApi } = await import('../../src/api.js');
  const container = await createContainer(config, { migrate: opts.migrate, role: opts.apiRole });
  const api = createApi(container);
  const port = await api.listen(0, '127.0.0.1');
  return {
    port,
    metrics: () => container.metrics.registry.metrics(),
    stop: async () => {
      await api.close().catch(() => {});
      await container.close().catch(() => {});
    },
  };
}
