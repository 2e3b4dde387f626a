import { CronExpressionParser } from 'cron-parser';
import { isTimeZone } from '../../shared/time.js';

/**
 * When a reminder fires. Occurrences are absolute instants; recurring ones are computed in the
 * reminder's IANA time zone, so `0 8 * * *` stays at 08:00 local across DST changes (a local time
 * that does not exist on the spring-forward day fires an hour later; one that happens twice on the
 * fall-back day fires once, at the first).
 */
export type Schedule =
  | { type: 'once'; at: Date }
  | { type: 'cron'; cron: string; timeZone: string }
  | { type: 'appointment'; appointmentAt: Date; offsetsMinutes: readonly number[] };

/**
 * Missed occurrences older than this are not delivered one by one: after a long outage (or a long
 * quiet-hours deferral) the pending occurrence is delivered late, then the schedule resumes from
 * one hour ago, so a week-long outage does not end with a week of "take your pill" at once.
 */
export const CATCH_UP_MS = 60 * 60_000;

/** How many upcoming occurrences {@link checkCron} inspects for the minimum interval. */
const INTERVAL_PROBES = 10;

/** Why a schedule is unusable, as a user-facing sentence (the service turns it into BAD_USER_INPUT). */
export class ScheduleError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

/**
 * Validates a 5-field (minute hour day month weekday) or 6-field (with leading seconds) cron
 * expression in `timeZone`: it must parse, fire at least once, and its next occurrences must be
 * at least `minIntervalMs` apart. Macros such as `@daily` are refused (cron-parser would accept
 * a 4-field expression silently, so the field count is checked first).
 */
export function checkCron(cron: string, timeZone: string, minIntervalMs: number, now: Date): void {
  if (!isTimeZone(timeZone)) throw new ScheduleError('timeZone: expected an IANA time zone such as Europe/London.', 'timeZone');
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6)
    throw new ScheduleError('cron: expected 5 fields (minute hour day month weekday), or 6 with leading seconds.', 'cron');
  let times: Date[];
  try {
    times = upcoming(cron, timeZone, now, INTERVAL_PROBES);
  } catch (err) {
    throw new ScheduleError(`cron: ${err instanceof Error ? err.message : 'invalid expression'}.`, 'cron');
  }
  if (times.length === 0) throw new ScheduleError('cron: the expression never fires.', 'cron');
  for (let i = 1; i < times.length; i++) {
    if ((times[i] as Date).getTime() - (times[i - 1] as Date).getTime() < minIntervalMs)
      throw new ScheduleError(`cron: occurrences must be at least ${Math.round(minIntervalMs / 1000)} s apart.`, 'cron');
  }
}

function upcoming(cron: string, timeZone: string, after: Date, n: number): Date[] {
  const it = CronExpressionParser.parse(cron.trim(), { tz: timeZone, currentDate: after });
  const out: Date[] = [];
  for (let i = 0; i < n && it.hasNext(); i++) out.push(it.next().toDate());
  return out;
}

/** The first occurrence strictly after `after`, or null when the schedule has no more. */
export function nextOccurrence(s: Schedule, after: Date): Date | null {
  const t = after.getTime();
  switch (s.type) {
    case 'once':
      return s.at.getTime() > t ? s.at : null;
    case 'cron':
      return upcoming(s.cron, s.timeZone, after, 1)[0] ?? null;
    case 'appointment': {
      const times = appointmentTimes(s).filter((d) => d.getTime() > t);
      return times[0] ?? null;
    }
  }
}

/** Appointment reminder instants, earliest first, without duplicates. */
export function appointmentTimes(s: { appointmentAt: Date; offsetsMinutes: readonly number[] }): Date[] {
  const ms = [...new Set(s.offsetsMinutes)].map((m) => s.appointmentAt.getTime() - m * 60_000);
  return ms.sort((a, b) => a - b).map((m) => new Date(m));
}

/**
 * The regular occurrence that follows a delivered one: the next after `delivered`, except that
 * occurrences older than {@link CATCH_UP_MS} before `now` are passed over.
 */
export function followingOccurrence(s: Schedule, delivered: Date, now: Date): Date | null {
  const floor = now.getTime() - CATCH_UP_MS;
  return nextOccurrence(s, delivered.getTime() >= floor ? delivered : new Date(floor));
}

/** The schedule a reminder row describes. */
export function scheduleOf(r: {
  at: Date | null;
  cron: string | null;
  timeZone: string;
  appointmentAt: Date | null;
  offsetsMinutes: number[];
}): Schedule {
  if (r.cron) return { type: 'cron', cron: r.cron, timeZone: r.timeZone };
  if (r.appointmentAt) return { type: 'appointment', appointmentAt: r.appointmentAt, offsetsMinutes: r.offsetsMinutes };
  if (r.at) return { type: 'once', at: r.at };
  throw new Error('reminder without a schedule');
}
