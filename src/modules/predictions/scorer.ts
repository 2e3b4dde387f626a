import type * as TF from '@tensorflow/tfjs';
import type { ExplanationMethod, ModelCard } from './card.js';
import type { CleanRow } from './features.js';
import { type RulePoints, laceScore, news2Urgency } from './fallbacks.js';
import { type LoadedModel, encodeRows, predict } from './runtime.js';

export const FALLBACK_REASONS = ['model_not_loaded', 'model_error', 'invalid_output', 'model_disabled'] as const;
export type FallbackReason = (typeof FALLBACK_REASONS)[number];

/** One feature's signed share of a result, in the unit of the explanation method. */
export interface Contribution {
  feature: string;
  value: unknown;
  contribution: number;
  unit: string | null;
}

/** What scoring one row produced (stored as is, returned by `score`, kept per batch row). */
export interface ScoreOutcome {
  score: number | null;
  label: string | null;
  probabilities: Array<{ label: string; probability: number }> | null;
  fallback: boolean;
  fallbackReason: FallbackReason | null;
  /** The version (or the fallback rule id) that produced it. */
  modelVersion: string;
  explanation: Contribution[];
  explanationMethod: ExplanationMethod | null;
}

export interface ScoreOptions {
  explain: boolean;
  topK: number;
}

/** The value of a feature as the client gave it (booleans back from 0/1). */
const given = (card: ModelCard, row: CleanRow, feature: string): unknown => {
  const v = row[feature];
  const spec = card.featureSpec.find((s) => s.name === feature);
  return spec?.type === 'boolean' && v !== undefined ? v === 1 : (v ?? null);
};

const top = (card: ModelCard, row: CleanRow, contributions: Map<string, number>, k: number): Contribution[] =>
  [...contributions]
    .filter(([, c]) => c !== 0)
    .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
    .slice(0, k)
    .map(([feature, c]) => ({
      feature,
      value: given(card, row, feature),
      contribution: Math.round(c * 1e6) / 1e6,
      unit: card.featureSpec.find((s) => s.name === feature)?.unit ?? null,
    }));

/** The rule-based answer (LACE or NEWS2) for a row, flagged with why the model did not answer. */
export function fallbackOutcome(card: ModelCard, row: CleanRow, reason: FallbackReason, opts: ScoreOptions): ScoreOutcome {
  const points = (p: RulePoints[]) => (opts.explain ? top(card, row, new Map(p.map((x) => [x.feature, x.points])), opts.topK) : []);
  const common = {
    fallback: true,
    fallbackReason: reason,
    modelVersion: card.fallback,
    explanationMethod: opts.explain ? ('rule_points' as const) : null,
  };
  if (card.output.kind === 'sigmoid') {
    const r = laceScore(row);
    return { ...common, score: Math.round(r.score * 100) / 100, label: null, probabilities: null, explanation: points(r.points) };
  }
  const r = news2Urgency(row);
  return { ...common, score: null, label: r.label, probabilities: null, explanation: points(r.points) };
}

/** Per-feature sums of per-column contributions (one-hot columns add up to their feature). */
const byFeature = (card: ModelCard, perColumn: (j: number) => number): Map<string, number> => {
  const m = new Map<string, number>();
  card.columns.forEach((c, j) => m.set(c.feature, (m.get(c.feature) ?? 0) + perColumn(j)));
  return m;
};

/**
 * Scores rows with a loaded model in one batch (one predict call; a second one for occlusion when
 * explaining a classifier), falling back per row on an invalid output and for every row when the
 * model is missing or throws.
 */
export function scoreRows(
  tf: typeof TF | undefined,
  m: LoadedModel | undefined,
  card: ModelCard,
  rows: readonly CleanRow[],
  opts: ScoreOptions,
): ScoreOutcome[] {
  if (rows.length === 0) return [];
  if (!tf || !m || m.status !== 'loaded') return rows.map((r) => fallbackOutcome(card, r, 'model_not_loaded', opts));
  const d = card.columns.length;
  const x = encodeRows(card, rows);
  let y: Float32Array;
  try {
    y = predict(tf, m, x, rows.length);
  } catch {
    return rows.map((r) => fallbackOutcome(card, r, 'model_error', opts));
  }
  const output = card.output;
  if (output.kind === 'sigmoid') {
    return rows.map((row, i) => {
      const p = y[i] as number;
      if (!Number.isFinite(p) || p < 0 || p > 1) return fallbackOutcome(card, row, 'invalid_output', opts);
      const w = m.linear;
      const explanation =
        opts.explain && w
          ? top(
              card,
              row,
              byFeature(card, (j) => (w[j] as number) * (x[i * d + j] as number)),
              opts.topK,
            )
          : [];
      return {
        score: Math.round(p * 100 * 100) / 100,
        label: null,
        probabilities: null,
        fallback: false,
        fallbackReason: null,
        modelVersion: card.version,
        explanation,
        explanationMethod: opts.explain ? card.explanationMethod : null,
      };
    });
  }
  const k = output.classes.length;
  const predicted = rows.map((_, i) => argmax(y, i * k, k));
  const occluded = opts.explain ? occlusion(tf, m, card, x, rows.length, predicted) : undefined;
  return rows.map((row, i) => {
    const probs = Array.from(y.subarray(i * k, (i + 1) * k));
    if (probs.some((p) => !Number.isFinite(p))) return fallbackOutcome(card, row, 'invalid_output', opts);
    const c = predicted[i] as number;
    return {
      score: null,
      label: output.classes[c] as string,
      probabilities: output.classes.map((label, j) => ({ label, probability: Math.round((probs[j] as number) * 1e6) / 1e6 })),
      fallback: false,
      fallbackReason: null,
      modelVersion: card.version,
      explanation: occluded ? top(card, row, occluded[i] as Map<string, number>, opts.topK) : [],
      explanationMethod: opts.explain ? card.explanationMethod : null,
    };
  });
}

const argmax = (y: Float32Array, from: number, k: number) => {
  let best = 0;
  for (let j = 1; j < k; j++) if ((y[from + j] as number) > (y[from + best] as number)) best = j;
  return best;
};

/**
 * Occlusion: for each feature, the predicted class's probability minus its probability with that
 * feature's columns at the training mean (0 once standardised). One predict over all variants.
 */
function occlusion(
  tf: typeof TF,
  m: LoadedModel,
  card: ModelCard,
  x: Float32Array,
  n: number,
  predicted: number[],
): Array<Map<string, number>> {
  const d = card.columns.length;
  const features = [...new Set(card.columns.map((c) => c.feature))];
  const k = card.output.kind === 'softmax' ? card.output.classes.length : 1;
  const variants = new Float32Array(n * features.length * d);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * d, (i + 1) * d);
    features.forEach((f, v) => {
      const at = (i * features.length + v) * d;
      variants.set(row, at);
      card.columns.forEach((c, j) => {
        if (c.feature === f) variants[at + j] = 0;
      });
    });
  }
  const base = predict(tf, m, x, n);
  const y = predict(tf, m, variants, n * features.length);
  return predicted.map((c, i) => {
    const out = new Map<string, number>();
    const p = base[i * k + c] as number;
    features.forEach((f, v) => out.set(f, p - (y[(i * features.length + v) * k + c] as number)));
    return out;
  });
}
