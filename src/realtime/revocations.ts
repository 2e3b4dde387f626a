import type { RedisClient } from '../shared/redis-client.js';
import type { Logger } from '../shared/logger.js';
import type { Viewer } from '../shared/viewer.js';
import type { FanoutPubSub } from './hub.js';

/**
 * Session revocation ("sign this user out everywhere"), shared by every instance of a deployment.
 * A revocation is a per-user "not before" instant kept in one Redis hash and announced on one
 * pub/sub channel; every instance holds the whole (small, pruned) set in memory, so checking a
 * token costs a Map lookup and no round trip, on HTTP and at WebSocket connect alike.
 */
export interface Revocations {
  /** Loads the current revocations and starts listening (before the instance serves). */
  start(): Promise<void>;
  /** True when the viewer's token was issued before a revocation of their user. */
  isRevoked(viewer: Viewer): boolean;
  /**
   * Revokes a user's sessions on every instance: open sockets close with 4403 and tokens issued
   * before the returned instant are refused. The caller checks the user is in the admin's org.
   */
  revoke(orgId: string, userId: string): Promise<Date>;
  close(): Promise<void>;
}

export interface RevocationDeps {
  redis: RedisClient;
  pubsub: FanoutPubSub;
  prefix: string;
  ttlSeconds: number;
  logger: Logger;
  /** Called on every instance for each revocation (this one's included): end the user's sockets. */
  onRevoked(orgId: string, userId: string, notBeforeMs: number): void;
  /** Full reload period: catches an announcement lost while the subscriber reconnected. */
  reloadMs?: number;
}

interface Announcement {
  orgId: string;
  userId: string;
  notBefore: number;
}

const field = (orgId: string, userId: string) => `${orgId}\n${userId}`;

export function createRevocations(deps: RevocationDeps): Revocations {
  const { redis, pubsub, logger } = deps;
  const hash = `${deps.prefix}:revoked`;
  const channel = `${deps.prefix}:revoked`;
  const ttlMs = deps.ttlSeconds * 1000;
  /** `org\nuser` → not-before (epoch ms). */
  const notBefore = new Map<string, number>();
  let subId: number | undefined;
  let reload: NodeJS.Timeout | undefined;

  const apply = (a: Announcement) => {
    const k = field(a.orgId, a.userId);
    if ((notBefore.get(k) ?? 0) >= a.notBefore) return;
    notBefore.set(k, a.notBefore);
    deps.onRevoked(a.orgId, a.userId, a.notBefore);
  };

  const load = async () => {
    const all = await redis.hgetall(hash);
    const cutoff = Date.now() - ttlMs;
    const stale: string[] = [];
    for (const [k, v] of Object.entries(all)) {
      const nb = Number(v);
      if (!(nb > cutoff)) {
        stale.push(k);
        continue;
      }
      const [orgId = '', userId = ''] = k.split('\n');
      apply({ orgId, userId, notBefore: nb });
    }
    for (const [k, nb] of notBefore) if (nb <= cutoff) notBefore.delete(k);
    if (stale.length) await redis.hdel(hash, ...stale);
  };

  return {
    async start() {
      subId = await pubsub.subscribe(channel, (msg: Announcement) => {
        if (msg && typeof msg.orgId === 'string' && typeof msg.userId === 'string' && typeof msg.notBefore === 'number') apply(msg);
      });
      await load();
      reload = setInterval(() => void load().catch((err) => logger.warn({ err }, 'revocation reload failed')), deps.reloadMs ?? 30_000);
      reload.unref();
    },
    isRevoked(viewer) {
      if (notBefore.size === 0) return false;
      const nb = notBefore.get(field(viewer.orgId, viewer.userId));
      return nb !== undefined && (viewer.iat ?? 0) * 1000 < nb;
    },
    async revoke(orgId, userId) {
      // JWT `iat` has whole seconds: tokens issued in this second are revoked too, so the next
      // valid token is one issued from the next second on
      const nb = (Math.floor(Date.now() / 1000) + 1) * 1000;
      const a: Announcement = { orgId, userId, notBefore: nb };
      await redis.hset(hash, field(orgId, userId), String(nb));
      apply(a);
      await pubsub.publish(channel, a);
      return new Date(nb);
    },
    async close() {
      if (reload) clearInterval(reload);
      if (subId !== undefined) pubsub.unsubscribe(subId);
    },
  };
}
