// Worker processes for the kill tests (not a test file): the parent's side spawns a child script on
// the app's database, Redis and prefix and waits for it to be ready; the child's side says so and
// closes on SIGTERM. The child tells the parent `holding` (over IPC) when the test may kill it.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Workers } from '../../src/worker.js';
import { TEST_DATABASE_URL, TEST_JWT_SECRET, TEST_REDIS_URL } from './env.js';
import type { TestApp } from './start-app.js';

/** Starts `script` (a `wardline worker`-like child) on `app`'s Redis prefix; resolves once its workers run. */
export async function spawnWorkerChild(
  script: URL,
  app: TestApp,
  children: Set<ChildProcess>,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; holding: Promise<void> }> {
  const child = fork(fileURLToPath(script), [], {
    execArgv: ['--import', 'tsx'],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      TZ: 'UTC',
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      JWT_SECRET: TEST_JWT_SECRET,
      REDIS_PREFIX: app.config.redisPrefix,
      LOG_LEVEL: 'silent',
      // a dead worker's job is re-run by another about this long after its last lock renewal
      JOB_LOCK_MS: '1000',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const message = (type: string) =>
    new Promise<void>((resolve, reject) => {
      child.on('message', (m: { type?: string }) => m?.type === type && resolve());
      child.once('exit', (code) => reject(new Error(`worker exited (${code}) before "${type}"`)));
    });
  const holding = message('holding');
  holding.catch(() => {});
  await message('ready');
  return { child, holding };
}

/** The child's side: tells the parent its workers run, and closes them and the container on SIGTERM. */
export function workerChildReady(workers: Workers, container: { close(): Promise<void> }): void {
  process.send?.({ type: 'ready' });
  process.on('SIGTERM', () => {
    void workers
      .close()
      .then(() => container.close())
      .finally(() => process.exit(0));
  });
}
