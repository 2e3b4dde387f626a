import type { ModuleDeps, WorkerSide } from '../module.js';
import type { AuditService } from './service.js';

/** The audit module's worker side: the retention duty (deletes rows past AUDIT_RETENTION_DAYS in bounded batches). */
export function auditWorker(d: ModuleDeps, u: { audit: AuditService }): Promise<WorkerSide<AuditService>> {
  return Promise.resolve({
    side: u.audit,
    duties: {
      jobs: [],
      periodic: [{ name: 'audit-retention', everyMs: d.config.audit.retentionEveryMs, run: async () => void (await u.audit.purge()) }],
    },
  });
}
