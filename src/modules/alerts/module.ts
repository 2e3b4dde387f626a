import type { IdentityService } from '../identity/service.js';
import { defineModule } from '../module.js';
import type { NotificationsService } from '../notifications/service.js';
import { createAlertsService } from './service.js';

/** Org-wide and targeted alerts with filters, acknowledgements and durable escalation. */
export const alertsModule = defineModule({
  name: 'alerts',
  // escalations are rare and each is a transaction of its own: a few at a time are plenty
  queues: { alerts: (w) => ({ concurrency: Math.min(w.concurrency, 20), lockMs: w.lockMs }) },
  service: (d, u: { identity: IdentityService; notifications: NotificationsService }) =>
    createAlertsService({
      db: d.db,
      commit: d.commit,
      cursors: d.cursors,
      identity: u.identity,
      notifications: u.notifications,
      queues: d.queues,
      logger: d.logger,
      config: d.config.alerts,
      limits: d.config.limits,
    }),
  worker: async (d, u) => (await import('./jobs.js')).alertsWorker(d, u),
});
