import { describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import { KeyTaken } from '../../src/modules/notifications/service.js';
import { gql, live, sleep, wsClient } from '../harness/clients.js';
import type { TestApp } from '../harness/start-app.js';

const EVENTS = `subscription{ notificationEvents { __typename ... on StreamEvent { cursor }
  ... on NotificationAdded { notification { title } unreadCount } ... on UnreadCountChanged { unreadCount } } }`;

/** The set-based path the reminder worker uses: many notifications in one transaction. */
describe('createManyInTx', () => {
  it('appends each user’s items in order with running unread counts, muted ones silently', async ({ app, org }) => {
    const a = await org.user('patient');
    const b = await org.user('patient');
    await gql(app, b.token, `mutation{ setNotificationPreferences(input:{mutedKinds:[REMINDER]}){ timeZone } }`);
    await gql(app, org.service.token, `mutation($u:ID!){ sendNotification(input:{userId:$u, kind:SYSTEM, title:"before"}){ id } }`, {
      u: a.id,
    });
    const ca = wsClient(app, a.token);
    const cb = wsClient(app, b.token);
    const sa = await live(app, ca, EVENTS);
    const sb = await live(app, cb, EVENTS);
    const n = (userId: string, title: string) => ({
      orgId: org.orgId,
      userId,
      kind: 'reminder' as const,
      title,
      clientKey: `batch:${userId}:${title}`,
    });
    await commitMany(app, [n(a.id, 'a1'), n(b.id, 'b1'), n(a.id, 'a2'), n(a.id, 'a3'), n(b.id, 'b2')]);
    await sa.waitFor(3);
    await sb.waitFor(2);
    await sleep(200);
    expect(sa.items.map((i) => [i.notificationEvents.notification.title, i.notificationEvents.unreadCount])).toEqual([
      ['a1', 2],
      ['a2', 3],
      ['a3', 4],
    ]);
    expect(sb.items.map((i) => [i.notificationEvents.__typename, i.notificationEvents.unreadCount])).toEqual([
      ['UnreadCountChanged', 1],
      ['UnreadCountChanged', 2],
    ]);

    // a batch containing a key that exists rolls back whole: nothing new is stored or pushed
    await expect(commitMany(app, [n(a.id, 'a4'), n(a.id, 'a1')])).rejects.toBeInstanceOf(KeyTaken);
    const count = await gql(app, a.token, `{ unreadNotificationCount }`);
    expect(count.data.unreadNotificationCount).toBe(4);
    await sleep(300);
    expect(sa.items).toHaveLength(3);
    await Promise.all([ca.dispose(), cb.dispose()]);
  });
});

async function commitMany(app: TestApp, items: Parameters<TestApp['container']['services']['notifications']['createManyInTx']>[2]) {
  const { createCommit } = await import('../../src/realtime/commit.js');
  const commit = createCommit(app.container.database.db, app.container.hub, app.container.logger);
  return commit((tx, events) => app.container.services.notifications.createManyInTx(tx, events, items));
}
