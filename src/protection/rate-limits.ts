import type { IncomingMessage } from 'node:http';
import { isCluster, type RedisClient } from '../shared/redis-client.js';
import { Counter } from 'prom-client';
import type { Budget, LimitClass, RateLimitConfig } from '../config.js';
import type { Metrics } from '../http/metrics.js';
import type { Logger } from '../shared/logger.js';
import type { Viewer } from '../shared/viewer.js';

/**
 * Token buckets for any number of keys, taken all or nothing in one round trip. A bucket is a hash
 * `{t: tokens, ts: ms}` refilled continuously at ARGV rate (tokens per second) up to ARGV burst.
 * When every bucket holds a token, each gives up to ARGV lease tokens (at least one, never more than
 * it holds) and the script returns {0, given1, given2, ...}; otherwise nothing changes (a refused
 * client does not dig itself deeper) and it returns {ms until every bucket has a token again}.
 * Times come from the Redis clock, so instances with drifting clocks agree. An idle bucket expires
 * once it would be full again (no state is kept for idle users).
 *
 * KEYS: bucket keys. ARGV: rate1, burst1, lease1, rate2, burst2, lease2, ...
 */
const TAKE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left, wait = {}, 0
for i, k in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local v = redis.call('HMGET', k, 't', 'ts')
  local tokens = tonumber(v[1]) or burst
  local ts = tonumber(v[2]) or now
  if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
  left[i] = tokens
  if tokens < 1 then wait = math.max(wait, math.ceil((1 - tokens) * 1000 / rate)) end
end
if wait > 0 then return {wait} end
local out = {0}
for i, k in ipairs(KEYS) do
  local rate, burst, lease = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local n = math.max(1, math.min(lease, math.floor(left[i])))
  redis.call('HSET', k, 't', tostring(left[i] - n), 'ts', now)
  redis.call('PEXPIRE', k, math.ceil(burst * 1000 / rate) + 1000)
  out[i + 1] = n
end
return out
`;

/**
 * Gives back ARGV[2] tokens a take removed from KEYS[1] (up to ARGV[1], the burst): on a Redis
 * Cluster the buckets of one check live on different masters, so they are taken one script each and
 * a bucket that gave tokens to a check another bucket refused gets them back.
 */
const REFUND_LUA = `
local v = redis.call('HGET', KEYS[1], 't')
if v then redis.call('HSET', KEYS[1], 't', tostring(math.min(tonumber(ARGV[1]), tonumber(v) + tonumber(ARGV[2])))) end
return 0
`;

/**
 * Refills leases: for each bucket (independently: a bucket that has too few tokens gives what it
 * has, maybe none) takes up to ARGV want tokens and returns {given1, given2, ...}. Sent in the
 * background for several buckets at once (see {@link createRateLimiter}).
 *
 * KEYS: bucket keys. ARGV: rate1, burst1, want1, rate2, burst2, want2, ...
 */
const REFILL_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, k in ipairs(KEYS) do
  local rate, burst, want = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local v = redis.call('HMGET', k, 't', 'ts')
  local tokens = tonumber(v[1]) or burst
  local ts = tonumber(v[2]) or now
  if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
  local n = math.max(0, math.min(want, math.floor(tokens)))
  if n > 0 then
    redis.call('HSET', k, 't', tostring(tokens - n), 'ts', now)
    redis.call('PEXPIRE', k, math.ceil(burst * 1000 / rate) + 1000)
  end
  out[i] = n
end
return out
`;

type TakeRedis = RedisClient & {
  wlRateTake(n: number, ...a: Array<string | number>): Promise<number[]>;
  wlRateRefund(key: string, burst: number, n: number): Promise<number>;
  wlRateRefill(n: number, ...a: Array<string | number>): Promise<number[]>;
};

/** What a take of several buckets got: refused with a wait (ms), or the tokens each bucket gave. */
type Taken = { wait: number; given: number[] };

/** The script's answer: {wait} when refused, {0, given1, given2, ...} when taken. */
const parse = (out: number[]): Taken => ({ wait: Number(out[0]), given: out.slice(1).map(Number) });

/**
 * Takes from every bucket, all or nothing: the ms to wait when refused, else the tokens each gave
 * (one, plus what it leases to this instance). On a single Redis (or with one bucket) this is one
 * script. On a Redis Cluster, buckets that share nothing to hash-tag them by (a user's and an
 * address's: tagging every bucket of a class alike would put all of a class's checks on one master)
 * are taken by one script each, in parallel, and when one refuses, the others give their tokens
 * back. A refused check still costs nothing; the only difference is that for the moment between
 * take and refund a concurrent check of the same user or address sees fewer tokens.
 */
async function takeAll(r: TakeRedis, keys: string[], args: number[]): Promise<Taken> {
  if (!isCluster(r) || keys.length === 1) return parse(await r.wlRateTake(keys.length, ...keys, ...args));
  const each = await Promise.all(keys.map((k, i) => r.wlRateTake(1, k, args[3 * i]!, args[3 * i + 1]!, args[3 * i + 2]!).then(parse)));
  const wait = Math.max(...each.map((e) => e.wait));
  if (wait === 0) return { wait, given: each.map((e) => e.given[0] ?? 0) };
  await Promise.all(keys.map((k, i) => (each[i]?.wait === 0 ? r.wlRateRefund(k, args[3 * i + 1]!, each[i]?.given[0] ?? 0) : undefined)));
  return { wait, given: [] };
}

/** Refills buckets independently: one script on a single Redis, one per bucket on a Cluster (their keys share no slot). */
function refillAll(r: TakeRedis, keys: string[], args: number[]): Promise<number[]> {
  if (!isCluster(r)) return r.wlRateRefill(keys.length, ...keys, ...args);
  return Promise.all(keys.map((k, i) => r.wlRateRefill(1, k, args[3 * i]!, args[3 * i + 1]!, args[3 * i + 2]!).then((o) => Number(o[0]))));
}

/**
 * Leases. A check that finds no local token of a bucket takes from Redis one token plus a few
 * more, which this instance then spends without a round trip for up to `leaseMs` (RATE_LIMIT_LEASE_MS,
 * 30 s by default: a client that sends every few seconds keeps its lease); what is left then
 * is dropped. So a busy user costs one Redis call per several operations instead of one each.
 *
 * How many more adapts to the bucket's demand on this instance, so that leases go only to clients
 * that spend them: the first check of a bucket leases nothing; a lease spent before it expired is
 * followed by one twice its size (at least 1), up to burst / LEASE_DIVISOR; after a lease expired,
 * the next is the size of what was spent of it. A client that sends now and then never holds a
 * lease (no token of its budget is dropped unused), and one that stops drops at most one lease.
 *
 * Refills. Once half of a live lease is spent, the instance tops it up in the background (to twice
 * its size, at most the cap), and the refills of all buckets that ask within REFILL_BATCH_MS go to
 * Redis in one call: a steadily busy client's checks then never wait for Redis, and the instance
 * makes a few Redis calls per second whatever the number of busy clients, instead of one per lease.
 * A refill never makes an instance hold more than the cap.
 *
 * A lease only ever spends the shared budget early: a user spread over several instances is refused
 * at most each instance's unused lease (at most the cap) sooner than with no leases, never later,
 * and never gets more than the budget. Budgets with a burst under MIN_LEASE_BURST lease nothing
 * (every check asks Redis).
 */
const LEASE_DIVISOR = 10;
const MIN_LEASE_BURST = 40;
const REFILL_BATCH_MS = 20;
/** Most buckets one refill call carries (a longer queue goes in several calls). */
const REFILL_MAX_KEYS = 200;
/** Buckets kept in memory before idle ones are dropped. */
const MAX_BUCKETS = 10_000;
/** How long a bucket must have been idle to be dropped past MAX_BUCKETS. */
const PRUNE_IDLE_MS = 5_000;

/** An instance's side of one Redis bucket: its leased tokens and what is under way to Redis. */
interface Bucket {
  /** The Redis key. */
  readonly key: string;
  readonly budget: Budget;
  /** Most tokens this instance holds leased at once (0: none). */
  readonly cap: number;
  /** Leased tokens left: a whole number, 0..size. */
  n: number;
  /** Tokens the lease held when it was taken or last refilled (size - n were spent since). */
  size: number;
  /** When the lease expires (ms); 0 before the first take. */
  until: number;
  /** Checks and refills of this bucket under way to Redis (a check that misses meanwhile takes one token, no lease). */
  asking: number;
  /** A refill is queued or under way. */
  refilling: boolean;
  /** Last check (ms), for pruning. */
  used: number;
  /** Dropped from the instance's map (idle): a holder of a reference looks the key up again. */
  dead: boolean;
}

/** Buckets of one viewer or one address, by operation class. */
type ByClass = Partial<Record<LimitClass, Bucket>>;

const newBucket = (key: string, budget: Budget): Bucket => ({
  key,
  budget,
  cap: budget.burst < MIN_LEASE_BURST ? 0 : Math.floor(budget.burst / LEASE_DIVISOR),
  n: 0,
  size: 0,
  until: 0,
  asking: 0,
  refilling: false,
  used: 0,
  dead: false,
});

/** Tokens to lease with the next take of a bucket (see above). */
function nextLease(b: Bucket, now: number): number {
  if (b.until === 0 || b.cap === 0) return 0;
  // asked while the lease is live: it was spent in time, so double it; once it has expired, as
  // much as was spent of it (nothing, for a client that asks once in a while)
  if (b.until > now) return Math.min(b.cap, Math.max(1, 2 * b.size));
  return Math.min(b.cap, b.size - b.n);
}

/** Seconds to wait (at least 1) when refused; undefined when the operation may proceed. */
export type Verdict = number | undefined;

/** The rejection counter (by class only: never user or address labels). */
export interface LimitMetrics {
  rejected: Counter<'class'>;
  failOpen: Counter;
}

/** Registers the rejection counters on an instance's registry (once per registry). */
export function limitMetrics(metrics: Metrics): LimitMetrics {
  const existing = metrics.registry.getSingleMetric('wardline_rate_limited_total') as Counter<'class'> | undefined;
  return {
    rejected:
      existing ??
      new Counter({
        name: 'wardline_rate_limited_total',
        help: 'Operations and sockets refused by a rate limit or cap, by class (query, mutation, subscribe, connect, signal, sockets, subscriptions, filter_cost)',
        labelNames: ['class'],
        registers: [metrics.registry],
      }),
    failOpen:
      (metrics.registry.getSingleMetric('wardline_rate_limit_fail_open_total') as Counter | undefined) ??
      new Counter({
        name: 'wardline_rate_limit_fail_open_total',
        help: 'Rate-limit checks let through unchecked because Redis did not answer within RATE_LIMIT_REDIS_TIMEOUT_MS',
        registers: [metrics.registry],
      }),
  };
}

export interface RateLimiter {
  readonly enabled: boolean;
  /**
   * Takes one token of `cls` for the viewer (per user, or per service token with the service
   * budget) and the client address (per IP; not for service tokens). Answers at once (no promise)
   * when this instance's leases cover the check; otherwise after one Redis round trip.
   */
  take(cls: LimitClass, viewer: Viewer | undefined, ip: string | undefined): Verdict | Promise<Verdict>;
  /** Counts a refusal by a cap (sockets, subscriptions, filter cost) in the same metric. */
  refused(cls: string): void;
}

/**
 * Redis-backed rate limits shared by every instance of a deployment (keys under REDIS_PREFIX).
 * Fails open: when Redis is not connected, or does not answer within `redisTimeoutMs`, the
 * operation proceeds unchecked (counted in wardline_rate_limit_fail_open_total) — an outage of
 * Redis must not take the API down with it, nor make a request wait longer than that bound.
 */
export function createRateLimiter(deps: {
  config: RateLimitConfig;
  redis: RedisClient;
  prefix: string;
  metrics: LimitMetrics;
  logger: Logger;
}): RateLimiter {
  const { config, redis, prefix, metrics } = deps;
  const LEASE_MS = config.leaseMs;
  if (!config.enabled) return { enabled: false, take: () => undefined, refused: () => {} };
  const r = redis as TakeRedis;
  if (!r.wlRateTake) r.defineCommand('wlRateTake', { lua: TAKE_LUA });
  if (!r.wlRateRefund) r.defineCommand('wlRateRefund', { numberOfKeys: 1, lua: REFUND_LUA });
  if (!r.wlRateRefill) r.defineCommand('wlRateRefill', { lua: REFILL_LUA });

  // The instance's buckets by Redis key, and the same buckets found without building the key: per
  // viewer object (the authenticator hands out one object per token) and per client address.
  const buckets = new Map<string, Bucket>();
  const byViewer = new WeakMap<Viewer, ByClass>();
  const byIp = new Map<string, ByClass>();
  let pruned = 0;
  /**
   * Past MAX_BUCKETS, at most once a second: drops the buckets idle for PRUNE_IDLE_MS that hold no
   * live leased token (none of the budget is lost; a dropped bucket only forgets how big its next
   * lease should be). Memory stays bounded by the clients of the last few seconds, not of the lease
   * period, also under a flood of new addresses.
   */
  const prune = (now: number) => {
    if (now - pruned < 1_000) return;
    pruned = now;
    for (const [k, b] of buckets)
      if (b.asking === 0 && (b.n === 0 || b.until <= now) && b.used + PRUNE_IDLE_MS <= now) {
        b.dead = true;
        buckets.delete(k);
      }
    for (const [ip, rec] of byIp) if (Object.values(rec).every((b) => b?.dead !== false)) byIp.delete(ip);
  };
  const bucket = (key: string, budget: Budget): Bucket => {
    let b = buckets.get(key);
    if (!b) {
      b = newBucket(key, budget);
      buckets.set(key, b);
      if (buckets.size > MAX_BUCKETS) prune(Date.now());
    }
    return b;
  };
  /** A viewer's or an address's buckets by class, made on first use. */
  const recordOf = <K>(m: { get(k: K): ByClass | undefined; set(k: K, v: ByClass): unknown }, k: K): ByClass => {
    let rec = m.get(k);
    if (!rec) {
      rec = {};
      m.set(k, rec);
    }
    return rec;
  };
  /** The record's bucket of `cls` unless it was dropped (then the caller looks the key up again). */
  const live = (rec: ByClass, cls: LimitClass) => {
    const b = rec[cls];
    return b && !b.dead ? b : undefined;
  };
  const keep = (rec: ByClass, cls: LimitClass, b: Bucket) => {
    rec[cls] = b;
    return b;
  };
  // the key string is built only when the record has no live bucket of the class
  const viewerBucket = (cls: LimitClass, v: Viewer): Bucket => {
    const rec = recordOf(byViewer, v);
    return live(rec, cls) ?? keep(rec, cls, newViewerBucket(cls, v));
  };
  const newViewerBucket = (cls: LimitClass, v: Viewer): Bucket =>
    v.role === 'service'
      ? bucket(`${prefix}:rl:${cls}:s:${v.orgId}:${v.userId}`, config.service[cls])
      : bucket(`${prefix}:rl:${cls}:u:${v.orgId}:${v.userId}`, config.user[cls]);
  const ipBucket = (cls: LimitClass, ip: string): Bucket => {
    const rec = recordOf(byIp, ip);
    return live(rec, cls) ?? keep(rec, cls, bucket(`${prefix}:rl:${cls}:ip:${ip}`, config.ip[cls]));
  };

  let warned = 0;
  const failOpen = (err?: unknown) => {
    metrics.failOpen.inc();
    const now = Date.now();
    if (now - warned > 60_000) {
      warned = now;
      deps.logger.warn({ err }, 'rate limits not checked: Redis unavailable (failing open)');
    }
    return undefined;
  };

  // ---- background refills -------------------------------------------------------------------
  let queue: Bucket[] = [];
  let refillTimer: NodeJS.Timeout | undefined;
  const queueRefill = (b: Bucket) => {
    b.refilling = true;
    b.asking++;
    queue.push(b);
    if (!refillTimer) {
      refillTimer = setTimeout(sendRefills, REFILL_BATCH_MS);
      refillTimer.unref();
    }
  };
  const refilled = (b: Bucket) => {
    b.refilling = false;
    b.asking--;
  };
  const sendRefills = () => {
    refillTimer = undefined;
    const batch = queue.length <= REFILL_MAX_KEYS ? queue : queue.slice(0, REFILL_MAX_KEYS);
    queue = batch === queue ? [] : queue.slice(batch.length);
    if (queue.length) {
      refillTimer = setTimeout(sendRefills, 0);
      refillTimer.unref();
    }
    // commands would queue while disconnected: refills are given up (the checks fail open)
    if (r.status !== 'ready') {
      for (const b of batch) refilled(b);
      return;
    }
    const now = Date.now();
    const keys: string[] = [];
    const args: number[] = [];
    const asked: Bucket[] = [];
    for (const b of batch) {
      // up to twice the lease (at least 1), never beyond the cap, counting what is still held
      const held = b.until > now ? b.n : 0;
      const want = Math.min(b.cap, Math.max(1, 2 * b.size)) - held;
      if (want <= 0) {
        refilled(b);
        continue;
      }
      keys.push(b.key);
      args.push(b.budget.rate, b.budget.burst, want);
      asked.push(b);
    }
    if (!keys.length) return;
    // a refill that does not answer in time is given up (its tokens, if Redis took them, are lost:
    // the client is refused that many early at worst); one that fails is not retried. The answer
    // is applied in the first callback on the command's own promise, so that anything that sees
    // Redis's state after the refill also finds it applied here
    let over = false;
    const settle = (given?: number[]) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      const at = Date.now();
      for (let i = 0; i < asked.length; i++) {
        const b = asked[i] as Bucket;
        refilled(b);
        const g = Number(given?.[i] ?? 0);
        if (g <= 0) continue;
        b.n = (b.until > at ? b.n : 0) + g;
        b.size = b.n;
        b.until = at + LEASE_MS;
      }
    };
    const timer = setTimeout(settle, Math.max(1_000, config.redisTimeoutMs));
    refillAll(r, keys, args).then(settle, () => settle());
  };

  /** Spends a leased token (the caller checked one is there); half spent: a refill is queued. */
  const spend = (b: Bucket, now: number) => {
    b.n--;
    b.used = now;
    if (!b.refilling && b.cap > 0 && 2 * b.n <= b.size) queueRefill(b);
  };

  /**
   * The check when a bucket has no leased token: the others' are spent (given back if refused),
   * those without ask Redis, each for one token plus its next lease (one token only while another
   * check or a refill of it is under way, so a burst of concurrent checks does not lease it dry).
   */
  const ask = async (cls: LimitClass, b1: Bucket, b2: Bucket | undefined, now: number): Promise<Verdict> => {
    const spent: Bucket[] = [];
    const asked: Bucket[] = [];
    const keys: string[] = [];
    const args: number[] = [];
    for (const b of b2 ? [b1, b2] : [b1]) {
      if (b.n >= 1 && b.until > now) {
        spend(b, now);
        spent.push(b);
        continue;
      }
      b.used = now;
      asked.push(b);
      keys.push(b.key);
      args.push(b.budget.rate, b.budget.burst, b.asking > 0 ? 1 : 1 + nextLease(b, now));
    }
    // commands would queue while disconnected: do not add to the queue, let the operation through
    if (r.status !== 'ready') return failOpen();
    for (const b of asked) b.asking++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const taken = await Promise.race([takeAll(r, keys, args), timeout(config.redisTimeoutMs, (t) => (timer = t))]);
      if (taken === 'timeout') return failOpen();
      if (taken.wait === 0) {
        const until = Date.now() + LEASE_MS;
        for (let j = 0; j < asked.length; j++) {
          const extra = Math.max(0, (taken.given[j] ?? 1) - 1);
          const b = asked[j] as Bucket;
          // a live lease grows by what this take got: one granted meanwhile to a concurrent
          // check or refill, or a spent one this take added nothing to (it keeps its size, so the
          // next lease still doubles it); otherwise this take's lease replaces the expired one (a
          // lease of 0 too: the next check's lease grows from it)
          if (b.until > now && (b.n >= 1 || extra === 0)) {
            b.n += extra;
            b.size += extra;
          } else {
            b.n = extra;
            b.size = extra;
            b.until = until;
          }
        }
        return undefined;
      }
      for (const b of spent) b.n++;
      metrics.rejected.inc({ class: cls });
      return Math.max(1, Math.ceil(taken.wait / 1000));
    } catch (err) {
      return failOpen(err);
    } finally {
      clearTimeout(timer);
      for (const b of asked) b.asking--;
    }
  };

  return {
    enabled: true,
    refused: (cls) => metrics.rejected.inc({ class: cls }),
    take(cls, viewer, ip) {
      // no closures, arrays or key strings per call when leases cover it: this runs for every operation
      let b1 = viewer ? viewerBucket(cls, viewer) : undefined;
      let b2 = ip && viewer?.role !== 'service' ? ipBucket(cls, ip) : undefined;
      if (!b1) {
        b1 = b2;
        b2 = undefined;
      }
      if (!b1) return undefined;
      const now = Date.now();
      if (b1.n >= 1 && b1.until > now && (!b2 || (b2.n >= 1 && b2.until > now))) {
        spend(b1, now);
        if (b2) spend(b2, now);
        return undefined;
      }
      return ask(cls, b1, b2, now);
    },
  };
}

/** Resolves 'timeout' after `ms`; hands its timer to `keep` so the caller can clear it. */
const timeout = (ms: number, keep: (t: NodeJS.Timeout) => void) =>
  new Promise<'timeout'>((resolve) => {
    keep(setTimeout(resolve, ms, 'timeout'));
  });

/**
 * The client's address: the peer, or with `trustedProxies` > 0 the entry that many places from the
 * right of X-Forwarded-For (the one the outermost trusted proxy saw), falling back to the peer.
 */
export function clientIp(req: Pick<IncomingMessage, 'headers' | 'socket'>, trustedProxies: number): string | undefined {
  const peer = req.socket?.remoteAddress;
  if (trustedProxies <= 0) return peer;
  const xff = req.headers['x-forwarded-for'];
  const raw = Array.isArray(xff) ? xff.join(',') : xff;
  if (!raw) return peer;
  const hops = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return hops[hops.length - trustedProxies] ?? hops[0] ?? peer;
}
