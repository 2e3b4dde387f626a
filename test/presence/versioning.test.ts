// Presence changes carry a version (strictly increasing per user, set in the Redis step that marks
// the change published), so two instances can never deliver a user's changes out of order: each
// instance drops an event older than one it already delivered for that user. Two instances.
import { describe, expect } from 'vitest';
import type { EphemeralEvent } from '../../src/realtime/hub.js';
import { sleep, until } from '../harness/clients.js';
import { withTwoInstances } from '../harness/fixtures.js';
import { PRESENCE_ENV, changes, device, query, setOverHttp, waitForPresence, watch } from './ops.js';

// immediate publishing: every change is sent by the instance that made it, the widest race
const it = withTwoInstances({ ...PRESENCE_ENV, PRESENCE_COALESCE_MS: '0' });

const strictlyIncreasing = (xs: number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

describe('presence versions', () => {
  it('a change published late by one instance does not overwrite a newer one from the other', async ({ a, b, org }) => {
    const nurse = await org.user('provider');
    const phone = await device(a, nurse);
    const watchers = await Promise.all([watch(a, org.admin, [nurse.id]), watch(b, org.admin, [nurse.id])]);
    for (const w of watchers) await waitForPresence(w.sub, nurse.id, (p) => p.status === 'ONLINE');

    // B's publishes of presence changes are held back 400 ms (a slow network, a GC pause)
    const hub = b.container.hub;
    const publish = hub.publishEphemeral;
    const held: Promise<unknown>[] = [];
    hub.publishEphemeral = (e: EphemeralEvent) => {
      const p = (async () => {
        if (e.type === 'PresenceChanged') await sleep(400);
        return publish.call(hub, e);
      })();
      held.push(p);
      return p;
    };
    try {
      const onB = setOverHttp(b, nurse, 'BUSY'); // decided first (stored in Redis), sent last
      await until(async () => (await query(a, org.admin, [nurse.id]))[0]?.status === 'BUSY', 2_000, 'BUSY stored');
      const away = await setOverHttp(a, nurse, 'AWAY');
      const busy = await onB;
      expect(away.version).toBeGreaterThan(busy.version);
    } finally {
      hub.publishEphemeral = publish;
    }
    // B's late BUSY has been handed to Redis; a change B publishes after it reaches every instance after
    // it, so once both watchers have that one, the late BUSY has reached them too (and was dropped)
    await Promise.all(held);
    await setOverHttp(b, nurse, 'AWAY', 'after the late BUSY');
    for (const { sub } of watchers) await waitForPresence(sub, nurse.id, (p) => p.statusText === 'after the late BUSY');

    const stored = (await query(a, org.admin, [nurse.id]))[0]!;
    expect(stored.status).toBe('AWAY');
    for (const { sub } of watchers) {
      const seen = changes(sub).filter((c) => c.userId === nurse.id);
      expect(seen.at(-1)).toMatchObject({ status: 'AWAY', version: stored.version });
      expect(strictlyIncreasing(seen.map((c) => c.version)), JSON.stringify(seen.map((c) => [c.status, c.version]))).toBe(true);
    }
    await Promise.all([phone.dispose(), ...watchers.map((w) => w.client.dispose())]);
  });

  it('interleaved changes on both instances: every subscriber ends on the stored state with strictly increasing versions', async ({
    a,
    b,
    org,
  }) => {
    const nurse = await org.user('provider');
    const devices = await Promise.all([device(a, nurse), device(b, nurse)]);
    const watchers = await Promise.all([watch(a, org.admin, [nurse.id]), watch(b, org.admin, [nurse.id])]);
    const statuses = ['BUSY', 'AWAY', 'ONLINE', 'IN_CALL'];
    for (let round = 0; round < 12; round++)
      await Promise.all([setOverHttp(a, nurse, statuses[round % 4]!), setOverHttp(b, nurse, statuses[(round + 1) % 4]!)]);

    const stored = (await query(a, org.admin, [nurse.id]))[0]!;
    for (const { sub } of watchers) {
      await waitForPresence(sub, nurse.id, (p) => p.version === stored.version);
      await sleep(200); // nothing older arrives afterwards
      const seen = changes(sub).filter((c) => c.userId === nurse.id);
      expect(seen.at(-1)).toMatchObject({ status: stored.status, devices: 2, version: stored.version });
      expect(strictlyIncreasing(seen.map((c) => c.version)), JSON.stringify(seen.map((c) => [c.status, c.version]))).toBe(true);
    }
    expect(stored.version).toBeGreaterThan(0);
    await Promise.all([...devices.map((d) => d.dispose()), ...watchers.map((w) => w.client.dispose())]);
  });
});
