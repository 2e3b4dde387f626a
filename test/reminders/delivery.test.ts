import { describe, expect } from 'vitest';
import { gql, sleep, settled, until } from '../harness/clients.js';
import { CANCEL, CREATE, createReminder, deliveriesOf, inSeconds, inbox, stored, tickOf, withWorker } from './ops.js';

// 6-field crons every 2 s are allowed here; the reconciler runs every 500 ms
const it = withWorker({ REMINDER_MIN_INTERVAL_MS: '1000', REMINDER_RECONCILE_MS: '500', JOB_LOCK_MS: '2000' });
it.afterEach(({ app }) => settled(app));

describe('reminder delivery', () => {
  it('a reminder due in ~2 s reaches the subscribed patient exactly once', async ({ app, org }) => {
    const user = await org.user('patient');
    const { sub } = await inbox(app, user);
    const due = inSeconds(2);
    const r = await createReminder(app, user, { at: due, body: 'with water' });
    expect(r).toMatchObject({ status: 'ACTIVE', scheduleKind: 'ONE_OFF', nextAt: due, userId: user.id });
    const [ev] = await sub.waitFor(1, 8_000);
    expect(Date.now()).toBeGreaterThanOrEqual(new Date(due).getTime());
    expect(ev.notificationEvents).toMatchObject({
      __typename: 'NotificationAdded',
      notification: {
        kind: 'REMINDER',
        priority: 'HIGH',
        title: 'Take 5 mg',
        body: 'with water',
        data: { reminderId: r.id, occurrenceAt: due },
      },
      unreadCount: 1,
    });
    await sleep(1_500);
    expect(deliveriesOf(sub, r.id)).toHaveLength(1);
    expect(await stored(app, org.orgId, r.id)).toEqual({ notifications: 1, occurrences: [new Date(due).getTime()] });
    const after = await gql(app, user.token, `{ reminders { id status nextAt } }`);
    expect(after.data.reminders).toEqual([{ id: r.id, status: 'COMPLETED', nextAt: null }]);
  });

  it('a recurring reminder delivers each occurrence once, on schedule, until cancelled', async ({ app, org }) => {
    const user = await org.user('patient');
    const { sub } = await inbox(app, user);
    const r = await createReminder(app, user, { kind: 'CUSTOM', cron: '*/2 * * * * *', timeZone: 'Europe/London' });
    expect(r).toMatchObject({ scheduleKind: 'RECURRING', cron: '*/2 * * * * *', timeZone: 'Europe/London' });
    await sub.waitFor(3, 10_000);
    const cancelled = await gql(app, user.token, CANCEL, { id: r.id });
    expect(cancelled.data.cancelReminder).toMatchObject({ status: 'CANCELLED', nextAt: null });
    await sleep(3_000);
    const got = deliveriesOf(sub, r.id).map((e) => e.notification.data.occurrenceAt as string);
    expect(new Set(got).size).toBe(got.length);
    for (const at of got) expect(new Date(at).getUTCSeconds() % 2).toBe(0);
    for (let i = 1; i < got.length; i++)
      expect(new Date(got[i] as string).getTime() - new Date(got[i - 1] as string).getTime()).toBe(2_000);
    const s = await stored(app, org.orgId, r.id);
    expect(s.notifications).toBe(got.length);
    expect(s.occurrences).toEqual(got.map((g) => new Date(g).getTime()));
  });

  it('delivers once what Redis lost (obliterated queue: no tick left)', async ({ app, org }) => {
    const user = await org.user('patient');
    const { sub } = await inbox(app, user);
    const due = inSeconds(2.5);
    const a = await createReminder(app, user, { at: due, title: 'lost A' });
    const b = await createReminder(app, user, { at: due, title: 'lost B' });
    const queue = app.container.queues.queue('reminders');
    await queue.pause();
    await queue.obliterate({ force: true });
    expect(await tickOf(app, due)).toBeUndefined();
    await queue.resume();
    await sub.waitFor(2, 10_000);
    await sleep(2_000);
    expect(deliveriesOf(sub, a.id)).toHaveLength(1);
    expect(deliveriesOf(sub, b.id)).toHaveLength(1);
    expect((await stored(app, org.orgId, a.id)).notifications).toBe(1);
    expect((await stored(app, org.orgId, b.id)).notifications).toBe(1);
  });

  it('a duplicate enqueue and a re-run of a completed occurrence deliver nothing more', async ({ app, org }) => {
    const user = await org.user('patient');
    const { sub } = await inbox(app, user);
    const due = inSeconds(1.5);
    const r = await createReminder(app, user, { at: due });
    const occurrenceMs = new Date(due).getTime();
    await sub.waitFor(1, 8_000);
    await until(async () => (await (await tickOf(app, occurrenceMs))?.getState()) === 'completed', 5_000, 'the tick to complete');
    // a per-occurrence job of an earlier version for the same occurrence (left in Redis by an upgrade) runs and finds nothing owed
    await app.container.queues.add(
      (await import('../../src/modules/reminders/events.js')).reminderDue,
      { reminderId: r.id, orgId: org.orgId, occurrenceMs },
      { jobId: `replay-${r.id}` },
    );
    await until(
      async () => (await app.container.queues.queue('reminders').getJob(`replay-${r.id}`))?.returnvalue?.delivered === 0,
      5_000,
      'the replay',
    );
    await sleep(500);
    expect(deliveriesOf(sub, r.id)).toHaveLength(1);
    expect((await stored(app, org.orgId, r.id)).notifications).toBe(1);
  });

  it('is idempotent on clientKey: the same reminder', async ({ app, org }) => {
    const user = await org.user('patient');
    const input = { kind: 'MEDICATION', title: 'Statin', at: inSeconds(3600), clientKey: 'rx-1' };
    const [x, y] = await Promise.all([gql(app, user.token, CREATE, { input }), gql(app, user.token, CREATE, { input })]);
    expect(x.errors).toBeUndefined();
    expect(y.data.createReminder.id).toBe(x.data.createReminder.id);
    const other = await gql(app, user.token, CREATE, { input: { ...input, title: 'Different' } });
    expect(other.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const otherTime = await gql(app, user.token, CREATE, { input: { ...input, at: inSeconds(7200) } });
    expect(otherTime.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const list = await gql(app, user.token, `{ reminders { id } }`);
    expect(list.data.reminders).toHaveLength(1);
    await gql(app, user.token, CANCEL, { id: x.data.createReminder.id });
  });
});
