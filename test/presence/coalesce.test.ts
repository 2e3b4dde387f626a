import { describe, expect } from 'vitest';
import { sleep } from '../harness/clients.js';
import { withTwoInstances } from '../harness/fixtures.js';
import { PRESENCE_ENV, changes, device, query, setOverHttp, waitForPresence, watch } from './ops.js';

// a wider window than the other files so that "rapid" holds on a loaded machine
const COALESCE_MS = 400;
const it = withTwoInstances({ ...PRESENCE_ENV, PRESENCE_COALESCE_MS: String(COALESCE_MS) });

describe('coalescing', () => {
  it('rapid status changes reach subscribers as a few events ending in the final state', async ({ a, b, org }) => {
    const nurse = await org.user('provider');
    const phone = await device(a, nurse);
    const { client: watcher, sub } = await watch(b, org.admin, [nurse.id]);
    // the device's own connect change has been sent (a version above 0), so it is not counted below
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE' && p.version > 0);
    const before = sub.items.length;

    const started = Date.now();
    const flaps = ['BUSY', 'AWAY', 'ONLINE', 'BUSY', 'AWAY', 'BUSY', 'ONLINE', 'AWAY', 'BUSY', 'IN_CALL'];
    for (const s of flaps) await setOverHttp(a, nurse, s);
    const windows = Math.ceil((Date.now() - started) / COALESCE_MS);
    await waitForPresence(sub, nurse.id, (p) => p.status === 'IN_CALL');
    await sleep(2 * COALESCE_MS);
    const sent = changes(sub).slice(before);
    expect(sent.length).toBeLessThanOrEqual(windows + 1);
    expect(sent.length).toBeLessThan(flaps.length / 2);
    expect(sent.at(-1)?.status).toBe('IN_CALL');
    expect((await query(b, org.admin, [nurse.id]))[0]?.status).toBe('IN_CALL');
    await Promise.all([phone.dispose(), watcher.dispose()]);
  });

  it('a change undone within the window is not sent at all', async ({ a, b, org }) => {
    const nurse = await org.user('provider');
    const phone = await device(a, nurse);
    const { client: watcher, sub } = await watch(b, org.admin, [nurse.id]);
    // the device's own connect change has been sent (a version above 0; the first state shows version 0
    // while it is still in its window), so nothing of it is counted below
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE' && p.version > 0);
    const before = sub.items.length;
    await setOverHttp(a, nurse, 'BUSY');
    await setOverHttp(b, nurse, 'ONLINE');
    await sleep(3 * COALESCE_MS);
    expect(sub.items.length).toBe(before);
    await Promise.all([phone.dispose(), watcher.dispose()]);
  });

  it('a flapping device connection does not flood subscribers', async ({ a, b, org }) => {
    const nurse = await org.user('provider');
    const phone = await device(a, nurse);
    const { client: watcher, sub } = await watch(a, org.admin, [nurse.id]);
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE' && p.devices === 1 && p.version > 0);
    const before = sub.items.length;
    for (let i = 0; i < 6; i++) {
      const flaky = await device(i % 2 ? a : b, nurse);
      await flaky.dispose();
    }
    await sleep(3 * COALESCE_MS);
    const sent = changes(sub).slice(before);
    expect(sent.length).toBeLessThanOrEqual(3);
    const last = sent.at(-1) ?? changes(sub)[before - 1];
    expect(last).toMatchObject({ status: 'ONLINE', devices: 1 });
    expect((await query(a, org.admin, [nurse.id]))[0]).toMatchObject({ status: 'ONLINE', devices: 1 });
    await Promise.all([phone.dispose(), watcher.dispose()]);
  });
});
