// A subscriber connection that closes while it re-subscribes after a reconnect (a shutdown right
// after Redis came back) must not raise one either: ioredis re-sends SUBSCRIBE for every channel
// when it reconnects and drops that promise, which rejects with "Connection is closed." when the
// connection ends before the answer (seen once in CI, where it ended a test worker).
//
// A subscription that ends after the instance's Redis subscriber connection was closed (a shutdown
// while a socket is still finishing) must not raise an unhandled rejection: graphql-redis-subscriptions
// drops the promises of its UNSUBSCRIBE and PUNSUBSCRIBE, which then reject with "Connection is
// closed.", and an unhandled rejection ends a server process (and, with TensorFlow.js's wasm
// backend loaded, a test worker).
import type { Redis } from 'ioredis';
import { afterEach, describe, expect } from 'vitest';
import { connect, disposeAll, live, until } from '../harness/clients.js';
import { conversation, EVENTS, it } from '../harness/system.js';

afterEach(disposeAll);

/**
 * Runs `fn` and returns the messages of the unhandled rejections raised meanwhile (they are reported
 * after the microtask queue drains: it waits a moment after `fn`).
 */
async function unhandledDuring(fn: () => Promise<void>): Promise<string[]> {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.prependListener('unhandledRejection', onUnhandled);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  return unhandled.map((r) => (r instanceof Error ? r.message : String(r)));
}

describe('a subscription ending after the Redis subscriber closed', () => {
  it('unsubscribes without an unhandled rejection', async ({ a, org }) => {
    const unhandled = await unhandledDuring(async () => {
      const c = await conversation(a, org.provider, [org.patient]);
      const sub = await live(a, connect(a, org.patient), EVENTS, { c });
      const redisSub = a.container.redis.sub as Redis; // this file runs on one Redis
      await redisSub.quit();
      await until(() => redisSub.status === 'end', 5_000, 'the subscriber connection to close');
      sub.stop(); // the client completes: the server unsubscribes on a closed connection
      await until(() => a.container.fanout.stats().subscriptions === 0, 5_000, 'the subscription to end');
    });
    expect(unhandled).toEqual([]);
  });

  it('closes while re-subscribing after a reconnect without an unhandled rejection', async ({ b, org }) => {
    const unhandled = await unhandledDuring(async () => {
      const c = await conversation(b, org.provider, [org.patient]);
      await live(b, connect(b, org.patient), EVENTS, { c });
      const redisSub = b.container.redis.sub as Redis;
      await until(() => redisSub.status === 'ready', 5_000, 'the subscriber connection');
      // the connection drops; ioredis reconnects and re-sends SUBSCRIBE before it says 'ready'
      // (events are emitted on the next tick): closing it then, at once (a graceful close would
      // still read the answer), leaves that SUBSCRIBE unanswered
      const closedOnReady = new Promise<void>((resolve) =>
        redisSub.once('ready', () => {
          redisSub.disconnect();
          redisSub.stream.destroy();
          resolve();
        }),
      );
      redisSub.stream.destroy();
      await closedOnReady;
      await until(() => redisSub.status === 'end', 5_000, 'the subscriber connection to close');
    });
    expect(unhandled).toEqual([]);
  });
});
