import { DateTime, IANAZone } from 'luxon';

/** Whether `tz` is a valid IANA time zone name. */
export const isTimeZone = (tz: string): boolean => IANAZone.isValidZone(tz);

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;
export const isLocalTime = (s: string): boolean => HHMM.test(s);

/**
 * If `at` falls inside the daily window [start, end) local to `tz` (the window may wrap past
 * midnight), returns the instant the window ends; otherwise undefined.
 */
export function quietUntil(at: Date, tz: string, start: string | null, end: string | null): Date | undefined {
  if (!start || !end || start === end) return undefined;
  const local = DateTime.fromJSDate(at, { zone: tz });
  const [sh, sm] = start.split(':').map(Number) as [number, number];
  const [eh, em] = end.split(':').map(Number) as [number, number];
  const minutes = local.hour * 60 + local.minute;
  const s = sh * 60 + sm;
  const e = eh * 60 + em;
  const inside = s < e ? minutes >= s && minutes < e : minutes >= s || minutes < e;
  if (!inside) return undefined;
  let endAt = local.set({ hour: eh, minute: em, second: 0, millisecond: 0 });
  if (endAt <= local) endAt = endAt.plus({ days: 1 });
  return endAt.toJSDate();
}
