import type { IdentityService } from '../identity/service.js';
import { defineModule } from '../module.js';
import { createNotificationsService } from './service.js';

/** Per-user inboxes, unread counts and preferences. */
export const notificationsModule = defineModule({
  name: 'notifications',
  service: (d, u: { identity: IdentityService }) =>
    createNotificationsService({ db: d.db, commit: d.commit, cursors: d.cursors, identity: u.identity, limits: d.config.limits }),
});
