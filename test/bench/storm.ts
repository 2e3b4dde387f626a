// The reconnect-storm and idle-memory scenarios of `npm run bench:realtime` (issue 12, item 2; not a
// test), driven by run.ts against Wardline and then against the baseline server.
//
//   storm  BENCH_SUBSCRIBERS sockets (split over both instances) connect and subscribe to their
//          conversation of 5 WITH a cursor (`after`), each having missed BENCH_STORM_MISSED events:
//          the time from the first connect to the last socket's complete replay, per-socket
//          open → replay-complete p50/p99, and (Wardline) what each socket cost the servers: CPU,
//          Redis commands and PostgreSQL transactions.
//   idle   BENCH_IDLE_SOCKETS subscribed sockets PER INSTANCE (default 20,000, capped by `ulimit -n`)
//          from several loadgen processes; KiB per socket (RSS, heap + external) after a forced
//          GC, and each instance's idle RSS right after it started (no socket yet). With
//          BENCH_HEAP_SNAPSHOT=dir, heap snapshots of instance A before and after the sockets.
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { fmt, type LatencySummary, rpc, type ServerStats, sleep } from './common.js';
import type { StormResult } from './loadgen.js';

export interface StormConv {
  id: string;
  /** User indices of the members (also the subscribers, one socket each). */
  members: number[];
}

export interface ScenarioCtx {
  log(...a: unknown[]): void;
  loadgen: ChildProcess;
  ports: number[];
  statsAll(): Promise<ServerStats[]>;
  gcAll(): Promise<unknown>;
  /** Current head position of each conversation stream, by conversation id. */
  heads(convIds: string[]): Promise<Map<string, number>>;
  /** The cursor a client holds after the event at `position` of a conversation. */
  cursor(convId: string, position: number): string;
  /** PostgreSQL transactions committed in the bench database so far (Wardline only). */
  transactions?(): Promise<number>;
  profile?: { start(): Promise<unknown>; stop(): Promise<string | undefined> };
  /** BENCH_HEAP_SNAPSHOT: a heap snapshot of instance A (Wardline only). */
  heapSnapshot?(label: string): Promise<unknown>;
  startLoadgen(): Promise<ChildProcess>;
  stopLoadgen(child: ChildProcess): Promise<void>;
}

export interface StormReport {
  sockets: number;
  missed: number;
  concurrency: number;
  publish: { sent: number; errors: number; ms: number };
  acked: number;
  ackMs: number;
  result: StormResult;
  serverCpuMs: number;
  redisPerSocket: number;
  transactionsPerSocket: number;
  profile?: string;
}

export async function runStorm(ctx: ScenarioCtx, convs: StormConv[], o: { missed: number; concurrency: number }): Promise<StormReport> {
  const sockets = convs.reduce((n, c) => n + c.members.length, 0);
  ctx.log(
    `storm: ${sockets} sockets resume in ${convs.length} conversations, ${o.missed} events missed each, ${o.concurrency} connecting at a time`,
  );
  const ids = convs.map((c) => c.id);
  const from = await ctx.heads(ids);
  const publish = await rpc<StormReport['publish']>(
    ctx.loadgen,
    'publish',
    { ports: ctx.ports, convs: convs.map((c) => ({ id: c.id, senders: c.members })), perConv: o.missed, concurrency: 32 },
    180_000,
  );
  if (publish.errors) ctx.log(`storm: ${publish.errors} of ${publish.sent} sends failed`);
  const to = await ctx.heads(ids);
  await ctx.gcAll();
  await sleep(1_000); // PostgreSQL's statistics are flushed about once a second
  const s0 = await ctx.statsAll();
  const x0 = (await ctx.transactions?.()) ?? Number.NaN;
  await ctx.profile?.start();
  const connect = await rpc<{ sockets: number; failed: number; firstFailure?: string; ms: number }>(
    ctx.loadgen,
    'connect',
    {
      name: 'storm',
      ports: ctx.ports,
      maxMsgs: 64,
      concurrency: o.concurrency,
      timeoutMs: 90_000,
      convs: convs.map((c) => ({
        id: c.id,
        subUsers: c.members,
        senders: c.members,
        after: ctx.cursor(c.id, from.get(c.id) ?? 0),
        target: to.get(c.id) ?? 0,
      })),
    },
    120_000,
  );
  const result = await rpc<StormResult>(ctx.loadgen, 'stormWait', { timeoutMs: 60_000 }, 90_000);
  const profile = await ctx.profile?.stop();
  await sleep(1_500);
  const s1 = await ctx.statsAll();
  const x1 = (await ctx.transactions?.()) ?? Number.NaN;
  const serverCpuMs = s0.reduce((n, a, i) => n + (s1[i]!.cpu.user + s1[i]!.cpu.system - a.cpu.user - a.cpu.system) / 1000, 0);
  const redis = s0.reduce((n, a, i) => n + (s1[i]!.redisCommands ?? Number.NaN) - (a.redisCommands ?? Number.NaN), 0);
  ctx.log(
    `storm: ${connect.sockets - connect.failed}/${connect.sockets} acknowledged in ${fmt(connect.ms, 0)} ms; ` +
      `${result.resumed}/${result.expected} replays complete, last at ${fmt(result.lastMs, 0)} ms` +
      (connect.failed ? `; first failure: ${connect.firstFailure}` : '') +
      (result.errors ? `; ${result.errors} error frames: ${result.firstErrorFrame}` : ''),
  );
  await rpc(ctx.loadgen, 'disconnect', { timeoutMs: 15_000 }, 30_000);
  const base = s0.map((s) => s.sockets);
  const end = performance.now() + 20_000;
  while (performance.now() < end && (await ctx.statsAll()).some((s, i) => s.sockets > base[i]!)) await sleep(200);
  return {
    sockets,
    missed: o.missed,
    concurrency: o.concurrency,
    publish,
    acked: connect.sockets - connect.failed,
    ackMs: connect.ms,
    result,
    serverCpuMs,
    redisPerSocket: redis / sockets,
    transactionsPerSocket: (x1 - x0) / sockets,
    profile,
  };
}

export interface IdleRow {
  instance: string;
  sockets: number;
  /** RSS right after the instance started and a forced GC, before any socket. */
  startRssMiB: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  kibPerSocketRss: number;
  kibPerSocketHeap: number;
}

export interface IdleReport {
  perInstance: number;
  loadgens: number;
  connectMs: number;
  failed: number;
  firstFailure?: string;
  rows: IdleRow[];
}

/** Sockets one process can hold: `ulimit -n` less room for everything else it has open. */
export function socketsPerProcess(): number {
  const nofile = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  return Number.isFinite(nofile) && nofile > 0 ? nofile - 500 : 1_000_000;
}

export async function runIdle(
  ctx: ScenarioCtx,
  convs: StormConv[],
  o: { perInstance: number; names: string[]; startRss: number[] },
): Promise<IdleReport> {
  const cap = socketsPerProcess();
  const perInstance = Math.min(o.perInstance, cap);
  if (perInstance < o.perInstance)
    ctx.log(`idle: ulimit -n allows ${perInstance} sockets per server process, not ${o.perInstance} (raise it to measure more)`);
  const total = perInstance * ctx.ports.length;
  const perLoadgen = Math.max(2, cap - 500) & ~1; // even, so each loadgen splits evenly over both instances
  const shares: number[] = [];
  for (let left = total; left > 0; left -= perLoadgen) shares.push(Math.min(left, perLoadgen));
  ctx.log(`idle: ${total} subscribed sockets (${perInstance} per instance) from ${shares.length} loadgen processes`);
  await ctx.gcAll();
  await sleep(300);
  const before = await ctx.statsAll();
  await ctx.heapSnapshot?.('before');
  const baseSubs = before.reduce((n, s) => n + s.fanout.subscriptions, 0);
  const gens: ChildProcess[] = [];
  const started = performance.now();
  let failed = 0;
  let firstFailure: string | undefined;
  try {
    for (const _ of shares) gens.push(await ctx.startLoadgen());
    await Promise.all(
      gens.map(async (g, k) => {
        // socket i of this loadgen: conversation i % n, its members in turn
        const n = shares[k]!;
        const per = convs.map((c) => ({ id: c.id, subUsers: [] as number[], senders: c.members }));
        for (let i = 0; i < n; i++) {
          const c = convs[i % convs.length]!;
          per[i % convs.length]!.subUsers.push(c.members[Math.floor(i / convs.length) % c.members.length]!);
        }
        // connect alternates instances by socket index; keep each conversation's sockets interleaved
        const r = await rpc<{ failed: number; firstFailure?: string }>(
          g,
          'connect',
          {
            name: `idle${k}`,
            ports: ctx.ports,
            convs: per.filter((c) => c.subUsers.length),
            maxMsgs: 32,
            concurrency: 100,
            timeoutMs: 240_000,
          },
          300_000,
        );
        failed += r.failed;
        firstFailure ??= r.firstFailure;
      }),
    );
    const end = performance.now() + 120_000;
    while (performance.now() < end) {
      const subs = (await ctx.statsAll()).reduce((n, s) => n + s.fanout.subscriptions, 0) - baseSubs;
      if (subs >= total - failed) break;
      await sleep(500);
    }
    const connectMs = performance.now() - started;
    ctx.log(
      `idle: ${total - failed}/${total} sockets subscribed in ${fmt(connectMs / 1000)} s${failed ? ` (first failure: ${firstFailure})` : ''}`,
    );
    await sleep(1_000);
    await ctx.gcAll();
    await sleep(500);
    const after = await ctx.statsAll();
    await ctx.heapSnapshot?.('after');
    const rows = after.map((a, i) => {
      const b = before[i]!;
      const sockets = Math.max(1, a.sockets - b.sockets);
      return {
        instance: o.names[i]!,
        sockets: a.sockets - b.sockets,
        startRssMiB: (o.startRss[i] ?? Number.NaN) / 2 ** 20,
        rssBeforeMiB: b.mem.rss / 2 ** 20,
        rssAfterMiB: a.mem.rss / 2 ** 20,
        kibPerSocketRss: (a.mem.rss - b.mem.rss) / 1024 / sockets,
        kibPerSocketHeap:
          (a.mem.heapUsed + a.mem.external + a.mem.arrayBuffers - b.mem.heapUsed - b.mem.external - b.mem.arrayBuffers) / 1024 / sockets,
      };
    });
    return { perInstance, loadgens: gens.length, connectMs, failed, firstFailure, rows };
  } finally {
    await Promise.all(gens.map((g) => rpc(g, 'disconnect', { timeoutMs: 20_000 }, 40_000).catch(() => {})));
    await Promise.all(gens.map((g) => ctx.stopLoadgen(g)));
    const base = before.map((s) => s.sockets);
    const end = performance.now() + 30_000;
    while (performance.now() < end && (await ctx.statsAll()).some((s, i) => s.sockets > base[i]!)) await sleep(300);
  }
}

export const summaryMs = (l: LatencySummary) => `${fmt(l.p50, 0)}/${fmt(l.p99, 0)}/${fmt(l.max, 0)}`;
