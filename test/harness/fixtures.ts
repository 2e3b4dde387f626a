// The common prelude of a test file as vitest fixtures (not a test file): one started instance per
// file, stopped after the file's last test, and one org seeded for the file.
import { test as base } from 'vitest';
import { type SeededOrg, seedOrg } from './seed.js';
import { startApp, stopAll, type TestApp } from './start-app.js';

/**
 * A `test`/`it` whose context has `app` (an instance started with `env` on first use and stopped,
 * with every other instance the file started, after the file) and `org` (seeded on `app` once per
 * file). `describe`, `expect` and the hooks are vitest's own.
 */
export function withApp(env: Record<string, string> = {}) {
  return (
    base
      // biome-ignore lint/correctness/noEmptyPattern: vitest reads a fixture's dependencies from its destructuring
      .extend('app', { scope: 'file' }, async ({}, { onCleanup }): Promise<TestApp> => {
        onCleanup(stopAll);
        return startApp({ env });
      })
      .extend('org', { scope: 'file' }, async ({ app }): Promise<SeededOrg> => seedOrg(app))
  );
}

export const it = withApp();
export const test = it;
