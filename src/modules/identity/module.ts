import { defineModule } from '../module.js';
import { createIdentityService } from './service.js';

/** Organisations and users: every other module uses it. */
export const identityModule = defineModule({
  name: 'identity',
  service: (d) => createIdentityService({ db: d.db }),
});
