import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Logger } from '../../shared/logger.js';
import * as repo from './repo.js';
import type { AuditInsert } from './tables.js';

/** One audit entry as recorded on the request path (the row minus its id). */
export type AuditEntry = Omit<AuditInsert, 'id'>;

export interface AuditWriter {
  /** Buffers an entry (no I/O on the caller's path); written within `flushMs`. */
  record(entry: AuditEntry): void;
  /** Writes everything buffered so far (resolves when written, or when the write failed). */
  flush(): Promise<void>;
  /** Stops the timer and writes everything buffered (retrying a failed write a few times). */
  close(): Promise<void>;
  /** Entries waiting to be written. */
  readonly buffered: number;
}

export interface AuditWriterDeps {
  db: Db;
  logger: Logger;
  config: Pick<Config['audit'], 'flushMs' | 'batchSize' | 'maxBuffer'>;
  registry: Registry;
}

/**
 * The buffered writer: entries are appended to an in-memory buffer and written in multi-row
 * INSERTs of up to `batchSize`, every `flushMs` or as soon as a batch is full, one write at a time.
 * While PostgreSQL is unreachable the buffer keeps entries (a failed batch goes back to the front)
 * up to `maxBuffer`; beyond that new entries are dropped and counted (`wardline_audit_dropped_total`),
 * never blocking a request. A crash loses at most what was buffered (normally one flush interval).
 */
export function createAuditWriter(deps: AuditWriterDeps): AuditWriter {
  const { db, logger, config } = deps;
  const registers = [deps.registry];
  const written = new Counter({ name: 'wardline_audit_written_total', help: 'Audit entries written to PostgreSQL', registers });
  const dropped = new Counter({
    name: 'wardline_audit_dropped_total',
    help: 'Audit entries dropped because the buffer was full (PostgreSQL unreachable for long)',
    registers,
  });
  const batches = new Counter({ name: 'wardline_audit_batches_total', help: 'Audit INSERTs written (one per batch)', registers });
  const failures = new Counter({ name: 'wardline_audit_write_failures_total', help: 'Failed audit batch writes (retried)', registers });
  /** Entries encoded as they are recorded ({@link repo.encodeRow}): one flat string each. */
  let buffer: string[] = [];
  new Gauge({
    name: 'wardline_audit_buffered',
    help: 'Audit entries waiting to be written',
    registers,
    collect() {
      this.set(buffer.length);
    },
  });

  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let failing = false;
  let closed = false;

  /**
   * Writes what is buffered, then keeps writing while full batches are waiting (entries that
   * arrived during a write and make less than a batch wait for the next interval: one INSERT per
   * interval at a steady rate, not one per handful). `all`: until the buffer is empty (flush, close).
   * A failed write puts its batch back and stops.
   */
  const drain = async (all: boolean): Promise<void> => {
    let first = true;
    while (buffer.length && (first || all || buffer.length >= config.batchSize)) {
      first = false;
      const batch = buffer.length <= config.batchSize ? buffer : buffer.slice(0, config.batchSize);
      buffer = batch === buffer ? [] : buffer.slice(batch.length);
      try {
        await repo.insertEncoded(db, batch);
        written.inc(batch.length);
        batches.inc();
        if (failing) logger.info('audit log writes recovered');
        failing = false;
      } catch (err) {
        failures.inc();
        if (!failing) logger.error({ err, buffered: buffer.length + batch.length }, 'audit log write failed; entries kept and retried');
        failing = true;
        // back to the front, within the bound (the oldest are kept: they are the ones at risk)
        const room = config.maxBuffer - buffer.length;
        if (room < batch.length) dropped.inc(batch.length - Math.max(0, room));
        buffer = room >= batch.length ? batch.concat(buffer) : batch.slice(0, Math.max(0, room)).concat(buffer);
        return;
      }
    }
  };

  const flush = (all = false): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    writing ??= drain(all).finally(() => {
      writing = undefined;
      if (buffer.length && !closed) schedule();
    });
    return writing;
  };

  /** A write within flushMs (later while failing, so an outage is not hammered). */
  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        void flush();
      },
      failing ? Math.max(config.flushMs, 1_000) : config.flushMs,
    );
  };

  return {
    record(entry) {
      if (buffer.length >= config.maxBuffer) {
        dropped.inc();
        return;
      }
      let row: string;
      try {
        row = repo.encodeRow(entry);
      } catch (err) {
        // a detail JSON cannot hold (a bigint, a cycle): never fail the request that recorded it
        dropped.inc();
        logger.error({ err, field: entry.field }, 'audit entry could not be encoded; dropped');
        return;
      }
      buffer.push(row);
      if (writing) return; // the running write takes it (or reschedules)
      if (buffer.length >= config.batchSize && !failing) void flush();
      else schedule();
    },
    async flush() {
      if (writing) await writing;
      await flush(true);
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      for (let attempt = 0; attempt < 5 && (buffer.length || writing); attempt++) {
        if (writing) await writing;
        await flush(true);
        if (buffer.length) await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
      if (buffer.length) {
        logger.error({ lost: buffer.length }, 'audit log: entries could not be written before shutdown');
        dropped.inc(buffer.length);
        buffer = [];
      }
    },
    get buffered() {
      return buffer.length;
    },
  };
}
