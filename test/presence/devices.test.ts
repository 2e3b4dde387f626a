import { describe, expect } from 'vitest';
import { sleep } from '../harness/clients.js';
import { withTwoInstances } from '../harness/fixtures.js';
import { PRESENCE_ENV, changes, device, query, setOnDevice, setOverHttp, waitForPresence, watch } from './ops.js';

// two instances of one deployment
const it = withTwoInstances(PRESENCE_ENV);

describe('presence across devices and instances', () => {
  it('is online while any device is connected, offline with none, whichever instance holds them', async ({ a, b, org }) => {
    const nurse = await org.user('provider');
    const { client: watcher, sub } = await watch(b, org.admin, [nurse.id]);
    expect(changes(sub)[0]).toMatchObject({ userId: nurse.id, status: 'OFFLINE', devices: 0, lastSeenAt: null });

    const phone = await device(a, nurse);
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE' && p.devices === 1);
    const desktop = await device(b, nurse);
    await waitForPresence(sub, nurse.id, (p) => p.devices === 2);

    await phone.dispose();
    const one = await waitForPresence(sub, nurse.id, (p) => p.devices === 1);
    expect(one.status).toBe('ONLINE');
    expect((await query(a, org.admin, [nurse.id]))[0]).toMatchObject({ status: 'ONLINE', devices: 1 });

    const before = Date.now();
    await desktop.dispose();
    const off = await waitForPresence(sub, nurse.id, (p) => p.status === 'OFFLINE');
    expect(off.devices).toBe(0);
    expect(Date.parse(off.lastSeenAt as string)).toBeGreaterThanOrEqual(before - 1_000);
    expect((await query(a, org.admin, [nurse.id]))[0]).toMatchObject({ status: 'OFFLINE', lastSeenAt: off.lastSeenAt });
    // each change was published once: offline → 1 → 2 → 1 → offline
    expect(changes(sub).map((c) => [c.status, c.devices])).toEqual([
      ['OFFLINE', 0],
      ['ONLINE', 1],
      ['ONLINE', 2],
      ['ONLINE', 1],
      ['OFFLINE', 0],
    ]);
    await watcher.dispose();
  });

  it('setPresence over HTTP applies to every device, is seen on the other instance, and is the default for new devices', async ({
    a,
    b,
    org,
  }) => {
    const nurse = await org.user('provider');
    const phone = await device(a, nurse);
    const { client: watcher, sub } = await watch(b, org.provider, [nurse.id]);
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE');

    const set = await setOverHttp(a, nurse, 'BUSY', 'In theatre until 3pm');
    expect(set).toMatchObject({ userId: nurse.id, status: 'BUSY', statusText: 'In theatre until 3pm', devices: 1 });
    await waitForPresence(sub, nurse.id, (p) => p.status === 'BUSY' && p.statusText === 'In theatre until 3pm');

    const tablet = await device(b, nurse);
    const two = await waitForPresence(sub, nurse.id, (p) => p.devices === 2);
    expect(two.status).toBe('BUSY');
    // omitting the text keeps it; null clears it
    expect((await setOverHttp(b, nurse, 'AWAY')).statusText).toBe('In theatre until 3pm');
    expect((await setOverHttp(b, nurse, 'AWAY', null)).statusText).toBeNull();
    await waitForPresence(sub, nurse.id, (p) => p.status === 'AWAY' && p.statusText === null);
    await Promise.all([phone.dispose(), tablet.dispose(), watcher.dispose()]);
  });

  it('setPresence on a connection applies to that device; devices aggregate as in_call > busy > online > away', async ({ a, b, org }) => {
    const nurse = await org.user('provider');
    const phone = await device(a, nurse);
    const desktop = await device(b, nurse);
    const { client: watcher, sub } = await watch(a, org.admin, [nurse.id]);
    await waitForPresence(sub, nurse.id, (p) => p.devices === 2);

    await setOverHttp(a, nurse, 'AWAY'); // both devices away
    await waitForPresence(sub, nurse.id, (p) => p.status === 'AWAY');
    expect((await setOnDevice(desktop, 'BUSY')).status).toBe('BUSY');
    await waitForPresence(sub, nurse.id, (p) => p.status === 'BUSY');
    expect((await setOnDevice(phone, 'IN_CALL')).status).toBe('IN_CALL');
    await waitForPresence(sub, nurse.id, (p) => p.status === 'IN_CALL');
    await setOnDevice(phone, 'ONLINE'); // busy desktop outranks the phone
    await waitForPresence(sub, nurse.id, (p) => p.status === 'BUSY');
    await desktop.dispose();
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE' && p.devices === 1);
    await setOnDevice(phone, 'OFFLINE'); // appear offline: no devices shown
    const hidden = await waitForPresence(sub, nurse.id, (p) => p.status === 'OFFLINE');
    expect(hidden.devices).toBe(0);
    expect(hidden.lastSeenAt).not.toBeNull();
    await Promise.all([phone.dispose(), watcher.dispose()]);
  });

  it('the subscription first emits the current state of each requested user, in order, then changes', async ({ a, b, org }) => {
    const online = await org.user('provider');
    const busy = await org.user('provider');
    const never = await org.user('provider');
    // a first watcher sees the changes below sent: once it has their final states, none is pending
    // (a change still in its coalescing window would reach the second watcher as an extra item)
    const first = await watch(a, org.admin, [online.id, busy.id]);
    const phone = await device(a, online);
    const busyPhone = await device(b, busy);
    await setOverHttp(b, busy, 'BUSY', 'On rounds');
    await waitForPresence(first.sub, online.id, (p) => p.status === 'ONLINE');
    await waitForPresence(first.sub, busy.id, (p) => p.status === 'BUSY' && p.statusText === 'On rounds');

    const { client: watcher, sub } = await watch(b, org.admin, [online.id, busy.id, never.id, online.id]);
    expect(changes(sub).map((c) => [c.userId, c.status, c.statusText, c.devices])).toEqual([
      [online.id, 'ONLINE', null, 1],
      [busy.id, 'BUSY', 'On rounds', 1],
      [never.id, 'OFFLINE', null, 0],
    ]);
    expect(changes(sub)[2]?.lastSeenAt).toBeNull();
    await sleep(300);
    expect(sub.items).toHaveLength(3);
    const ghost = await device(a, never);
    await waitForPresence(sub, never.id, (p) => p.status === 'ONLINE');
    expect(sub.items).toHaveLength(4);
    await Promise.all([phone.dispose(), busyPhone.dispose(), ghost.dispose(), watcher.dispose(), first.client.dispose()]);
  });
});
