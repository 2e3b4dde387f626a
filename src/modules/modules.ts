import type { Config } from '../config.js';
import type { QueueSettings } from '../jobs/define.js';
import type { DomainModule } from './module.js';
import { auditModule } from './audit/module.js';
import { alertsModule } from './alerts/module.js';
import { callsModule } from './calls/module.js';
import { identityModule } from './identity/module.js';
import { messagingModule } from './messaging/module.js';
import { notificationsModule } from './notifications/module.js';
import { predictionsModule } from './predictions/module.js';
import { presenceModule } from './presence/module.js';
import { remindersModule } from './reminders/module.js';

/**
 * Every domain, listed once, in build order (a module comes after the modules it uses). The
 * composition root builds their services from this list, and their worker sides and duties in
 * processes that run jobs; the worker runs their queues with each queue's own settings.
 */
export const MODULES = [
  // first: on shutdown modules close in reverse order, so the audit log flushes after the others
  auditModule,
  identityModule,
  messagingModule,
  notificationsModule,
  presenceModule,
  remindersModule,
  alertsModule,
  callsModule,
  predictionsModule,
] as const;

type Module = (typeof MODULES)[number];

/** Domain services; resolvers call these and nothing else. */
export type Services = { [M in Module as M['name']]: ReturnType<M['service']> };

/** The modules' worker sides (what job handlers call): never reachable from resolvers. */
export type JobServices = { [M in Module as [WorkerOf<M>] extends [never] ? never : M['name']]: WorkerOf<M> };
type WorkerOf<M> = M extends DomainModule<string, unknown, never, infer W> ? W : never;

/** Every queue with its settings, from the modules that declare them. */
export const QUEUE_SETTINGS: Record<string, (w: Config['worker']) => QueueSettings> = Object.assign(
  {},
  ...MODULES.map((m) => m.queues ?? {}),
);

/** The names of every queue. */
export const QUEUE_NAMES: readonly string[] = Object.keys(QUEUE_SETTINGS);
