import { afterEach, describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import { collect, gql, connect, disposeAll, until } from '../harness/clients.js';
import { seedOrg } from '../harness/seed.js';
import { ACK, raise } from './ops.js';

afterEach(disposeAll);

const WATCH = `subscription($f: AlertFilter){ alertRaised(filter: $f) {
  __typename ... on AlertAcknowledged { alert { id acknowledgedByMe } } ... on AlertRaised { alert { id title } } } }`;

/**
 * Subscribers whose filters differ share one render per event; a viewer-dependent field
 * (acknowledgedByMe) must still be rendered per user.
 */
describe('shared rendering across filters', () => {
  it('gives each subscriber its own acknowledgedByMe, and every filter the same payload', async ({ app }) => {
    const org = await seedOrg(app);
    const other = await org.user('provider');
    const before = app.container.fanout.stats().subscriptions;
    const a = collect(connect(app, org.provider), WATCH, { f: { minLevel: 'LOW' } });
    const b = collect(connect(app, other), WATCH, { f: { minLevel: 'MEDIUM' } });
    const c = collect(connect(app, other), WATCH, { f: { types: ['outbreak'] } });
    await until(() => app.container.fanout.stats().subscriptions >= before + 3, 5_000, 'three live subscriptions');
    const alert = await raise(app, org.service, { level: 'HIGH', type: 'outbreak', title: 'Shared render' });
    await Promise.all([a.waitFor(1), b.waitFor(1), c.waitFor(1)]);
    for (const s of [a, b, c])
      expect(s.items[0].alertRaised).toEqual({ __typename: 'AlertRaised', alert: { id: alert.id, title: 'Shared render' } });

    const ack = await gql(app, org.provider.token, ACK, { id: alert.id });
    expect(ack.errors).toBeUndefined();
    await Promise.all([a.waitFor(2), b.waitFor(2), c.waitFor(2)]);
    expect(a.items[1].alertRaised).toEqual({ __typename: 'AlertAcknowledged', alert: { id: alert.id, acknowledgedByMe: true } });
    expect(b.items[1].alertRaised).toEqual({ __typename: 'AlertAcknowledged', alert: { id: alert.id, acknowledgedByMe: false } });
    expect(c.items[1].alertRaised).toEqual({ __typename: 'AlertAcknowledged', alert: { id: alert.id, acknowledgedByMe: false } });
  });
});
