import { defineModule } from '../module.js';
import { createAuditService } from './service.js';
import { createAuditWriter } from './writer.js';

/**
 * The audit log of patient data (docs/audit.md). Its service holds the buffered writer: API
 * processes record into it; a worker process builds it too but never records (its timer only runs
 * while entries are buffered). Listed first in MODULES so that on shutdown it closes last of the
 * modules: after the API stopped accepting (the API closes before the container) and before the
 * database closes (the container closes it after every module).
 */
export const auditModule = defineModule({
  name: 'audit',
  service: (d) =>
    createAuditService({
      db: d.db,
      logger: d.logger,
      cursors: d.cursors,
      config: d.config.audit,
      limits: d.config.limits,
      writer: createAuditWriter({ db: d.db, logger: d.logger, config: d.config.audit, registry: d.metrics.registry }),
    }),
  worker: async (d, u) => (await import('./jobs.js')).auditWorker(d, u),
  close: (s) => s.writer.close(),
});
