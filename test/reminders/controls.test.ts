import { describe, expect } from 'vitest';
import { gql, sleep, settled } from '../harness/clients.js';
import { CANCEL, PAUSE, RESUME, SNOOZE, createReminder, deliveriesOf, inSeconds, inbox, stored, tickOf, withWorker } from './ops.js';

// one snooze minute lasts 2 s here, so a 1-minute snooze fires in seconds, not a minute
const SNOOZE_MINUTE_MS = 2_000;
const it = withWorker({
  REMINDER_MIN_INTERVAL_MS: '1000',
  REMINDER_RECONCILE_MS: '1000',
  REMINDER_SNOOZE_MINUTE_MS: String(SNOOZE_MINUTE_MS),
});
it.afterEach(({ app }) => settled(app));

describe('reminder controls', () => {
  it('snooze delivers once more after `minutes`; a second snooze replaces the first', async ({ app, org }) => {
    const user = await org.user('patient');
    const { sub } = await inbox(app, user);
    const r = await createReminder(app, user, { at: inSeconds(1), kind: 'APPOINTMENT', title: 'Dentist' });
    await sub.waitFor(1, 6_000);
    const first = await gql(app, user.token, SNOOZE, { id: r.id, m: 5 });
    expect(first.data.snoozeReminder).toMatchObject({ status: 'ACTIVE' });
    const firstMs = new Date(first.data.snoozeReminder.snoozedUntil).getTime();
    expect(firstMs - Date.now()).toBeGreaterThan(4.9 * SNOOZE_MINUTE_MS);
    expect(await (await tickOf(app, firstMs))?.getState()).toBe('delayed');
    const second = await gql(app, user.token, SNOOZE, { id: r.id, m: 1 });
    const snoozedUntil = second.data.snoozeReminder.snoozedUntil as string;
    expect(second.data.snoozeReminder.nextAt).toBe(snoozedUntil);
    // the first snooze's tick stays (ticks are shared); when it fires it finds that snooze replaced
    expect(await (await tickOf(app, snoozedUntil))?.getState()).toBe('delayed');
    const [, again] = await sub.waitFor(2, 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(new Date(snoozedUntil).getTime());
    expect(again.notificationEvents.notification).toMatchObject({
      title: 'Dentist',
      data: { reminderId: r.id, occurrenceAt: snoozedUntil, snoozed: true },
    });
    await sleep(1_000);
    expect(deliveriesOf(sub, r.id)).toHaveLength(2);
    expect((await stored(app, org.orgId, r.id)).notifications).toBe(2);
    const done = await gql(app, user.token, `{ reminders { status nextAt snoozedUntil } }`);
    expect(done.data.reminders).toEqual([{ status: 'COMPLETED', nextAt: null, snoozedUntil: null }]);
  }, 30_000);

  it('cancel stops a pending delivery', async ({ app, org }) => {
    const user = await org.user('patient');
    const { sub } = await inbox(app, user);
    const due = inSeconds(2);
    const r = await createReminder(app, user, { at: due });
    const c = await gql(app, user.token, CANCEL, { id: r.id });
    expect(c.data.cancelReminder).toMatchObject({ status: 'CANCELLED', nextAt: null });
    const again = await gql(app, user.token, CANCEL, { id: r.id });
    expect(again.data.cancelReminder.status).toBe('CANCELLED');
    const snooze = await gql(app, user.token, SNOOZE, { id: r.id, m: 5 });
    expect(snooze.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    await sleep(3_500);
    expect(sub.items).toHaveLength(0);
    expect(await stored(app, org.orgId, r.id)).toEqual({ notifications: 0, occurrences: [] });
  });

  it('pause holds a recurring reminder (even a job already queued) and resume continues it', async ({ app, org }) => {
    const user = await org.user('patient');
    const { sub } = await inbox(app, user);
    const r = await createReminder(app, user, { cron: '*/2 * * * * *', timeZone: 'UTC' });
    await sub.waitFor(1, 6_000);
    const paused = await gql(app, user.token, PAUSE, { id: r.id });
    expect(paused.data.pauseReminder.status).toBe('PAUSED');
    const held = sub.items.length;
    await sleep(4_500);
    expect(sub.items.length).toBe(held);
    const resumed = await gql(app, user.token, RESUME, { id: r.id });
    expect(resumed.data.resumeReminder.status).toBe('ACTIVE');
    expect(new Date(resumed.data.resumeReminder.nextAt).getTime()).toBeGreaterThan(Date.now() - 100);
    await sub.waitFor(held + 2, 8_000);
    await gql(app, user.token, CANCEL, { id: r.id });
    await sleep(2_500);
    const got = deliveriesOf(sub, r.id).map((e) => e.notification.data.occurrenceAt);
    expect(new Set(got).size).toBe(got.length);
    expect((await stored(app, org.orgId, r.id)).notifications).toBe(got.length);
  });
});
