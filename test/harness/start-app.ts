import { randomUUID } from 'node:crypto';
import { createApi, type Api } from '../../src/api.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createContainer, type Container } from '../../src/container.js';
import { createLogger } from '../../src/shared/logger.js';
import { TEST_DATABASE_URL, TEST_JWT_SECRET, TEST_REDIS_URL } from './env.js';

export interface TestApp {
  port: number;
  url: string;
  wsUrl: string;
  config: Config;
  container: Container;
  api: Api;
  /** Graceful stop (sockets get 1001), then the container closes. */
  stop(): Promise<void>;
}

/** A fresh Redis prefix: pass the same one to two apps that must behave as one deployment. */
export const newPrefix = () => `t${randomUUID().slice(0, 8)}`;

const running = new Set<TestApp>();

/**
 * A real instance on a free port against the real test PostgreSQL and Redis. Call it twice with
 * the same `prefix` for two instances of one deployment.
 */
export async function startApp(opts: { prefix?: string; env?: Record<string, string> } = {}): Promise<TestApp> {
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET: TEST_JWT_SECRET,
    REDIS_PREFIX: opts.prefix ?? newPrefix(),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SHUTDOWN_GRACE_MS: '2000',
    REALTIME_POLL_MS: '1000',
    TYPING_THROTTLE_MS: '300',
    GRAPHIQL: 'true',
    INTROSPECTION: 'true',
    // tests send far faster than one person does; test/api/rate-limits.test.ts turns limits on
    RATE_LIMITS: 'off',
    // a loaded CI machine can starve a test process for seconds; the 2 s production bound is tested
    // where it matters (test/system/redis-faults.test.ts sets its own)
    REDIS_COMMAND_TIMEOUT_MS: '10000',
    ...opts.env,
  });
  const container = await createContainer(config, { logger: createLogger(config.logLevel) });
  const api = createApi(container);
  const port = await api.listen(0, '127.0.0.1');
  let stopped = false;
  const app: TestApp = {
    port,
    url: `http://127.0.0.1:${port}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    config,
    container,
    api,
    async stop() {
      if (stopped) return;
      stopped = true;
      running.delete(app);
      await api.close();
      await container.close();
    },
  };
  running.add(app);
  return app;
}

/** Stops every app this test file started (use in afterAll / afterEach). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((a) => a.stop()));
}
