import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep, settled, until } from '../harness/clients.js';
import { seedOrg, type SeededOrg } from '../harness/seed.js';
import { startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { spawnWorkerChild } from '../harness/worker-child.js';
import { reminderJobs } from '../../src/modules/reminders/jobs.js';
import { startWorkers } from '../../src/worker.js';
import { createReminder, deliveriesOf, inSeconds, inbox, stored, tickOf } from './ops.js';

// The API runs here; workers run as child processes that are killed with SIGKILL mid-job.
let app: TestApp;
let org: SeededOrg;
const children = new Set<ChildProcess>();
beforeAll(async () => {
  app = await startApp();
  org = await seedOrg(app);
});
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  await settled(app);
});
afterAll(stopAll);

const spawnWorker = (env: Record<string, string> = {}) =>
  spawnWorkerChild(new URL('./worker-child.ts', import.meta.url), app, children, { REMINDER_TEST_ORG_IDS: org.orgId, ...env });

const kill9 = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

// The job is the due-second tick that claims every owed occurrence in set-based batches; the worker
// dies inside the batch transaction or after its commit, before the tick is acknowledged.
describe('a worker killed mid-job', () => {
  for (const phase of ['before-commit', 'after-commit'] as const) {
    it(`delivers exactly once when killed ${phase.replace('-', ' ')} and another worker re-runs the tick`, async () => {
      const user = await org.user('patient');
      const { sub } = await inbox(app, user);
      const first = await spawnWorker({ REMINDER_TEST_DELAY_MS: '60000', REMINDER_TEST_PHASE: phase });
      const due = inSeconds(1);
      // two reminders due in the same second: one tick, one batch, killed together
      const [r, r2] = await Promise.all([createReminder(app, user, { at: due }), createReminder(app, user, { at: due, title: 'Other' })]);
      const occurrenceMs = new Date(due).getTime();
      await first.holding;
      if (phase === 'before-commit') {
        // the transaction is open: nothing is visible yet
        expect((await stored(app, org.orgId, r.id)).notifications).toBe(0);
      } else {
        // committed and published, but the tick is not acknowledged
        await sub.waitFor(2, 5_000);
        expect(await (await tickOf(app, occurrenceMs))?.getState()).toBe('active');
      }
      await kill9(first.child);
      await spawnWorker();
      // the second worker finds the stalled tick once the dead worker's lock expired, and re-runs it
      await until(async () => (await (await tickOf(app, occurrenceMs))?.getState()) === 'completed', 20_000, 'the re-run');
      const job = await tickOf(app, occurrenceMs);
      // after commit the re-run finds nothing owed; before commit it delivers both — or, on a loaded
      // machine where a 1 s lock was not renewed in time, a stalled re-run of the re-run finds them
      // delivered: either way exactly one delivery of each is stored and sent (asserted below)
      expect(job?.returnvalue?.delivered).toEqual(expect.any(Number));
      if (phase === 'after-commit') expect(job?.returnvalue).toMatchObject({ delivered: 0 });
      await sub.waitFor(2, 5_000);
      await sleep(1_500);
      for (const x of [r, r2]) {
        expect(deliveriesOf(sub, x.id)).toHaveLength(1);
        expect(await stored(app, org.orgId, x.id)).toEqual({ notifications: 1, occurrences: [occurrenceMs] });
      }
    }, 60_000);
  }

  it('a job that fails after its commit is retried with backoff and does not deliver again', async () => {
    const user = await org.user('patient');
    const { sub } = await inbox(app, user);
    let failures = 0;
    const flaky = reminderJobs(
      app.container.jobs!.reminders,
      {
        afterCommit: async () => {
          if (failures++ === 0) throw new Error('lost the connection before acknowledging');
        },
      },
      { orgIds: () => [org.orgId] },
    );
    const workers = startWorkers(app.container, { jobs: flaky, periodic: [] });
    try {
      const due = inSeconds(1);
      const r = await createReminder(app, user, { at: due });
      const occurrenceMs = new Date(due).getTime();
      await until(async () => (await (await tickOf(app, occurrenceMs))?.getState()) === 'completed', 10_000, 'the retry');
      const job = await tickOf(app, occurrenceMs);
      expect(job?.attemptsMade).toBe(2); // the failed attempt and the retry
      expect(job?.returnvalue).toMatchObject({ delivered: 0 });
      await until(() => deliveriesOf(sub, r.id).length > 0, 5_000, 'the delivery of the first attempt');
      await sleep(1_000); // a quiet period in which a second delivery would show up
      expect(deliveriesOf(sub, r.id)).toHaveLength(1);
      expect(await stored(app, org.orgId, r.id)).toEqual({ notifications: 1, occurrences: [occurrenceMs] });
    } finally {
      await workers.close();
    }
  });
});
