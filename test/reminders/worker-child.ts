// A worker process for the kill tests (not a test file): `node --import tsx test/reminders/worker-child.ts`.
// Config comes from the environment like `wardline worker`. With REMINDER_TEST_DELAY_MS the reminder
// handler tells its parent it is holding (over IPC), then sleeps either inside the delivery
// transaction before COMMIT (REMINDER_TEST_PHASE=before-commit) or after COMMIT before the job is
// acknowledged (after-commit), so the parent can kill -9 it at exactly that point. REMINDER_TEST_ORG_IDS
// (comma-separated) scopes its claims to the test's organisation: the test database is shared, and a
// held transaction must not hold other files' reminders.
import { loadConfig } from '../../src/config.js';
import { createContainer } from '../../src/container.js';
import { type ReminderJobHooks, reminderJobs } from '../../src/modules/reminders/jobs.js';
import { startWorkers } from '../../src/worker.js';
import { workerChildReady } from '../harness/worker-child.js';

const holdMs = Number(process.env.REMINDER_TEST_DELAY_MS ?? 0);
const hold = async () => {
  process.send?.({ type: 'holding', pid: process.pid });
  await new Promise((r) => setTimeout(r, holdMs));
};
const hooks: ReminderJobHooks =
  holdMs <= 0 ? {} : process.env.REMINDER_TEST_PHASE === 'after-commit' ? { afterCommit: hold } : { beforeCommit: hold };

const container = await createContainer(loadConfig(process.env), { migrate: false });
const orgIds = (process.env.REMINDER_TEST_ORG_IDS ?? '').split(',').filter(Boolean);
const workers = startWorkers(container, {
  jobs: reminderJobs(container.jobs!.reminders, hooks, { orgIds: orgIds.length ? () => orgIds : undefined }),
  periodic: [],
});
workerChildReady(workers, container);
