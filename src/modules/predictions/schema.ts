import { builder } from '../../graphql/builder.js';
import { requireViewer } from '../../graphql/context.js';
import type { FeatureSpec, ModelCard, ModelMetric } from './card.js';
import { type BatchSnapshot, type PredictionSnapshot, TERMINAL } from './events.js';
import type { Contribution } from './scorer.js';
import type { ResultRow } from './tables.js';

const upper = <T extends string>(values: readonly T[], describe: (v: T) => string) =>
  Object.fromEntries(values.map((v) => [v.toUpperCase(), { value: v, description: describe(v) }])) as Record<
    string,
    { value: T; description: string }
  >;

const ModelStatusEnum = builder.enumType('ModelStatus', {
  description: 'Lifecycle of a model version in this deployment (routing uses aliases, not status).',
  values: upper(['active', 'shadow', 'retired', 'failed_to_load'] as const, (v) =>
    v === 'failed_to_load' ? 'The artifact did not load or did not match its card: its fallback rule answers.' : `The version is ${v}.`,
  ),
});
const ModelTaskEnum = builder.enumType('ModelTask', {
  description: 'What a model outputs.',
  values: {
    RISK_SCORE: { value: 'risk_score', description: 'A risk from 0 to 100 (`Prediction.score`).' },
    CLASSIFICATION: { value: 'classification', description: 'A class with per-class probabilities (`Prediction.label`).' },
  } as const,
});
const FeatureTypeEnum = builder.enumType('FeatureType', {
  description: 'Type of a model input.',
  values: upper(['number', 'integer', 'boolean', 'category'] as const, (v) => `A ${v} value.`),
});
const ExplanationMethodEnum = builder.enumType('ExplanationMethod', {
  description: 'How feature contributions were computed, and in what unit.',
  values: {
    EXACT_LINEAR_SHAPLEY: {
      value: 'exact_linear_shapley',
      description: 'Coefficient × standardised value, in log-odds: exact Shapley values of a logistic model.',
    },
    GRADIENT_X_INPUT: { value: 'gradient_x_input', description: 'Gradient × input relative to the training mean (first-order).' },
    OCCLUSION: { value: 'occlusion', description: 'Predicted-class probability minus its value with the feature at its training mean.' },
    RULE_POINTS: { value: 'rule_points', description: 'The points the fallback rule (LACE or NEWS2) gave each input.' },
  } as const,
});
const FallbackReasonEnum = builder.enumType('FallbackReason', {
  description: 'Why a rule answered instead of the model.',
  values: upper(
    ['model_not_loaded', 'model_error', 'invalid_output', 'model_disabled'] as const,
    (v) => `The model ${v.replace('model_', '').replace('_', ' ')}.`,
  ),
});
const BatchStatusEnum = builder.enumType('ScoringBatchStatus', {
  description: 'Where a scoring batch is.',
  values: {
    QUEUED: { value: 'queued', description: 'Stored; no chunk has finished yet.' },
    RUNNING: { value: 'running', description: 'Some chunks have finished.' },
    SUCCEEDED: { value: 'succeeded', description: 'Every row has a result.' },
    PARTIAL: { value: 'partial', description: 'Every row was processed; some have an error instead of a result.' },
    FAILED: { value: 'failed', description: 'No row could be scored.' },
    CANCELLED: { value: 'cancelled', description: 'Stopped before the end.' },
  } as const,
});

const FeatureSpecType = builder.objectRef<FeatureSpec>('FeatureSpec').implement({
  description: 'One input of a model: name, type, unit and valid range (out-of-range values are clipped with a warning).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Key in `features`.' }),
    type: t.field({ type: FeatureTypeEnum, description: 'Value type.', resolve: (f) => f.type }),
    unit: t.exposeString('unit', { nullable: true, description: 'Unit of a numeric value.' }),
    required: t.exposeBoolean('required', {
      description: 'Missing required features are BAD_USER_INPUT; missing optional ones take the training mean.',
    }),
    min: t.exposeFloat('min', { nullable: true, description: 'Lowest value used (smaller ones are clipped).' }),
    max: t.exposeFloat('max', { nullable: true, description: 'Highest value used (larger ones are clipped).' }),
    categories: t.exposeStringList('categories', { nullable: true, description: 'Allowed values of a CATEGORY feature.' }),
    description: t.exposeString('description', { description: 'What the feature is.' }),
  }),
});

const ModelMetricType = builder.objectRef<ModelMetric>('ModelMetric').implement({
  description: 'A metric measured by the training script on held-out synthetic data.',
  fields: (t) => ({
    name: t.exposeString('name', {
      description: 'AUC, ECE, BRIER, MACRO_F1, ORACLE_AUC (the generator’s own probabilities), FALLBACK_AUC...',
    }),
    value: t.exposeFloat('value', { description: 'The value.' }),
    dataset: t.exposeString('dataset', { description: 'Which test set (generator, seed, size).' }),
  }),
});

type ModelView = {
  name: string;
  version: string;
  status: string;
  card: ModelCard;
  aliases: string[];
  loadedAt: Date | null;
  weightsSha256: string;
};

export const ModelType = builder.objectRef<ModelView>('Model').implement({
  description: 'A model version in the registry (mirrored from its model card), with its aliases and its status in this process.',
  fields: (t) => ({
    id: t.id({ description: '`name@version`.', resolve: (m) => `${m.name}@${m.version}` }),
    name: t.exposeString('name', { description: 'Model name, e.g. `risk-30d`.' }),
    version: t.exposeString('version', { description: 'Artifact version (semver).' }),
    aliases: t.exposeStringList('aliases', {
      description: 'Aliases naming this version, e.g. `champion`; `score` uses `champion` when no version is given.',
    }),
    status: t.field({
      type: ModelStatusEnum,
      description: 'Lifecycle status (FAILED_TO_LOAD when this process could not load it).',
      resolve: (m) => m.status as never,
    }),
    task: t.field({ type: ModelTaskEnum, description: 'What it outputs.', resolve: (m) => m.card.task }),
    description: t.string({ description: 'What it predicts, the output scale and its limits.', resolve: (m) => m.card.description }),
    intendedUse: t.string({
      description: 'Intended use. The shipped models are demonstrations on synthetic data, not medical devices.',
      resolve: (m) => m.card.intendedUse,
    }),
    featureSpec: t.field({ type: [FeatureSpecType], description: 'Inputs.', resolve: (m) => m.card.featureSpec }),
    outputSpec: t.field({
      type: 'JSON',
      description: 'Output mapping: `{kind: "sigmoid", scale: 100}` or `{kind: "softmax", classes: [...]}`.',
      resolve: (m) => m.card.output,
    }),
    metrics: t.field({
      type: [ModelMetricType],
      description: 'Held-out metrics from the training script.',
      resolve: (m) => m.card.metrics,
    }),
    trainingData: t.string({
      description: 'The dataset: generator, version, seeds and sizes.',
      resolve: ({ card: { trainingData: d } }) =>
        `${d.generator} v${d.generatorVersion} (synthetic): train seed ${d.trainSeed} × ${d.trainRows} rows, test seed ${d.testSeed} × ${d.testRows} rows`,
    }),
    artifactSha256: t.exposeString('weightsSha256', { description: 'sha256 of weights.bin, verified when the model loads.' }),
    fallback: t.string({
      description: 'The rule that answers when this model cannot (`lace@1`, `news2@1`).',
      resolve: (m) => m.card.fallback,
    }),
    loadedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When this process loaded it (null if it failed).',
      resolve: (m) => m.loadedAt,
    }),
  }),
});

const ClassProbability = builder.objectRef<{ label: string; probability: number }>('ClassProbability').implement({
  description: 'The probability of one class.',
  fields: (t) => ({
    label: t.exposeString('label', { description: 'Class.' }),
    probability: t.exposeFloat('probability', { description: 'Probability (classes sum to 1).' }),
  }),
});

const FeatureContribution = builder.objectRef<Contribution>('FeatureContribution').implement({
  description: 'How much one input moved the result, in the unit of the explanation method.',
  fields: (t) => ({
    feature: t.exposeString('feature', { description: 'Feature name.' }),
    value: t.field({ type: 'JSON', nullable: true, description: 'The input value used (after clipping).', resolve: (c) => c.value }),
    contribution: t.exposeFloat('contribution', { description: 'Signed contribution (log-odds, probability or points, per method).' }),
    unit: t.exposeString('unit', { nullable: true, description: 'Unit of the value.' }),
  }),
});

/** Fields a stored prediction and a batch result share. */
type Scored = Pick<
  PredictionSnapshot,
  'score' | 'label' | 'probabilities' | 'fallback' | 'fallbackReason' | 'explanation' | 'explanationMethod'
>;

export const PredictionType = builder.objectRef<PredictionSnapshot>('Prediction').implement({
  description: 'A stored score of one subject by one model version (or by its fallback rule, flagged).',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Prediction id.' }),
    model: t.field({
      type: ModelType,
      description: 'The model version the request resolved to.',
      resolve: async (p, _a, ctx) =>
        (await ctx.services.predictions.listModels()).find((m) => m.name === p.modelName && m.version === p.modelVersion) as ModelView,
    }),
    modelVersion: t.exposeString('producedBy', { description: 'What produced it: the model version, or the fallback rule id (`lace@1`).' }),
    subjectId: t.exposeID('subjectId', { nullable: true, description: 'The patient it is about.' }),
    ...scoredFields(t),
    warnings: t.exposeStringList('warnings', { description: 'E.g. "systolicBp clipped to 220".' }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was stored.', resolve: (p) => p.createdAt }),
  }),
});

// `t: any`: shared by two object types' field builders (Pothos builders are typed per object)
function scoredFields(t: any) {
  return {
    score: t.float({ nullable: true, description: 'RISK_SCORE models: risk from 0 to 100.', resolve: (p: Scored) => p.score }),
    label: t.string({
      nullable: true,
      description: 'CLASSIFICATION models: LOW, MEDIUM, HIGH or CRITICAL.',
      resolve: (p: Scored) => p.label,
    }),
    probabilities: t.field({
      type: [ClassProbability],
      nullable: true,
      description: 'CLASSIFICATION models: per-class probabilities (null from a rule).',
      resolve: (p: Scored) => p.probabilities,
    }),
    fallback: t.boolean({
      description: 'True when the rule-based fallback answered instead of the model.',
      resolve: (p: Scored) => p.fallback,
    }),
    fallbackReason: t.field({
      type: FallbackReasonEnum,
      nullable: true,
      description: 'Why the fallback answered.',
      resolve: (p: Scored) => p.fallbackReason as never,
    }),
    explanation: t.field({
      type: [FeatureContribution],
      description: 'Top contributions, largest |contribution| first (empty when not asked).',
      resolve: (p: Scored) => p.explanation ?? [],
    }),
    explanationMethod: t.field({
      type: ExplanationMethodEnum,
      nullable: true,
      description: 'How the explanation was computed.',
      resolve: (p: Scored) => p.explanationMethod as never,
    }),
  };
}

const ScoringResult = builder.objectRef<ResultRow>('ScoringResult').implement({
  description: 'The result of one batch row: a score, or an error (e.g. a missing required feature).',
  fields: (t) => ({
    rowIndex: t.exposeInt('rowIndex', { description: 'Position of the row in the submitted batch (from 0).' }),
    subjectId: t.exposeID('subjectId', { nullable: true, description: 'The row’s subject.' }),
    modelVersion: t.exposeString('producedBy', { nullable: true, description: 'The model version or fallback rule that produced it.' }),
    ...scoredFields(t),
    warnings: t.stringList({ description: 'Clipped values and ignored keys.', resolve: (r) => r.warnings ?? [] }),
    error: t.exposeString('error', { nullable: true, description: 'Why this row has no score.' }),
  }),
});

const ScoringBatch = builder.objectRef<BatchSnapshot>('ScoringBatch').implement({
  description: 'A batch of rows scored by workers in chunks. Counters are committed with the results, so they never run ahead of them.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Batch id.' }),
    clientBatchId: t.exposeString('clientBatchId', { description: 'The submitter’s idempotency key.' }),
    model: t.field({
      type: ModelType,
      description: 'The model version pinned for the whole batch.',
      resolve: async (b, _a, ctx) =>
        (await ctx.services.predictions.listModels()).find((m) => m.name === b.modelName && m.version === b.modelVersion) as ModelView,
    }),
    status: t.field({ type: BatchStatusEnum, description: 'Where the batch is.', resolve: (b) => b.status }),
    totalRows: t.exposeInt('totalRows', { description: 'Rows submitted.' }),
    processedRows: t.exposeInt('processedRows', { description: 'Rows with a stored result (scored or errored).' }),
    failedRows: t.exposeInt('failedRows', { description: 'Rows with an error instead of a score.' }),
    fallbackRows: t.exposeInt('fallbackRows', { description: 'Rows scored by the fallback rule.' }),
    progress: t.float({ description: 'processedRows / totalRows, from 0 to 1.', resolve: (b) => b.processedRows / b.totalRows }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was submitted.', resolve: (b) => b.createdAt }),
    startedAt: t.field({ type: 'DateTime', nullable: true, description: 'When its first chunk was stored.', resolve: (b) => b.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, description: 'When its last chunk was stored.', resolve: (b) => b.finishedAt }),
    rowsPerSecond: t.float({
      nullable: true,
      description: 'Rows stored per second from submission to the last chunk stored so far.',
      resolve: (b) => {
        const end = b.finishedAt ? Date.parse(b.finishedAt) : Date.now();
        const s = (end - Date.parse(b.createdAt)) / 1000;
        return b.processedRows > 0 && s > 0 ? b.processedRows / s : null;
      },
    }),
    error: t.exposeString('error', { nullable: true, description: 'Why the batch failed, if it did.' }),
    results: t.connection(
      {
        type: ScoringResult,
        description: 'Stored results in row order (submitter, org admins and services only).',
        resolve: (b, args, ctx) => ctx.services.predictions.batches.results(requireViewer(ctx), b.id, args),
      },
      { name: 'ScoringResultConnection', description: 'A page of batch results.' },
      { name: 'ScoringResultEdge', description: 'A result and its cursor.' },
    ),
  }),
});

const ScoreInput = builder.inputType('ScoreInput', {
  description: 'One row to score.',
  fields: (t) => ({
    model: t.string({ description: '`risk-30d` (its champion), `risk-30d@1.0.0` or `risk-30d:challenger`.' }),
    features: t.field({ type: 'JSON', description: 'Object keyed by FeatureSpec.name.' }),
    subjectId: t.id({ required: false, description: 'The patient the score is about (stored and pushed on their stream).' }),
    clientKey: t.string({
      required: false,
      description: 'Idempotency key: repeating it returns the same Prediction; reusing it for another request is a CONFLICT.',
    }),
    explain: t.boolean({ required: false, description: 'Return contributions (default true).' }),
    topK: t.int({ required: false, description: 'How many contributions (1–10, default 3).' }),
  }),
});

const ScoringRowInput = builder.inputType('ScoringRowInput', {
  description: 'One row of a batch.',
  fields: (t) => ({
    subjectId: t.id({ required: false, description: 'The patient of this row.' }),
    features: t.field({
      type: 'JSON',
      description: 'Object keyed by FeatureSpec.name (validated per row; a bad row gets an error, not the batch).',
    }),
  }),
});

const ScoringBatchInput = builder.inputType('ScoringBatchInput', {
  description: 'A batch to score in the background.',
  fields: (t) => ({
    model: t.string({ description: 'Model reference, resolved once and pinned for the batch.' }),
    rows: t.field({ type: [ScoringRowInput], description: 'Rows (at most SCORING_BATCH_MAX_ROWS, default 10,000).' }),
    clientBatchId: t.string({ description: 'Idempotency key: resubmitting returns the same batch.' }),
    explain: t.boolean({ required: false, description: 'Store top contributions per row (default false).' }),
    topK: t.int({ required: false, description: 'How many contributions per row (1–10, default 3).' }),
  }),
});

builder.queryField('predictions', (t) =>
  t.connection(
    {
      type: PredictionType,
      description:
        'A subject’s stored predictions, newest first. Providers, admins and services of the organisation see any subject; a patient sees only their own (subjectId = their user id), otherwise an empty list.',
      args: {
        subjectId: t.arg.id({ description: 'The patient.' }),
        model: t.arg.string({ required: false, description: 'Only this model (name or reference).' }),
      },
      resolve: (_r, args, ctx) =>
        ctx.services.predictions.history(requireViewer(ctx), { ...args, subjectId: String(args.subjectId), after: args.after ?? null }),
    },
    { name: 'PredictionConnection', description: 'A page of predictions.' },
    { name: 'PredictionEdge', description: 'A prediction and its cursor.' },
  ),
);

builder.queryFields((t) => ({
  models: t.field({
    type: [ModelType],
    description: 'Every model version in the registry.',
    resolve: (_r, _a, ctx) => {
      requireViewer(ctx);
      return ctx.services.predictions.listModels();
    },
  }),
  scoringBatch: t.field({
    type: ScoringBatch,
    nullable: true,
    description: 'A scoring batch (submitter, org admins and org services); null if not found.',
    args: { id: t.arg.id({ description: 'Batch id.' }) },
    resolve: (_r, a, ctx) => ctx.services.predictions.batches.get(requireViewer(ctx), String(a.id)),
  }),
}));

builder.mutationFields((t) => ({
  promoteModel: t.field({
    type: ModelType,
    description:
      'Points an alias (default `champion`, which `score` uses) at a registered version of a model. Admins of the operator organisations listed in MODEL_ADMIN_ORGS only (others: FORBIDDEN); an unknown model or version is NOT_FOUND. Audited with the old and new version; other instances route by it within 5 s.',
    args: {
      name: t.arg.string({ description: 'Model name, e.g. `risk-30d`.' }),
      version: t.arg.string({ description: 'The registered version the alias should name, e.g. `1.1.0`.' }),
      alias: t.arg.string({ required: false, defaultValue: 'champion', description: 'The alias to move (default `champion`).' }),
    },
    resolve: (_r, a, ctx) => ctx.services.predictions.promote(requireViewer(ctx), a.name, a.version, a.alias ?? 'champion'),
  }),
  score: t.field({
    type: PredictionType,
    description: 'Scores one row now (services, providers, admins), stores it and pushes it on the subject’s stream.',
    args: { input: t.arg({ type: ScoreInput, description: 'What to score.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.predictions.score(requireViewer(ctx), input),
  }),
  submitScoringBatch: t.field({
    type: ScoringBatch,
    description: 'Stores a batch and queues it for the workers; watch it with `scoringBatchProgress`.',
    args: { input: t.arg({ type: ScoringBatchInput, description: 'The batch.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.predictions.batches.submit(requireViewer(ctx), input),
  }),
}));

builder.subscriptionField('scoringBatchProgress', (t) =>
  t.field({
    type: ScoringBatch,
    description:
      'The batch now, then again on progress (at most about once per SCORING_PROGRESS_MIN_MS); completes after a terminal status.',
    args: { batchId: t.arg.id({ description: 'Batch id.' }) },
    subscribe: async function* (_r, a, ctx) {
      const viewer = requireViewer(ctx);
      const spec = await ctx.services.predictions.batches.openProgress(viewer, String(a.batchId));
      const it = ctx.realtime.iterate(spec, viewer.userId);
      try {
        for await (const b of it as AsyncIterable<BatchSnapshot>) {
          yield b;
          if (TERMINAL.has(b.status)) return;
        }
      } finally {
        await it.return?.();
      }
    },
    resolve: (b: BatchSnapshot) => b,
  }),
);
