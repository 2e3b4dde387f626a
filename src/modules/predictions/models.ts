import type * as TF from '@tensorflow/tfjs';
import type { Logger } from '../../shared/logger.js';
import type { ModelCard } from './card.js';
import { type BackendChoice, type LoadedModel, loadModel, loadTf, readCards } from './runtime.js';

/** The models this process scores with: every card under the models directory, loaded once. */
export interface ModelSet {
  /** The tfjs backend in use (`wasm`, `cpu`, `tensorflow`), or `none` when tfjs itself failed. */
  backend: string;
  tf: typeof TF | undefined;
  all(): LoadedModel[];
  /** A model by name and version. */
  get(name: string, version: string): LoadedModel | undefined;
  /** Models that failed to load (scoring with them falls back to their rule). */
  failed(): LoadedModel[];
  /** Tensors tfjs holds (a leak shows as growth). */
  numTensors(): number;
  dispose(): void;
}

/**
 * Reads every card under `dir` and loads its artifact, verified against the card. A model that
 * fails to load is kept, marked failed, so its results are answered by its fallback rule (and
 * flagged); if tfjs cannot start at all, every model is failed. Never throws.
 */
export async function loadModels(dir: string, backend: BackendChoice, logger: Logger): Promise<ModelSet> {
  const cards = readCards(dir, logger);
  if (!cards.length)
    logger.error({ dir }, 'no model cards found: score and batches answer BAD_USER_INPUT (unknown model); set PREDICTIONS_MODELS_DIR');
  let tf: typeof TF | undefined;
  let used = 'none';
  try {
    ({ tf, backend: used } = await loadTf(backend, logger));
  } catch (err) {
    logger.error({ err }, 'TensorFlow.js could not start; every model answers with its fallback rule');
  }
  const models: LoadedModel[] = [];
  for (const { card, dir: at } of cards) {
    const t0 = performance.now();
    const m: LoadedModel = tf
      ? await loadModel(tf, card, at)
      : { card, id: `${card.name}@${card.version}`, dir: at, status: 'failed', error: 'TensorFlow.js unavailable' };
    if (m.status === 'loaded') logger.info({ model: m.id, backend: used, ms: Math.round(performance.now() - t0) }, 'model loaded');
    else logger.error({ model: m.id, error: m.error }, 'model failed to load; its fallback rule answers instead');
    models.push(m);
  }
  return {
    backend: used,
    tf,
    all: () => models,
    get: (name, version) => models.find((m) => m.card.name === name && m.card.version === version),
    failed: () => models.filter((m) => m.status === 'failed'),
    numTensors: () => tf?.memory().numTensors ?? 0,
    dispose() {
      for (const m of models) m.layers?.dispose();
    },
  };
}

/** A client's model reference: `risk-30d`, `risk-30d@1.0.0` or `risk-30d:challenger`. */
export function parseModelRef(ref: string): { name: string; version?: string; alias?: string } | undefined {
  const m = /^([a-z0-9][a-z0-9-]{0,63})(?:@([0-9A-Za-z.+-]{1,32})|:([a-z][a-z0-9_-]{0,31}))?$/.exec(ref.trim());
  if (!m) return undefined;
  return { name: m[1] as string, version: m[2], alias: m[3] };
}

export type { ModelCard };
