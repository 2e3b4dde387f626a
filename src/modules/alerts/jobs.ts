import { implementJob } from '../../jobs/define.js';
import type { Periodic } from '../../jobs/registry.js';
import { escalationJob } from './events.js';
import { escalationReconcileMs } from './service.js';

/**
 * Runs a due escalation. The handler decides from PostgreSQL (acknowledged? expired? already
 * escalated?), so a job that survived a cancelled acknowledgement, a retry or a stalled re-run
 * does nothing twice.
 */
export const alertEscalationJob = implementJob(escalationJob, async ({ alertId, orgId }, { container }) => {
  const outcome = await container.services.alerts.escalate(orgId, alertId);
  return { outcome };
});

/**
 * Safety net for escalations whose job never made it to Redis (enqueue failed after commit) or was
 * lost: every `escalationReconcileMs` it escalates pending alerts that are overdue by that much.
 * One indexed query on the rows with a pending escalation; usually it returns nothing.
 */
export const alertEscalationReconciler: Periodic = {
  name: 'alert-escalation-reconciler',
  everyMs: (c) => escalationReconcileMs(c.config.alerts),
  run: async (c) => {
    const n = await c.services.alerts.reconcileEscalations();
    if (n > 0) c.logger.info({ escalated: n }, 'reconciler escalated overdue alerts');
  },
};
