import type { Config } from '../../config.js';
import { type Duties, implementJob } from '../../jobs/define.js';
import type { Logger } from '../../shared/logger.js';
import { escalationJob } from './events.js';
import { type AlertsService, escalationReconcileMs } from './service.js';

/** What the alert duties need: the service (as the system), its config and a logger. */
export interface AlertDutiesDeps {
  alerts: Pick<AlertsService, 'escalate' | 'reconcileEscalations'>;
  config: Config['alerts'];
  logger: Logger;
}

/**
 * The worker side of alerts. The escalation handler decides from PostgreSQL (acknowledged?
 * expired? already escalated?), so a job that survived a cancelled acknowledgement, a retry or a
 * stalled re-run does nothing twice. The reconciler is the safety net for escalations whose job
 * never made it to Redis (enqueue failed after commit) or was lost: every `escalationReconcileMs`
 * it escalates pending alerts overdue by that much (one indexed query; usually nothing).
 */
export function alertDuties(d: AlertDutiesDeps): Duties {
  return {
    jobs: [
      implementJob(escalationJob, async ({ alertId, orgId }) => {
        const outcome = await d.alerts.escalate(orgId, alertId);
        return { outcome };
      }),
    ],
    periodic: [
      {
        name: 'alert-escalation-reconciler',
        everyMs: escalationReconcileMs(d.config),
        run: async () => {
          const n = await d.alerts.reconcileEscalations();
          if (n > 0) d.logger.info({ escalated: n }, 'reconciler escalated overdue alerts');
        },
      },
    ],
  };
}
