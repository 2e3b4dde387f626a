/**
 * The model card (`models/<name>/<version>/card.json`): everything the runtime, the registry and
 * partners need to know about an artifact. Written by `npm run models:train`, read at boot.
 */

export type FeatureType = 'number' | 'integer' | 'boolean' | 'category';
export type ModelTask = 'risk_score' | 'classification';
export type ExplanationMethod = 'exact_linear_shapley' | 'gradient_x_input' | 'occlusion' | 'rule_points';

/** One input of a model (KServe-V2-like: name, type, unit), with its valid range. */
export interface FeatureSpec {
  name: string;
  type: FeatureType;
  unit: string | null;
  required: boolean;
  min: number | null;
  max: number | null;
  categories: string[] | null;
  description: string;
}

/** One column of the model's input matrix: a feature (or one category of it), standardised. */
export interface EncodedColumn {
  feature: string;
  category?: string;
  mean: number;
  std: number;
}

export interface ModelMetric {
  name: string;
  value: number;
  dataset: string;
}

export interface ModelCard {
  name: string;
  version: string;
  task: ModelTask;
  description: string;
  intendedUse: string;
  featureSpec: FeatureSpec[];
  /** Input columns in model order, with the training mean and std of each (standardisation in TypeScript). */
  columns: EncodedColumn[];
  /** `sigmoid` → probability × 100; `softmax` → one probability per class, in this order. */
  output: { kind: 'sigmoid'; scale: 100 } | { kind: 'softmax'; classes: string[] };
  explanationMethod: ExplanationMethod;
  metrics: ModelMetric[];
  trainingData: { generator: string; generatorVersion: number; trainSeed: number; testSeed: number; trainRows: number; testRows: number };
  /** Initial aliases in the registry (e.g. `champion`). */
  aliases: string[];
  /** The rule that answers when this model cannot: `lace@1` or `news2@1`. */
  fallback: string;
  weightsSha256: string;
}
