import type { Config } from '../../config.js';
import type { Duties } from '../../jobs/define.js';
import type { IdentityService } from '../identity/service.js';
import type { ModuleDeps, WorkerSide } from '../module.js';
import type { NotificationsService } from '../notifications/service.js';
import type { Logger } from '../../shared/logger.js';
import { type Escalation, createEscalation, escalationReconcileMs } from './escalation.js';
import { escalationTimer } from './events.js';

/** What the alert duties need: the escalation (worker side), its config and a logger. */
export interface AlertDutiesDeps {
  escalation: Escalation;
  config: Config['alerts'];
  logger: Logger;
}

/**
 * The worker side of alerts, on the durable timer. The escalation decides from PostgreSQL
 * (acknowledged? expired? already escalated?), so a job that survived a cancelled acknowledgement,
 * a retry or a stalled re-run does nothing twice. The reconciler is the safety net for escalations
 * whose job never made it to Redis or was lost: every `escalationReconcileMs` it escalates pending
 * alerts overdue by that much (one indexed query; usually nothing).
 */
export function alertDuties(d: AlertDutiesDeps): Duties {
  const everyMs = escalationReconcileMs(d.config);
  return escalationTimer.duties({
    fire: async ({ alertId, orgId }) => ({ outcome: await d.escalation.escalate(orgId, alertId) }),
    fired: (r) => r.outcome === 'escalated',
    overdue: (before) => d.escalation.overdue(before),
    everyMs,
    graceMs: everyMs,
    logger: d.logger,
  });
}

/** The alerts module's worker side: the escalation (what the timer fires) and its duties. */
export function alertsWorker(d: ModuleDeps, u: { identity: IdentityService; notifications: NotificationsService }): WorkerSide<Escalation> {
  const escalation = createEscalation({
    db: d.db,
    commit: d.commit,
    identity: u.identity,
    notifications: u.notifications,
    config: d.config.alerts,
    logger: d.logger,
  });
  return { side: escalation, duties: alertDuties({ escalation, config: d.config.alerts, logger: d.logger }) };
}
