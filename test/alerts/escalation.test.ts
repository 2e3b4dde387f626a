import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { escalationJob, escalationJobId } from '../../src/modules/alerts/events.js';
import { startWorkers, type Workers } from '../../src/worker.js';
import { gql, sleep, connect, disposeAll, live } from '../harness/clients.js';
import { type SeededOrg, seedOrg } from '../harness/seed.js';
import { startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { EVENTS, ACK, events, raise, settle } from './ops.js';

const DELAY_MS = 1_000;
let app: TestApp;
let workers: Workers;
beforeAll(async () => {
  app = await startApp({ env: { ALERT_ESCALATION_DELAY_MS: String(DELAY_MS) } });
  workers = startWorkers(app.container);
});
afterEach(disposeAll);
afterAll(async () => {
  await workers?.close();
  await stopAll();
});

const INBOX = `subscription { notificationEvents { __typename
  ... on NotificationAdded { notification { kind priority title data } } } }`;
const ALERT = `query { alerts(includeExpired: true) { edges { node { id escalatedAt } } } }`;

/** The admin's inbox, live. */
const inbox = (org: SeededOrg) => live(app, connect(app, org.admin), INBOX);
const escalatedAt = async (org: SeededOrg, id: string) => {
  const r = await gql(app, org.admin.token, ALERT);
  return r.data.alerts.edges.find((e: { node: { id: string } }) => e.node.id === id)?.node.escalatedAt ?? null;
};
const unread = async (org: SeededOrg) => (await gql(app, org.admin.token, `{ unreadNotificationCount }`)).data.unreadNotificationCount;

describe('alert escalation (real worker)', () => {
  it('escalates an unacknowledged CRITICAL alert: admins get a HIGH notification, subscribers get AlertEscalated', async () => {
    const org = await seedOrg(app);
    const admin2 = await org.user('admin');
    const adminInbox = await inbox(org);
    const providerFeed = await live(app, connect(app, org.provider), EVENTS);
    const adminFeed = await live(app, connect(app, org.admin), EVENTS);
    // addressed to providers only: the admins receive it once it escalates
    const alert = await raise(app, org.service, { level: 'CRITICAL', title: 'Ward 7 oxygen', audience: { roles: ['PROVIDER'] } });
    expect(await app.container.queues.queue('alerts').getJob(escalationJobId(alert.id))).toBeTruthy();

    await adminInbox.waitFor(1, 10_000);
    expect(adminInbox.items[0].notificationEvents).toEqual({
      __typename: 'NotificationAdded',
      notification: {
        kind: 'ALERT',
        priority: 'HIGH',
        title: 'Unacknowledged CRITICAL alert: Ward 7 oxygen',
        data: { alertId: alert.id, level: 'critical', type: 'test' },
      },
    });
    await settle(
      [
        [providerFeed, 2],
        [adminFeed, 1],
      ],
      300,
    );
    expect(events(providerFeed).map((e) => e.__typename)).toEqual(['AlertRaised', 'AlertEscalated']);
    expect(events(adminFeed)).toEqual([
      expect.objectContaining({ __typename: 'AlertEscalated', alert: expect.objectContaining({ id: alert.id }) }),
    ]);
    const at = await escalatedAt(org, alert.id);
    expect(Date.parse(at) - Date.parse(alert.createdAt as string)).toBeGreaterThanOrEqual(DELAY_MS - 50);
    expect(await unread({ ...org, admin: admin2 })).toBe(1);

    // a re-run (retry, stalled job, reconciler) changes nothing and notifies nobody twice
    expect(await app.container.jobs!.alerts.escalate(org.orgId, alert.id)).toBe('skipped');
    expect(await unread(org)).toBe(1);
    // escalated alerts can be acknowledged by the admins they reached
    expect((await gql(app, org.admin.token, ACK, { id: alert.id })).errors).toBeUndefined();
  });

  it('escalates EMERGENCY alerts as CRITICAL notifications', async () => {
    const org = await seedOrg(app);
    const adminInbox = await inbox(org);
    await raise(app, org.service, { level: 'EMERGENCY', title: 'Cardiac arrest bay 2' });
    await adminInbox.waitFor(1, 10_000);
    expect(adminInbox.items[0].notificationEvents.notification).toMatchObject({ kind: 'ALERT', priority: 'CRITICAL' });
  });

  it('does not escalate an acknowledged alert, and the acknowledgement cancels the job', async () => {
    const org = await seedOrg(app);
    const adminInbox = await inbox(org);
    const alert = await raise(app, org.service, { level: 'CRITICAL', title: 'acked in time' });
    const ack = await gql(app, org.provider.token, ACK, { id: alert.id });
    expect(ack.errors).toBeUndefined();
    expect(await app.container.queues.queue('alerts').getJob(escalationJobId(alert.id))).toBeUndefined();
    await sleep(DELAY_MS * 3);
    expect(adminInbox.items).toEqual([]);
    expect(await escalatedAt(org, alert.id)).toBeNull();
    expect(await unread(org)).toBe(0);
  });

  it('the handler checks PostgreSQL: a job that survives the acknowledgement does nothing', async () => {
    const org = await seedOrg(app);
    const alert = await raise(app, org.service, { level: 'CRITICAL', title: 'ack raced the cancel' });
    // an acknowledgement committed behind the queue's back (as if queues.remove had failed)
    await app.container.database.db.execute(
      sql`insert into alert_acks (alert_id, user_id, org_id) values (${alert.id}, ${org.provider.id}, ${org.orgId})`,
    );
    await sleep(DELAY_MS * 2.5);
    expect(await escalatedAt(org, alert.id)).toBeNull();
    expect(await unread(org)).toBe(0);
  });

  it('never escalates an alert that expired first, nor LOW-HIGH alerts', async () => {
    const org = await seedOrg(app);
    const expiring = await raise(app, org.service, {
      level: 'CRITICAL',
      title: 'short',
      expiresAt: new Date(Date.now() + 600).toISOString(),
    });
    const high = await raise(app, org.service, { level: 'HIGH', title: 'high' });
    expect(await app.container.queues.queue('alerts').getJob(escalationJobId(high.id))).toBeUndefined();
    await sleep(DELAY_MS * 2.5);
    expect(await escalatedAt(org, expiring.id)).toBeNull();
    expect(await escalatedAt(org, high.id)).toBeNull();
    expect(await unread(org)).toBe(0);
  });

  it('still escalates when the job never reached Redis (the reconciler)', async () => {
    const org = await seedOrg(app);
    const adminInbox = await inbox(org);
    const alert = await raise(app, org.service, { level: 'CRITICAL', title: 'lost job' });
    // as if enqueueing after commit had failed
    await app.container.queues.remove(escalationJob.queue, escalationJobId(alert.id));
    expect(await app.container.queues.queue('alerts').getJob(escalationJobId(alert.id))).toBeUndefined();
    await adminInbox.waitFor(1, 10_000);
    expect(adminInbox.items[0].notificationEvents.notification.data.alertId).toBe(alert.id);
    expect(await escalatedAt(org, alert.id)).not.toBeNull();
  });
});
