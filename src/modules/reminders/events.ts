import { z } from 'zod';
import { defineJob } from '../../jobs/define.js';

/**
 * A due-second tick: at `second` (epoch seconds) a worker claims every occurrence owed by then, of
 * every reminder, in set-based batches (see delivery.ts `deliverDue`). One job per second in which
 * something falls due, whatever the number of occurrences; its id is deterministic
 * ({@link tickId}), so any number of API and worker instances enqueue it once. No ids of reminders
 * or users in it at all.
 */
export const reminderTick = defineJob({
  queue: 'reminders',
  name: 'reminders-due',
  schema: z.object({ second: z.number().int().nonnegative() }),
});

/** The job id of the tick of `second` (BullMQ 6 refuses custom ids with a single `:`). */
export const tickId = (second: number) => `reminders-due-${second}`;

/**
 * The per-occurrence job of earlier versions (`reminder:<id>:<epoch ms>`). Jobs of this kind still
 * in Redis after an upgrade run as a tick of their own (they claim whatever is owed); nothing
 * enqueues them any more.
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
 * The identity of an occurrence, `reminder:<id>:<occurrenceEpochMs>`: the client key of its
 * notification, the second guard behind the occurrence row.
 */
export const occurrenceKey = (reminderId: string, occurrenceMs: number) => `reminder:${reminderId}:${occurrenceMs}`;

/** What a reminder notification's `data` carries: references, never contents. */
export interface ReminderNotificationData {
  reminderId: string;
  /** The occurrence it is for (ISO 8601); later than the delivery only when it was deferred. */
  occurrenceAt: string;
  reminderKind: string;
  snoozed: boolean;
}
