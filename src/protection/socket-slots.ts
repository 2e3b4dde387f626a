import { isCluster, type RedisClient } from '../shared/redis-client.js';
import type { Logger } from '../shared/logger.js';
import type { Viewer } from '../shared/viewer.js';

/**
 * Claims a socket slot: KEYS[1] a sorted set socket id → lease expiry (ms). Expired leases (a
 * crashed instance's sockets) are dropped first; then the socket is added unless `cap` live ones
 * are there already. Returns 1 when the slot is held, 0 when the user is at the cap.
 * ARGV: socket id, cap, lease ms.
 */
const CLAIM_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
`;

/** Pushes the leases of this instance's sockets ahead (ZADD XX: a released slot stays released). */
const RENEW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', k, lease)
end
return #KEYS
`;

type SlotRedis = RedisClient & {
  wlSockClaim(key: string, id: string, cap: number, lease: number): Promise<number>;
  wlSockRenew(n: number, ...a: Array<string | number>): Promise<number>;
};

export interface SocketSlots {
  /** True when the socket may open (a slot is held, or the check could not be made: fail open). */
  claim(viewer: Viewer, socketId: string): Promise<boolean>;
  release(viewer: Viewer, socketId: string): void;
  close(): void;
}

/**
 * The cap on open sockets per user, shared by every instance: one sorted set per user under
 * REDIS_PREFIX whose members are leased. Each instance renews the leases of its own sockets every
 * `renewMs` in one round trip, so a crashed instance's slots free themselves after `leaseMs`.
 */
export function createSocketSlots(deps: {
  redis: RedisClient;
  prefix: string;
  cap: number;
  leaseMs: number;
  renewMs: number;
  timeoutMs: number;
  logger: Logger;
}): SocketSlots {
  const r = deps.redis as SlotRedis;
  if (!r.wlSockClaim) r.defineCommand('wlSockClaim', { numberOfKeys: 1, lua: CLAIM_LUA });
  if (!r.wlSockRenew) r.defineCommand('wlSockRenew', { lua: RENEW_LUA });
  const key = (v: Viewer) => `${deps.prefix}:lim:sockets:${v.orgId}:${v.userId}`;
  /** This instance's held slots: socket id → key. */
  const held = new Map<string, string>();

  const renew = async () => {
    if (held.size === 0 || r.status !== 'ready') return;
    const entries = [...held];
    if (isCluster(r)) {
      // a script's keys must share a slot on a cluster: one renewal per user (key), run in parallel
      const byKey = new Map<string, string[]>();
      for (const [id, k] of entries) {
        const ids = byKey.get(k);
        if (ids) ids.push(id);
        else byKey.set(k, [id]);
      }
      const groups = [...byKey];
      for (let i = 0; i < groups.length; i += 1_000)
        await Promise.all(
          groups.slice(i, i + 1_000).map(([k, ids]) => r.wlSockRenew(ids.length, ...ids.map(() => k), deps.leaseMs, ...ids)),
        );
      return;
    }
    for (let i = 0; i < entries.length; i += 1_000) {
      const chunk = entries.slice(i, i + 1_000);
      await r.wlSockRenew(chunk.length, ...chunk.map(([, k]) => k), deps.leaseMs, ...chunk.map(([id]) => id));
    }
  };
  const timer = setInterval(() => void renew().catch((err) => deps.logger.warn({ err }, 'socket slot renewal failed')), deps.renewMs);
  timer.unref();

  return {
    async claim(viewer, socketId) {
      if (r.status !== 'ready') return true;
      let t: NodeJS.Timeout | undefined;
      try {
        const ok = await Promise.race([
          r.wlSockClaim(key(viewer), socketId, deps.cap, deps.leaseMs),
          new Promise<'timeout'>((resolve) => {
            t = setTimeout(() => resolve('timeout'), deps.timeoutMs);
          }),
        ]);
        if (ok === 0) return false;
        if (ok === 1) held.set(socketId, key(viewer));
        return true;
      } catch {
        return true;
      } finally {
        clearTimeout(t);
      }
    },
    release(viewer, socketId) {
      if (!held.delete(socketId)) return;
      void r.zrem(key(viewer), socketId).catch(() => {}); // else the lease runs out
    },
    close: () => clearInterval(timer),
  };
}
