import type { IdentityService } from '../identity/service.js';
import type { MessagingService } from '../messaging/service.js';
import { defineModule } from '../module.js';
import { createPresenceService } from './service.js';

/** Who is online, per device, in Redis; every process sweeps expired devices. */
export const presenceModule = defineModule({
  name: 'presence',
  service: (d, u: { identity: IdentityService; messaging: MessagingService }) =>
    createPresenceService({
      redis: d.redis,
      publisher: d.publisher,
      identity: u.identity,
      messaging: u.messaging,
      config: d.config.presence,
      keyPrefix: d.config.redisPrefix,
      logger: d.logger,
    }),
  close: (presence) => presence.close(),
});
