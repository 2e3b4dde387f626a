import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wsClient } from '../harness/clients.js';
import { seedOrg, type SeededOrg, type SeededUser } from '../harness/seed.js';
import { newPrefix, startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { PRESENCE_ENV, changes, device, waitForPresence, watch } from './ops.js';

let survivor: TestApp;
let doomed: ChildProcess | undefined;
let doomedWsUrl: string;
let org: SeededOrg;
const prefix = newPrefix();

/** Starts an instance of the same deployment in a child process; resolves with its ws URL. */
async function startChild(): Promise<{ child: ChildProcess; wsUrl: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/presence/crash-instance.ts'], {
    env: { ...process.env, PRESENCE_PREFIX: prefix, INSTANCE_ENV: JSON.stringify(PRESENCE_ENV) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  doomed = child; // killed in afterAll even if it never says it is ready
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`instance exited with ${code}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return { child, wsUrl: `ws://127.0.0.1:${port}/graphql` };
}

/** A device on the child instance; its socket dies with the process (no retries, no noise). */
async function deviceOn(wsUrl: string, user: SeededUser) {
  let acked!: () => void;
  const ready = new Promise<void>((r) => (acked = r));
  const client = wsClient({ wsUrl } as TestApp, user.token, { lazy: false, onNonLazyError: () => {}, on: { connected: () => acked() } });
  await ready;
  return client;
}

// the child's start (tsx compiling the app) takes tens of seconds on a loaded machine: it belongs
// to the hook's time, not the test's
beforeAll(async () => {
  const started = startChild();
  survivor = await startApp({ prefix, env: PRESENCE_ENV });
  org = await seedOrg(survivor);
  ({ child: doomed, wsUrl: doomedWsUrl } = await started);
}, 120_000);
afterAll(async () => {
  doomed?.kill('SIGKILL');
  await stopAll();
});

describe('an instance killed without shutdown', () => {
  it('its users go offline on the surviving instance within PRESENCE_TTL_MS; users with another device stay online', async () => {
    const child = doomed as ChildProcess;
    const wsUrl = doomedWsUrl;
    const nurse = await org.user('provider');
    const doctor = await org.user('provider');
    const { client: watcher, sub } = await watch(survivor, org.admin, [nurse.id, doctor.id]);

    const nursePhone = await deviceOn(wsUrl, nurse);
    const doctorPhone = await deviceOn(wsUrl, doctor);
    const doctorDesktop = await device(survivor, doctor);
    await waitForPresence(sub, nurse.id, (p) => p.status === 'ONLINE');
    await waitForPresence(sub, doctor.id, (p) => p.devices === 2);
    await new Promise((r) => setTimeout(r, 1_200)); // at least one refresh cycle on the doomed instance

    const killedAt = Date.now();
    child.kill('SIGKILL');
    const off = await waitForPresence(sub, nurse.id, (p) => p.status === 'OFFLINE', 10_000);
    const elapsed = Date.now() - killedAt;
    const bound = survivor.container.services.presence.timings.boundMs;
    expect(bound).toBe(Number(PRESENCE_ENV.PRESENCE_TTL_MS));
    // expired, not closed: the last refresh was at most one refresh interval before the kill
    expect(elapsed).toBeGreaterThan(Number(PRESENCE_ENV.PRESENCE_TTL_MS) - 2 * Number(PRESENCE_ENV.PRESENCE_REFRESH_MS));
    expect(elapsed).toBeLessThan(bound + 750);
    // last seen is the dead device's last refresh
    const seen = Date.parse(off.lastSeenAt as string);
    expect(seen).toBeLessThanOrEqual(killedAt);
    expect(seen).toBeGreaterThan(killedAt - Number(PRESENCE_ENV.PRESENCE_REFRESH_MS) - 500);

    const doctorNow = await waitForPresence(sub, doctor.id, (p) => p.devices === 1);
    expect(doctorNow.status).toBe('ONLINE');
    // initial state, online, then one offline event (published by whichever instance swept first)
    await new Promise((r) => setTimeout(r, 500));
    expect(
      changes(sub)
        .filter((c) => c.userId === nurse.id)
        .map((c) => c.status),
    ).toEqual(['OFFLINE', 'ONLINE', 'OFFLINE']);
    await Promise.all([nursePhone.dispose(), doctorPhone.dispose(), doctorDesktop.dispose(), watcher.dispose()]);
  });
});
