import type { CoreContainer } from '../container.js';
import { alertDuties } from '../modules/alerts/jobs.js';
import { reminderDuties } from '../modules/reminders/jobs.js';
import type { Duties } from './define.js';

/**
 * Every module's worker duties, bound to one container. Only worker.ts imports this file, so the
 * API process never loads job handlers. A module with a `jobs.ts` adds its duties here.
 */
export function workerDuties(c: CoreContainer): Duties {
  if (!c.jobs) throw new Error('workers need a container built for the worker or all role');
  const all = [
    alertDuties({ escalation: c.jobs.alerts, config: c.config.alerts, logger: c.logger }),
    reminderDuties(c.jobs.reminders, c.config.reminders.reconcileMs),
  ];
  return { jobs: all.flatMap((d) => d.jobs), periodic: all.flatMap((d) => d.periodic) };
}
