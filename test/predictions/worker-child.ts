// A scoring worker process for the kill test (not a test file): `node --import tsx test/predictions/worker-child.ts`.
// Config comes from the environment like `wardline worker`. With SCORING_TEST_HOLD_MS, the first
// chunk commits and every later chunk is scored, then held before its transaction (telling the
// parent over IPC), so the parent can kill -9 it mid-batch.
import { loadConfig } from '../../src/config.js';
import { createContainer } from '../../src/container.js';
import { predictionsWorker } from '../../src/modules/predictions/jobs.js';
import { startWorkers } from '../../src/worker.js';
import { workerChildReady } from '../harness/worker-child.js';

const holdMs = Number(process.env.SCORING_TEST_HOLD_MS ?? 0);
let first = true;
let committed!: () => void;
const firstCommit = new Promise<void>((r) => {
  committed = r;
});
const container = await createContainer(loadConfig(process.env), { migrate: false, role: 'worker' });
const deps = {
  config: container.config,
  logger: container.logger,
  db: container.database.db,
  commit: (await import('../../src/realtime/commit.js')).createCommit(container.database.db, container.publisher, container.logger),
  cursors: container.cursors,
  queues: container.queues,
  publisher: container.publisher,
  redis: container.redis.commands,
  metrics: container.metrics,
};
const side = predictionsWorker(deps, container.services, {
  // the first chunk commits; every later one waits for that commit, says so, and holds before its own
  beforeCommit: async () => {
    if (holdMs <= 0 || first) {
      first = false;
      return;
    }
    await firstCommit;
    process.send?.({ type: 'holding', pid: process.pid });
    await new Promise((r) => setTimeout(r, holdMs));
  },
  afterCommit: async () => committed(),
});
const workers = startWorkers(container, { jobs: side.duties.jobs, periodic: [] });
workerChildReady(workers, container);
