import type { IdentityService } from '../identity/service.js';
import type { MessagingService } from '../messaging/service.js';
import { defineModule } from '../module.js';
import type { NotificationsService } from '../notifications/service.js';
import type { PresenceService } from '../presence/service.js';
import { createCallsService } from './service.js';

/** WebRTC call signaling: a persisted state machine, per-user call streams, device-addressed signals, durable timeouts. */
export const callsModule = defineModule({
  name: 'calls',
  // timeouts are short transactions: as many at once as the connection pool serves (more would only queue for a connection)
  queues: { calls: (w) => ({ concurrency: Math.min(w.concurrency, 10), lockMs: w.lockMs }) },
  service: (
    d,
    u: { identity: IdentityService; messaging: MessagingService; notifications: NotificationsService; presence: PresenceService },
  ) =>
    createCallsService({
      db: d.db,
      commit: d.commit,
      cursors: d.cursors,
      redis: d.redis,
      publisher: d.publisher,
      queues: d.queues,
      logger: d.logger,
      identity: u.identity,
      messaging: u.messaging,
      notifications: u.notifications,
      presence: u.presence,
      config: d.config.calls,
      limits: d.config.limits,
      keyPrefix: d.config.redisPrefix,
      registry: d.metrics.registry,
    }),
  worker: async (d, u) => (await import('./jobs.js')).callsWorker(d, u),
  close: (calls) => calls.close(),
});
