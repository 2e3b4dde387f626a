import type { IdentityService } from '../identity/service.js';
import { defineModule } from '../module.js';
import type { NotificationsService } from '../notifications/service.js';
import { createRemindersService } from './service.js';

/** Medication, appointment and custom reminders, delivered by the worker exactly once per occurrence. */
export const remindersModule = defineModule({
  name: 'reminders',
  // one tick per due second claims every owed occurrence; concurrency lets ticks of several seconds overlap
  queues: { reminders: (w) => ({ concurrency: w.concurrency, lockMs: w.lockMs }) },
  service: (d, u: { identity: IdentityService; notifications: NotificationsService }) =>
    createRemindersService({
      db: d.db,
      commit: d.commit,
      queues: d.queues,
      identity: u.identity,
      notifications: u.notifications,
      config: d.config.reminders,
      logger: d.logger,
    }),
  worker: async (d, u) => (await import('./jobs.js')).remindersWorker(d, u),
});
