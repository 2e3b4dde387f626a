import type { Container } from '../container.js';
import { alertEscalationJob, alertEscalationReconciler } from '../modules/alerts/jobs.js';
import { REMINDER_JOBS, reminderReconciler } from '../modules/reminders/jobs.js';
import type { JobImpl } from './define.js';

/** A periodic duty of the worker process (e.g. the reminder reconciler). */
export interface Periodic {
  name: string;
  everyMs(container: Container): number;
  run(container: Container): Promise<void>;
}

/**
 * Every job implementation and periodic duty, by module. Only worker.ts imports this file, so
 * the API process never loads job handlers. Modules add their `jobs.ts` exports here.
 */
export const JOB_IMPLS: JobImpl[] = [alertEscalationJob, ...REMINDER_JOBS];
export const PERIODIC: Periodic[] = [alertEscalationReconciler, reminderReconciler()];
