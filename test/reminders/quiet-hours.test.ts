import { describe, expect } from 'vitest';
import { gql, sleep, settled, until } from '../harness/clients.js';
import { createReminder, deliveriesOf, inSeconds, inbox, tickOf, withWorker } from './ops.js';

// its own file: it waits for the end of a quiet minute, in parallel with the other reminder tests
const it = withWorker({ REMINDER_RECONCILE_MS: '1000' });
it.afterAll(({ app }) => settled(app));

const hhmm = (d: Date) => `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;

describe('reminders in quiet hours', () => {
  it('quiet hours postpone a non-critical reminder to their end, keeping its occurrence; critical ones go through', async ({
    app,
    org,
  }) => {
    const user = await org.user('patient');
    // quiet hours [this minute, next minute) in UTC, with at least 30 s of them left: the critical
    // delivery and the check of the deferral must both happen inside them, on a loaded machine too
    // (8 s were too few)
    if (60 - new Date().getUTCSeconds() < 30) await sleep((61 - new Date().getUTCSeconds()) * 1000);
    const now = new Date();
    const end = new Date(Math.ceil(now.getTime() / 60_000) * 60_000);
    const prefs = await gql(
      app,
      user.token,
      `mutation($s:String,$e:String){ setNotificationPreferences(input:{quietStart:$s, quietEnd:$e, timeZone:"UTC"}){ quietEnd } }`,
      {
        s: hhmm(now),
        e: hhmm(end),
      },
    );
    expect(prefs.errors).toBeUndefined();
    const { sub } = await inbox(app, user);
    const due = inSeconds(1);
    const quiet = await createReminder(app, user, { at: due, title: 'vitamins' });
    const urgent = await createReminder(app, user, { at: due, title: 'insulin', critical: true });
    const [first] = await sub.waitFor(1, 15_000);
    expect(first.notificationEvents.notification).toMatchObject({ title: 'insulin', priority: 'CRITICAL' });
    expect(Date.now()).toBeLessThan(end.getTime());
    // the non-critical one is held until the quiet hours end, when a tick is due
    await until(async () => (await (await tickOf(app, end.getTime()))?.getState()) === 'delayed', 10_000, 'the deferral');
    expect(deliveriesOf(sub, quiet.id)).toHaveLength(0);
    await sub.waitFor(2, end.getTime() - Date.now() + 15_000);
    const late = deliveriesOf(sub, quiet.id);
    expect(late).toHaveLength(1);
    expect(late[0].notification.data.occurrenceAt).toBe(due);
    expect(new Date(sub.items[1].notificationEvents.at).getTime()).toBeGreaterThanOrEqual(end.getTime());
    await sleep(1_000);
    expect(deliveriesOf(sub, urgent.id)).toHaveLength(1);
    expect(sub.items).toHaveLength(2);
  }, 150_000);
});
