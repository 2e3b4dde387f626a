import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import {
  CATCH_UP_MS,
  ScheduleError,
  checkCron,
  followingOccurrence,
  nextOccurrence,
  type Schedule,
} from '../../src/modules/reminders/schedule.js';

/** `n` consecutive occurrences after `from`, as local wall-clock times in `tz`. */
function localTimes(s: Schedule & { type: 'cron' }, from: string, n: number): string[] {
  const out: string[] = [];
  let at = new Date(from);
  for (let i = 0; i < n; i++) {
    at = nextOccurrence(s, at) as Date;
    out.push(DateTime.fromJSDate(at, { zone: s.timeZone }).toFormat('yyyy-MM-dd HH:mm ZZ'));
  }
  return out;
}

describe('reminder schedule (pure)', () => {
  it('keeps a daily 08:00 at 08:00 local across the March change in London (+00:00 → +01:00)', () => {
    const s = { type: 'cron', cron: '0 8 * * *', timeZone: 'Europe/London' } as const;
    expect(localTimes(s, '2025-03-28T12:00:00Z', 4)).toEqual([
      '2025-03-29 08:00 +00:00',
      '2025-03-30 08:00 +01:00',
      '2025-03-31 08:00 +01:00',
      '2025-04-01 08:00 +01:00',
    ]);
    // the instants move by an hour, the wall clock does not
    expect(nextOccurrence(s, new Date('2025-03-29T09:00:00Z'))?.toISOString()).toBe('2025-03-30T07:00:00.000Z');
  });

  it('keeps a daily 08:00 at 08:00 local across the October change in London and both changes in New York', () => {
    const london = { type: 'cron', cron: '0 8 * * *', timeZone: 'Europe/London' } as const;
    expect(localTimes(london, '2025-10-24T12:00:00Z', 3)).toEqual([
      '2025-10-25 08:00 +01:00',
      '2025-10-26 08:00 +00:00',
      '2025-10-27 08:00 +00:00',
    ]);
    const ny = { type: 'cron', cron: '0 8 * * *', timeZone: 'America/New_York' } as const;
    expect(localTimes(ny, '2025-03-08T20:00:00Z', 2)).toEqual(['2025-03-09 08:00 -04:00', '2025-03-10 08:00 -04:00']);
    expect(localTimes(ny, '2025-11-01T20:00:00Z', 2)).toEqual(['2025-11-02 08:00 -05:00', '2025-11-03 08:00 -05:00']);
  });

  it('fires a local time skipped by spring-forward an hour later, and a repeated one once', () => {
    const s = { type: 'cron', cron: '30 1 * * *', timeZone: 'Europe/London' } as const;
    // 01:30 does not exist on 2025-03-30 in London
    expect(nextOccurrence(s, new Date('2025-03-29T12:00:00Z'))?.toISOString()).toBe('2025-03-30T01:30:00.000Z');
    // 01:30 happens twice on 2025-10-26: fired once, at the first (BST)
    const fallBack = [nextOccurrence(s, new Date('2025-10-25T12:00:00Z')) as Date];
    fallBack.push(nextOccurrence(s, fallBack[0] as Date) as Date);
    expect(fallBack.map((d) => d.toISOString())).toEqual(['2025-10-26T00:30:00.000Z', '2025-10-27T01:30:00.000Z']);
  });

  it('returns the next occurrence strictly after the one delivered', () => {
    const s = { type: 'cron', cron: '0 8 * * *', timeZone: 'UTC' } as const;
    const at = new Date('2025-06-01T08:00:00Z');
    expect(nextOccurrence(s, at)?.toISOString()).toBe('2025-06-02T08:00:00.000Z');
  });

  it('computes appointment offsets and one-offs, and ends when nothing is left', () => {
    const appt = { type: 'appointment', appointmentAt: new Date('2025-06-10T14:00:00Z'), offsetsMinutes: [1440, 60] } as const;
    expect(nextOccurrence(appt, new Date('2025-06-01T00:00:00Z'))?.toISOString()).toBe('2025-06-09T14:00:00.000Z');
    expect(nextOccurrence(appt, new Date('2025-06-09T14:00:00Z'))?.toISOString()).toBe('2025-06-10T13:00:00.000Z');
    expect(nextOccurrence(appt, new Date('2025-06-10T13:00:00Z'))).toBeNull();
    const once = { type: 'once', at: new Date('2025-06-10T14:00:00Z') } as const;
    expect(nextOccurrence(once, new Date('2025-06-10T13:59:59Z'))?.toISOString()).toBe('2025-06-10T14:00:00.000Z');
    expect(nextOccurrence(once, new Date('2025-06-10T14:00:00Z'))).toBeNull();
  });

  it('after a long outage delivers the owed occurrence, then resumes within the catch-up window', () => {
    const s = { type: 'cron', cron: '0 * * * *', timeZone: 'UTC' } as const;
    const owed = new Date('2025-06-01T00:00:00Z');
    const now = new Date('2025-06-03T10:30:00Z');
    const next = followingOccurrence(s, owed, now) as Date;
    expect(next.toISOString()).toBe('2025-06-03T10:00:00.000Z');
    expect(now.getTime() - next.getTime()).toBeLessThanOrEqual(CATCH_UP_MS);
    // a short outage loses nothing: the very next occurrence follows
    expect(followingOccurrence(s, new Date('2025-06-03T10:00:00Z'), now)?.toISOString()).toBe('2025-06-03T11:00:00.000Z');
  });

  it('refuses malformed crons, unknown zones and too-frequent schedules', () => {
    const now = new Date('2025-06-01T00:00:00Z');
    const bad: Array<[string, string, string]> = [
      ['0 8 * *', 'UTC', 'cron'],
      ['@daily', 'UTC', 'cron'],
      ['61 8 * * *', 'UTC', 'cron'],
      ['0 8 30 2 *', 'UTC', 'cron'],
      ['0 0 0 8 * * *', 'UTC', 'cron'],
      ['0 8 * * *', 'Mars/Olympus', 'timeZone'],
      ['*/5 * * * * *', 'UTC', 'cron'],
    ];
    for (const [cron, tz, field] of bad) {
      let err: unknown;
      try {
        checkCron(cron, tz, 60_000, now);
      } catch (e) {
        err = e;
      }
      expect(err, cron).toBeInstanceOf(ScheduleError);
      expect((err as ScheduleError).field, cron).toBe(field);
    }
    expect(() => checkCron('0 8 * * 1-5', 'Europe/London', 60_000, now)).not.toThrow();
    expect(() => checkCron('*/5 * * * * *', 'UTC', 5_000, now)).not.toThrow();
  });
});
