// The hub's catch-up against events that pass each other on the way: an event whose publish arrives
// while a catch-up is reading the ledger can be ahead of one committed after that read's snapshot
// (whose publish is still on its way). It must wait for the next read, not be delivered across the
// hole. Real PostgreSQL ledger and Redis pub/sub; the test holds the catch-up's read result back
// to put a commit and a publish between the read and its end, which a loaded machine does by itself.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../src/db/client.js';
import { createHub, createPublisher, type Hub } from '../../src/realtime/hub.js';
import { insertEvents, type LedgerEvent, reservePositions } from '../../src/realtime/ledger.js';
import { createLogger } from '../../src/shared/logger.js';
import { startApp, type TestApp } from '../harness/start-app.js';

let app: TestApp;
let hub: Hub | undefined;

beforeAll(async () => {
  app = await startApp();
});

afterAll(async () => {
  await hub?.close();
  await app.stop();
});

/** Commits `n` events on `stream` without publishing them. */
async function commit(stream: string, orgId: string, n: number): Promise<LedgerEvent[]> {
  return app.container.database.db.transaction(async (tx) => {
    const first = (await reservePositions(tx, [{ stream, orgId, count: n }])).get(stream) as number;
    return insertEvents(
      tx,
      Array.from({ length: n }, (_, i) => ({ stream, orgId, type: 'Test', payload: { i }, position: first + i })),
    );
  });
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('hub catch-up', () => {
  it('never delivers an event that arrived during a catch-up across a hole the catch-up could not see', async () => {
    const orgId = `org-${randomUUID()}`;
    const stream = `test:${randomUUID()}`;
    await commit(stream, orgId, 2); // positions 1-2, before the hub joins

    // the catch-up's range read (and only it) returns its rows when the test lets it
    let holdReads = false;
    let held: (() => void) | undefined;
    let reads = 0;
    const db = app.container.database.db;
    const gated = new Proxy(db, {
      get(target, prop, receiver) {
        if (prop !== 'execute') return Reflect.get(target, prop, receiver);
        return async (query: Parameters<Executor['execute']>[0]) => {
          const result = await target.execute(query);
          if (holdReads) {
            reads++;
            await new Promise<void>((r) => {
              held = r;
            });
          }
          return result;
        };
      },
    }) as typeof db;
    hub = createHub({
      pubsub: app.container.pubsub,
      db: gated,
      logger: createLogger('silent'),
      channelPrefix: app.config.redisPrefix,
      pollMs: 60_000,
    });
    const got: number[] = [];
    const { baseline } = await hub.join(stream, orgId, { onEvent: (ev) => got.push(ev.position) });
    expect(baseline).toBe(2);
    const publisher = createPublisher(app.container.redis.pub, app.config.redisPrefix);

    // 3, 4, 5 committed; only 4 is published: a hole below it, so the hub reads the ledger
    const [, e4] = await commit(stream, orgId, 3);
    holdReads = true;
    await publisher.publish([e4 as LedgerEvent]);
    await until(() => held !== undefined, 'the catch-up read');
    // while its result is on the way: 6 and 7 commit, and 7's publish overtakes 6's
    const [e6, e7] = await commit(stream, orgId, 2);
    await publisher.publish([e7 as LedgerEvent]);
    await new Promise((r) => setTimeout(r, 200)); // 7 reaches the hub while the read is held
    holdReads = false;
    held?.();
    await until(() => got.length >= 5, 'positions 3-7', 10_000);
    await publisher.publish([e6 as LedgerEvent]); // the late publish changes nothing
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([3, 4, 5, 6, 7]);
    expect(reads).toBe(1);
  });
});
