// Operations and helpers shared by the reminder tests (not a test file).
import { and, eq, like, sql } from 'drizzle-orm';
import type { Client } from 'graphql-ws';
import { expect } from 'vitest';
import { tickId } from '../../src/modules/reminders/events.js';
import { reminderJobs, reminderReconciler } from '../../src/modules/reminders/jobs.js';
import { notifications } from '../../src/modules/notifications/tables.js';
import { reminderOccurrences } from '../../src/modules/reminders/tables.js';
import { startWorkers, type Workers } from '../../src/worker.js';
import { type Collector, gql, connect, live } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import type { SeededUser } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';

export const REMINDER_FIELDS = `id userId createdBy kind title body critical status scheduleKind at cron timeZone
  appointmentAt offsetsMinutes nextAt snoozedUntil`;

export const CREATE = `mutation($input: CreateReminderInput!){ createReminder(input:$input){ ${REMINDER_FIELDS} } }`;
export const LIST = `query($u:ID, $s:[ReminderStatus!]){ reminders(userId:$u, status:$s){ ${REMINDER_FIELDS} } }`;
export const SNOOZE = `mutation($id:ID!, $m:Int!){ snoozeReminder(id:$id, minutes:$m){ ${REMINDER_FIELDS} } }`;
export const CANCEL = `mutation($id:ID!){ cancelReminder(id:$id){ ${REMINDER_FIELDS} } }`;
export const PAUSE = `mutation($id:ID!){ pauseReminder(id:$id){ ${REMINDER_FIELDS} } }`;
export const RESUME = `mutation($id:ID!){ resumeReminder(id:$id){ ${REMINDER_FIELDS} } }`;

export const INBOX = `subscription{ notificationEvents { __typename ... on StreamEvent { cursor at }
  ... on NotificationAdded { notification { id kind priority title body data } unreadCount }
  ... on UnreadCountChanged { unreadCount } } }`;

/** Creates a reminder as `by` and returns it (fails the test on errors). */
export async function createReminder(app: TestApp, by: SeededUser, input: Record<string, unknown>) {
  const r = await gql(app, by.token, CREATE, { input: { kind: 'MEDICATION', title: 'Take 5 mg', ...input } });
  expect(r.errors).toBeUndefined();
  return r.data.createReminder as Record<string, any>;
}

export const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

/** A live inbox subscription of `user` (resolves once the instance has it). */
export async function inbox(app: TestApp, user: SeededUser): Promise<{ client: Client; sub: Collector }> {
  const client = connect(app, user);
  return { client, sub: await live(app, client, INBOX, {}) };
}

/** The NotificationAdded events of a collector that come from reminder `id`. */
export const deliveriesOf = (sub: Collector, id: string) =>
  sub.items.map((i) => i.notificationEvents).filter((e) => e.__typename === 'NotificationAdded' && e.notification.data?.reminderId === id);

/** A real worker on the app's container (its queue prefix), with its claims (ticks and reconciler) scoped to `orgIds`. */
export function worker(app: TestApp, orgIds: () => string[]): Workers {
  const reminders = app.container.jobs!.reminders;
  return startWorkers(app.container, {
    jobs: reminderJobs(reminders, {}, { orgIds }),
    periodic: [reminderReconciler(reminders, app.config.reminders.reconcileMs, { orgIds })],
  });
}

/** Stored notifications and occurrence rows of a reminder: the ground truth behind "exactly once". */
export async function stored(app: TestApp, orgId: string, reminderId: string) {
  const db = app.container.database.db;
  const [n] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(notifications)
    .where(and(eq(notifications.orgId, orgId), like(notifications.clientKey, `reminder:${reminderId}:%`)));
  const occ = await db
    .select({ at: reminderOccurrences.occurrenceAt })
    .from(reminderOccurrences)
    .where(eq(reminderOccurrences.reminderId, reminderId));
  return { notifications: n?.n ?? 0, occurrences: occ.map((o) => o.at.getTime()).sort() };
}

/**
 * The due-second tick that delivers something due at `dueMs`, if Redis has it: the tick of the
 * first whole second at or after it, or (when it was scheduled late, on a loaded machine) of one of
 * the few seconds after that.
 */
export async function tickOf(app: TestApp, dueMs: number | string) {
  const queue = app.container.queues.queue('reminders');
  const first = Math.ceil(new Date(dueMs).getTime() / 1000);
  for (let s = first; s < first + 5; s++) {
    const job = await queue.getJob(tickId(s));
    if (job) return job;
  }
  return undefined;
}

/**
 * The file's instance (with `env`) and org, plus a real worker whose reconciler is scoped to that org:
 * started before the file's first test, closed before the instance stops.
 */
export const withWorker = (env: Record<string, string> = {}) =>
  withApp(env).extend('workers', { scope: 'file', auto: true }, async ({ app, org }, { onCleanup }) => {
    const workers = worker(app, () => [org.orgId]);
    onCleanup(() => workers.close());
    return workers;
  });
