import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Queues } from '../../jobs/queues.js';
import type { Commit } from '../../realtime/commit.js';
import type { Logger } from '../../shared/logger.js';
import type { NotificationsService } from '../notifications/service.js';
import { enqueueChunks } from './batches.js';
import { TERMINAL, batchNotificationKey, batchStream, chunkJobId, scoringChunkJob, toBatchSnapshot } from './events.js';
import { type CleanRow, checkRow } from './features.js';
import type { PredictionMetrics } from './metrics.js';
import * as repo from './repo.js';
import type { PredictionsService } from './service.js';
import type { BatchRow } from './tables.js';

/** Batches deleted per retention statement, and per hourly run. */
const RETENTION_BATCHES = 5;
const RETENTION_MAX_PER_RUN = 10_000;

export interface ChunksDeps {
  db: Db;
  commit: Commit;
  queues: Queues;
  logger: Logger;
  config: Config['predictions'];
  predictions: PredictionsService;
  notifications: NotificationsService;
  metrics: PredictionMetrics;
}

/** Test seam: runs after a chunk's results are scored, before its transaction (kill tests hold here). */
export interface ChunkHooks {
  beforeCommit?(): Promise<void>;
  /** Runs after a chunk's transaction committed, before the job is acknowledged. */
  afterCommit?(): Promise<void>;
}

/**
 * The worker side of batch scoring. A chunk is scored in one tfjs batch and stored in one
 * transaction that also advances the batch's counters by the rows it actually inserted (so a
 * re-run chunk counts nothing twice), appends a progress event at most every
 * SCORING_PROGRESS_MIN_MS, and at the last row sets the terminal status, appends BatchCompleted
 * and notifies the submitter.
 */
export function createChunks(deps: ChunksDeps, hooks: ChunkHooks = {}) {
  const { db, commit, config, predictions } = deps;

  /** Stores results (or row errors) and moves the batch on, in one transaction. */
  const store = async (b: BatchRow, results: repo.ResultInput[]) =>
    commit(async (tx, events) => {
      const inserted = await repo.recordChunk(tx, b.orgId, b.id, results);
      if (inserted === 0) return 0;
      const now = await repo.findBatch(tx, b.orgId, b.id);
      if (!now) return inserted;
      const done = TERMINAL.has(now.status);
      const due = !now.progressAt || Date.now() - now.progressAt.getTime() >= config.progressMinMs;
      if (done || due) {
        const snapshot = toBatchSnapshot(now);
        await batchStream.append(tx, events, {
          key: b.id,
          orgId: b.orgId,
          type: done ? 'BatchCompleted' : 'BatchProgress',
          payload: { batch: snapshot },
        });
        await repo.markProgressEvent(tx, b.id, new Date());
      }
      if (done) {
        await deps.notifications.createInTx(tx, events, {
          orgId: b.orgId,
          userId: b.submittedBy,
          kind: 'system',
          priority: now.status === 'succeeded' ? 'normal' : 'high',
          title: `Scoring batch ${now.status}`,
          body: `${now.processedRows - now.failedRows} of ${now.totalRows} rows scored with ${now.modelName}@${now.modelVersion}${now.fallbackRows ? ` (${now.fallbackRows} by the fallback rule)` : ''}.`,
          data: { batchId: b.id, status: now.status },
          clientKey: batchNotificationKey(b.id),
        });
        if (now.startedAt && now.finishedAt) {
          const s = (now.finishedAt.getTime() - now.createdAt.getTime()) / 1000;
          if (s > 0) deps.metrics.batchRowsPerSecond.set(now.totalRows / s);
        }
      }
      return inserted;
    });

  /** Scores chunk `chunk` of a batch; safe to run any number of times. */
  async function run(orgId: string, batchId: string, chunk: number): Promise<{ inserted: number }> {
    const b = await repo.findBatch(db, orgId, batchId);
    if (!b || TERMINAL.has(b.status)) return { inserted: 0 };
    const t0 = performance.now();
    const from = chunk * b.chunkSize;
    const rows = await repo.chunkRows(db, b.id, from, Math.min(b.totalRows, from + b.chunkSize));
    const resolved = await predictions.resolve(`${b.modelName}@${b.modelVersion}`);
    const valid: Array<{ i: number; row: CleanRow; warnings: string[]; subjectId: string | null }> = [];
    const results: repo.ResultInput[] = [];
    const empty = { pb: null, sc: null, l: null, pr: null, fb: false, fr: null, ex: null, em: null, w: null };
    for (const r of rows) {
      const c = checkRow(resolved.card.featureSpec, r.features);
      if (c.ok) valid.push({ i: r.rowIndex, row: c.row, warnings: c.warnings, subjectId: r.subjectId });
      else results.push({ ...empty, i: r.rowIndex, s: r.subjectId, e: c.error });
    }
    const outs = predictions.run(
      resolved,
      valid.map((v) => v.row),
      { explain: b.explain, topK: b.topK },
      'batch',
    );
    valid.forEach((v, k) => {
      const o = outs[k];
      if (!o) return;
      results.push({
        i: v.i,
        s: v.subjectId,
        pb: o.modelVersion,
        sc: o.score,
        l: o.label,
        pr: o.probabilities,
        fb: o.fallback,
        fr: o.fallbackReason,
        ex: b.explain ? o.explanation : null,
        em: o.explanationMethod,
        w: v.warnings.length ? v.warnings : null,
        e: null,
      });
    });
    await hooks.beforeCommit?.();
    const inserted = await store(b, results);
    await hooks.afterCommit?.();
    const m = deps.metrics;
    m.chunkSeconds.observe((performance.now() - t0) / 1000);
    if (inserted) {
      const errors = results.filter((r) => r.e).length;
      const fb = results.filter((r) => r.fb).length;
      m.batchRows.inc({ model: b.modelName, result: 'error' }, errors);
      m.batchRows.inc({ model: b.modelName, result: 'fallback' }, fb);
      m.batchRows.inc({ model: b.modelName, result: 'ok' }, results.length - errors - fb);
    }
    return { inserted };
  }

  /** After the last attempt failed: the chunk's missing rows become row errors, so the batch ends (PARTIAL). */
  async function giveUp(orgId: string, batchId: string, chunk: number, reason: string): Promise<void> {
    const b = await repo.findBatch(db, orgId, batchId);
    if (!b || TERMINAL.has(b.status)) return;
    const from = chunk * b.chunkSize;
    const rows = await repo.chunkRows(db, b.id, from, Math.min(b.totalRows, from + b.chunkSize));
    const empty = { pb: null, sc: null, l: null, pr: null, fb: false, fr: null, ex: null, em: null, w: null };
    await store(
      b,
      rows.map((r) => ({ ...empty, i: r.rowIndex, s: r.subjectId, e: `scoring failed: ${reason}`.slice(0, 300) })),
    );
  }

  /**
   * Re-creates the jobs of chunks still owed by batches that have not moved for SCORING_STALL_MS
   * (lost jobs, a flushed Redis, an enqueue that failed after commit); a failed job is retried.
   * Deterministic ids make this a no-op for jobs that still exist.
   */
  async function reconcile(opts: { orgIds?: readonly string[] } = {}): Promise<number> {
    let repaired = 0;
    for (const b of await repo.stalledBatches(db, new Date(Date.now() - config.stallMs))) {
      if (opts.orgIds && !opts.orgIds.includes(b.orgId)) continue;
      const queue = deps.queues.queue(scoringChunkJob.queue);
      const missing: number[] = [];
      for (const chunk of await repo.incompleteChunks(db, b)) {
        const job = await queue.getJob(chunkJobId(b.id, chunk));
        if (!job) missing.push(chunk);
        else if ((await job.getState()) === 'failed') {
          await job.retry('failed');
          repaired++;
        }
      }
      await enqueueChunks(deps.queues, b, missing);
      repaired += missing.length;
    }
    if (repaired) deps.logger.info({ repaired }, 'scoring reconciler re-created lost chunk jobs');
    return repaired;
  }

  /**
   * Deletes batches finished more than SCORING_RESULT_RETENTION_DAYS ago (rows and results cascade),
   * a few batches per statement (at most RETENTION_BATCHES, so at most that many times
   * SCORING_BATCH_MAX_ROWS rows and results each), until none is left or a sweep has deleted
   * RETENTION_MAX_PER_RUN (the next hourly run goes on).
   */
  const retention = async () => {
    const before = new Date(Date.now() - config.retentionDays * 86_400_000);
    let total = 0;
    while (total < RETENTION_MAX_PER_RUN) {
      const n = await repo.deleteFinishedBefore(db, before, RETENTION_BATCHES);
      total += n;
      if (n < RETENTION_BATCHES) break;
    }
    if (total) deps.logger.info({ deleted: total }, 'scoring batches past retention deleted');
    return total;
  };

  return { run, giveUp, reconcile, retention };
}

export type Chunks = ReturnType<typeof createChunks>;
