import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Logger } from '../../shared/logger.js';
import type { ModelCard } from './card.js';
import { type CleanRow, encodeInto } from './features.js';

type Tf = typeof TF;
export type BackendChoice = 'auto' | 'wasm' | 'cpu' | 'tensorflow';

/**
 * Imports TensorFlow.js and selects a backend: `tensorflow` (native, only when the optional
 * `@tensorflow/tfjs-node` is installed), else `wasm` (SIMD, one thread), else the pure-JS `cpu`.
 * `auto` tries them in that order. tfjs is a process-wide singleton, so the first call decides.
 */
export async function loadTf(choice: BackendChoice, logger?: Logger): Promise<{ tf: Tf; backend: string }> {
  // core + layers + the cpu backend: what scoring uses, without the umbrella's webgl backend,
  // converter and data packages (6.5 MiB less heap in every process that scores; about 30 MiB
  // less RSS under tsx)
  const [core, layers] = await Promise.all([
    import('@tensorflow/tfjs-core'),
    import('@tensorflow/tfjs-layers'),
    import('@tensorflow/tfjs-backend-cpu'),
  ]);
  const tf = { ...core, ...layers } as unknown as Tf;
  tf.env().set('PROD', true); // no dev banner, no debug checks
  const tryBackend = async (name: string, load: () => Promise<unknown>) => {
    try {
      await load();
      if ((await tf.setBackend(name)) === false) return false;
      await tf.ready();
      return tf.getBackend() === name;
    } catch (err) {
      logger?.debug({ backend: name, err }, 'tfjs backend unavailable');
      return false;
    }
  };
  const nativePkg = '@tensorflow/tfjs-node';
  const order: Array<[string, () => Promise<unknown>]> = [
    ['tensorflow', () => import(nativePkg)],
    ['wasm', () => import('@tensorflow/tfjs-backend-wasm')],
    ['cpu', async () => {}],
  ];
  for (const [name, load] of order) {
    if (choice !== 'auto' && choice !== name) continue;
    if (await tryBackend(name, load)) return { tf, backend: name };
  }
  throw new Error(`tfjs backend ${choice} could not be initialised`);
}

/** A model artifact as loaded (or not) by this process. */
export interface LoadedModel {
  card: ModelCard;
  /** `name@version`. */
  id: string;
  /** Where its files are. */
  dir: string;
  status: 'loaded' | 'failed';
  /** Why it failed to load (checksum mismatch, unreadable file...). */
  error?: string;
  loadedAt?: Date;
  layers?: TF.LayersModel;
  /** Kernel of a logistic model (one weight per input column), for exact explanations. */
  linear?: Float32Array;
}

/** Every card under `dir` (`<name>/<version>/card.json`). Unreadable cards are skipped with a log line. */
export function readCards(dir: string, logger?: Logger): Array<{ card: ModelCard; dir: string }> {
  const out: Array<{ card: ModelCard; dir: string }> = [];
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const nameDir = join(dir, name);
    if (!existsSync(nameDir) || name.startsWith('.')) continue;
    for (const version of readdirSync(nameDir)) {
      const cardPath = join(nameDir, version, 'card.json');
      if (!existsSync(cardPath)) continue;
      try {
        out.push({ card: JSON.parse(readFileSync(cardPath, 'utf8')) as ModelCard, dir: join(nameDir, version) });
      } catch (err) {
        logger?.warn({ path: cardPath, err }, 'model card unreadable; skipped');
      }
    }
  }
  return out;
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Loads one artifact and verifies it against its card: the weights' sha256, the input width (one
 * unit per card column) and the output width. Any failure leaves the model `failed` (scoring falls
 * back to its rule); it never throws.
 */
export async function loadModel(tf: Tf, card: ModelCard, dir: string): Promise<LoadedModel> {
  const base: LoadedModel = { card, id: `${card.name}@${card.version}`, dir, status: 'failed' };
  try {
    const modelJSON = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as TF.io.ModelJSON;
    const weights = readFileSync(join(dir, 'weights.bin'));
    const digest = sha256(weights);
    if (digest !== card.weightsSha256) throw new Error(`weights.bin sha256 ${digest} does not match the card (${card.weightsSha256})`);
    const buffer = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
    const handler: TF.io.IOHandler = {
      load: async () => tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => [manifest.flatMap((g) => g.weights), buffer]),
    };
    const layers = await tf.loadLayersModel(handler);
    const inWidth = (layers.inputs[0]?.shape ?? [])[1];
    const outWidth = (layers.outputs[0]?.shape ?? [])[1];
    const expectedOut = card.output.kind === 'sigmoid' ? 1 : card.output.classes.length;
    if (inWidth !== card.columns.length || outWidth !== expectedOut) {
      layers.dispose();
      throw new Error(`model shape [${inWidth}→${outWidth}] does not match the card [${card.columns.length}→${expectedOut}]`);
    }
    let linear: Float32Array | undefined;
    if (card.explanationMethod === 'exact_linear_shapley') {
      if (layers.layers.length !== 1) throw new Error('exact linear explanations need a single dense layer');
      const kernel = layers.layers[0]?.getWeights()[0];
      linear = kernel?.dataSync() as Float32Array;
    }
    return { ...base, status: 'loaded', layers, linear, loadedAt: new Date() };
  } catch (err) {
    return { ...base, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Standardised input matrix for rows (row-major, one row per input). */
export function encodeRows(card: ModelCard, rows: readonly CleanRow[]): Float32Array {
  const d = card.columns.length;
  const x = new Float32Array(rows.length * d);
  rows.forEach((r, i) => encodeInto(x, i * d, r, card.columns));
  return x;
}

/** Runs the model on `n` encoded rows; every tensor is released (tidy + dispose). */
export function predict(tf: Tf, m: LoadedModel, x: Float32Array, n: number): Float32Array {
  const layers = m.layers;
  if (!layers) throw new Error(`${m.id} is not loaded`);
  const out = tf.tidy(() => layers.predict(tf.tensor2d(x, [n, m.card.columns.length]), { batchSize: Math.max(1, n) }) as TF.Tensor);
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}
