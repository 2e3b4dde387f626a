import type { Db, Executor } from '../db/client.js';
import { settleWithin } from '../shared/bounded.js';
import type { Logger } from '../shared/logger.js';
import { isRedisConnectionError } from '../shared/redis-watch.js';
import type { Publisher } from './hub.js';
import type { LedgerEvent } from './ledger.js';

/** Collects the ledger events a transaction appends, to publish them once it has committed. */
export type EventSink = LedgerEvent[];

export type Commit = (<T>(work: (tx: Executor, events: EventSink) => Promise<T>) => Promise<T>) & {
  /**
   * The same for work that is ONE statement (atomic by itself, so no BEGIN/COMMIT round trips):
   * `work` gets the database, not a transaction, and must issue a single write statement.
   */
  single<T>(work: (db: Executor, events: EventSink) => Promise<T>): Promise<T>;
};

/**
 * Runs `work` in a transaction and publishes the events it appended only after commit (Outline's
 * insertEvent + afterCommit): a rolled-back change publishes nothing, and a crash between commit
 * and publish costs latency only (the hub's gap detection and head poll pick the events up).
 * A failed or hanging publish (Redis away, stopped or black-holed) is therefore not the caller's
 * failure: the change is committed, the caller gets its answer after at most `publishTimeoutMs`,
 * and subscribers get the events from the ledger.
 */
export function createCommit(db: Db, publisher: Publisher, logger: Logger, publishTimeoutMs = 300): Commit {
  const onError = (events: number) => (err: unknown) => {
    if (isRedisConnectionError(err)) logger.debug({ events }, 'publish skipped: Redis unavailable; subscribers catch up from the ledger');
    else logger.warn({ err, events }, 'publish after commit failed; subscribers catch up from the ledger');
  };
  const publishAfter = async (events: EventSink) => {
    if (events.length === 0) return;
    const settled = await settleWithin(publisher.publish(events), publishTimeoutMs, onError(events.length));
    if (!settled) logger.debug({ events: events.length, ms: publishTimeoutMs }, 'publish still pending; answering without waiting for it');
  };
  const commit = async <T>(work: (tx: Executor, events: EventSink) => Promise<T>): Promise<T> => {
    const events: EventSink = [];
    const result = await db.transaction(async (tx) => work(tx as unknown as Executor, events));
    await publishAfter(events);
    return result;
  };
  commit.single = async <T>(work: (db: Executor, events: EventSink) => Promise<T>): Promise<T> => {
    const events: EventSink = [];
    const result = await work(db, events);
    await publishAfter(events);
    return result;
  };
  return commit;
}
