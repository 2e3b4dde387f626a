import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ModelSet } from './models.js';

/** Prediction metrics (no user or subject labels), registered on the instance's registry. */
export function createPredictionMetrics(registry: Registry, models: () => ModelSet | undefined) {
  const registers = [registry];
  new Gauge({
    name: 'wardline_tfjs_tensors',
    help: 'Tensors held by TensorFlow.js in this process (a leak shows as growth)',
    registers,
    collect() {
      this.set(models()?.numTensors() ?? 0);
    },
  });
  new Gauge({
    name: 'wardline_model_loaded',
    help: 'Whether a model artifact loaded and verified in this process (1) or its fallback answers (0)',
    labelNames: ['model', 'version', 'backend'],
    registers,
    collect() {
      const set = models();
      this.reset();
      for (const m of set?.all() ?? [])
        this.set({ model: m.card.name, version: m.card.version, backend: set?.backend ?? 'none' }, m.status === 'loaded' ? 1 : 0);
    },
  });
  return {
    inference: new Histogram({
      name: 'wardline_inference_seconds',
      help: 'Model inference (predict and explain) per call, by model, mode and tfjs backend',
      labelNames: ['model', 'version', 'mode', 'backend'],
      buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    predictions: new Counter({
      name: 'wardline_predictions_total',
      help: 'Scored rows by model and outcome (model, fallback, invalid)',
      labelNames: ['model', 'outcome'],
      registers,
    }),
    fallbacks: new Counter({
      name: 'wardline_prediction_fallback_total',
      help: 'Rows answered by the fallback rule, by model and reason',
      labelNames: ['model', 'reason'],
      registers,
    }),
    shadowDiff: new Histogram({
      name: 'wardline_shadow_abs_diff',
      help: 'Absolute difference between the challenger (shadow) and the answered risk score, 0-100',
      labelNames: ['model'],
      buckets: [0.5, 1, 2, 5, 10, 20, 50],
      registers,
    }),
    shadowDisagree: new Counter({
      name: 'wardline_shadow_label_total',
      help: 'Shadow classifications by whether the challenger agreed with the answered label',
      labelNames: ['model', 'agree'],
      registers,
    }),
    batchRows: new Counter({
      name: 'wardline_scoring_rows_total',
      help: 'Batch rows stored, by model and result (ok, fallback, error)',
      labelNames: ['model', 'result'],
      registers,
    }),
    chunkSeconds: new Histogram({
      name: 'wardline_scoring_chunk_seconds',
      help: 'Time to score and store one batch chunk',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    batchRowsPerSecond: new Gauge({
      name: 'wardline_scoring_rows_per_second',
      help: 'Rows per second of the last batch completed by this process (first commit to last commit)',
      registers,
    }),
  };
}

export type PredictionMetrics = ReturnType<typeof createPredictionMetrics>;
