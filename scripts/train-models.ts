// npm run models:train — trains the two shipped models on the synthetic generators (scripts/synth.ts)
// with the tfjs cpu backend and fixed seeds, and writes models/<name>/<version>/{model.json,
// weights.bin, card.json}. Deterministic: the same seeds give the same weights on the same machine.
// CI never runs this; tests check the committed artifacts (test/predictions/models.test.ts).
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { EncodedColumn, FeatureSpec, ModelCard, ModelMetric } from '../src/modules/predictions/card.js';
import {
  type CleanRow,
  RISK_FEATURES,
  URGENCY_FEATURES,
  checkRow,
  columnsOf,
  encodeInto,
  rawColumn,
} from '../src/modules/predictions/features.js';
import { URGENCY_CLASSES, laceScore, news2Urgency } from '../src/modules/predictions/fallbacks.js';
import { GENERATOR_VERSION, auc, ece, macroF1, riskData, urgencyData } from './synth.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TRAIN_ROWS = 20_000;
const TEST_ROWS = 20_000;
const SEEDS = { risk: { train: 101, challengerTrain: 111, test: 202 }, urgency: { train: 303, test: 404 } };
const INTENDED_USE = 'Demonstration on synthetic data; not a medical device. Do not use for clinical decisions.';

const clean = (spec: FeatureSpec[], row: unknown): CleanRow => {
  const c = checkRow(spec, row);
  if (!c.ok) throw new Error(c.error);
  return c.row;
};

/** Training mean and std of every input column (std 1 for a constant column). */
function standardisation(spec: FeatureSpec[], rows: CleanRow[]): EncodedColumn[] {
  return columnsOf(spec).map((col) => {
    const xs = rows.map((r) => rawColumn(r, col) ?? 0);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    return { ...col, mean: round6(mean), std: round6(sd > 1e-9 ? sd : 1) };
  });
}
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

function matrix(rows: CleanRow[], columns: EncodedColumn[]): tf.Tensor2D {
  const x = new Float32Array(rows.length * columns.length);
  rows.forEach((r, i) => encodeInto(x, i * columns.length, r, columns));
  return tf.tensor2d(x, [rows.length, columns.length]);
}

/** Saves a layers model as model.json + weights.bin; returns the weights' sha256. */
async function save(model: tf.LayersModel, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  let sha = '';
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const weights = Buffer.from(tf.io.CompositeArrayBuffer.join(a.weightData as ArrayBuffer));
      sha = createHash('sha256').update(weights).digest('hex');
      const json = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
      };
      writeFileSync(join(dir, 'model.json'), `${JSON.stringify(json)}\n`);
      writeFileSync(join(dir, 'weights.bin'), weights);
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
  return sha;
}

const dataset = (seed: number, n: number) => `synthetic test set (seed ${seed}, ${n} rows, generator v${GENERATOR_VERSION})`;

/** risk-30d 1.0.0 (champion) and 1.1.0 (challenger: the same recipe on a fresh training sample). */
const trainRiskChampion = () => trainRisk('1.0.0', SEEDS.risk.train, ['champion']);
const trainRiskChallenger = () => trainRisk('1.1.0', SEEDS.risk.challengerTrain, ['challenger']);

async function trainRisk(version: string, trainSeed: number, aliases: string[]): Promise<ModelCard> {
  const train = riskData(TRAIN_ROWS, trainSeed);
  const test = riskData(TEST_ROWS, SEEDS.risk.test);
  const trainRows = train.map((d) => clean(RISK_FEATURES, d.row));
  const columns = standardisation(RISK_FEATURES, trainRows);
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        units: 1,
        activation: 'sigmoid',
        inputShape: [columns.length],
        kernelInitializer: 'zeros',
        biasInitializer: 'zeros',
      }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.05), loss: 'binaryCrossentropy' });
  const x = matrix(trainRows, columns);
  const y = tf.tensor2d(
    train.map((d) => d.y),
    [train.length, 1],
  );
  await model.fit(x, y, { epochs: 40, batchSize: 512, shuffle: false, verbose: 0 });
  const xt = matrix(
    test.map((d) => clean(RISK_FEATURES, d.row)),
    columns,
  );
  const p = (model.predict(xt) as tf.Tensor).dataSync();
  const labels = test.map((d) => d.y);
  const lace = test.map((d) => laceScore(clean(RISK_FEATURES, d.row)).score);
  const ds = dataset(SEEDS.risk.test, TEST_ROWS);
  const metrics: ModelMetric[] = [
    { name: 'AUC', value: auc(p, labels), dataset: ds },
    {
      name: 'ORACLE_AUC',
      value: auc(
        test.map((d) => d.p),
        labels,
      ),
      dataset: ds,
    },
    { name: 'FALLBACK_AUC', value: auc(lace, labels), dataset: ds },
    { name: 'ECE', value: ece(p, labels), dataset: ds },
    { name: 'BRIER', value: Array.from(p).reduce((s, q, i) => s + (q - (labels[i] as number)) ** 2, 0) / p.length, dataset: ds },
    { name: 'PREVALENCE', value: labels.reduce((s, v) => s + v, 0) / labels.length, dataset: ds },
  ].map((m) => ({ ...m, value: round6(m.value) }));
  const sha = await save(model, join(root, `models/risk-30d/${version}`));
  tf.dispose([x, y, xt]);
  return {
    name: 'risk-30d',
    version,
    task: 'risk_score',
    description:
      'Probability (as 0–100) of an unplanned hospital admission within 30 days of discharge. Logistic regression on standardised inputs; explanations are exact (coefficient × standardised value, in log-odds).',
    intendedUse: INTENDED_USE,
    featureSpec: RISK_FEATURES,
    columns,
    output: { kind: 'sigmoid', scale: 100 },
    explanationMethod: 'exact_linear_shapley',
    metrics,
    trainingData: {
      generator: 'risk-30d-synth',
      generatorVersion: GENERATOR_VERSION,
      trainSeed,
      testSeed: SEEDS.risk.test,
      trainRows: TRAIN_ROWS,
      testRows: TEST_ROWS,
    },
    aliases,
    fallback: 'lace@1',
    weightsSha256: sha,
  };
}

async function trainUrgency(): Promise<ModelCard> {
  const train = urgencyData(TRAIN_ROWS, SEEDS.urgency.train);
  const test = urgencyData(TEST_ROWS, SEEDS.urgency.test);
  const trainRows = train.map((d) => clean(URGENCY_FEATURES, d.row));
  const columns = standardisation(URGENCY_FEATURES, trainRows);
  const classes = [...URGENCY_CLASSES];
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        units: 32,
        activation: 'relu',
        inputShape: [columns.length],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }),
      }),
      tf.layers.dense({ units: classes.length, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const x = matrix(trainRows, columns);
  const y = tf.oneHot(
    tf.tensor1d(
      train.map((d) => classes.indexOf(d.y)),
      'int32',
    ),
    classes.length,
  );
  await model.fit(x, y, {
    epochs: 60,
    batchSize: 256,
    shuffle: false,
    verbose: 0,
  });
  const testRows = test.map((d) => clean(URGENCY_FEATURES, d.row));
  const xt = matrix(testRows, columns);
  const pred = Array.from((tf.argMax(model.predict(xt) as tf.Tensor, 1) as tf.Tensor).dataSync()).map((k) => classes[k] as string);
  const labels = test.map((d) => d.y);
  const ds = dataset(SEEDS.urgency.test, TEST_ROWS);
  const metrics: ModelMetric[] = [
    { name: 'MACRO_F1', value: macroF1(pred, labels, classes), dataset: ds },
    {
      name: 'ORACLE_MACRO_F1',
      value: macroF1(
        test.map((d) => d.oracle),
        labels,
        classes,
      ),
      dataset: ds,
    },
    {
      name: 'FALLBACK_MACRO_F1',
      value: macroF1(
        testRows.map((r) => news2Urgency(r).label),
        labels,
        classes,
      ),
      dataset: ds,
    },
    { name: 'ACCURACY', value: pred.filter((p, i) => p === labels[i]).length / pred.length, dataset: ds },
  ].map((m) => ({ ...m, value: round6(m.value) }));
  const sha = await save(model, join(root, 'models/symptom-urgency/1.0.0'));
  tf.dispose([x, y, xt]);
  return {
    name: 'symptom-urgency',
    version: '1.0.0',
    task: 'classification',
    description:
      'Urgency class (LOW, MEDIUM, HIGH, CRITICAL) from vital signs and structured symptoms. A 32-unit ReLU network with a softmax output; explanations by occlusion (change in the predicted class probability when a feature is set to its training mean).',
    intendedUse: INTENDED_USE,
    featureSpec: URGENCY_FEATURES,
    columns,
    output: { kind: 'softmax', classes },
    explanationMethod: 'occlusion',
    metrics,
    trainingData: {
      generator: 'symptom-urgency-synth',
      generatorVersion: GENERATOR_VERSION,
      trainSeed: SEEDS.urgency.train,
      testSeed: SEEDS.urgency.test,
      trainRows: TRAIN_ROWS,
      testRows: TEST_ROWS,
    },
    aliases: ['champion'],
    fallback: 'news2@1',
    weightsSha256: sha,
  };
}

tf.env().set('PROD', true);
await tf.setBackend('cpu');
const only = process.argv[2];
for (const train of [trainRiskChampion, trainRiskChallenger, trainUrgency]) {
  if (only && !train.name.toLowerCase().includes(only)) continue;
  const t0 = Date.now();
  const card = await train();
  writeFileSync(join(root, `models/${card.name}/${card.version}/card.json`), `${JSON.stringify(card, null, 2)}\n`);
  console.log(
    `${card.name}@${card.version} in ${((Date.now() - t0) / 1000).toFixed(1)} s:`,
    card.metrics.map((m) => `${m.name}=${m.value}`).join(' '),
  );
}
