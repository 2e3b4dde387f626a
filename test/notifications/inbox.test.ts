import { describe, expect } from 'vitest';
import { it as base } from '../harness/fixtures.js';
import { seedOrg } from '../harness/seed.js';
import { collect, gql, live, sleep, wsClient } from '../harness/clients.js';

const NOTIFY = `mutation($u:ID!,$t:String!,$k:String,$p:Priority,$kind:NotificationKind!){
  sendNotification(input:{userId:$u, kind:$kind, title:$t, priority:$p, clientKey:$k}) { id title read priority } }`;
const EVENTS = `subscription($a:String){ notificationEvents(after:$a){ __typename ... on StreamEvent { cursor }
  ... on NotificationAdded { notification { id title kind } unreadCount }
  ... on NotificationRead { notificationIds all unreadCount }
  ... on UnreadCountChanged { unreadCount } } }`;
/** `notify(userId, title, extra)`: a service sends a SYSTEM notification on the file's instance. */
const it = base.extend(
  'notify',
  async ({ app, org }) =>
    (userId: string, title: string, extra: Record<string, unknown> = {}) =>
      gql(app, org.service.token, NOTIFY, { u: userId, t: title, kind: 'SYSTEM', ...extra }),
);

describe('notifications', () => {
  it('a service notifies a user live; read marks and the badge follow', async ({ app, org, notify }) => {
    const user = await org.user('patient');
    const client = wsClient(app, user.token);
    const sub = await live(app, client, EVENTS);
    const a = await notify(user.id, 'first');
    const b = await notify(user.id, 'second');
    expect(a.errors).toBeUndefined();
    await sub.waitFor(2);
    expect(sub.items.map((i) => [i.notificationEvents.__typename, i.notificationEvents.unreadCount])).toEqual([
      ['NotificationAdded', 1],
      ['NotificationAdded', 2],
    ]);
    const read = await gql(app, user.token, `mutation($id:ID!){ markNotificationRead(id:$id){ id read } }`, {
      id: a.data.sendNotification.id,
    });
    expect(read.data.markNotificationRead.read).toBe(true);
    await sub.waitFor(3);
    expect(sub.items[2].notificationEvents).toMatchObject({ __typename: 'NotificationRead', unreadCount: 1, all: false });
    const all = await gql(app, user.token, `mutation{ markAllNotificationsRead }`);
    expect(all.data.markAllNotificationsRead).toBe(1);
    await sub.waitFor(4);
    expect(sub.items[3].notificationEvents).toMatchObject({ __typename: 'NotificationRead', unreadCount: 0, all: true });
    const count = await gql(app, user.token, `{ unreadNotificationCount }`);
    expect(count.data.unreadNotificationCount).toBe(0);
    expect(b.data.sendNotification.title).toBe('second');
    await client.dispose();
  });

  it('resuming with a cursor replays exactly what was missed, so the badge is right after reconnect', async ({ app, org, notify }) => {
    const user = await org.user('patient');
    await notify(user.id, 'one');
    let client = wsClient(app, user.token);
    const first = await live(app, client, EVENTS, { a: null });
    await notify(user.id, 'two');
    await first.waitFor(1);
    const cursor = first.items[0].notificationEvents.cursor;
    await client.dispose();
    await notify(user.id, 'three');
    await notify(user.id, 'four');
    client = wsClient(app, user.token);
    const resumed = collect(client, EVENTS, { a: cursor });
    await resumed.waitFor(2);
    await sleep(200);
    expect(resumed.items.map((i) => i.notificationEvents.notification.title)).toEqual(['three', 'four']);
    expect(resumed.items.at(-1).notificationEvents.unreadCount).toBe(4);
    await client.dispose();
  });

  it('is idempotent on clientKey', async ({ app, org, notify }) => {
    const user = await org.user('patient');
    const [x, y] = await Promise.all([notify(user.id, 'same', { k: 'key-1' }), notify(user.id, 'same', { k: 'key-1' })]);
    expect(x.data.sendNotification.id).toBe(y.data.sendNotification.id);
    const list = await gql(app, user.token, `{ notifications(first: 10) { edges { node { id } } } }`);
    expect(list.data.notifications.edges).toHaveLength(1);
    const other = await notify(user.id, 'different', { k: 'key-1' });
    expect(other.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const backward = await gql(app, user.token, `{ notifications(last: 5) { edges { node { id } } } }`);
    expect(backward.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('muted kinds and low priorities are stored and counted but not pushed', async ({ app, org, notify }) => {
    const user = await org.user('patient');
    const prefs = await gql(
      app,
      user.token,
      `mutation{ setNotificationPreferences(input:{mutedKinds:[SYSTEM], minPriority: NORMAL}){ mutedKinds minPriority } }`,
    );
    expect(prefs.data.setNotificationPreferences).toEqual({ mutedKinds: ['SYSTEM'], minPriority: 'NORMAL' });
    const client = wsClient(app, user.token);
    const sub = await live(app, client, EVENTS);
    await notify(user.id, 'muted');
    await gql(app, org.service.token, NOTIFY, { u: user.id, t: 'low', kind: 'MESSAGE', p: 'LOW' });
    await gql(app, org.service.token, NOTIFY, { u: user.id, t: 'pushed', kind: 'MESSAGE' });
    await sub.waitFor(3);
    expect(sub.items.map((i) => i.notificationEvents.__typename)).toEqual([
      'UnreadCountChanged',
      'UnreadCountChanged',
      'NotificationAdded',
    ]);
    expect(sub.items[2].notificationEvents).toMatchObject({ notification: { title: 'pushed' }, unreadCount: 3 });
    const list = await gql(app, user.token, `{ notifications(first: 10, unreadOnly: true) { edges { node { title } } } }`);
    expect(list.data.notifications.edges.map((e: any) => e.node.title)).toEqual(['pushed', 'low', 'muted']);
    await client.dispose();
  });

  it('quiet hours hold back non-critical items but not critical ones', async ({ app, org, notify }) => {
    const user = await org.user('patient');
    // a quiet window covering the whole day except one minute that is not now
    const now = new Date();
    const hh = (d: Date) => `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
    const start = hh(new Date(now.getTime() - 60 * 60_000));
    const end = hh(new Date(now.getTime() + 60 * 60_000));
    await gql(
      app,
      user.token,
      `mutation($s:String,$e:String){ setNotificationPreferences(input:{quietStart:$s, quietEnd:$e, timeZone:"UTC"}){ quietStart } }`,
      {
        s: start,
        e: end,
      },
    );
    const client = wsClient(app, user.token);
    const sub = await live(app, client, EVENTS);
    await notify(user.id, 'quiet');
    await notify(user.id, 'urgent', { p: 'CRITICAL' });
    await sub.waitFor(2);
    expect(sub.items.map((i) => i.notificationEvents.__typename)).toEqual(['UnreadCountChanged', 'NotificationAdded']);
    await client.dispose();
  });

  it('refuses bad input and foreign users with typed errors, changing nothing', async ({ app, org, notify }) => {
    const user = await org.user('patient');
    const other = await seedOrg(app);
    const patientTries = await gql(app, user.token, NOTIFY, { u: org.provider.id, t: 'x', kind: 'SYSTEM' });
    expect(patientTries.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const foreign = await notify(other.patient.id, 'leak?');
    expect(foreign.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const empty = await notify(user.id, '   ');
    expect(empty.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const badTz = await gql(app, user.token, `mutation{ setNotificationPreferences(input:{timeZone:"Mars/Olympus"}){ timeZone } }`);
    expect(badTz.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const count = await gql(app, other.patient.token, `{ unreadNotificationCount }`);
    expect(count.data.unreadNotificationCount).toBe(0);
    const mine = await gql(app, user.token, `{ unreadNotificationCount }`);
    expect(mine.data.unreadNotificationCount).toBe(0);
  });
});
