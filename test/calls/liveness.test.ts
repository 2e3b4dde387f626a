// Liveness and the maximum duration, with the call worker running in-process.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Workers, startWorkers } from '../../src/worker.js';
import { disposeAll, gql, sleep, until } from '../harness/clients.js';
import { seedOrg } from '../harness/seed.js';
import { startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { ACCEPT, callWorkerDuties, conversation, device, getCall, ofType, ok, overSocket, start } from './ops.js';

/**
 * Long enough that a device's reconnection (close noticed, new socket, subscription live) and an
 * HTTP heartbeat fit well inside it on a loaded machine: with 3 s a slow reconnection could be a
 * real absence, and the call rightly ended.
 */
const GRACE_MS = 5_000;
let app: TestApp;
let workers: Workers;
beforeAll(async () => {
  app = await startApp({
    env: {
      CALL_LIVENESS_GRACE_MS: String(GRACE_MS),
      CALL_RECONCILE_MS: '300',
      PRESENCE_TTL_MS: '2000',
      PRESENCE_REFRESH_MS: '500',
    },
  });
  workers = startWorkers(app.container, callWorkerDuties(app));
});
afterEach(disposeAll);
afterAll(async () => {
  await workers?.close();
  await stopAll();
});

/** A connected 1:1 call: caller and callee each on a socket, the callee answered on its socket. */
async function connected(on: TestApp = app) {
  const org = await seedOrg(on);
  const conv = await conversation(on, org.provider, [org.patient], 'DIRECT');
  const dr = await device(on, org.provider, 'dr');
  const pt = await device(on, org.patient, 'pt');
  const call = await start(on, org.provider, { conversationId: conv, deviceId: 'dr' });
  await ok(overSocket(pt.client, ACCEPT, { id: call.id, d: 'pt' }));
  return { org, dr, pt, call };
}

describe('a live call ends when a party is gone, not before', () => {
  it('a device that drops for less than the grace period and comes back keeps the call', async () => {
    const { org, pt, call } = await connected();
    const cursor = ofType(pt.feed, 'CallStateChanged')[0]?.cursor ?? ofType(pt.feed, 'IncomingCall')[0].cursor;
    const gone = Date.now();
    await pt.client.dispose();
    await until(() => app.container.fanout.stats().subscriptions === 1, 5_000, 'the dropped subscription to end');
    const back = await device(app, org.patient, 'pt', cursor);
    const away = Date.now() - gone;
    // the precondition: the device was away for less than the grace period
    expect(away, 'the device took the whole grace period to come back').toBeLessThan(GRACE_MS);
    // several liveness sweeps pass while the device is back, past when the call would have ended
    await sleep(Math.max(GRACE_MS, gone + GRACE_MS * 2 - Date.now()));
    expect((await getCall(app, org.provider, call.id))!.state).toBe('ACCEPTED');
    expect(ofType(back.feed, 'CallStateChanged').filter((e) => e.to === 'ENDED')).toEqual([]);
  }, 60_000);

  it('when every device of the callee is gone for the grace period, the call ENDS with CONNECTION_LOST for the other side', {
    timeout: 60_000,
  }, async () => {
    const { org, dr, pt, call } = await connected();
    const gone = Date.now();
    await pt.client.dispose();
    await until(() => ofType(dr.feed, 'CallStateChanged').some((e) => e.to === 'ENDED'), GRACE_MS + 15_000, 'the liveness end');
    expect(Date.now() - gone).toBeGreaterThanOrEqual(GRACE_MS);
    const ended = ofType(dr.feed, 'CallStateChanged').find((e) => e.to === 'ENDED');
    expect(ended).toMatchObject({ reason: 'CONNECTION_LOST', actor: null });
    expect((await getCall(app, org.provider, call.id))!.state).toBe('ENDED');
  });

  it('an HTTP-only participant keeps the call alive with callHeartbeat', async () => {
    const org = await seedOrg(app);
    const conv = await conversation(app, org.provider, [org.patient], 'DIRECT');
    const dr = await device(app, org.provider, 'dr');
    const call = await start(app, org.provider, { conversationId: conv, deviceId: 'dr' });
    await ok(gql(app, org.patient.token, ACCEPT, { id: call.id, d: 'kiosk' })); // no socket at all
    const beat = `mutation($id: ID!){ callHeartbeat(id: $id) }`;
    for (let i = 0; i < 6; i++) {
      expect((await ok(gql(app, org.patient.token, beat, { id: call.id }))).callHeartbeat).toBe(true);
      await sleep(GRACE_MS / 4);
    }
    expect((await getCall(app, org.provider, call.id))!.state).toBe('ACCEPTED');
    await until(() => ofType(dr.feed, 'CallStateChanged').some((e) => e.to === 'ENDED'), GRACE_MS + 15_000, 'the end once heartbeats stop');
  }, 60_000);
});

describe('maximum duration', () => {
  it('ends a call that reaches CALL_MAX_DURATION_MS with MAX_DURATION', async () => {
    // another deployment with a short maximum (its own worker)
    const short = await startApp({ env: { CALL_RECONCILE_MS: '300', CALL_MAX_DURATION_MS: '3000' } });
    const shortWorkers = startWorkers(short.container, callWorkerDuties(short));
    const { dr, call, org } = await connected(short);
    await until(() => ofType(dr.feed, 'CallStateChanged').some((e) => e.to === 'ENDED'), 15_000, 'the end');
    expect(ofType(dr.feed, 'CallStateChanged').find((e) => e.to === 'ENDED')).toMatchObject({ reason: 'MAX_DURATION' });
    const final = (await getCall(short, org.provider, call.id))!;
    expect(Date.parse(final.endedAt as string) - Date.parse(final.createdAt as string)).toBeGreaterThanOrEqual(3_000);
    await shortWorkers.close();
  }, 60_000); // starts a second deployment: room for that on a loaded machine
});
