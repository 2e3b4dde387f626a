import { z } from 'zod';
import { defineJob } from '../../jobs/define.js';
import { defineTimer } from '../../jobs/timer.js';

/**
 * One occurrence of one reminder, due at `occurrenceMs` (epoch ms). Ids only: titles and bodies
 * stay in PostgreSQL (Redis holds job data in clear text). Shared by the producers (service) and
 * the handler (jobs.ts), so the API never loads the handler.
 */
export const reminderDue = defineJob({
  queue: 'reminders',
  name: 'reminder-due',
  schema: z.object({
    reminderId: z.uuid(),
    orgId: z.string().min(1).max(200),
    occurrenceMs: z.number().int().nonnegative(),
  }),
});

/**
 * The deterministic job id of an occurrence, `reminder:<id>:<occurrenceEpochMs>`: adding it twice
 * (a retry of the producer, the reconciler) is a no-op while the job exists. It is also the
 * notification's client key, the second guard behind the occurrence row.
 */
export const occurrenceKey = (reminderId: string, occurrenceMs: number) => `reminder:${reminderId}:${occurrenceMs}`;

/**
 * The durable timer of one occurrence (a delayed job backed by `reminders.next_at` /
 * `snoozed_until`). Its reconciler is the reminders' own (delivery.ts `reconcile`): it re-adds
 * jobs ahead of time and replaces ended ones, instead of firing overdue occurrences inline.
 */
export const reminderTimer = defineTimer({
  job: reminderDue,
  id: ({ reminderId, occurrenceMs }) => occurrenceKey(reminderId, occurrenceMs),
});

/** What a reminder notification's `data` carries: references, never contents. */
export interface ReminderNotificationData {
  reminderId: string;
  /** The occurrence it is for (ISO 8601); later than the delivery only when it was deferred. */
  occurrenceAt: string;
  reminderKind: string;
  snoozed: boolean;
}
