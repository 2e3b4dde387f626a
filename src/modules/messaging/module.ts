import type { IdentityService } from '../identity/service.js';
import { defineModule } from '../module.js';
import { createMessagingService } from './service.js';

/** Conversations, members, messages, read receipts and typing. */
export const messagingModule = defineModule({
  name: 'messaging',
  service: (d, u: { identity: IdentityService }) =>
    createMessagingService({
      db: d.db,
      publisher: d.publisher,
      commit: d.commit,
      redis: d.redis,
      cursors: d.cursors,
      identity: u.identity,
      limits: d.config.limits,
      keyPrefix: d.config.redisPrefix,
      typingThrottleMs: d.config.realtime.typingThrottleMs,
    }),
});
