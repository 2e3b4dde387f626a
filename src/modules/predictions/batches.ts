import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Queues } from '../../jobs/queues.js';
import type { Commit } from '../../realtime/commit.js';
import type { StreamSpec } from '../../realtime/stream.js';
import type { CursorCodec } from '../../shared/cursor.js';
import { conflict, forbidden, notFound } from '../../shared/errors.js';
import { isUuid, newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import { clampPage, parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import { type BatchSnapshot, batchStream, chunkJobId, scoringChunkJob, toBatchSnapshot } from './events.js';
import * as repo from './repo.js';
import { type PredictionsService, modelRef, requestHash, topK } from './service.js';
import type { BatchRow } from './tables.js';

export interface BatchesDeps {
  db: Db;
  commit: Commit;
  cursors: CursorCodec;
  queues: Queues;
  logger: Logger;
  config: Config['predictions'];
  limits: Config['limits'];
  predictions: PredictionsService;
}

const SUBMITTERS = new Set<Viewer['role']>(['service', 'provider', 'admin']);

/** Who may see a batch, its progress and its results: the submitter, the org's admins and services. */
const mayRead = (viewer: Viewer, b: Pick<BatchRow, 'orgId' | 'submittedBy'>) =>
  b.orgId === viewer.orgId &&
  (b.submittedBy === viewer.userId || viewer.role === 'admin' || viewer.role === 'service' || viewer.role === 'system');

/** Enqueues every chunk of a batch (deterministic ids: chunks already queued are not added twice). */
export async function enqueueChunks(queues: Queues, b: Pick<BatchRow, 'id' | 'orgId'>, chunks: readonly number[]) {
  for (const chunk of chunks)
    await queues.add(scoringChunkJob, { batchId: b.id, orgId: b.orgId, chunk }, { jobId: chunkJobId(b.id, chunk) });
}

/** Batch scoring, API side: submit (rows stored, chunks enqueued after commit), read, watch progress. */
export function createBatchesService(deps: BatchesDeps) {
  const { db, commit, logger, config } = deps;
  const submitInput = z.object({
    model: modelRef,
    rows: z
      .array(z.object({ subjectId: z.string().trim().min(1).max(200).nullish(), features: z.unknown() }))
      .min(1, 'at least one row')
      .max(config.batchMaxRows, `at most ${config.batchMaxRows} rows (SCORING_BATCH_MAX_ROWS)`),
    clientBatchId: z.string().min(1).max(128),
    explain: z.boolean().nullish(),
    topK: topK.nullish(),
  });

  const readable = async (viewer: Viewer, id: string): Promise<BatchRow> => {
    const b = isUuid(id) ? await repo.findBatch(db, viewer.orgId, id) : undefined;
    if (!b || !mayRead(viewer, b)) throw notFound('ScoringBatch');
    return b;
  };

  return {
    /** Stores a batch and its rows and enqueues its chunks; the same clientBatchId returns the same batch. */
    async submit(viewer: Viewer, input: unknown): Promise<BatchSnapshot> {
      if (!SUBMITTERS.has(viewer.role)) throw forbidden('Only services, providers and admins can submit scoring batches.');
      const v = parseInput(submitInput, input);
      const { card } = await deps.predictions.resolve(v.model);
      const explain = v.explain ?? false;
      const k = v.topK ?? 3;
      const rows = v.rows.map((r) => ({ subjectId: r.subjectId ?? null, features: r.features ?? null }));
      const sha = requestHash([card.name, card.version, explain, k, rows]);
      const replay = (b: BatchRow) => {
        if (b.requestSha256 !== sha) throw conflict('clientBatchId was already used for a different batch.');
        return toBatchSnapshot(b);
      };
      const prior = await repo.batchByKey(db, viewer.orgId, viewer.userId, v.clientBatchId);
      if (prior) return replay(prior);
      const chunkSize = config.chunkSize;
      const chunks = Math.ceil(rows.length / chunkSize);
      const batch = await commit(async (tx, events) => {
        const b = await repo.insertBatch(tx, {
          id: newId(),
          orgId: viewer.orgId,
          submittedBy: viewer.userId,
          clientBatchId: v.clientBatchId,
          requestSha256: sha,
          modelName: card.name,
          modelVersion: card.version,
          explain,
          topK: k,
          totalRows: rows.length,
          chunkSize,
          chunks,
        });
        if (!b) return undefined;
        await repo.insertBatchRows(tx, b.id, rows);
        const snapshot = toBatchSnapshot(b);
        await batchStream.append(tx, events, { key: b.id, orgId: b.orgId, type: 'BatchQueued', payload: { batch: snapshot } });
        return b;
      });
      if (!batch) {
        const raced = await repo.batchByKey(db, viewer.orgId, viewer.userId, v.clientBatchId);
        if (!raced) throw new Error('batch insert conflicted without a prior row');
        return replay(raced);
      }
      // after commit (bounded wait); a failed or late add is picked up by the reconciler (from PostgreSQL)
      await deps.queues.afterCommit(
        () =>
          enqueueChunks(
            deps.queues,
            batch,
            Array.from({ length: chunks }, (_, i) => i),
          ),
        { batchId: batch.id },
        logger,
      );
      return toBatchSnapshot(batch);
    },

    /** A batch the viewer may read, or null (another org's or someone else's is null, not FORBIDDEN). */
    async get(viewer: Viewer, id: string): Promise<BatchSnapshot | null> {
      const b = isUuid(id) ? await repo.findBatch(db, viewer.orgId, id) : undefined;
      return b && mayRead(viewer, b) ? toBatchSnapshot(b) : null;
    },

    /** A page of a batch's results in row order (the viewer's access was checked by `get`). */
    async results(viewer: Viewer, batchId: string, args: { first?: number | null; after?: string | null }) {
      const b = await readable(viewer, batchId);
      const { limit } = clampPage({ first: args.first, after: args.after }, deps.limits);
      const scope = `batch-results:${b.id}`;
      const after = args.after ? deps.cursors.decodeNumber(scope, args.after) : -1;
      const rows = await repo.pageResults(db, b.id, after, limit + 1);
      const edges = rows.slice(0, limit).map((r) => ({ node: r, cursor: deps.cursors.encode(scope, r.rowIndex) }));
      return {
        edges,
        pageInfo: {
          hasNextPage: rows.length > limit,
          hasPreviousPage: after >= 0,
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    },

    /** Authorises `scoringBatchProgress`: the batch's stream, current snapshot first. */
    async openProgress(viewer: Viewer, batchId: string): Promise<StreamSpec> {
      const b = await readable(viewer, batchId);
      return batchStream.open(b.id, {
        orgId: b.orgId,
        scope: `batch:${b.id}`,
        toRoot: (ev) => ev.payload.batch,
        initial: async () => {
          const now = await repo.findBatch(db, b.orgId, b.id);
          return now ? [toBatchSnapshot(now)] : [];
        },
      });
    },
  };
}

export type BatchesService = ReturnType<typeof createBatchesService>;
