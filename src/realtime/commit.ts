import type { Db, Executor } from '../db/client.js';
import type { Logger } from '../shared/logger.js';
import { isRedisConnectionError } from '../shared/redis-watch.js';
import type { Publisher } from './hub.js';
import type { LedgerEvent } from './ledger.js';

/** Collects the ledger events a transaction appends, to publish them once it has committed. */
export type EventSink = LedgerEvent[];

export type Commit = <T>(work: (tx: Executor, events: EventSink) => Promise<T>) => Promise<T>;

/**
 * Runs `work` in a transaction and publishes the events it appended only after commit (Outline's
 * insertEvent + afterCommit): a rolled-back change publishes nothing, and a crash between commit
 * and publish costs latency only (the hub's gap detection and head poll pick the events up).
 * A failed publish (Redis away) is therefore not the caller's failure: the change is committed,
 * the caller gets its answer, and subscribers get the events from the ledger.
 */
export function createCommit(db: Db, publisher: Publisher, logger: Logger): Commit {
  return async (work) => {
    const events: EventSink = [];
    const result = await db.transaction(async (tx) => work(tx as unknown as Executor, events));
    if (events.length > 0) {
      await publisher.publish(events).catch((err: unknown) => {
        if (isRedisConnectionError(err))
          logger.debug({ events: events.length }, 'publish skipped: Redis unavailable; subscribers catch up from the ledger');
        else logger.warn({ err, events: events.length }, 'publish after commit failed; subscribers catch up from the ledger');
      });
    }
    return result;
  };
}
