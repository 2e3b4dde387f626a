// A master failover on a real Redis Cluster while messages are sent: the master that owns the
// conversation's sharded pub/sub channel is replaced by its replica (a manual CLUSTER FAILOVER, then
// a kill -9 of the master), and every subscriber on both instances still gets every message exactly
// once, in order. What pub/sub lost in the switch the ledger poll fetches (REALTIME_POLL_MS short).
// The test breaks its cluster, so it has a private one on free ports, stopped after the file.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis, type Cluster } from 'ioredis';
import { connect, disposeAll, live, sleep, until } from '../harness/clients.js';
import { seedOrg, type SeededOrg } from '../harness/seed.js';
import { newPrefix, startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { EVENTS, conversation, events, expectContiguous, history, messageIds, send, waitForMessages } from '../harness/system.js';
import { freeClusterBase, startCluster, stopCluster } from '../harness/redis-cluster.js';

const enabled = inject('redisClusterNodes') !== '';
const POLL_MS = 200;
let base = 0;
let a: TestApp;
let b: TestApp;
let org: SeededOrg;
beforeAll(async () => {
  if (!enabled) return;
  base = await freeClusterBase();
  const { seeds } = await startCluster(base);
  const prefix = newPrefix();
  const env = { REDIS_CLUSTER_NODES: seeds, REALTIME_POLL_MS: String(POLL_MS) };
  [a, b] = await Promise.all([startApp({ prefix, env }), startApp({ prefix, env })]);
  org = await seedOrg(a);
}, 120_000);
afterEach(disposeAll);
afterAll(async () => {
  await stopAll();
  if (base) await stopCluster(base);
});

interface Node {
  port: number;
  id: string;
}
/** The master that owns `key`'s slot and its replica, from CLUSTER NODES. */
async function ownerOf(cluster: Cluster, key: string): Promise<{ master: Node; replica: Node }> {
  const slot = Number(await cluster.call('CLUSTER', 'KEYSLOT', key));
  // <id> <ip:port@bus> <flags> <master id|-> <ping> <pong> <epoch> <link> <slot ranges...>
  const lines = String(await cluster.call('CLUSTER', 'NODES'))
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  const port = (l: string[]) => Number(/:(\d+)@/.exec(l[1]!)?.[1]);
  const owns = (l: string[]) =>
    l.slice(8).some((r) => {
      const [from, to = from] = r.split('-').map(Number);
      return slot >= from! && slot <= to!;
    });
  const m = lines.find((l) => l[2]!.includes('master') && owns(l));
  const r = m && lines.find((l) => l[3] === m[0] && !l[2]!.includes('fail'));
  if (!m || !r) throw new Error(`slot ${slot} has no master with a replica`);
  return { master: { port: port(m), id: m[0]! }, replica: { port: port(r), id: r[0]! } };
}

const node = (port: number) =>
  new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
async function roleOf(port: number): Promise<string | undefined> {
  const r = node(port);
  try {
    return ((await r.call('ROLE')) as [string])[0];
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}
async function shardSubscribers(port: number, channel: string): Promise<number> {
  const r = node(port);
  try {
    return Number(((await r.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]);
  } finally {
    r.disconnect();
  }
}

/**
 * Sends `n` numbered messages alternately through A and B; `failover` runs (concurrently) once a
 * third of them are sent. Returns the ids in send order.
 */
async function sendThrough(c: string, n: number, failover: () => Promise<void>): Promise<string[]> {
  const sent: string[] = [];
  let switching: Promise<void> | undefined;
  for (let i = 0; i < n; i++) {
    if (i === Math.floor(n / 3)) switching = failover();
    sent.push(await send(i % 2 ? b : a, i % 2 ? org.patient : org.provider, c, `m${i}`));
  }
  await switching;
  return sent;
}

describe.skipIf(!enabled)('a Redis Cluster master failover during sends', () => {
  for (const how of ['CLUSTER FAILOVER on its replica', 'kill -9 of the master'] as const) {
    it(`loses no event and duplicates none (${how})`, async () => {
      const c = await conversation(a, org.provider, [org.patient, org.admin]);
      const subs = [
        await live(a, connect(a, org.patient), EVENTS, { c }),
        await live(b, connect(b, org.provider), EVENTS, { c }),
        await live(b, connect(b, org.admin), EVENTS, { c }),
      ];
      const channel = `${a.config.redisPrefix}:s:conv:${c}`;
      const { master, replica } = await ownerOf(a.container.redis.commands as Cluster, channel);
      // both instances listen on the owner (after the previous test's failover, once they have the new slot map)
      await until(async () => (await shardSubscribers(master.port, channel)) === 2, 20_000, 'both instances to subscribe on the owner');

      const N = 45;
      const sent = await sendThrough(c, N, async () => {
        if (how === 'kill -9 of the master') {
          const info = await (async () => {
            const r = node(master.port);
            try {
              return String(await r.info('server'));
            } finally {
              r.disconnect();
            }
          })();
          process.kill(Number(/process_id:(\d+)/.exec(info)?.[1]), 'SIGKILL');
        } else {
          const r = node(replica.port);
          try {
            await r.call('CLUSTER', 'FAILOVER');
          } finally {
            r.disconnect();
          }
        }
        await until(async () => (await roleOf(replica.port)) === 'master', 20_000, 'the replica to take over');
      });
      expect(await roleOf(replica.port)).toBe('master');

      for (const sub of subs) await waitForMessages(sub, N, 20_000);
      // no late duplicate either: a few more poll periods, then the same N
      await sleep(600);
      for (const sub of subs) {
        expect(messageIds(sub)).toEqual(sent);
        expectContiguous(a, c, events(sub));
      }
      expect(await history(b, org.patient, c)).toEqual(sent);

      // both instances listen on the new master again (ioredis resubscribed on the new slot map),
      // and a message after the failover arrives through it
      await until(async () => (await shardSubscribers(replica.port, channel)) === 2, 20_000, 'the resubscription on the new master');
      const after = await send(a, org.provider, c, 'after');
      for (const sub of subs) await waitForMessages(sub, N + 1);
      for (const sub of subs) expect(messageIds(sub)).toEqual([...sent, after]);
    }, 90_000);
  }
});
