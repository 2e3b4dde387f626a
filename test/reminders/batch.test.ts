import { describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import { seedOrg } from '../harness/seed.js';
import { occurrenceKey } from '../../src/modules/reminders/events.js';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../../src/db/client.js';
import { gql, settled } from '../harness/clients.js';
import { CANCEL, createReminder, inSeconds, inbox, stored, tickOf } from './ops.js';

// The worker's batched delivery (one transaction for many occurrences), called directly on the real
// service and database. No worker runs here: the reminders are due in an hour, so only these calls
// deliver them.
it.afterEach(({ app }) => settled(app));

const occ = (r: Record<string, any>) => new Date(r.nextAt).getTime();

describe('batched reminder delivery', () => {
  it('delivers many occurrences in one transaction, each once, in inbox order, skipping duplicates and strangers', async ({ app, org }) => {
    const u = await org.user('patient');
    const v = await org.user('patient');
    const { sub } = await inbox(app, u);
    const [a, b, c] = await Promise.all(['A', 'B', 'C'].map((t, i) => createReminder(app, u, { title: t, at: inSeconds(3600 + i) })));
    const d = await createReminder(app, v, { title: 'D', at: inSeconds(3600) });
    const other = await seedOrg(app);
    const items = [a, b, a, c, d].map((r) => ({ orgId: org.orgId, id: r!.id as string, occurrenceMs: occ(r!) }));
    items.push({ orgId: other.orgId, id: a!.id, occurrenceMs: occ(a!) });
    const out = await app.container.jobs!.reminders.deliverMany(items);
    expect(out.map((o) => (o.outcome === 'skipped' ? `skipped:${o.reason}` : o.outcome))).toEqual([
      'delivered',
      'delivered',
      'skipped:inactive', // the same one-off again: completed by the first
      'delivered',
      'delivered',
      'skipped:missing',
    ]);
    const evs = (await sub.waitFor(3)).map((i) => i.notificationEvents);
    expect(evs.map((e) => [e.notification.title, e.unreadCount])).toEqual([
      ['A', 1],
      ['B', 2],
      ['C', 3],
    ]);
    for (const r of [a, b, c, d]) expect((await stored(app, org.orgId, r!.id)).notifications).toBe(1);
    const again = await app.container.jobs!.reminders.deliverMany(items.slice(0, 2));
    expect(again.map((o) => o.outcome)).toEqual(['skipped', 'skipped']);
    const list = await gql(app, u.token, `{ reminders { status nextAt } }`);
    expect(list.data.reminders).toEqual(Array(3).fill({ status: 'COMPLETED', nextAt: null }));
  });

  it('rolls back and goes one by one when an occurrence was delivered before, notifying nothing twice', async ({ app, org }) => {
    const u = await org.user('patient');
    const r1 = await createReminder(app, u, { title: 'first', at: inSeconds(3600) });
    const r2 = await createReminder(app, u, { title: 'second', at: inSeconds(3601) });
    // as if an earlier delivery stored r1's notification but its occurrence row were gone
    await app.container.services.notifications.create({
      orgId: org.orgId,
      userId: u.id,
      kind: 'reminder',
      title: 'first',
      clientKey: occurrenceKey(r1.id, occ(r1)),
    });
    const out = await app.container.jobs!.reminders.deliverMany([
      { orgId: org.orgId, id: r1.id, occurrenceMs: occ(r1) },
      { orgId: org.orgId, id: r2.id, occurrenceMs: occ(r2) },
    ]);
    expect(out).toEqual([
      { outcome: 'skipped', reason: 'already-delivered' },
      { outcome: 'delivered', notificationId: expect.any(String) },
    ]);
    expect(await stored(app, org.orgId, r1.id)).toEqual({ notifications: 1, occurrences: [occ(r1)] });
    expect(await stored(app, org.orgId, r2.id)).toEqual({ notifications: 1, occurrences: [occ(r2)] });
    const count = await gql(app, u.token, `{ unreadNotificationCount reminders { status } }`);
    expect(count.data).toEqual({ unreadNotificationCount: 2, reminders: [{ status: 'COMPLETED' }, { status: 'COMPLETED' }] });
  });

  it('advances a recurring reminder past a delivered occurrence and leaves cancelled ones alone', async ({ app, org }) => {
    const u = await org.user('patient');
    const daily = await createReminder(app, u, { cron: '0 8 * * *', timeZone: 'Europe/London' });
    const gone = await createReminder(app, u, { at: inSeconds(3600) });
    await gql(app, u.token, CANCEL, { id: gone.id });
    const out = await app.container.jobs!.reminders.deliverMany([
      { orgId: org.orgId, id: daily.id, occurrenceMs: occ(daily) },
      { orgId: org.orgId, id: gone.id, occurrenceMs: occ(gone) },
    ]);
    expect(out.map((o) => o.outcome)).toEqual(['delivered', 'skipped']);
    const list = await gql(app, u.token, `query($s:[ReminderStatus!]){ reminders(status:$s) { id nextAt } }`, { s: ['ACTIVE'] });
    expect(list.data.reminders).toHaveLength(1);
    expect(new Date(list.data.reminders[0].nextAt).getTime() - occ(daily)).toBe(86_400_000);
    // the tick of the next occurrence is scheduled after the commit
    expect(await (await tickOf(app, list.data.reminders[0].nextAt))?.getState()).toBe('delayed');
    await gql(app, u.token, CANCEL, { id: daily.id });
  });
});

describe('due-second ticks', () => {
  it('three claims at once share the occurrences of one second: each is delivered once, over many batches', async ({ app, org }) => {
    const patients = await Promise.all(Array.from({ length: 4 }, () => org.user('patient')));
    const subs = await Promise.all(patients.map((p) => inbox(app, p)));
    const N = 1_100; // more than two claims of MAX_BATCH
    const CREATE_MANY = `mutation($i:[CreateReminderInput!]!){ createReminders(inputs:$i){ reminder { id } error { code } } }`;
    const later = inSeconds(3600);
    for (let k = 0; k < N; k += 500) {
      const inputs = Array.from({ length: Math.min(500, N - k) }, (_, j) => ({
        userId: (patients[(k + j) % 4] as { id: string }).id,
        kind: 'MEDICATION',
        title: `Dose ${k + j}`,
        at: later,
      }));
      const r = await gql(app, org.service.token, CREATE_MANY, { i: inputs });
      expect(r.data.createReminders.filter((x: { error: unknown }) => x.error)).toEqual([]);
    }
    // time passes: all of them fall due in the second that just ended (creating them at a due time a
    // few seconds ahead failed on a loaded machine, where the creates took longer than the margin)
    const moved = await app.container.database.db.execute(
      sql`update reminders set at = date_trunc('second', now()) - interval '1 second', next_at = date_trunc('second', now()) - interval '1 second'
          where org_id = ${org.orgId} and status = 'active' returning id`,
    );
    expect(rowsOf(moved)).toHaveLength(N);
    // no worker runs in this file: these calls, three at once like three workers' ticks, deliver them
    const runs = await Promise.all([0, 1, 2].map(() => app.container.jobs!.reminders.deliverDue({ scope: { orgIds: [org.orgId] } })));
    const delivered = runs.reduce((n, r) => n + r.delivered, 0);
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThanOrEqual(N);
    expect(runs.reduce((n, r) => n + r.batches, 0)).toBeGreaterThanOrEqual(3);
    // every patient gets each of their reminders once
    for (const { sub } of subs) {
      const got = (await sub.waitFor(N / 4, 30_000)).map((i) => i.notificationEvents.notification.data.reminderId as string);
      expect(new Set(got).size).toBe(N / 4);
    }
    await settled(app);
    for (const { sub } of subs) expect(sub.items).toHaveLength(N / 4);
    const again = await app.container.jobs!.reminders.deliverDue({ scope: { orgIds: [org.orgId] } });
    expect(again).toMatchObject({ delivered: 0, failed: 0 });
    const list = await gql(app, org.service.token, `query($u:ID){ reminders(userId:$u, status:[ACTIVE]) { id } }`, { u: patients[0]?.id });
    expect(list.data.reminders).toEqual([]);
  }, 90_000);
});
