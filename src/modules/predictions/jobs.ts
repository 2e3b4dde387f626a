import { type Duties, type JobImpl, implementJob } from '../../jobs/define.js';
import type { ModuleDeps, WorkerSide } from '../module.js';
import type { NotificationsService } from '../notifications/service.js';
import { type ChunkHooks, type Chunks, createChunks } from './chunks.js';
import { scoringChunkJob } from './events.js';
import type { PredictionMetrics } from './metrics.js';
import type { PredictionsService } from './service.js';

/**
 * The handler of `scoring-chunk`. PostgreSQL decides what is still owed (results keyed by row),
 * so a retried, stalled or duplicated job never stores or counts a row twice. On the last attempt
 * a failure turns the chunk's rows into row errors, so the batch still ends (PARTIAL).
 */
export function chunkJob(chunks: Pick<Chunks, 'run' | 'giveUp'>): JobImpl {
  return implementJob(scoringChunkJob, async ({ batchId, orgId, chunk }, { attempt, job }) => {
    try {
      return await chunks.run(orgId, batchId, chunk);
    } catch (err) {
      if (attempt < (job.opts.attempts ?? 1)) throw err;
      await chunks.giveUp(orgId, batchId, chunk, err instanceof Error ? err.message : String(err));
      return { inserted: 0, gaveUp: true };
    }
  });
}

/** The chunk handler, the reconciler of lost chunks and the retention sweep. */
export function scoringDuties(chunks: Chunks, everyMs: number, opts: { orgIds?: () => readonly string[] } = {}): Duties {
  return {
    jobs: [chunkJob(chunks)],
    periodic: [
      { name: 'scoring-reconciler', everyMs, run: async () => void (await chunks.reconcile({ orgIds: opts.orgIds?.() })) },
      { name: 'scoring-retention', everyMs: 3_600_000, run: async () => void (await chunks.retention()) },
    ],
  };
}

/** The predictions module's worker side: the chunk scorer (on this process's models) and its duties. */
export function predictionsWorker(
  d: ModuleDeps,
  u: { notifications: NotificationsService; predictions: PredictionsService & { metrics: PredictionMetrics } },
  hooks: ChunkHooks = {},
): WorkerSide<Chunks> {
  const chunks = createChunks(
    {
      db: d.db,
      commit: d.commit,
      queues: d.queues,
      logger: d.logger,
      config: d.config.predictions,
      predictions: u.predictions,
      notifications: u.notifications,
      metrics: u.predictions.metrics,
    },
    hooks,
  );
  return { side: chunks, duties: scoringDuties(chunks, d.config.predictions.reconcileMs) };
}
