import { z } from 'zod';
import { defineJob } from '../../jobs/define.js';
import { defineStream } from '../../realtime/stream.js';
import type { Contribution } from './scorer.js';
import type { BatchRow, BatchStatus, PredictionRow } from './tables.js';

/** A stored prediction as queries and events carry it (no request hash or client key). */
export interface PredictionSnapshot {
  id: string;
  orgId: string;
  subjectId: string | null;
  modelName: string;
  modelVersion: string;
  producedBy: string;
  score: number | null;
  label: string | null;
  probabilities: Array<{ label: string; probability: number }> | null;
  fallback: boolean;
  fallbackReason: string | null;
  explanation: Contribution[];
  explanationMethod: string | null;
  warnings: string[];
  createdAt: string;
}

export const toPredictionSnapshot = (r: PredictionRow): PredictionSnapshot => ({
  id: r.id,
  orgId: r.orgId,
  subjectId: r.subjectId,
  modelName: r.modelName,
  modelVersion: r.modelVersion,
  producedBy: r.producedBy,
  score: r.score,
  label: r.label,
  probabilities: r.probabilities ?? null,
  fallback: r.fallback,
  fallbackReason: r.fallbackReason,
  explanation: r.explanation,
  explanationMethod: r.explanationMethod,
  warnings: r.warnings,
  createdAt: r.createdAt.toISOString(),
});

/** A scoring batch as progress events and queries carry it (counters as committed). */
export interface BatchSnapshot {
  id: string;
  orgId: string;
  submittedBy: string;
  clientBatchId: string;
  modelName: string;
  modelVersion: string;
  explain: boolean;
  status: BatchStatus;
  totalRows: number;
  processedRows: number;
  failedRows: number;
  fallbackRows: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;
export const toBatchSnapshot = (b: BatchRow): BatchSnapshot => ({
  id: b.id,
  orgId: b.orgId,
  submittedBy: b.submittedBy,
  clientBatchId: b.clientBatchId,
  modelName: b.modelName,
  modelVersion: b.modelVersion,
  explain: b.explain,
  status: b.status,
  totalRows: b.totalRows,
  processedRows: b.processedRows,
  failedRows: b.failedRows,
  fallbackRows: b.fallbackRows,
  createdAt: b.createdAt.toISOString(),
  startedAt: iso(b.startedAt),
  finishedAt: iso(b.finishedAt),
  error: b.error,
});

export const TERMINAL: ReadonlySet<BatchStatus> = new Set(['succeeded', 'partial', 'failed', 'cancelled']);

/** Durable events of one subject's stream: every prediction about the patient. */
export interface SubjectEventPayloads {
  PredictionAdded: { prediction: PredictionSnapshot };
}

/** The ledger stream of one subject (patient) of an organisation. */
export const subjectStream = defineStream<{ orgId: string; subjectId: string }, SubjectEventPayloads>({
  name: (k) => `subject:${k.orgId}:${k.subjectId}`,
});

/** Durable events of a batch's stream: its snapshot when queued, on progress (rate-bounded) and at the end. */
export interface BatchEventPayloads {
  BatchQueued: { batch: BatchSnapshot };
  BatchProgress: { batch: BatchSnapshot };
  BatchCompleted: { batch: BatchSnapshot };
}

/** The ledger stream of one scoring batch, keyed by batch id. */
export const batchStream = defineStream<string, BatchEventPayloads>({ name: (id) => `batch:${id}` });

/** One chunk of a batch to score. Ids only: the rows are read from PostgreSQL. */
export const scoringChunkJob = defineJob({
  queue: 'scoring',
  name: 'scoring-chunk',
  schema: z.object({ batchId: z.string().uuid(), orgId: z.string().min(1).max(200), chunk: z.number().int().min(0) }),
  defaults: { attempts: 3, backoff: { type: 'exponential', delay: 500 } },
});

/** Deterministic id of a chunk job (BullMQ 6 refuses custom ids with a single ':'). */
export const chunkJobId = (batchId: string, chunk: number) => `scoring-chunk-${batchId}-${chunk}`;

/** Idempotency key of the submitter's completion notification. */
export const batchNotificationKey = (batchId: string) => `scoring-batch:${batchId}`;

/** A subject crossed a risk rule's threshold: into high risk (`entered`) or back below its exit threshold (`exited`). */
export interface RiskCrossing {
  ruleId: string;
  subjectId: string;
  direction: 'entered' | 'exited';
  /** The subject's previous score under this rule (null for its first). */
  from: number | null;
  to: number;
  prediction: PredictionSnapshot;
}

export interface RiskEventPayloads {
  RiskCrossed: RiskCrossing;
}

/** The ledger stream of one risk rule: its crossings in commit order (replay gives exactly the missed ones). */
export const riskStream = defineStream<string, RiskEventPayloads>({ name: (ruleId) => `risk:${ruleId}` });
