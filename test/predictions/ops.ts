// Operations and helpers shared by the prediction tests (not a test file).
import { eq, sql } from 'drizzle-orm';
import { expect } from 'vitest';
import { notifications } from '../../src/modules/notifications/tables.js';
import { scoringDuties } from '../../src/modules/predictions/jobs.js';
import { scoringBatches, scoringResults } from '../../src/modules/predictions/tables.js';
import { startWorkers, type Workers } from '../../src/worker.js';
import { gql } from '../harness/clients.js';
import type { SeededUser } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';

export const PREDICTION = `id modelVersion subjectId score label probabilities { label probability } fallback fallbackReason
  explanation { feature value contribution unit } explanationMethod warnings createdAt model { id name version aliases }`;

export const SCORE = `mutation($input: ScoreInput!){ score(input:$input){ ${PREDICTION} } }`;

export const BATCH = `id clientBatchId status totalRows processedRows failedRows fallbackRows progress createdAt startedAt finishedAt
  model { id }`;
export const SUBMIT = `mutation($input: ScoringBatchInput!){ submitScoringBatch(input:$input){ ${BATCH} } }`;
export const GET_BATCH = `query($id: ID!, $first: Int, $after: String){ scoringBatch(id:$id){ ${BATCH}
  results(first:$first, after:$after){ edges { cursor node { rowIndex subjectId modelVersion score label fallback error warnings
    explanation { feature contribution } explanationMethod } } pageInfo { hasNextPage endCursor } } } }`;
export const PROGRESS = `subscription($id: ID!){ scoringBatchProgress(batchId:$id){ ${BATCH} } }`;

/** A typical risk-30d feature row (every required feature present). */
export const riskFeatures = (over: Record<string, unknown> = {}) => ({
  lengthOfStay: 5,
  acuteAdmission: true,
  charlson: 3,
  edVisits6m: 1,
  age: 78,
  egfr: 55,
  systolicBp: 128,
  heartRate: 88,
  spo2: 94,
  activeMedications: 9,
  livesAlone: true,
  priorAdmissions12m: 2,
  ...over,
});

export const urgencyFeatures = (over: Record<string, unknown> = {}) => ({
  respiratoryRate: 24,
  spo2: 92,
  onOxygen: false,
  systolicBp: 105,
  pulse: 112,
  consciousness: 'ALERT',
  temperature: 38.6,
  chestPain: true,
  ...over,
});

/** Scores as `by` and returns the prediction (fails the test on errors). */
export async function score(app: TestApp, by: SeededUser, input: Record<string, unknown>) {
  const r = await gql(app, by.token, SCORE, { input });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.score as Record<string, any>;
}

/** `n` risk rows with subjects `s0..`; every `badEvery`-th row lacks a required feature. */
export const riskRows = (n: number, badEvery = 0) =>
  Array.from({ length: n }, (_, i) => ({
    subjectId: `s${i}`,
    features: badEvery && i % badEvery === badEvery - 1 ? { age: 50 } : riskFeatures({ age: 40 + (i % 50), lengthOfStay: i % 15 }),
  }));

export async function submit(app: TestApp, by: SeededUser, input: Record<string, unknown>) {
  const r = await gql(app, by.token, SUBMIT, { input });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.submitScoringBatch as Record<string, any>;
}

export async function batch(app: TestApp, by: SeededUser, id: string, first = 100, after?: string) {
  const r = await gql(app, by.token, GET_BATCH, { id, first, after });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.scoringBatch as Record<string, any> | null;
}

/** A real worker running the scoring duties on the app's container, its reconciler scoped to `orgIds`. */
export function scoringWorker(app: TestApp, orgIds: () => string[]): Workers {
  return startWorkers(app.container, scoringDuties(app.container.jobs!.predictions, app.config.predictions.reconcileMs, { orgIds }));
}

/** Ground truth of a batch in PostgreSQL: its counters and its stored results. */
export async function storedBatch(app: TestApp, batchId: string) {
  const db = app.container.database.db;
  const [b] = await db.select().from(scoringBatches).where(eq(scoringBatches.id, batchId));
  const [r] = await db
    .select({
      n: sql<number>`count(*)::int`,
      distinct: sql<number>`count(distinct row_index)::int`,
      errors: sql<number>`count(error)::int`,
    })
    .from(scoringResults)
    .where(eq(scoringResults.batchId, batchId));
  const [n] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(notifications)
    .where(eq(notifications.clientKey, `scoring-batch:${batchId}`));
  return { batch: b!, results: r!, notifications: n?.n ?? 0 };
}

/** The app's /metrics text. */
export const metricsText = async (app: TestApp) => (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();

/** The value of one sample of `name` whose labels include every `labels` pair (undefined when absent). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}
