import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineModule } from '../module.js';
import type { NotificationsService } from '../notifications/service.js';
import { createBatchesService } from './batches.js';
import { createPredictionMetrics } from './metrics.js';
import { type ModelSet, loadModels } from './models.js';
import { createPredictionsService } from './service.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The shipped models: `models/` at the package root (from src/ or from dist/src/). */
export const defaultModelsDir = () =>
  [resolve(here, '../../../models'), resolve(here, '../../../../models')].find((p) => existsSync(p)) ?? resolve(here, '../../../models');

/**
 * Model registry, real-time scoring and batch scoring. Its models load once per process that
 * builds it (API and worker), in the background from boot; scoring waits for them.
 */
export const predictionsModule = defineModule({
  name: 'predictions',
  // a chunk is CPU (tfjs) then one transaction: a few in flight overlap the two
  queues: { scoring: (w) => ({ concurrency: Math.min(w.concurrency, 4), lockMs: w.lockMs }) },
  service: (d, u: { notifications: NotificationsService }) => {
    const config = d.config.predictions;
    let loaded: ModelSet | undefined;
    const models = loadModels(config.modelsDir ?? defaultModelsDir(), config.backend, d.logger).then((m) => {
      loaded = m;
      return m;
    });
    const metrics = createPredictionMetrics(d.metrics.registry, () => loaded);
    const predictions = createPredictionsService({
      db: d.db,
      commit: d.commit,
      cursors: d.cursors,
      logger: d.logger,
      config,
      limits: d.config.limits,
      models,
      metrics,
    });
    const batches = createBatchesService({
      db: d.db,
      commit: d.commit,
      cursors: d.cursors,
      queues: d.queues,
      logger: d.logger,
      config,
      limits: d.config.limits,
      predictions,
    });
    void u;
    return Object.assign(predictions, { batches, metrics, loading: models });
  },
  worker: async (d, u) => (await import('./jobs.js')).predictionsWorker(d, u),
  close: async (s) => (await s.loading).dispose(),
});
