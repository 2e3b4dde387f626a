import { Cluster, type ChainableCommander, Redis, type RedisOptions } from 'ioredis';

/** A Redis connection: one server (`Redis`) or a Redis Cluster (`Cluster`). Both speak the same commands. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: a URL (one server), or the seed nodes of a cluster (REDIS_CLUSTER_NODES). */
export interface RedisTarget {
  url: string;
  clusterNodes?: ReadonlyArray<{ host: string; port: number }> | undefined;
}

export interface ConnectOptions extends RedisOptions {
  /** Cluster only: receive sharded pub/sub (SSUBSCRIBE) through one subscriber per master. */
  sharded?: boolean;
}

/**
 * How often a cluster connection re-reads the slot map (CLUSTER SLOTS). ioredis 6 documents 5 s but
 * leaves it off: a connection then learns of a failover only from a MOVED answer or a dropped node.
 * The sharded subscribers need it most: after a manual failover no connection drops, and the one
 * refresh their SUNSUBSCRIBE notice triggers may read the old map from a node that has not yet
 * heard of the new master; without another refresh they would never subscribe again there.
 */
const SLOTS_REFRESH_MS = 2_000;

/** True for a Redis Cluster connection. */
export const isCluster = (r: RedisClient): r is Cluster => r.isCluster;

/**
 * The one place a Redis connection is made (composition root, startup probe): a `Redis` for a URL,
 * a `Cluster` for seed nodes. On a cluster the same options apply per node (`redisOptions`), the
 * retry strategy becomes the cluster's (it reconnects to the seeds and re-reads the slot map), and
 * `sharded` gives it the sharded subscribers SSUBSCRIBE needs.
 */
export function connectRedis(target: RedisTarget, options: ConnectOptions): RedisClient {
  const { sharded, retryStrategy, enableOfflineQueue, lazyConnect, host: _h, port: _p, ...perNode } = options;
  if (!target.clusterNodes) return new Redis(target.url, { ...perNode, retryStrategy, enableOfflineQueue, lazyConnect });
  return new Cluster(
    target.clusterNodes.map((n) => ({ host: n.host, port: n.port })),
    {
      redisOptions: perNode,
      clusterRetryStrategy: retryStrategy ?? null,
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      ...(lazyConnect === undefined ? {} : { lazyConnect }),
      shardedSubscribers: sharded === true,
      slotsRefreshInterval: SLOTS_REFRESH_MS,
    },
  );
}

/**
 * A pipeline that works on both kinds of connection. One server: `redis.pipeline()` (one round
 * trip). A cluster: ioredis refuses a pipeline whose keys live on different masters, so the commands
 * are recorded and sent one by one at `exec()` (each on its own node's connection, in order per
 * node), with the same `[error, reply]` result per command.
 */
export function anyPipeline(redis: RedisClient): ChainableCommander {
  if (!isCluster(redis)) return redis.pipeline();
  const calls: Array<[string, unknown[]]> = [];
  const target = redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const proxy: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_t, name) {
      if (name === 'exec')
        return () =>
          Promise.all(
            calls.map(([cmd, args]) =>
              target[cmd]!(...args).then(
                (v): [Error | null, unknown] => [null, v],
                (err: Error): [Error | null, unknown] => [err, null],
              ),
            ),
          );
      if (name === 'length') return calls.length;
      if (typeof name !== 'string' || typeof target[name] !== 'function') return undefined;
      return (...args: unknown[]) => {
        calls.push([name, args]);
        return proxy;
      };
    },
  });
  return proxy;
}

/**
 * Marks the promises of a subscriber connection's (UN)SUBSCRIBE and P(UN)SUBSCRIBE as handled and
 * returns the connection. Two callers drop them: graphql-redis-subscriptions, for UNSUBSCRIBE and
 * PUNSUBSCRIBE, and ioredis itself, which re-sends SUBSCRIBE and PSUBSCRIBE for every channel when
 * it reconnects (through these methods). Either rejects with "Connection is closed." when the
 * connection ends before the answer (a shutdown while a socket is still finishing, or right after
 * Redis came back), an unhandled rejection that ends the process. A caller that keeps the promise
 * still sees it reject; a failed (un)subscribe ends with its connection anyway (a reconnect
 * subscribes again).
 */
export function withHandledSubscriptionCalls<R extends Redis>(r: R): R {
  for (const name of ['subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe'] as const) {
    const original = (r[name] as (...a: unknown[]) => Promise<unknown>).bind(r);
    (r as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => {
      const p = original(...a);
      p.catch(() => {});
      return p;
    };
  }
  return r;
}
