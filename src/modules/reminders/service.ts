import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Queues } from '../../jobs/queues.js';
import type { Commit } from '../../realtime/commit.js';
import { eachItem } from '../../shared/bulk.js';
import { badInput, conflict, forbidden, notFound } from '../../shared/errors.js';
import { isUuid, newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import { isTimeZone } from '../../shared/time.js';
import { parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import type { IdentityService } from '../identity/service.js';
import type { NotificationsService } from '../notifications/service.js';
import { pendingTimes } from './occurrence.js';
import * as repo from './repo.js';
import { type Schedule, ScheduleError, appointmentTimes, checkCron, nextOccurrence, scheduleOf } from './schedule.js';
import { REMINDER_KINDS, REMINDER_STATUSES, type ReminderRow } from './tables.js';
import { createTicks } from './ticks.js';

export interface RemindersDeps {
  db: Db;
  commit: Commit;
  queues: Queues;
  identity: IdentityService;
  notifications: NotificationsService;
  config: Config['reminders'];
  logger: Logger;
}

const MAX_AHEAD_MS = 5 * 366 * 86_400_000;
const MAX_OFFSET_MINUTES = 60 * 24 * 60;
const MAX_SNOOZE_MINUTES = 7 * 24 * 60;
/** Documented cap of the `reminders` list. */
export const MAX_LISTED = 500;

const createInput = z.object({
  userId: z.string().min(1).max(200).nullish(),
  kind: z.enum(REMINDER_KINDS),
  title: z.string().trim().min(1).max(200),
  body: z.string().max(4_000).nullish(),
  critical: z.boolean().nullish(),
  at: z.date().nullish(),
  cron: z.string().trim().min(1).max(200).nullish(),
  timeZone: z.string().min(1).max(100).nullish(),
  appointmentAt: z.date().nullish(),
  offsetsMinutes: z.array(z.number().int().min(0).max(MAX_OFFSET_MINUTES)).min(1).max(10).nullish(),
  clientKey: z.string().min(1).max(128).nullish(),
});
type CreateInput = z.output<typeof createInput>;
const snoozeMinutes = z.number().int('expected whole minutes').min(1).max(MAX_SNOOZE_MINUTES);
const statusFilter = z.array(z.enum(REMINDER_STATUSES)).max(REMINDER_STATUSES.length).nullish();

/** Roles that may create and manage reminders for patients of their organisation. */
const actsForPatients = (v: Viewer) => v.role === 'provider' || v.role === 'service';

/**
 * Reminders use cases. Each authorises first (own reminders; providers and services also their
 * organisation's patients'), validates, writes, and schedules the delivery job after commit.
 */
export function createRemindersService(deps: RemindersDeps) {
  const { db, commit, config } = deps;
  const ticks = createTicks(deps);
  /** After commit: the ticks of what `r` owes (none unless active). */
  const scheduleAfterCommit = (r: ReminderRow) => ticks.scheduleAfterCommit(r.status === 'active' ? pendingTimes(r) : []);

  /** The user a viewer acts for: themselves, or (providers, services) a patient of their organisation. */
  async function authorizeTarget(viewer: Viewer, userId: string | null | undefined): Promise<string> {
    if (!userId || userId === viewer.userId) {
      if (viewer.role === 'system') throw forbidden('Name the user this reminder is for.');
      return viewer.userId;
    }
    if (!actsForPatients(viewer)) throw forbidden('You can only manage your own reminders.');
    const [user] = await deps.identity.usersById(viewer, [userId]);
    if (!user) throw notFound('User');
    if (user.role !== 'patient') throw forbidden('Reminders can be set for patients, or for yourself.');
    return user.id;
  }

  /** A reminder the viewer may see and manage, or NOT_FOUND (foreign and missing look the same). */
  async function requireReminder(viewer: Viewer, id: string): Promise<ReminderRow> {
    const r = isUuid(id) ? await repo.findReminder(db, viewer.orgId, id) : undefined;
    if (!r) throw notFound('Reminder');
    if (r.userId === viewer.userId || r.createdBy === viewer.userId) return r;
    if (actsForPatients(viewer) && (await deps.identity.usersById(viewer, [r.userId]))[0]?.role === 'patient') return r;
    throw notFound('Reminder');
  }

  /** The schedule of a create input and its first occurrence, or BAD_USER_INPUT. */
  function planSchedule(v: CreateInput, now: Date): { schedule: Schedule; first: Date } {
    const given = [v.at, v.cron, v.appointmentAt].filter((x) => x != null).length;
    if (given !== 1) throw badInput('Give exactly one of at (one-off), cron (recurring) or appointmentAt.', 'at');
    if (v.timeZone != null && !isTimeZone(v.timeZone))
      throw badInput('timeZone: expected an IANA time zone such as Europe/London.', 'timeZone');
    if (v.offsetsMinutes && !v.appointmentAt) throw badInput('offsetsMinutes only applies to appointment reminders.', 'offsetsMinutes');
    const ahead = (d: Date, field: string) => {
      if (d.getTime() <= now.getTime()) throw badInput(`${field}: must be in the future.`, field);
      if (d.getTime() > now.getTime() + MAX_AHEAD_MS) throw badInput(`${field}: must be within 5 years.`, field);
    };
    let schedule: Schedule;
    if (v.at) {
      ahead(v.at, 'at');
      schedule = { type: 'once', at: v.at };
    } else if (v.cron) {
      if (!v.timeZone) throw badInput('timeZone: required with cron (an IANA zone such as Europe/London).', 'timeZone');
      try {
        checkCron(v.cron, v.timeZone, config.minIntervalMs, now);
      } catch (err) {
        if (err instanceof ScheduleError) throw badInput(err.message, err.field);
        throw err;
      }
      schedule = { type: 'cron', cron: v.cron.trim().split(/\s+/).join(' '), timeZone: v.timeZone };
    } else {
      const appointmentAt = v.appointmentAt as Date;
      ahead(appointmentAt, 'appointmentAt');
      schedule = { type: 'appointment', appointmentAt, offsetsMinutes: v.offsetsMinutes ?? config.defaultOffsetsMinutes };
      if (!appointmentTimes(schedule).some((d) => d > now))
        throw badInput('offsetsMinutes: every reminder time before this appointment has already passed.', 'offsetsMinutes');
    }
    const first = nextOccurrence(schedule, now);
    if (!first) throw badInput('The schedule has no future occurrence.', 'at');
    return { schedule, first };
  }

  /**
   * A one-state transition under the row lock; `apply` returns the change or throws CONFLICT. A
   * change ends any quiet-hours hold (the next claim checks quiet hours again). Ticks are shared,
   * so nothing is removed: a tick finds a cancelled or moved occurrence no longer owed.
   */
  async function transition(
    viewer: Viewer,
    id: string,
    apply: (r: ReminderRow, now: Date) => repo.ReminderChange | undefined,
  ): Promise<ReminderRow> {
    await requireReminder(viewer, id);
    const [before, after] = await commit(async (tx) => {
      const r = (await repo.lockReminder(tx, viewer.orgId, id)) as ReminderRow;
      const change = apply(r, new Date());
      return [r, change ? await repo.updateReminder(tx, viewer.orgId, id, { ...change, heldUntil: null }) : r] as const;
    });
    if (after !== before) await scheduleAfterCommit(after);
    return after;
  }

  return {
    /** Many `create`s in one request, each on its own (partial success, per-item keys and errors). */
    createMany(viewer: Viewer, inputs: readonly unknown[]) {
      return eachItem(inputs, 500, (input) => this.create(viewer, input));
    },

    async create(viewer: Viewer, input: unknown): Promise<ReminderRow> {
      const v = parseInput(createInput, input);
      const userId = await authorizeTarget(viewer, v.userId);
      const ms = (d: unknown) => (d == null ? null : new Date(d as string | Date).getTime());
      // a repeated key returns the first reminder only for the same reminder: target, text and schedule
      const same = (r: ReminderRow) =>
        r.userId === userId &&
        r.title === v.title &&
        r.kind === v.kind &&
        r.body === (v.body ?? null) &&
        r.critical === (v.critical ?? false) &&
        r.cron === (v.cron ?? null) &&
        r.timeZone === (v.timeZone ?? 'UTC') &&
        ms(r.at) === ms(v.at) &&
        ms(r.appointmentAt) === ms(v.appointmentAt) &&
        (v.offsetsMinutes == null || [...new Set(v.offsetsMinutes)].sort().join() === [...r.offsetsMinutes].sort().join());
      const existing = v.clientKey ? await repo.findByClientKey(db, viewer.orgId, viewer.userId, v.clientKey) : undefined;
      if (existing) {
        if (!same(existing)) throw conflict('This clientKey was already used for a different reminder.');
        await scheduleAfterCommit(existing); // heals an enqueue that failed the first time
        return existing;
      }
      const now = new Date();
      const { schedule, first } = planSchedule(v, now);
      const { row, created } = await repo.insertReminder(db, {
        id: newId(),
        orgId: viewer.orgId,
        userId,
        createdBy: viewer.userId,
        kind: v.kind,
        title: v.title,
        body: v.body ?? null,
        critical: v.critical ?? false,
        at: schedule.type === 'once' ? schedule.at : null,
        cron: schedule.type === 'cron' ? schedule.cron : null,
        timeZone: schedule.type === 'cron' ? schedule.timeZone : (v.timeZone ?? 'UTC'),
        appointmentAt: schedule.type === 'appointment' ? schedule.appointmentAt : null,
        offsetsMinutes: schedule.type === 'appointment' ? [...new Set(schedule.offsetsMinutes)] : [],
        status: 'active',
        nextAt: first,
        clientKey: v.clientKey ?? null,
        createdAt: now,
        updatedAt: now,
      });
      if (!created && !same(row)) throw conflict('This clientKey was already used for a different reminder.');
      await scheduleAfterCommit(row);
      return row;
    },

    async list(viewer: Viewer, args: { userId?: string | null; status?: readonly string[] | null }): Promise<ReminderRow[]> {
      const statuses = parseInput(statusFilter, args.status, 'status');
      const userId = await authorizeTarget(viewer, args.userId);
      return repo.listForUser(db, viewer.orgId, userId, statuses ?? undefined, MAX_LISTED);
    },

    /**
     * Delivers the reminder once more, `minutes` from now. The snooze is an occurrence of its own,
     * identified by the instant it is due; a later snooze replaces a pending one. The regular
     * schedule is unchanged. A completed reminder becomes active again until the snooze fires.
     */
    async snooze(viewer: Viewer, id: string, minutes: number): Promise<ReminderRow> {
      const m = parseInput(snoozeMinutes, minutes, 'minutes');
      return transition(viewer, id, (r, now) => {
        if (r.status === 'cancelled') throw conflict('This reminder is cancelled.');
        if (r.status === 'paused') throw conflict('This reminder is paused; resume it first.');
        return { status: 'active', snoozedUntil: new Date(now.getTime() + m * config.snoozeMinuteMs) };
      });
    },

    /** Stops the reminder for good; the ticks of what it owed find nothing owed. Idempotent. */
    cancel: (viewer: Viewer, id: string) =>
      transition(viewer, id, (r) => (r.status === 'cancelled' ? undefined : { status: 'cancelled', nextAt: null, snoozedUntil: null })),

    /** Holds deliveries; occurrences that fall due while paused are dropped. Idempotent. */
    pause: (viewer: Viewer, id: string) =>
      transition(viewer, id, (r) => {
        if (r.status === 'paused') return undefined;
        if (r.status !== 'active') throw conflict(`Only an active reminder can be paused (this one is ${r.status}).`);
        return { status: 'paused', snoozedUntil: null };
      }),

    /** Resumes from the next occurrence after now (completed if the schedule has none left). Idempotent. */
    resume: (viewer: Viewer, id: string) =>
      transition(viewer, id, (r, now) => {
        if (r.status === 'active') return undefined;
        if (r.status !== 'paused') throw conflict(`Only a paused reminder can be resumed (this one is ${r.status}).`);
        const nextAt = nextOccurrence(scheduleOf(r), now);
        return { status: nextAt ? 'active' : 'completed', nextAt };
      }),
  };
}

export type RemindersService = ReturnType<typeof createRemindersService>;
