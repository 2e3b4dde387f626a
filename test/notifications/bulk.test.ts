import { describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import { gql } from '../harness/clients.js';
import { seedOrg } from '../harness/seed.js';

const BULK = `mutation($i: [SendNotificationInput!]!){ sendNotifications(inputs: $i) {
  index notification { id title kind } error { code message } } }`;
const INBOX = `{ notifications(first: 50) { edges { node { title } } } }`;

describe('sendNotifications (bulk, for internal services)', () => {
  it('sends each item on its own: per-item results in order, typed errors for bad items, nothing sent twice on retry', async ({
    app,
    org,
  }) => {
    const [a, b] = [await org.user('patient'), await org.user('patient')];
    const other = await seedOrg(app);
    const items = [
      { userId: a.id, kind: 'SYSTEM', title: 'lab results ready', clientKey: 'lab-1' },
      { userId: other.patient.id, kind: 'SYSTEM', title: 'wrong org', clientKey: 'lab-2' },
      { userId: b.id, kind: 'SYSTEM', title: '', clientKey: 'lab-3' },
      { userId: b.id, kind: 'REMINDER', title: 'appointment tomorrow', clientKey: 'lab-4' },
    ];
    const first = await gql(app, org.service.token, BULK, { i: items });
    expect(first.errors).toBeUndefined();
    const r = first.data.sendNotifications;
    expect(r.map((x: { index: number }) => x.index)).toEqual([0, 1, 2, 3]);
    expect(r[0]).toMatchObject({ notification: { title: 'lab results ready', kind: 'SYSTEM' }, error: null });
    expect(r[1]).toMatchObject({ notification: null, error: { code: 'NOT_FOUND' } });
    expect(r[2]).toMatchObject({ notification: null, error: { code: 'BAD_USER_INPUT' } });
    expect(r[3]).toMatchObject({ notification: { title: 'appointment tomorrow' }, error: null });
    // the other org learns nothing and receives nothing
    expect((await gql(app, other.patient.token, INBOX)).data.notifications.edges).toEqual([]);

    // a retried request (same keys) returns the same notifications and sends nothing more
    const again = (await gql(app, org.service.token, BULK, { i: items })).data.sendNotifications;
    expect(again[0].notification.id).toBe(r[0].notification.id);
    expect(again[3].notification.id).toBe(r[3].notification.id);
    expect((await gql(app, a.token, INBOX)).data.notifications.edges).toHaveLength(1);
    expect((await gql(app, b.token, INBOX)).data.notifications.edges).toHaveLength(1);
    // a key reused for different content is that item's CONFLICT
    const changed = (await gql(app, org.service.token, BULK, { i: [{ ...items[0], title: 'changed' }] })).data.sendNotifications;
    expect(changed[0].error).toMatchObject({ code: 'CONFLICT' });
  });

  it('is for service accounts and admins, and at most 500 items', async ({ app, org }) => {
    const item = { userId: org.patient.id, kind: 'SYSTEM', title: 'x' };
    expect((await gql(app, org.patient.token, BULK, { i: [item] })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await gql(app, org.service.token, BULK, { i: [] })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const many = Array.from({ length: 501 }, () => item);
    expect((await gql(app, org.service.token, BULK, { i: many })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await gql(app, org.patient.token, INBOX)).data.notifications.edges).toEqual([]);
  });
});

describe('the README service example', () => {
  it('examples/service-notify.mjs sends once per user, and a second run sends nothing more', async ({ app, org }) => {
    const { execFile } = await import('node:child_process');
    const run = () =>
      new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          ['examples/service-notify.mjs', org.patient.id, 'nobody-here'],
          { env: { ...process.env, WARDLINE_URL: app.url, WARDLINE_TOKEN: org.service.token.replace(/^Bearer /, '') } },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
        ),
      );
    const first = await run();
    expect(first).toMatch(new RegExp(`${org.patient.id}: sent [0-9a-f-]{36}`));
    expect(first).toContain('nobody-here: NOT_FOUND');
    const again = await run();
    expect(again.split('\n')[0]).toBe(first.split('\n')[0]);
    expect((await gql(app, org.patient.token, INBOX)).data.notifications.edges).toHaveLength(1);
  });
});

describe('createReminders (bulk)', () => {
  it('creates a reminder per patient with per-item errors, and a retry creates nothing twice', async ({ app, org }) => {
    const [a, b] = [await org.user('patient'), await org.user('patient')];
    const other = await seedOrg(app);
    const CREATE = `mutation($i: [CreateReminderInput!]!){ createReminders(inputs: $i) { index reminder { id title } error { code } } }`;
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const items = [a, other.patient, b].map((u, n) => ({
      kind: 'MEDICATION',
      title: `dose ${n}`,
      at,
      userId: u.id,
      clientKey: `dose-${n}`,
    }));
    const first = (await gql(app, org.service.token, CREATE, { i: items })).data.createReminders;
    expect(first.map((r: { error: { code: string } | null }) => r.error?.code ?? 'ok')).toEqual(['ok', 'NOT_FOUND', 'ok']);
    const again = (await gql(app, org.service.token, CREATE, { i: items })).data.createReminders;
    expect(again[0].reminder.id).toBe(first[0].reminder.id);
    expect(again[2].reminder.id).toBe(first[2].reminder.id);
    const mine = (await gql(app, a.token, `{ reminders { id } }`)).data.reminders;
    expect(mine).toEqual([{ id: first[0].reminder.id }]);
  });
});
