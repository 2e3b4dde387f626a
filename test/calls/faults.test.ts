// Call signaling under faults (issue 7, research A6): the ring timeout with a real worker process,
// a lost ring job, a ring job run twice, the API instance that started the call stopped mid-ring, the
// worker down across the deadline, accept racing the timeout, a device offline for the whole ring,
// and a device opened mid-ring. Real PostgreSQL (a private database: a worker's reconcilers see only
// this file's calls, and no other file's worker fires them), real Redis, a real worker process.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ringTimeoutJob, ringTimer } from '../../src/modules/calls/events.js';
import type { Viewer } from '../../src/shared/viewer.js';
import { type Workers, startWorkers } from '../../src/worker.js';
import { type Collector, connect, disposeAll, gql, live, sleep, until } from '../harness/clients.js';
import { TEST_JWT_SECRET, TEST_REDIS_URL } from '../harness/env.js';
import { type PrivateDatabase, privateDatabase } from '../harness/outage.js';
import { type SeededOrg, type SeededUser, seedOrg } from '../harness/seed.js';
import { newPrefix, startApp, stopAll, type TestApp } from '../harness/start-app.js';
import {
  type CallView,
  type Device,
  EVENTS,
  START,
  conversation,
  device,
  end,
  events,
  getCall,
  key,
  kinds,
  missedCalls,
  ok,
  overSocket,
  shouldRing,
  start,
} from './ops.js';

const RING_MS = 1_500;
const RECONCILE_MS = 500;
const CONNECT_MS = 2_000;
/** CALL_RECONCILE_MS's default. */
const PROD_RECONCILE_MS = 5_000;
/** How late a timer must be before the reconciler fires it (jobs.ts: min(reconcile period, 1 s)). */
const RECONCILER_GRACE_MS = Math.min(RECONCILE_MS, 1_000);

let database: PrivateDatabase;
/** The API instance the tests talk to (its container also gives the worker side, run by hand). */
let app: TestApp;
/** Another API instance of the deployment, stopped mid-ring. */
let doomed: TestApp;
let env: Record<string, string>;
/** The real worker process. */
let worker: Proc | undefined;
/** Workers started in this process once the worker process is gone. */
let inProcess: Workers | undefined;

beforeAll(async () => {
  database = await privateDatabase();
  env = {
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: newPrefix(),
    CALL_RING_TIMEOUT_MS: String(RING_MS),
    CALL_RECONCILE_MS: String(RECONCILE_MS),
    CALL_CONNECT_TIMEOUT_MS: String(CONNECT_MS),
    CALL_START_RATE_PER_MIN: '1000',
    JOB_LOCK_MS: '2000',
  };
  [app, doomed, worker] = await Promise.all([
    startApp({ prefix: env.REDIS_PREFIX, env }),
    startApp({ prefix: env.REDIS_PREFIX, env }),
    wardline('worker'),
  ]);
}, 120_000);

afterEach(disposeAll);

afterAll(async () => {
  await Promise.all([worker?.stop('SIGTERM'), inProcess?.close()]);
  await stopAll();
  await database?.dispose();
});

// ── processes ──

interface Proc {
  child: ChildProcess;
  log: string[];
  /** Stops it (SIGKILL: as if it crashed) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A real `wardline <command>` process of this file's deployment; resolves once it is ready. */
async function wardline(command: 'worker'): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../src/main.ts', import.meta.url)), command], {
    env: { PATH: process.env.PATH, NODE_ENV: 'test', TZ: 'UTC', JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
  const ready = 'workers started';
  try {
    await until(
      () => {
        if (child.exitCode !== null) throw new Error(`wardline ${command} exited (${child.exitCode}):\n${log.slice(-20).join('\n')}`);
        return log.some((l) => l.includes(ready));
      },
      60_000, // tsx compiles the app at start: tens of seconds on a loaded machine
      `wardline ${command} to start`,
    );
  } catch (err) {
    child.kill('SIGKILL'); // no one else holds it: it would outlive the test run
    throw err;
  }
  return {
    child,
    log,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

const tail = (p: Proc | undefined) => (p ? p.log.slice(-15).join('\n') : '(no process)');

// ── helpers ──

type Ev = Record<string, any>;
/** The callEvents of one call on a device's feed. */
const ofCall = (d: Device | Collector, id: string): Ev[] => events('feed' in d ? d.feed : d).filter((e) => e.call?.id === id);
const transitions = (d: Device, id: string) => ofCall(d, id).filter((e) => e.__typename === 'CallStateChanged');
const calls = () => {
  const jobs = app.container.jobs;
  if (!jobs) throw new Error('the test instance has no worker side');
  return jobs.calls;
};
const ids = (org: SeededOrg, call: { id: string }) => ({ orgId: org.orgId, callId: call.id });

/** Polls the call until it is in `state`; returns it. */
async function reaches(by: SeededUser, id: string, state: string, ms: number): Promise<CallView> {
  let last: CallView | null = null;
  await until(
    async () => {
      last = await getCall(app, by, id);
      return last?.state === state;
    },
    ms,
    `call ${id} to be ${state} (worker log:\n${tail(worker)})`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast seen: ${JSON.stringify(last)}`);
  });
  return last as unknown as CallView;
}

/** Milliseconds between a call's ring deadline (as startCall returned it) and its end: how late the ring timeout committed. */
const lateness = (started: CallView, ended: CallView) => Date.parse(ended.endedAt as string) - Date.parse(started.ringDeadline as string);

/**
 * A fence on the users' call streams: a call started and cancelled after everything under test. Its
 * first event reaching each device means every event committed before it reached the device too (a
 * stream delivers in commit order), so counting events afterwards needs no sleep.
 */
async function fence(caller: SeededUser, conversationId: string, devices: Device[]) {
  const c = await start(app, caller, { conversationId });
  await ok(end(app, caller, c.id));
  for (const d of devices) await until(() => ofCall(d, c.id).length > 0, 10_000, `the fence call on ${d.id}`);
  return c.id;
}

/** A ring job's state in the `calls` queue (undefined when it is not there). */
const ringJobState = async (org: SeededOrg, call: { id: string }) =>
  (await app.container.queues.queue('calls').getJob(ringTimer.id(ids(org, call))))?.getState();

describe('call ring timeout under faults', () => {
  it('rings out with a real worker process: MISSED (TIMEOUT) on time, one MISSED_CALL, both streams see RINGING → MISSED', async () => {
    const org = await seedOrg(app);
    const { patient, provider } = org;
    const conv = await conversation(app, provider, [patient], 'DIRECT');
    const phone = await device(app, patient, 'patient-phone');
    const drPhone = await device(app, provider, 'dr-phone');

    const call = await start(app, provider, { conversationId: conv, deviceId: 'dr-phone' });
    expect(call.state).toBe('RINGING');
    const deadline = Date.parse(call.ringDeadline as string);
    expect(deadline - Date.parse(call.createdAt as string)).toBe(RING_MS);
    expect(await ringJobState(org, call)).toBe('delayed');

    await until(() => transitions(phone, call.id).length > 0, RING_MS + 5_000, `MISSED on the callee's device (worker:\n${tail(worker)})`);
    const seenAt = Date.now();
    const missed = await reaches(provider, call.id, 'MISSED', 1_000);
    expect(missed).toMatchObject({ reason: 'TIMEOUT', ringRemainingMs: 0, ringDeadline: null });
    expect(missed.participants.find((p) => p.user.id === patient.id)).toMatchObject({ state: 'MISSED', reason: 'TIMEOUT' });
    // committed within a second of the deadline, and on the device within two (Redis wakes the worker on time)
    expect(lateness(call, missed)).toBeGreaterThanOrEqual(0);
    expect(lateness(call, missed)).toBeLessThan(1_000);
    expect(seenAt - deadline).toBeLessThan(2_000);

    // the job ran (not the reconciler), and nothing will run it again
    await until(async () => (await ringJobState(org, call)) === 'completed', 5_000, 'the ring job to complete');

    await fence(provider, conv, [phone, drPhone]);
    expect(ofCall(phone, call.id).map((e) => e.__typename)).toEqual(['IncomingCall', 'CallStateChanged']);
    for (const d of [phone, drPhone]) {
      const t = transitions(d, call.id).filter((e) => e.from === 'RINGING');
      expect(t).toEqual([expect.objectContaining({ from: 'RINGING', to: 'MISSED', reason: 'TIMEOUT', actor: null, answeredBy: null })]);
      expect(t[0]?.call).toMatchObject({ id: call.id, state: 'MISSED' });
    }
    expect(transitions(drPhone, call.id).map((e) => `${e.from}→${e.to}`)).toEqual(['null→RINGING', 'RINGING→MISSED']);
    const notes = await missedCalls(app, patient, call.id);
    expect(notes).toHaveLength(1);
    expect(notes[0]?.data).toMatchObject({ callId: call.id, callerId: provider.id, conversationId: conv });
    // the caller gets no missed call of their own call
    expect(await missedCalls(app, provider, call.id)).toEqual([]);
  });

  it('a lost ring job (removed, or the queue obliterated) is fired by the reconciler within a period plus grace, once', async () => {
    const org = await seedOrg(app);
    const { provider } = org;
    const [p1, p2] = [await org.user('patient'), await org.user('patient')];
    const [c1, c2] = [await conversation(app, provider, [p1], 'DIRECT'), await conversation(app, provider, [p2], 'DIRECT')];
    const phone1 = await device(app, p1, 'p1-phone');
    const phone2 = await device(app, p2, 'p2-phone');

    const removed = await start(app, provider, { conversationId: c1 });
    const obliterated = await start(app, provider, { conversationId: c2 });
    // as if enqueueing after commit had failed...
    await app.container.queues.remove(ringTimeoutJob.queue, ringTimer.id(ids(org, removed)));
    expect(await ringJobState(org, removed)).toBeUndefined();
    // ...and as if Redis had lost the queue
    const queue = app.container.queues.queue('calls');
    await queue.obliterate({ force: true });
    await queue.resume();
    expect(await ringJobState(org, obliterated)).toBeUndefined();

    for (const [c, who, d] of [
      [removed, p1, phone1],
      [obliterated, p2, phone2],
    ] as const) {
      const missed = await reaches(provider, c.id, 'MISSED', RING_MS + RECONCILE_MS + 5_000);
      expect(missed.reason).toBe('TIMEOUT');
      // the reconciler steps in only once a timer is late by its grace, and runs every period
      expect(lateness(c, missed)).toBeGreaterThanOrEqual(RECONCILER_GRACE_MS - 50);
      expect(lateness(c, missed)).toBeLessThan(RECONCILE_MS + 2_000);
      await until(() => transitions(d, c.id).length > 0, 5_000, 'MISSED on the device');
      expect((await missedCalls(app, who, c.id)).length).toBe(1);
    }
    await fence(provider, c1, [phone1]);
    expect(transitions(phone1, removed.id)).toHaveLength(1);
    expect(transitions(phone2, obliterated.id)).toHaveLength(1);
    // the reconciler found no job to run: none came back
    expect(await ringJobState(org, removed)).toBeUndefined();
  });

  it('a ring job run twice (and again after it ran) makes one transition, one notification, one CallStateChanged per stream', async () => {
    const org = await seedOrg(app);
    const { patient, provider } = org;
    const conv = await conversation(app, provider, [patient], 'DIRECT');
    const phone = await device(app, patient, 'patient-phone');
    const laptop = await device(app, patient, 'patient-laptop');
    const drPhone = await device(app, provider, 'dr-phone');
    const call = await start(app, provider, { conversationId: conv });
    const deadline = Date.parse(call.ringDeadline as string);

    // early runs (clock skew) are refused and retried, never applied
    await expect(calls().ringTimeout(org.orgId, call.id)).rejects.toThrow(/not due/);
    // at the deadline: three concurrent executions here (a retried job, a stalled one, the reconciler) race the worker's
    await sleep(Math.max(0, deadline - Date.now() + 5));
    const fired = await Promise.all(
      [0, 1, 2].map(() =>
        calls()
          .ringTimeout(org.orgId, call.id)
          .catch((e: Error) => e.message),
      ),
    );
    expect(fired.filter((r) => r === true).length).toBeLessThanOrEqual(1);
    expect(fired.every((r) => typeof r === 'boolean')).toBe(true);
    await reaches(provider, call.id, 'MISSED', 5_000);

    // and after it ran: the worker side again, and the job re-added under another id
    expect(await calls().ringTimeout(org.orgId, call.id)).toBe(false);
    await app.container.queues.add(ringTimeoutJob, ids(org, call), { jobId: `again-${call.id}` });
    const again = await app.container.queues.queue('calls').getJob(`again-${call.id}`);
    await until(async () => (await again?.getState()) === 'completed', 5_000, 'the re-added job to run');
    expect((await app.container.queues.queue('calls').getJob(`again-${call.id}`))?.returnvalue).toBe(false);

    await fence(provider, conv, [phone, laptop, drPhone]);
    for (const d of [phone, laptop]) expect(ofCall(d, call.id).map((e) => e.__typename)).toEqual(['IncomingCall', 'CallStateChanged']);
    for (const d of [phone, laptop, drPhone])
      expect(transitions(d, call.id).filter((e) => e.to === 'MISSED')).toEqual([expect.objectContaining({ from: 'RINGING' })]);
    expect(await missedCalls(app, patient, call.id)).toHaveLength(1);
    const final = await getCall(app, patient, call.id);
    expect(final).toMatchObject({ state: 'MISSED', reason: 'TIMEOUT' });
  });

  it('the API instance that started the call is stopped mid-ring: the call still becomes MISSED on time', async () => {
    const org = await seedOrg(app);
    const { patient, provider } = org;
    const conv = await conversation(app, provider, [patient], 'DIRECT');
    const phone = await device(app, patient, 'patient-phone');
    const drTablet = await device(app, provider, 'dr-tablet');
    // the caller's phone is a socket on the doomed instance, and the call is placed over it
    const client = connect(doomed, provider);
    const drPhone = await live(doomed, client, EVENTS, { d: 'dr-phone' });
    const call = (
      await ok(overSocket(client, START, { i: { media: 'AUDIO', clientCallId: key(), conversationId: conv, deviceId: 'dr-phone' } }))
    ).startCall as CallView;
    expect(call.state).toBe('RINGING');
    await until(() => ofCall(phone, call.id).length > 0 && ofCall(drPhone, call.id).length > 0, 5_000, 'the call on both sides');
    await doomed.stop();
    expect((await getCall(app, provider, call.id))?.state).toBe('RINGING');

    const missed = await reaches(provider, call.id, 'MISSED', RING_MS + 5_000);
    expect(missed.reason).toBe('TIMEOUT');
    expect(lateness(call, missed)).toBeLessThan(1_000);
    for (const d of [phone, drTablet])
      await until(() => transitions(d, call.id).some((e) => e.to === 'MISSED'), 5_000, `MISSED on ${d.id}`);
    expect(transitions(drTablet, call.id).find((e) => e.to === 'MISSED')).toMatchObject({ from: 'RINGING', reason: 'TIMEOUT' });
    expect(await missedCalls(app, patient, call.id)).toHaveLength(1);
  });

  it('accept racing the ring timeout (30 runs at the deadline ± 45 ms): ACCEPTED without a missed call, or MISSED with one, never both', async () => {
    const org = await seedOrg(app);
    const caller = org.provider;
    const RUNS = 30;
    const callees = await Promise.all(Array.from({ length: RUNS }, () => org.user('patient')));
    // one conversation of them all; each run calls one of them (a DIRECT call)
    const conv = await conversation(app, caller, callees);
    const service = app.container.services.calls;
    const viewer = (u: SeededUser): Viewer => ({ userId: u.id, orgId: org.orgId, role: u.role, name: u.name });
    const at = (t: number) => sleep(Math.max(0, t - Date.now()));
    const t0 = Date.now();
    const runs = await Promise.all(
      callees.map(async (callee, i) => {
        // 50 ms apart: a burst of starts could answer only after their deadlines
        await at(t0 + 50 * i);
        // in this process too: the race is about the deadline, not about HTTP
        const call = await service.startCall(viewer(caller), {
          conversationId: conv,
          calleeIds: [callee.id],
          media: 'audio',
          clientCallId: key(),
          deviceId: `dr-${i}`,
        });
        expect(call.kind).toBe('direct');
        const deadline = Date.parse(call.ringDeadline as string);
        // the accept (in this process, so no HTTP hop skews it) at -45 … +42 ms around the deadline (3 ms apart), racing an
        // execution of the ring timeout of our own at the deadline, the worker's job and its reconciler
        const [accepted, timedOut] = await Promise.all([
          at(deadline - 45 + 3 * i).then(() => {
            const firedAt = Date.now() - deadline;
            return service.acceptCall(viewer(callee), call.id, `phone-${i}`).then(
              (c) => ({ ok: c, firedAt }),
              (err: { extensions?: Record<string, unknown> }) => ({ err: err.extensions, firedAt }),
            );
          }),
          at(deadline).then(async () => {
            for (;;) {
              try {
                return await calls().ringTimeout(org.orgId, call.id);
              } catch (err) {
                if (!/not due/.test((err as Error).message)) throw err;
                await sleep(1);
              }
            }
          }),
        ]);
        return { call, callee, accepted, timedOut };
      }),
    );
    const outcomes = await Promise.all(
      runs.map(async ({ call, callee, accepted, timedOut }) => {
        const now = (await getCall(app, caller, call.id)) as CallView;
        const notes = await missedCalls(app, callee, call.id);
        const me = now.participants.find((p) => p.user.id === callee.id);
        if ('ok' in accepted) {
          expect(accepted.ok.state).toBe('accepted');
          expect(timedOut).toBe(false);
          expect(now.acceptedAt).not.toBeNull();
          expect(['ACCEPTED', 'FAILED']).toContain(now.state); // FAILED: the connect timeout, later
          expect(me?.state).not.toBe('MISSED');
          expect(notes).toEqual([]);
          return `A${accepted.firedAt}`;
        }
        expect(accepted.err).toMatchObject({ code: 'CONFLICT', reason: 'CALL_NOT_RINGING' });
        expect(now).toMatchObject({ state: 'MISSED', reason: 'TIMEOUT', acceptedAt: null });
        expect(me).toMatchObject({ state: 'MISSED', reason: 'TIMEOUT' });
        expect(notes).toHaveLength(1);
        return `M${accepted.firedAt}`;
      }),
    );
    if (process.env.CALL_RACE_DEBUG) console.log(`Accepted/Missed, accept fired at deadline + ms: ${outcomes.join(' ')}`);
    // hang up what was answered (not to leave live calls for the liveness sweep)
    await Promise.all(runs.filter((r) => 'ok' in r.accepted).map((r) => end(app, r.callee, r.call.id)));
  }, 120_000);

  it('a device offline for the whole ring, back with its old cursor: IncomingCall already MISSED (does not ring), then CallStateChanged(MISSED)', async () => {
    const org = await seedOrg(app);
    const { patient, provider } = org;
    const conv = await conversation(app, provider, [patient], 'DIRECT');
    const phone = await device(app, patient, 'patient-phone');
    // an earlier call the phone saw and declined: its last cursor
    const earlier = await start(app, provider, { conversationId: conv });
    await until(() => ofCall(phone, earlier.id).length > 0, 5_000, 'the earlier IncomingCall');
    expect(
      (await ok(gql(app, patient.token, `mutation($id: ID!){ rejectCall(id: $id) { state } }`, { id: earlier.id }))).rejectCall.state,
    ).toBe('REJECTED');
    await until(() => transitions(phone, earlier.id).length > 0, 5_000, 'the earlier call rejected');
    const cursor = events(phone.feed).at(-1)?.cursor as string;
    expect(cursor).toBeTruthy();
    await phone.client.dispose();

    // the phone is away while a call rings out
    const call = await start(app, provider, { conversationId: conv });
    await reaches(provider, call.id, 'MISSED', RING_MS + 5_000);

    const back = await device(app, patient, 'patient-phone', cursor);
    await back.feed.waitFor(2, 5_000);
    const [incoming, change] = events(back.feed);
    expect(incoming).toMatchObject({ __typename: 'IncomingCall', call: { id: call.id, state: 'MISSED', ringRemainingMs: 0 } });
    expect(shouldRing(incoming as never)).toBe(false);
    expect(change).toMatchObject({
      __typename: 'CallStateChanged',
      from: 'RINGING',
      to: 'MISSED',
      reason: 'TIMEOUT',
      call: { id: call.id, state: 'MISSED' },
    });
    await fence(provider, conv, [back]);
    expect(ofCall(back, call.id)).toHaveLength(2);
    expect(kinds(back.feed).slice(0, 2)).toEqual(['IncomingCall', 'CallStateChanged']);
  });

  it('a device subscribing without a cursor mid-ring gets the ringing call first (ActiveCall, ringRemainingMs ≤ the timeout)', async () => {
    const org = await seedOrg(app);
    const { patient, provider } = org;
    const conv = await conversation(app, provider, [patient], 'DIRECT');
    const call = await start(app, provider, { conversationId: conv });
    await sleep(200); // the app opens from a push a moment later
    const opened = Date.now();
    const phone = await device(app, patient, 'patient-phone');
    await phone.feed.waitFor(1, 5_000);
    const [first] = events(phone.feed);
    expect(first).toMatchObject({ __typename: 'ActiveCall', call: { id: call.id, state: 'RINGING' } });
    expect(first?.call.ringRemainingMs).toBeGreaterThan(0);
    expect(first?.call.ringRemainingMs).toBeLessThanOrEqual(RING_MS);
    expect(first?.call.ringRemainingMs).toBeLessThanOrEqual(Date.parse(call.ringDeadline as string) - opened + 50);
    expect(shouldRing(first as never)).toBe(true);
    // then the ring ends on it like anywhere else
    await until(() => transitions(phone, call.id).some((e) => e.to === 'MISSED'), RING_MS + 5_000, 'MISSED');
    expect(kinds(phone.feed)).toEqual(['ActiveCall', 'CallStateChanged']);
  });

  it('with the worker down across the deadline, the call rings on, and is MISSED within the grace once a worker starts (job, and reconciler at boot)', async () => {
    const org = await seedOrg(app);
    const { provider } = org;
    const [p1, p2] = [await org.user('patient'), await org.user('patient')];
    const [c1, c2] = [await conversation(app, provider, [p1], 'DIRECT'), await conversation(app, provider, [p2], 'DIRECT')];
    const phone1 = await device(app, p1, 'p1-phone');
    await worker?.stop('SIGKILL');
    worker = undefined;

    const withJob = await start(app, provider, { conversationId: c1 });
    // one whose job is lost too: only the reconciler of the worker that comes back can end it
    const lostJob = await start(app, provider, { conversationId: c2 });
    await app.container.queues.remove(ringTimeoutJob.queue, ringTimer.id(ids(org, lostJob)));
    // the worker that comes back runs with the production reconcile period (5 s; grace 1 s)
    const restarted = startApp({ prefix: env.REDIS_PREFIX, env: { ...env, CALL_RECONCILE_MS: String(PROD_RECONCILE_MS) } });
    // past the deadline by more than a healthy worker's job and reconciler would need: nobody fired
    const deadline = Date.parse(withJob.ringDeadline as string);
    await sleep(Math.max(0, deadline + RECONCILE_MS + RECONCILER_GRACE_MS + 300 - Date.now()));
    for (const c of [withJob, lostJob]) expect((await getCall(app, provider, c.id))?.state).toBe('RINGING');
    expect(await ringJobState(org, withJob)).toBe('delayed');

    const w = await restarted;
    const grace = Math.min(PROD_RECONCILE_MS, 1_000);
    const started = Date.now();
    inProcess = startWorkers(w.container);
    const took: Record<string, number> = {};
    for (const [name, c] of [
      ['the call whose job was in Redis', withJob],
      ['the call whose job was lost', lostJob],
    ] as const) {
      const missed = await reaches(provider, c.id, 'MISSED', PROD_RECONCILE_MS + grace + 3_000);
      expect(missed.reason).toBe('TIMEOUT');
      took[name] = Date.parse(missed.endedAt as string) - started;
    }
    // A6 #10: MISSED within the grace after the worker restarts (the reconciler runs at boot)
    // well under one reconcile period: only a reconciler that runs at boot gets there (a loaded machine gets room)
    for (const [name, ms] of Object.entries(took))
      expect(ms, `${name}: MISSED ${ms} ms after the worker started`).toBeLessThan(PROD_RECONCILE_MS - 1_000);
    await until(() => transitions(phone1, withJob.id).some((e) => e.to === 'MISSED'), 5_000, 'MISSED on the device');
    expect(await missedCalls(app, p1, withJob.id)).toHaveLength(1);
    expect(await missedCalls(app, p2, lostJob.id)).toHaveLength(1);
  });
});
