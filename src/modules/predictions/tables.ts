import { sql } from 'drizzle-orm';
import {
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { ModelCard } from './card.js';
import type { Contribution } from './scorer.js';

export const MODEL_STATUSES = ['active', 'shadow', 'retired', 'failed_to_load'] as const;
export const BATCH_STATUSES = ['queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** The model registry, mirrored from the cards under models/ at boot (global: models are not per org). */
export const predictionModels = pgTable(
  'prediction_models',
  {
    name: text('name').notNull(),
    version: text('version').notNull(),
    task: text('task').notNull(),
    status: text('status', { enum: MODEL_STATUSES }).notNull().default('active'),
    card: jsonb('card').$type<ModelCard>().notNull(),
    weightsSha256: text('weights_sha256').notNull(),
    registeredAt: timestamp('registered_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.name, t.version] })],
);

/** Aliases (`champion`, `challenger`) naming one version of a model each; routing uses them. */
export const modelAliases = pgTable(
  'model_aliases',
  {
    name: text('name').notNull(),
    alias: text('alias').notNull(),
    version: text('version').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.name, t.alias] })],
);

/** One real-time score (`score`), patient data: read only through the service. */
export const predictions = pgTable(
  'predictions',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    subjectId: text('subject_id'),
    modelName: text('model_name').notNull(),
    /** The artifact version the request resolved to (the fallback id is in `producedBy`). */
    modelVersion: text('model_version').notNull(),
    producedBy: text('produced_by').notNull(),
    score: doublePrecision('score'),
    label: text('label'),
    probabilities: jsonb('probabilities').$type<Array<{ label: string; probability: number }>>(),
    fallback: boolean('fallback').notNull(),
    fallbackReason: text('fallback_reason'),
    explanation: jsonb('explanation').$type<Contribution[]>().notNull(),
    explanationMethod: text('explanation_method'),
    warnings: jsonb('warnings').$type<string[]>().notNull(),
    requestedBy: text('requested_by').notNull(),
    clientKey: text('client_key'),
    /** sha256 of the request (model, features, options): a reused client key must match it. */
    requestSha256: text('request_sha256').notNull(),
    /** A challenger's score of the same request: stored and compared, never returned or pushed. */
    shadowOf: uuid('shadow_of'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('predictions_client_key_idx').on(t.orgId, t.requestedBy, t.clientKey),
    index('predictions_subject_idx').on(t.orgId, t.subjectId, t.createdAt),
  ],
);

/** A batch scoring request: counters are the truth of its progress (advanced with the results). */
export const scoringBatches = pgTable(
  'scoring_batches',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    submittedBy: text('submitted_by').notNull(),
    clientBatchId: text('client_batch_id').notNull(),
    requestSha256: text('request_sha256').notNull(),
    modelName: text('model_name').notNull(),
    modelVersion: text('model_version').notNull(),
    explain: boolean('explain').notNull(),
    topK: integer('top_k').notNull(),
    status: text('status', { enum: BATCH_STATUSES }).notNull().default('queued'),
    totalRows: integer('total_rows').notNull(),
    chunkSize: integer('chunk_size').notNull(),
    chunks: integer('chunks').notNull(),
    processedRows: integer('processed_rows').notNull().default(0),
    failedRows: integer('failed_rows').notNull().default(0),
    fallbackRows: integer('fallback_rows').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    /** Last change of the counters (the reconciler's stall clock). */
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    /** When the last progress event was appended (progress events are rate-bounded). */
    progressAt: timestamp('progress_at', { withTimezone: true }),
    error: text('error'),
  },
  (t) => [
    uniqueIndex('scoring_batches_client_idx').on(t.orgId, t.submittedBy, t.clientBatchId),
    index('scoring_batches_open_idx').on(t.updatedAt).where(sql`${t.status} in ('queued', 'running')`),
    index('scoring_batches_finished_idx').on(t.finishedAt),
  ],
);

/** The submitted rows (job payloads carry ids only; the features live here). */
export const scoringBatchRows = pgTable(
  'scoring_batch_rows',
  {
    batchId: uuid('batch_id')
      .notNull()
      .references(() => scoringBatches.id, { onDelete: 'cascade' }),
    rowIndex: integer('row_index').notNull(),
    subjectId: text('subject_id'),
    features: jsonb('features').notNull(),
  },
  (t) => [primaryKey({ columns: [t.batchId, t.rowIndex] })],
);

/** One result per batch row; the primary key makes a retried chunk a no-op. */
export const scoringResults = pgTable(
  'scoring_results',
  {
    batchId: uuid('batch_id')
      .notNull()
      .references(() => scoringBatches.id, { onDelete: 'cascade' }),
    rowIndex: integer('row_index').notNull(),
    subjectId: text('subject_id'),
    producedBy: text('produced_by'),
    score: doublePrecision('score'),
    label: text('label'),
    probabilities: jsonb('probabilities').$type<Array<{ label: string; probability: number }>>(),
    fallback: boolean('fallback').notNull().default(false),
    fallbackReason: text('fallback_reason'),
    explanation: jsonb('explanation').$type<Contribution[]>(),
    explanationMethod: text('explanation_method'),
    warnings: jsonb('warnings').$type<string[]>(),
    error: text('error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.batchId, t.rowIndex] })],
);

export type PredictionRow = typeof predictions.$inferSelect;
export type NewPrediction = typeof predictions.$inferInsert;
export type BatchRow = typeof scoringBatches.$inferSelect;
export type ResultRow = typeof scoringResults.$inferSelect;

/**
 * A risk watch of an organisation: tell subscribers when a subject's score of `modelName` crosses
 * `enterAt` from below (re-armed only once it falls below `exitAt`; a new entry within
 * `cooldownSeconds` of the last one is suppressed). Null `subjectIds`: every subject of the org.
 */
export const riskRules = pgTable(
  'risk_rules',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    modelName: text('model_name').notNull(),
    enterAt: doublePrecision('enter_at').notNull(),
    exitAt: doublePrecision('exit_at').notNull(),
    cooldownSeconds: integer('cooldown_seconds').notNull(),
    subjectIds: text('subject_ids').array(),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('risk_rules_org_model_idx').on(t.orgId, t.modelName)],
);

/** The durable state of one (rule, subject): whether it is in high risk and when it last entered. */
export const riskRuleStates = pgTable(
  'risk_rule_states',
  {
    ruleId: uuid('rule_id')
      .notNull()
      .references(() => riskRules.id, { onDelete: 'cascade' }),
    subjectId: text('subject_id').notNull(),
    orgId: text('org_id').notNull(),
    high: boolean('high').notNull().default(false),
    lastEnteredAt: timestamp('last_entered_at', { withTimezone: true }),
    lastScore: doublePrecision('last_score'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.ruleId, t.subjectId] })],
);

export type RiskRuleRow = typeof riskRules.$inferSelect;
