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

type TakeRedis = RedisClient & {
  wlRateTake(n: number, ...a: Array<string | number>): Promise<number[]>;
  wlRateRefund(key: string, burst: number, n: number): Promise<number>;
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

/**
 * Leases. A check that finds no local token of a bucket takes from Redis one token plus a few
 * more, which this instance then spends without a round trip for up to LEASE_MS; what is left then
 * is dropped. So a busy user costs one Redis call per several operations instead of one each.
 *
 * How many more adapts to the bucket's demand on this instance, so that leases go only to clients
 * that spend them: the first check of a bucket leases nothing; a lease spent before it expired is
 * followed by one twice its size (at least 1), up to burst / LEASE_DIVISOR; after a lease expired,
 * the next is the size of what was spent of it. A client that sends now and then never holds a
 * lease (no token of its budget is dropped unused), and one that stops drops at most one lease.
 *
 * A lease only ever spends the shared budget early: a user spread over several instances is refused
 * at most each instance's unused lease sooner than with no leases, never later, and never gets more
 * than the budget. Budgets with a burst under MIN_LEASE_BURST lease nothing (every check asks Redis).
 */
const LEASE_DIVISOR = 10;
const LEASE_MS = 5_000;
const MIN_LEASE_BURST = 40;
const leaseCap = (b: Budget) => (b.burst < MIN_LEASE_BURST ? 0 : Math.floor(b.burst / LEASE_DIVISOR));

/** An instance's leased tokens of one bucket: `n` (a whole number, 0..size) left of `size`, until `until` (ms). */
type Lease = { n: number; size: number; until: number };

/** Tokens to lease with the next take of a bucket whose last lease was `l` (see above). */
function nextLease(l: Lease | undefined, cap: number, now: number): number {
  if (!l || cap === 0) return 0;
  // asked while the lease is live: it was spent in time, so double it; once it has expired, as
  // much as was spent of it (nothing, for a client that asks once in a while)
  if (l.until > now) return Math.min(cap, Math.max(1, 2 * l.size));
  return Math.min(cap, l.size - l.n);
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
   * budget) and the client address (per IP; not for service tokens). One Redis round trip.
   */
  take(cls: LimitClass, viewer: Viewer | undefined, ip: string | undefined): Promise<Verdict>;
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
  if (!config.enabled) return { enabled: false, take: async () => undefined, refused: () => {} };
  const r = redis as TakeRedis;
  if (!r.wlRateTake) r.defineCommand('wlRateTake', { lua: TAKE_LUA });
  if (!r.wlRateRefund) r.defineCommand('wlRateRefund', { numberOfKeys: 1, lua: REFUND_LUA });
  /** Tokens leased from Redis to this instance, by bucket key (see {@link nextLease}). */
  const leases = new Map<string, Lease>();
  /** Checks under way to Redis, by bucket key. */
  const asking = new Map<string, number>();
  let pruned = 0;
  const pruneLeases = () => {
    const now = Date.now();
    if (now - pruned < LEASE_MS) return;
    pruned = now;
    // an expired lease is kept as long again: the size of the next one is learnt from it
    for (const [k, l] of leases) if (l.until + LEASE_MS <= now) leases.delete(k);
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

  return {
    enabled: true,
    refused: (cls) => metrics.rejected.inc({ class: cls }),
    async take(cls, viewer, ip) {
      // no closures per call: this runs for every operation
      const keys: string[] = [];
      const budgets: Budget[] = [];
      if (viewer?.role === 'service') {
        keys.push(`${prefix}:rl:${cls}:s:${viewer.orgId}:${viewer.userId}`);
        budgets.push(config.service[cls]);
      } else {
        if (viewer) {
          keys.push(`${prefix}:rl:${cls}:u:${viewer.orgId}:${viewer.userId}`);
          budgets.push(config.user[cls]);
        }
        if (ip) {
          keys.push(`${prefix}:rl:${cls}:ip:${ip}`);
          budgets.push(config.ip[cls]);
        }
      }
      if (keys.length === 0) return undefined;
      // spend leased tokens first: each bucket with one left gives it now (given back if the
      // buckets without one are refused); only those without ask Redis
      const now = Date.now();
      const spent: Lease[] = [];
      const askKeys: string[] = [];
      const args: number[] = [];
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        const l = leases.get(k);
        if (l && l.n >= 1 && l.until > now) {
          l.n--;
          spent.push(l);
          continue;
        }
        // one lease per bucket in flight: checks that miss while another is asking take one token
        // each, so a burst of concurrent checks (100 sockets from one address) does not lease the
        // bucket dry
        const b = budgets[i] as Budget;
        askKeys.push(k);
        args.push(b.rate, b.burst, asking.has(k) ? 1 : 1 + nextLease(l, leaseCap(b), now));
      }
      if (askKeys.length === 0) return undefined;
      // commands would queue while disconnected: do not add to the queue, let the operation through
      if (r.status !== 'ready') return failOpen();
      for (const k of askKeys) asking.set(k, (asking.get(k) ?? 0) + 1);
      let timer: NodeJS.Timeout | undefined;
      try {
        const taken = await Promise.race([takeAll(r, askKeys, args), timeout(config.redisTimeoutMs, (t) => (timer = t))]);
        if (taken === 'timeout') return failOpen();
        if (taken.wait === 0) {
          const until = Date.now() + LEASE_MS;
          for (let j = 0; j < askKeys.length; j++) {
            const extra = Math.max(0, (taken.given[j] ?? 1) - 1);
            const k = askKeys[j] as string;
            const l = leases.get(k);
            // a live lease grows by what this take got: one granted meanwhile to a concurrent
            // check, or a spent one this take added nothing to (it keeps its size, so the next
            // lease still doubles it); otherwise this take's lease replaces the expired one (a
            // lease of 0 too: the next check's lease grows from it)
            if (l && l.until > now && (l.n >= 1 || extra === 0)) {
              l.n += extra;
              l.size += extra;
            } else leases.set(k, { n: extra, size: extra, until });
          }
          if (leases.size > 10_000) pruneLeases();
          return undefined;
        }
        for (const l of spent) l.n++;
        metrics.rejected.inc({ class: cls });
        return Math.max(1, Math.ceil(taken.wait / 1000));
      } catch (err) {
        return failOpen(err);
      } finally {
        clearTimeout(timer);
        for (const k of askKeys) {
          const n = (asking.get(k) ?? 1) - 1;
          if (n > 0) asking.set(k, n);
          else asking.delete(k);
        }
      }
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
