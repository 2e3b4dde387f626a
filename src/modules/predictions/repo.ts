import { and, asc, eq, gt, inArray, isNull, lt, sql } from 'drizzle-orm';
import { type Db, type Executor, rowsOf } from '../../db/client.js';
import { olderThanRow } from '../../db/keyset.js';
import type { ModelCard } from './card.js';
import {
  type BatchRow,
  type NewPrediction,
  type PredictionRow,
  type RiskRuleRow,
  modelAliases,
  riskRuleStates,
  riskRules,
  predictionModels,
  predictions,
  scoringBatchRows,
  scoringBatches,
  scoringResults,
} from './tables.js';

// ── registry (global: models are shared by every organisation) ──

/** Mirrors cards into the registry: new versions are added, cards refreshed; aliases only seeded (promotions stay). */
export async function mirrorCards(db: Executor, cards: readonly ModelCard[]): Promise<void> {
  for (const card of cards) {
    await db
      .insert(predictionModels)
      .values({
        name: card.name,
        version: card.version,
        task: card.task,
        card,
        weightsSha256: card.weightsSha256,
        status: card.aliases.includes('challenger') ? 'shadow' : 'active',
      })
      .onConflictDoUpdate({
        target: [predictionModels.name, predictionModels.version],
        set: { card, task: card.task, weightsSha256: card.weightsSha256, updatedAt: new Date() },
      });
    for (const alias of card.aliases)
      await db.insert(modelAliases).values({ name: card.name, alias, version: card.version }).onConflictDoNothing();
  }
}

export const listModels = (db: Executor) =>
  db.select().from(predictionModels).orderBy(asc(predictionModels.name), asc(predictionModels.version));
export const listAliases = (db: Executor) => db.select().from(modelAliases);

export async function aliasVersion(db: Executor, name: string, alias: string): Promise<string | undefined> {
  const [r] = await db
    .select({ version: modelAliases.version })
    .from(modelAliases)
    .where(and(eq(modelAliases.name, name), eq(modelAliases.alias, alias)));
  return r?.version;
}

/**
 * Points `alias` of model `name` at `version` (which must be registered); returns the version it
 * named before (undefined when new), or `missing` when the version is not in the registry.
 */
export async function setAlias(
  db: Db,
  name: string,
  alias: string,
  version: string,
): Promise<{ previous: string | undefined } | 'missing'> {
  return db.transaction(async (tx) => {
    const [known] = await tx
      .select({ version: predictionModels.version })
      .from(predictionModels)
      .where(and(eq(predictionModels.name, name), eq(predictionModels.version, version)));
    if (!known) return 'missing';
    const [prev] = await tx
      .select({ version: modelAliases.version })
      .from(modelAliases)
      .where(and(eq(modelAliases.name, name), eq(modelAliases.alias, alias)))
      .for('update');
    await tx
      .insert(modelAliases)
      .values({ name, alias, version })
      .onConflictDoUpdate({ target: [modelAliases.name, modelAliases.alias], set: { version, updatedAt: new Date() } });
    return { previous: prev?.version };
  });
}

// ── real-time predictions ──

export type PredictionRowOf = PredictionRow;

/**
 * Inserts many predictions in ONE statement with one jsonb parameter (no per-value query building:
 * this is the `score` hot path). Rows whose client key is already taken are skipped. Returns the
 * rows inserted, with the database's `createdAt`.
 */
export async function insertPredictions(tx: Executor, rows: readonly NewPrediction[]): Promise<PredictionRow[]> {
  if (rows.length === 0) return [];
  // every column but created_at, with the nullable ones explicit: the JSON sent and the rows returned
  const full = rows.map(
    (r): Omit<PredictionRow, 'createdAt'> => ({
      id: r.id as string,
      orgId: r.orgId,
      subjectId: r.subjectId ?? null,
      modelName: r.modelName,
      modelVersion: r.modelVersion,
      producedBy: r.producedBy,
      score: r.score ?? null,
      label: r.label ?? null,
      probabilities: r.probabilities ?? null,
      fallback: r.fallback,
      fallbackReason: r.fallbackReason ?? null,
      explanation: r.explanation,
      explanationMethod: r.explanationMethod ?? null,
      warnings: r.warnings,
      requestedBy: r.requestedBy,
      clientKey: r.clientKey ?? null,
      requestSha256: r.requestSha256,
      shadowOf: r.shadowOf ?? null,
    }),
  );
  const res = await tx.execute(sql`
    insert into ${predictions} (id, org_id, subject_id, model_name, model_version, produced_by, score, label, probabilities, fallback,
      fallback_reason, explanation, explanation_method, warnings, requested_by, client_key, request_sha256, shadow_of)
    select r.id, r."orgId", r."subjectId", r."modelName", r."modelVersion", r."producedBy", r.score, r.label, r.probabilities, r.fallback,
      r."fallbackReason", r.explanation, r."explanationMethod", r.warnings, r."requestedBy", r."clientKey", r."requestSha256", r."shadowOf"
    from jsonb_to_recordset(${JSON.stringify(full)}::jsonb) as r(id uuid, "orgId" text, "subjectId" text, "modelName" text,
      "modelVersion" text, "producedBy" text, score float8, label text, probabilities jsonb, fallback boolean, "fallbackReason" text,
      explanation jsonb, "explanationMethod" text, warnings jsonb, "requestedBy" text, "clientKey" text, "requestSha256" text, "shadowOf" uuid)
    on conflict do nothing
    returning id, created_at`);
  const created = new Map(rowsOf<{ id: string; created_at: Date | string }>(res).map((r) => [r.id, new Date(r.created_at)]));
  const out: PredictionRow[] = [];
  for (const r of full) {
    const at = created.get(r.id);
    if (at) out.push({ ...r, createdAt: at });
  }
  return out;
}

export async function predictionByKey(db: Executor, orgId: string, requestedBy: string, clientKey: string) {
  const [r] = await db
    .select()
    .from(predictions)
    .where(and(eq(predictions.orgId, orgId), eq(predictions.requestedBy, requestedBy), eq(predictions.clientKey, clientKey)));
  return r;
}

export async function findPrediction(db: Executor, orgId: string, id: string) {
  const [r] = await db
    .select()
    .from(predictions)
    .where(and(eq(predictions.orgId, orgId), eq(predictions.id, id)));
  return r;
}

// ── batches ──

export async function batchByKey(db: Executor, orgId: string, submittedBy: string, clientBatchId: string) {
  const [r] = await db
    .select()
    .from(scoringBatches)
    .where(
      and(eq(scoringBatches.orgId, orgId), eq(scoringBatches.submittedBy, submittedBy), eq(scoringBatches.clientBatchId, clientBatchId)),
    );
  return r;
}

export async function findBatch(db: Executor, orgId: string, id: string): Promise<BatchRow | undefined> {
  const [r] = await db
    .select()
    .from(scoringBatches)
    .where(and(eq(scoringBatches.orgId, orgId), eq(scoringBatches.id, id)));
  return r;
}

export async function insertBatch(tx: Executor, row: typeof scoringBatches.$inferInsert): Promise<BatchRow | undefined> {
  const [r] = await tx.insert(scoringBatches).values(row).onConflictDoNothing().returning();
  return r;
}

/** Stores the submitted rows in one statement per 5,000 (one jsonb parameter each). */
export async function insertBatchRows(tx: Executor, batchId: string, rows: ReadonlyArray<{ subjectId: string | null; features: unknown }>) {
  for (let from = 0; from < rows.length; from += 5_000) {
    const part = rows.slice(from, from + 5_000).map((r, k) => ({ i: from + k, s: r.subjectId, f: r.features }));
    await tx.execute(sql`insert into ${scoringBatchRows} (batch_id, row_index, subject_id, features)
      select ${batchId}::uuid, r.i, r.s, r.f from jsonb_to_recordset(${JSON.stringify(part)}::jsonb) as r(i int, s text, f jsonb)`);
  }
}

/** The rows of one chunk, in order (the batch id was checked against its org by the caller). */
export const chunkRows = (db: Executor, batchId: string, from: number, to: number) =>
  db
    .select({ rowIndex: scoringBatchRows.rowIndex, subjectId: scoringBatchRows.subjectId, features: scoringBatchRows.features })
    .from(scoringBatchRows)
    .where(and(eq(scoringBatchRows.batchId, batchId), sql`${scoringBatchRows.rowIndex} >= ${from}`, lt(scoringBatchRows.rowIndex, to)))
    .orderBy(asc(scoringBatchRows.rowIndex));

/** A stored result of one row, as the chunk writes it. */
export interface ResultInput {
  i: number;
  s: string | null;
  pb: string | null;
  sc: number | null;
  l: string | null;
  pr: unknown;
  fb: boolean;
  fr: string | null;
  ex: unknown;
  em: string | null;
  w: string[] | null;
  e: string | null;
}

/**
 * Writes a chunk's results and advances the batch counters by the rows actually inserted, in ONE
 * statement: a retried chunk inserts nothing and counts nothing. The chunk that brings processed
 * to total sets the terminal status. Returns how many rows this call inserted.
 */
export async function recordChunk(tx: Executor, orgId: string, batchId: string, results: readonly ResultInput[]): Promise<number> {
  const res = await tx.execute(sql`
    with ins as (
      insert into ${scoringResults} (batch_id, row_index, subject_id, produced_by, score, label, probabilities, fallback, fallback_reason, explanation, explanation_method, warnings, error)
      select ${batchId}::uuid, r.i, r.s, r.pb, r.sc, r.l, r.pr, coalesce(r.fb, false), r.fr, r.ex, r.em, r.w, r.e
      from jsonb_to_recordset(${JSON.stringify(results)}::jsonb)
        as r(i int, s text, pb text, sc float8, l text, pr jsonb, fb boolean, fr text, ex jsonb, em text, w jsonb, e text)
      on conflict (batch_id, row_index) do nothing
      returning fallback, error
    ), c as (
      select count(*)::int as n, (count(*) filter (where error is not null))::int as f, (count(*) filter (where fallback))::int as fb from ins
    )
    update ${scoringBatches} b set
      processed_rows = b.processed_rows + c.n,
      failed_rows = b.failed_rows + c.f,
      fallback_rows = b.fallback_rows + c.fb,
      status = case
        when b.processed_rows + c.n < b.total_rows then 'running'
        when b.failed_rows + c.f >= b.total_rows then 'failed'
        when b.failed_rows + c.f > 0 then 'partial'
        else 'succeeded' end,
      started_at = coalesce(b.started_at, now()),
      finished_at = case when b.processed_rows + c.n >= b.total_rows then coalesce(b.finished_at, clock_timestamp()) else null end,
      updated_at = now()
    from c
    where b.id = ${batchId}::uuid and b.org_id = ${orgId} and b.status in ('queued', 'running')
    returning c.n as n`);
  return rowsOf<{ n: number }>(res)[0]?.n ?? 0;
}

export async function markProgressEvent(tx: Executor, batchId: string, at: Date) {
  await tx.update(scoringBatches).set({ progressAt: at }).where(eq(scoringBatches.id, batchId));
}

/** Open batches whose counters have not moved since `before` (the reconciler's candidates). */
export const stalledBatches = (db: Executor, before: Date, limit = 50) =>
  db
    .select()
    .from(scoringBatches)
    .where(and(inArray(scoringBatches.status, ['queued', 'running']), lt(scoringBatches.updatedAt, before)))
    .orderBy(asc(scoringBatches.updatedAt))
    .limit(limit);

/** Chunk numbers of a batch with fewer results than rows (the chunks still owed). */
export async function incompleteChunks(db: Executor, b: Pick<BatchRow, 'id' | 'chunkSize' | 'totalRows' | 'chunks'>): Promise<number[]> {
  const res = await db.execute(sql`select (row_index / ${b.chunkSize})::int as chunk, count(*)::int as n
    from ${scoringResults} where batch_id = ${b.id}::uuid group by 1`);
  const done = new Map(rowsOf<{ chunk: number; n: number }>(res).map((r) => [r.chunk, r.n]));
  const owed: number[] = [];
  for (let c = 0; c < b.chunks; c++) {
    const rows = Math.min(b.chunkSize, b.totalRows - c * b.chunkSize);
    if ((done.get(c) ?? 0) < rows) owed.push(c);
  }
  return owed;
}

/** A page of results in row order after `afterIndex`. */
export const pageResults = (db: Executor, batchId: string, afterIndex: number, limit: number) =>
  db
    .select()
    .from(scoringResults)
    .where(and(eq(scoringResults.batchId, batchId), gt(scoringResults.rowIndex, afterIndex)))
    .orderBy(asc(scoringResults.rowIndex))
    .limit(limit);

/** Deletes finished batches (rows and results cascade) older than `before`; returns how many. */
/**
 * Deletes up to `limit` batches finished before `before` (their rows and results cascade), oldest
 * first, skipping batches another sweep holds. Bounded, so one statement never deletes a backlog's
 * millions of rows in one go (a batch holds up to SCORING_BATCH_MAX_ROWS rows and as many results).
 */
export async function deleteFinishedBefore(db: Executor, before: Date, limit: number): Promise<number> {
  const old = db
    .select({ id: scoringBatches.id })
    .from(scoringBatches)
    .where(lt(scoringBatches.finishedAt, before))
    .orderBy(asc(scoringBatches.finishedAt))
    .limit(limit)
    .for('update', { skipLocked: true });
  const r = await db.delete(scoringBatches).where(inArray(scoringBatches.id, old)).returning({ id: scoringBatches.id });
  return r.length;
}

// ── risk rules ──

export async function insertRiskRule(db: Executor, row: typeof riskRules.$inferInsert): Promise<RiskRuleRow> {
  const [r] = await db.insert(riskRules).values(row).returning();
  return r as RiskRuleRow;
}

export async function findRiskRule(db: Executor, orgId: string, id: string): Promise<RiskRuleRow | undefined> {
  const [r] = await db
    .select()
    .from(riskRules)
    .where(and(eq(riskRules.orgId, orgId), eq(riskRules.id, id)));
  return r;
}

/** Every rule of these organisations on these models (a group of scores reads them in one query). */
export const rulesForModels = (db: Executor, orgIds: string[], modelNames: string[]) =>
  db
    .select()
    .from(riskRules)
    .where(and(inArray(riskRules.orgId, orgIds), inArray(riskRules.modelName, modelNames)));

/** The (rule, subject) state, locked until commit (created low when new): transitions serialise. */
export async function lockRuleState(tx: Executor, orgId: string, ruleId: string, subjectId: string) {
  await tx.insert(riskRuleStates).values({ ruleId, subjectId, orgId }).onConflictDoNothing();
  const [r] = await tx
    .select()
    .from(riskRuleStates)
    .where(and(eq(riskRuleStates.ruleId, ruleId), eq(riskRuleStates.subjectId, subjectId)))
    .for('update');
  return r!;
}

export async function saveRuleState(
  tx: Executor,
  ruleId: string,
  subjectId: string,
  set: { high: boolean; lastEnteredAt: Date | null; lastScore: number },
) {
  await tx
    .update(riskRuleStates)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(riskRuleStates.ruleId, ruleId), eq(riskRuleStates.subjectId, subjectId)));
}

/** A subject's predictions, newest first, keyset-paged by (createdAt, id). */
export const pagePredictions = (
  db: Executor,
  orgId: string,
  subjectId: string,
  opts: { limit: number; afterId?: string; modelName?: string },
) =>
  db
    .select()
    .from(predictions)
    .where(
      and(
        eq(predictions.orgId, orgId),
        eq(predictions.subjectId, subjectId),
        isNull(predictions.shadowOf),
        opts.modelName ? eq(predictions.modelName, opts.modelName) : undefined,
        olderThanRow(predictions, orgId, opts.afterId),
      ),
    )
    .orderBy(sql`${predictions.createdAt} desc, ${predictions.id} desc`)
    .limit(opts.limit);

/** Shadow scores of a prediction (challenger results of the same request). */
export const shadowsOf = (db: Executor, orgId: string, predictionId: string) =>
  db
    .select()
    .from(predictions)
    .where(and(eq(predictions.orgId, orgId), eq(predictions.shadowOf, predictionId)));
