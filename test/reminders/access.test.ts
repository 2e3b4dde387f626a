import { inArray } from 'drizzle-orm';
import { describe, expect } from 'vitest';
import { nextOccurrence, scheduleOf } from '../../src/modules/reminders/schedule.js';
import { reminders } from '../../src/modules/reminders/tables.js';
import { gql, sleep, settled } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import { seedOrg } from '../harness/seed.js';
import { CANCEL, CREATE, LIST, PAUSE, RESUME, SNOOZE, createReminder, deliveriesOf, inSeconds, inbox, worker } from './ops.js';

/** Two orgs on the file's instance, and a real worker whose reconciler is scoped to both. */
const it = withApp()
  .extend('a', { scope: 'file' }, ({ app }) => seedOrg(app))
  .extend('b', { scope: 'file' }, ({ app }) => seedOrg(app))
  .extend('workers', { scope: 'file', auto: true }, async ({ app, a, b }, { onCleanup }) => {
    const workers = worker(app, () => [a.orgId, b.orgId]);
    onCleanup(() => workers.close());
    return workers;
  });
it.afterEach(({ app }) => settled(app));

const code = (r: { errors?: Array<{ extensions?: { code?: string } }> }) => r.errors?.[0]?.extensions?.code;

describe('reminder access', () => {
  it('providers and services set reminders for patients of their organisation, who see and manage them', async ({ app, a }) => {
    const patient = await a.user('patient');
    const { sub } = await inbox(app, patient);
    const byProvider = await createReminder(app, a.provider, { userId: patient.id, at: inSeconds(1.5), title: 'From Dr A' });
    expect(byProvider).toMatchObject({ userId: patient.id, createdBy: a.provider.id });
    const bySvc = await createReminder(app, a.service, {
      userId: patient.id,
      kind: 'APPOINTMENT',
      title: 'Clinic visit',
      appointmentAt: inSeconds(3 * 86_400),
    });
    expect(bySvc.offsetsMinutes).toEqual([1440, 60]);
    expect(new Date(bySvc.nextAt).getTime()).toBe(new Date(bySvc.appointmentAt).getTime() - 1440 * 60_000);
    const mine = await gql(app, patient.token, LIST, {});
    expect(mine.data.reminders.map((r: any) => r.id).sort()).toEqual([byProvider.id, bySvc.id].sort());
    const theirs = await gql(app, a.provider.token, LIST, { u: patient.id, s: ['ACTIVE'] });
    expect(theirs.data.reminders.map((r: any) => r.id).sort()).toEqual([byProvider.id, bySvc.id].sort());
    await sub.waitFor(1, 6_000);
    expect(deliveriesOf(sub, byProvider.id)).toHaveLength(1);
    expect((await gql(app, patient.token, PAUSE, { id: bySvc.id })).data.pauseReminder.status).toBe('PAUSED');
    expect((await gql(app, a.provider.token, RESUME, { id: bySvc.id })).data.resumeReminder.status).toBe('ACTIVE');
    expect((await gql(app, a.service.token, CANCEL, { id: bySvc.id })).data.cancelReminder.status).toBe('CANCELLED');
  });

  it('patients act only for themselves; staff only for patients', async ({ app, a }) => {
    const p1 = await a.user('patient');
    const p2 = await a.user('patient');
    const input = { kind: 'CUSTOM', title: 'x', at: inSeconds(600) };
    expect(code(await gql(app, p1.token, CREATE, { input: { ...input, userId: p2.id } }))).toBe('FORBIDDEN');
    expect(code(await gql(app, p1.token, LIST, { u: p2.id }))).toBe('FORBIDDEN');
    const other = await a.user('provider');
    expect(code(await gql(app, a.provider.token, CREATE, { input: { ...input, userId: other.id } }))).toBe('FORBIDDEN');
    expect(code(await gql(app, a.admin.token, CREATE, { input: { ...input, userId: p1.id } }))).toBe('FORBIDDEN');
    const own = await createReminder(app, p2, input);
    for (const op of [CANCEL, PAUSE, RESUME]) expect(code(await gql(app, p1.token, op, { id: own.id }))).toBe('NOT_FOUND');
    expect(code(await gql(app, p1.token, SNOOZE, { id: own.id, m: 5 }))).toBe('NOT_FOUND');
    expect(code(await gql(app, p1.token, CANCEL, { id: 'not-a-uuid' }))).toBe('NOT_FOUND');
    expect(code(await gql(app, undefined, LIST, {}))).toBe('UNAUTHENTICATED');
    expect((await gql(app, p2.token, LIST, {})).data.reminders).toHaveLength(1);
    await gql(app, p2.token, CANCEL, { id: own.id });
  });

  it('no reminder crosses organisations', async ({ app, a, b }) => {
    const pa = await a.user('patient');
    const pb = await b.user('patient');
    const { sub: subB } = await inbox(app, pb);
    const { sub: subA } = await inbox(app, pa);
    const input = { kind: 'MEDICATION', title: 'secret', at: inSeconds(1) };
    expect(code(await gql(app, b.provider.token, CREATE, { input: { ...input, userId: pa.id } }))).toBe('NOT_FOUND');
    expect(code(await gql(app, b.provider.token, LIST, { u: pa.id }))).toBe('NOT_FOUND');
    const r = await createReminder(app, a.provider, { ...input, userId: pa.id });
    for (const op of [CANCEL, PAUSE]) {
      const res = await gql(app, b.provider.token, op, { id: r.id });
      expect(code(res)).toBe('NOT_FOUND');
      expect(JSON.stringify(res)).not.toContain('secret');
    }
    expect(code(await gql(app, b.service.token, SNOOZE, { id: r.id, m: 5 }))).toBe('NOT_FOUND');
    await subA.waitFor(1, 6_000);
    await sleep(1_000);
    expect(subB.items).toHaveLength(0);
    expect((await gql(app, pb.token, `{ unreadNotificationCount }`)).data.unreadNotificationCount).toBe(0);
    expect((await gql(app, b.provider.token, LIST, {})).data.reminders).toHaveLength(0);
  });

  it('refuses bad input with BAD_USER_INPUT and writes nothing', async ({ app, a, b }) => {
    const user = await a.user('patient');
    const at = inSeconds(600);
    const invalid: Array<Record<string, unknown>> = [
      { kind: 'CUSTOM', title: 'none' },
      { kind: 'CUSTOM', title: 'two', at, cron: '0 8 * * *', timeZone: 'UTC' },
      { kind: 'CUSTOM', title: '   ', at },
      { kind: 'CUSTOM', title: 'x'.repeat(201), at },
      { kind: 'CUSTOM', title: 'long body', at, body: 'x'.repeat(4_001) },
      { kind: 'CUSTOM', title: 'past', at: inSeconds(-5) },
      { kind: 'CUSTOM', title: 'far', at: '2099-01-01T00:00:00Z' },
      { kind: 'CUSTOM', title: 'not a date', at: 'tomorrow' },
      { kind: 'CUSTOM', title: 'no tz', cron: '0 8 * * *' },
      { kind: 'CUSTOM', title: 'bad tz', cron: '0 8 * * *', timeZone: 'Mars/Olympus' },
      { kind: 'CUSTOM', title: '4 fields', cron: '0 8 * *', timeZone: 'UTC' },
      { kind: 'CUSTOM', title: 'macro', cron: '@daily', timeZone: 'UTC' },
      { kind: 'CUSTOM', title: 'range', cron: '61 8 * * *', timeZone: 'UTC' },
      { kind: 'CUSTOM', title: 'too often', cron: '* * * * * *', timeZone: 'UTC' },
      { kind: 'APPOINTMENT', title: 'past appt', appointmentAt: inSeconds(-60) },
      { kind: 'APPOINTMENT', title: 'all passed', appointmentAt: inSeconds(1800) },
      { kind: 'APPOINTMENT', title: 'neg', appointmentAt: inSeconds(86_400 * 3), offsetsMinutes: [-5] },
      { kind: 'APPOINTMENT', title: 'empty', appointmentAt: inSeconds(86_400 * 3), offsetsMinutes: [] },
      { kind: 'CUSTOM', title: 'offsets alone', at, offsetsMinutes: [60] },
      { kind: 'CUSTOM', title: 'key', at, clientKey: '' },
      { kind: 'NAP', title: 'bad kind', at },
    ];
    for (const input of invalid) {
      const r = await gql(app, user.token, CREATE, { input });
      expect(code(r), JSON.stringify(input).slice(0, 90)).toBe('BAD_USER_INPUT');
    }
    const own = await createReminder(app, user, { at });
    for (const m of [0, -1, 10_081]) expect(code(await gql(app, user.token, SNOOZE, { id: own.id, m }))).toBe('BAD_USER_INPUT');
    expect(code(await gql(app, user.token, SNOOZE, { id: own.id, m: 'ten' }))).toBe('BAD_USER_INPUT');
    expect(code(await gql(app, user.token, LIST, { s: ['ASLEEP'] }))).toBe('BAD_USER_INPUT');
    const list = await gql(app, user.token, LIST, {});
    expect(list.data.reminders).toEqual([expect.objectContaining({ id: own.id, status: 'ACTIVE', snoozedUntil: null })]);
    // every tick in the queue is the tick of a stored reminder's time: refused inputs enqueued nothing
    const jobs = await app.container.queues.queue('reminders').getJobs(['delayed', 'waiting', 'active', 'completed']);
    const rows = await app.container.database.db
      .select()
      .from(reminders)
      .where(inArray(reminders.orgId, [a.orgId, b.orgId]));
    // a tick is the first second at or after a time (pending now, or the first occurrence of one
    // cancelled since), or a few seconds later when scheduled late
    const seconds = rows
      .flatMap((r) => [r.nextAt, r.snoozedUntil, nextOccurrence(scheduleOf(r), r.createdAt)])
      .flatMap((t) => (t ? [Math.ceil(t.getTime() / 1000)] : []));
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.filter((j) => !seconds.some((s) => j.data.second >= s && j.data.second <= s + 5))).toEqual([]);
    await gql(app, user.token, CANCEL, { id: own.id });
  });
});
