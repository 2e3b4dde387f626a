import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Commit } from '../../realtime/commit.js';
import type { Logger } from '../../shared/logger.js';
import { systemViewer } from '../../shared/viewer.js';
import type { IdentityService } from '../identity/service.js';
import type { NotificationsService } from '../notifications/service.js';
import { alertStream, escalationNotificationKey } from './events.js';
import * as repo from './repo.js';
import type { AlertLevel } from './tables.js';

/** Levels that escalate when nobody acknowledges them in time. */
export const ESCALATING = new Set<AlertLevel>(['critical', 'emergency']);

/**
 * How often the reconciler looks for escalations whose job was lost, and how overdue one must be
 * before it steps in (so it never races a healthy queue): half the delay, within 0.5-30 s.
 */
export const escalationReconcileMs = (c: Config['alerts']) => Math.min(30_000, Math.max(500, Math.floor(c.escalationDelayMs / 2)));

export interface EscalationDeps {
  db: Db;
  commit: Commit;
  identity: IdentityService;
  notifications: NotificationsService;
  config: Config['alerts'];
  logger: Logger;
}

/**
 * The worker side of alerts: what an escalation timer does when it fires, and what PostgreSQL
 * says is overdue. Built only in processes that run jobs; the API's alerts service schedules and
 * cancels the timer but cannot escalate.
 */
export function createEscalation(deps: EscalationDeps) {
  const { commit } = deps;

  /**
   * Escalates an unacknowledged, unexpired critical or emergency alert: in one transaction sets
   * escalated_at (only while null), appends AlertEscalated and notifies every admin of the org
   * with a deterministic key. Safe to run any number of times (job retries, the reconciler).
   */
  async function escalate(orgId: string, alertId: string): Promise<'escalated' | 'acknowledged' | 'expired' | 'skipped'> {
    const admins = await deps.identity.usersByRole(systemViewer(orgId), 'admin');
    return commit(async (tx, events) => {
      const row = await repo.findAlert(tx, orgId, alertId, true);
      if (!row || row.escalatedAt || !ESCALATING.has(row.level)) return 'skipped';
      const now = new Date();
      if (await repo.hasAck(tx, orgId, alertId)) {
        await repo.clearEscalation(tx, orgId, alertId);
        return 'acknowledged';
      }
      if (row.expiresAt && row.expiresAt <= now) {
        await repo.clearEscalation(tx, orgId, alertId);
        return 'expired';
      }
      const updated = await repo.markEscalated(tx, orgId, alertId, now);
      if (!updated) return 'skipped';
      const alert = repo.toSnapshot(updated);
      await alertStream.append(tx, events, { key: orgId, orgId, type: 'AlertEscalated', payload: { alert }, subject: alertId });
      const minutes = Math.round(deps.config.escalationDelayMs / 60_000);
      for (const admin of admins) {
        await deps.notifications.createInTx(tx, events, {
          orgId,
          userId: admin.id,
          kind: 'alert',
          priority: alert.level === 'emergency' ? 'critical' : 'high',
          title: `Unacknowledged ${alert.level.toUpperCase()} alert: ${alert.title}`.slice(0, 200),
          body: `Nobody acknowledged this alert within ${minutes >= 1 ? `${minutes} min` : `${deps.config.escalationDelayMs / 1000} s`}.`,
          data: { alertId, level: alert.level, type: alert.type },
          clientKey: escalationNotificationKey(alertId),
        });
      }
      return 'escalated';
    });
  }

  /** Pending escalations due before `before` (the reconciler's safety net for lost jobs). */
  const overdue = async (before: Date, limit = 100) =>
    (await repo.dueEscalations(deps.db, before, limit)).map((d) => ({ alertId: d.id, orgId: d.orgId }));

  return { escalate, overdue };
}

export type Escalation = ReturnType<typeof createEscalation>;
