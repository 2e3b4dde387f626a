import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../harness/clients.js';
import { type SeededOrg, seedOrg } from '../harness/seed.js';
import { startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { spawnWorkerChild } from '../harness/worker-child.js';
import { riskRows, storedBatch, submit } from './ops.js';

// The API runs here; scoring workers run as child processes, the first one killed with SIGKILL mid-batch.
let app: TestApp;
let org: SeededOrg;
const children = new Set<ChildProcess>();
const ENV = { SCORING_CHUNK_SIZE: '200', SCORING_PROGRESS_MIN_MS: '0' };
beforeAll(async () => {
  app = await startApp({ env: ENV });
  org = await seedOrg(app);
});
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
});
afterAll(stopAll);

const spawnWorker = (env: Record<string, string> = {}) =>
  spawnWorkerChild(new URL('./worker-child.ts', import.meta.url), app, children, { ...ENV, ...env });

describe('a scoring worker killed mid-batch', () => {
  it('loses no row and counts none twice once another worker takes over', async () => {
    const first = await spawnWorker({ SCORING_TEST_HOLD_MS: '60000' });
    const b = await submit(app, org.service, { model: 'risk-30d', rows: riskRows(2_000), clientBatchId: 'kill-1' });
    await first.holding; // one chunk committed, the next scored and held before its transaction
    const mid = await storedBatch(app, b.id);
    expect(mid.batch.processedRows).toBeGreaterThan(0);
    expect(mid.batch.processedRows).toBeLessThan(2_000);
    await new Promise<void>((resolve) => {
      first.child.once('exit', () => resolve());
      first.child.kill('SIGKILL');
    });
    await spawnWorker();
    // the stalled chunk jobs of the dead worker are re-run once its locks expire
    await until(async () => (await storedBatch(app, b.id)).batch.status === 'succeeded', 40_000, 'the batch to finish');
    const done = await storedBatch(app, b.id);
    expect(done.results).toEqual({ n: 2_000, distinct: 2_000, errors: 0 });
    expect(done.batch).toMatchObject({ processedRows: 2_000, failedRows: 0, totalRows: 2_000 });
    expect(done.notifications).toBe(1);
  }, 90_000);
});
