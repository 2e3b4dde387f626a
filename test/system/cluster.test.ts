// Wardline on a real Redis Cluster (3 masters + 3 replicas, started by the global setup): two
// instances on REDIS_CLUSTER_NODES deliver every message to subscribers on both, in order, over
// sharded pub/sub; presence, rate limits and a BullMQ job run by a real worker process work with
// keys spread over the masters. The failover test is in cluster-failover.test.ts (its own cluster).
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, inject, test } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { awaitDependencies, DependencyError } from '../../src/runtime/dependencies.js';
import { createLogger } from '../../src/shared/logger.js';
import { connect, disposeAll, gql, live, until } from '../harness/clients.js';
import { openRaw, type Raw } from '../protocol/raw.js';
import { withTwoInstances } from '../harness/fixtures.js';
import { spawnWorkerChild } from '../harness/worker-child.js';
import { EVENTS, conversation, events, expectContiguous, history, messageIds, send, waitForMessages } from '../harness/system.js';
import { PRESENCE_ENV, changes, device, waitForPresence, watch } from '../presence/ops.js';
import { createReminder, deliveriesOf, inSeconds, inbox, stored, tickOf } from '../reminders/ops.js';
import type { Cluster } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { createRateLimiter, limitMetrics } from '../../src/protection/rate-limits.js';
import type { Viewer } from '../../src/shared/viewer.js';

const nodes = inject('redisClusterNodes');
if (!nodes && process.env.CI === 'true') throw new Error('no Redis Cluster for the cluster tests (redis-server and redis-cli are needed)');
if (!nodes) console.warn('cluster tests skipped: redis-server / redis-cli not found (scripts/redis-cluster.sh needs them)');

const it = withTwoInstances({
  REDIS_CLUSTER_NODES: nodes,
  ...PRESENCE_ENV,
  RATE_LIMITS: 'on',
  RATE_LIMIT_QUERY: '0.25/3', // slow refill: the burst is spent even on a loaded machine
  RATE_LIMIT_QUERY_IP: '0.001/30', // under 40: no lease, so the bucket in Redis counts every take
  TRUSTED_PROXIES: '1',
  WS_MAX_SOCKETS_PER_USER: '2',
});
const children = new Set<ChildProcess>();
const sockets: Raw[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.ws.terminate();
  await disposeAll();
});
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Subscribers of a sharded channel, summed over the masters (SSUBSCRIBE counts on the slot's owner only). */
async function shardSubscribers(redis: Cluster, channel: string): Promise<number> {
  const counts = await Promise.all(
    redis.nodes('master').map(async (n) => (await n.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number]),
  );
  return counts.reduce((sum, [, n]) => sum + Number(n), 0);
}

describe.skipIf(!nodes)('on a Redis Cluster', () => {
  it('delivers every message sent through A and B to subscribers on both, in order, over sharded pub/sub', async ({ a, b, org }) => {
    expect(a.container.redis.commands.isCluster).toBe(true);
    const c = await conversation(a, org.provider, [org.patient, org.admin]);
    const subs = [
      await live(a, connect(a, org.patient), EVENTS, { c }),
      await live(b, connect(b, org.provider), EVENTS, { c }),
      await live(b, connect(b, org.admin), EVENTS, { c }),
    ];
    // both instances listen on the conversation's sharded channel, on the master that owns its slot
    const channel = `${a.config.redisPrefix}:s:conv:${c}`;
    expect(await shardSubscribers(a.container.redis.commands as Cluster, channel)).toBe(2);
    const N = 20;
    const sent: string[] = [];
    for (let i = 0; i < N; i++) sent.push(await send(i % 2 ? b : a, i % 2 ? org.patient : org.provider, c, `m${i}`));
    for (const sub of subs) await waitForMessages(sub, N);
    for (const sub of subs) {
      expect(messageIds(sub)).toEqual(sent);
      expectContiguous(a, c, events(sub));
    }
    expect(await history(b, org.patient, c)).toEqual(sent);
  });

  it('shows presence set on one instance to a watcher on the other', async ({ a, b, org }) => {
    const nurse = await org.user('provider');
    const { sub } = await watch(b, org.admin, [nurse.id]);
    expect(changes(sub)[0]).toMatchObject({ userId: nurse.id, status: 'OFFLINE' });
    const phone = await device(a, nurse);
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE' && p.devices === 1);
    await phone.dispose();
    await waitForPresence(sub, nurse.id, (p) => p.status === 'OFFLINE' && p.devices === 0);
  });

  it('refuses a user over their rate limit on either instance (one budget on the cluster), and a refusal costs the address nothing', async ({
    a,
    b,
    org,
  }) => {
    const u = await org.user('patient');
    const ip = '10.77.0.1';
    const post = async (app: typeof a) => {
      const res = await fetch(app.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: u.token, 'x-forwarded-for': ip },
        body: JSON.stringify({ query: '{ me { id } }' }),
      });
      return { status: res.status, body: (await res.json()) as { errors?: Array<{ extensions?: Record<string, unknown> }> } };
    };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(i % 2 ? b : a)).status);
    expect(statuses).toEqual([200, 200, 200]);
    const refused = await post(b);
    expect(refused.status).toBe(429);
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect((await post(a)).status).toBe(429);
    // the user's and the address's buckets live on different masters: the refused checks gave the
    // address its tokens back (30 burst, 3 taken)
    const key = `${a.config.redisPrefix}:rl:query:ip:${ip}`;
    const tokens = Number(await a.container.redis.commands.hget(key, 't'));
    expect(Math.floor(tokens)).toBe(27);
  });

  it('refills the leases of busy clients whose buckets live on different masters', async ({ a, org }) => {
    // a service budget of 60 leases up to 6 tokens per instance; twenty clients' buckets spread over
    // the three masters, so one script for all of their refills would be refused (CROSSSLOT)
    const rl = a.config.rateLimits;
    const limiter = createRateLimiter({
      config: { ...rl, service: { ...rl.service, query: { rate: 0.01, burst: 60 } } },
      redis: a.container.redis.commands,
      prefix: a.config.redisPrefix,
      metrics: limitMetrics(a.container.metrics),
      logger: a.container.logger,
    });
    const viewers = Array.from(
      { length: 20 },
      () => ({ role: 'service', orgId: org.orgId, userId: `svc-${randomUUID()}`, name: 'bridge' }) as Viewer,
    );
    for (const v of viewers) {
      expect(await limiter.take('query', v, undefined)).toBeUndefined(); // one token, no lease
      expect(await limiter.take('query', v, undefined)).toBeUndefined(); // one, and a lease of one
    }
    // each spends its leased token at once; the spent leases are refilled in the background with 2
    for (const v of viewers) expect(limiter.take('query', v, undefined)).toBeUndefined();
    const tokens = () =>
      Promise.all(
        viewers.map(async (v) =>
          Math.round(Number(await a.container.redis.commands.hget(`${a.config.redisPrefix}:rl:query:s:${org.orgId}:${v.userId}`, 't'))),
        ),
      );
    await until(async () => (await tokens()).every((t) => t === 55), 5_000, 'every bucket refilled');
  });

  it("caps a user's sockets across instances, with leases renewed per user on the cluster", async ({ a, b, org, prefix }) => {
    const u = await org.user('provider');
    const [first, second] = [await openRaw(a), await openRaw(b)];
    sockets.push(first, second);
    await first.init(u.token);
    await second.init(u.token);
    // each instance also holds a socket of another user, whose key is in another slot: one renewal
    // script for both users' keys would be refused (CROSSSLOT)
    const other = await org.user('provider');
    for (const app of [a, b]) {
      const s = await openRaw(app);
      sockets.push(s);
      await s.init(other.token);
    }
    const third = await openRaw(a);
    sockets.push(third);
    third.send({ type: 'connection_init', payload: { authorization: u.token } });
    expect(await third.closed).toEqual({ code: 1013, reason: 'Try again later: too many sockets for this user' });
    // both instances push their socket's lease ahead (PRESENCE_REFRESH_MS): the cap outlives a lease
    const key = `${prefix}:lim:sockets:${org.orgId}:${u.id}`;
    const leases = async () => (await a.container.redis.commands.zrange(key, '0', '-1', 'WITHSCORES')).filter((_, i) => i % 2).map(Number);
    const before = await leases();
    expect(before).toHaveLength(2);
    await until(
      async () => {
        const now = await leases();
        return now.length === 2 && now.every((l) => l > Math.max(...before));
      },
      5_000,
      'both leases to be renewed',
    );
  });

  it("ends a revoked user's socket on the other instance (the announcement over sharded pub/sub)", async ({ a, b, org }) => {
    const u = await org.user('patient');
    const onB = await openRaw(b);
    sockets.push(onB);
    await onB.init(u.token);
    const r = await gql(a, org.admin.token, 'mutation($u:ID!){ revokeUserSessions(userId:$u) }', { u: u.id });
    expect(r.errors).toBeUndefined();
    expect(await onB.closed).toEqual({ code: 4403, reason: 'Forbidden: sessions revoked' });
  });

  it('runs a reminder job in a real worker process on the cluster (hash-tagged BullMQ prefix)', async ({ a, org }) => {
    const user = await org.user('patient');
    const { sub } = await inbox(a, user);
    // scoped to this org: the test database is shared, and an unscoped tick claims every org's due reminders
    await spawnWorkerChild(new URL('../reminders/worker-child.ts', import.meta.url), a, children, {
      REDIS_CLUSTER_NODES: nodes,
      REMINDER_TEST_ORG_IDS: org.orgId,
    });
    const due = inSeconds(1);
    const r = await createReminder(a, user, { at: due });
    const occurrenceMs = new Date(due).getTime();
    await sub.waitFor(1, 15_000);
    await until(async () => (await (await tickOf(a, occurrenceMs))?.getState()) === 'completed', 10_000, 'the job to complete');
    expect(deliveriesOf(sub, r.id)).toHaveLength(1);
    expect(await stored(a, org.orgId, r.id)).toEqual({ notifications: 1, occurrences: [occurrenceMs] });
    // every key of the queues shares the prefix's hash tag, so they all live on one master (SCAN
    // on a cluster covers one node: each master is asked)
    const prefix = `{${a.config.redisPrefix}:bull}`;
    expect(a.container.queues.queue('reminders').opts.prefix).toBe(prefix);
    const perMaster = await Promise.all(
      (a.container.redis.commands as Cluster)
        .nodes('master')
        .map(async (n) => (await n.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 1000))[1].length),
    );
    expect(perMaster.filter((n) => n > 0)).toHaveLength(1);
  }, 90_000); // a worker child's start (tsx compiling the app) takes tens of seconds on a loaded machine
});

describe('REDIS_CLUSTER_NODES', () => {
  const base = { NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(32) };
  test('takes host:port seeds (IPv6 in brackets); empty means unset; anything else is named in the error', () => {
    expect(loadConfig({ ...base, REDIS_CLUSTER_NODES: ' 10.0.0.1:6379, redis-b:7000,[::1]:7001 ' }).redisClusterNodes).toEqual([
      { host: '10.0.0.1', port: 6379 },
      { host: 'redis-b', port: 7000 },
      { host: '::1', port: 7001 },
    ]);
    expect(loadConfig({ ...base, REDIS_CLUSTER_NODES: '' }).redisClusterNodes).toBeUndefined();
    for (const bad of ['redis://10.0.0.1:6379', '10.0.0.1', '10.0.0.1:0', 'a:1,,b', 'a:99999'])
      expect(() => loadConfig({ ...base, REDIS_CLUSTER_NODES: bad }), bad).toThrow(
        /REDIS_CLUSTER_NODES: expected comma-separated host:port/,
      );
    expect(() => loadConfig({ ...base, REDIS_CLUSTER_NODES: 'x' })).toThrow(ConfigError);
  });

  test.skipIf(!nodes)('at start, a cluster is waited for through its seeds, and an unreachable one is reported by them', async () => {
    const logger = createLogger('silent');
    const seeds = (s: string) => s.split(',').map((n) => ({ host: n.split(':')[0]!, port: Number(n.split(':')[1]) }));
    await awaitDependencies([{ name: 'Redis', url: 'redis://unused', clusterNodes: seeds(nodes) }], 5_000, logger);
    const down = awaitDependencies([{ name: 'Redis', url: 'redis://unused', clusterNodes: seeds('127.0.0.1:1') }], 600, logger);
    await expect(down).rejects.toThrow(DependencyError);
    await expect(down).rejects.toThrow(/Cannot reach Redis at the cluster seeds 127\.0\.0\.1:1: .*STARTUP_TIMEOUT_MS/);
  });
});
