// The common prelude of a test file as vitest fixtures (not a test file): one started instance (or
// two of one deployment) per file, stopped after the file's last test, and one org seeded for the file.
import { test as base } from 'vitest';
import { type SeededOrg, seedOrg } from './seed.js';
import { newPrefix, startApp, stopAll, type TestApp } from './start-app.js';

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

/**
 * A `test`/`it` whose context has two instances `a` and `b` of one deployment (the same Redis
 * `prefix`, both started with `env`) and an `org` seeded on A, all for the whole file (every instance
 * the file started stops after it).
 */
export function withTwoInstances(env: Record<string, string> = {}) {
  return (
    base
      // biome-ignore lint/correctness/noEmptyPattern: vitest reads a fixture's dependencies from its destructuring
      .extend('deployment', { scope: 'file' }, async ({}, { onCleanup }) => {
        onCleanup(stopAll);
        const prefix = newPrefix();
        const [a, b] = await Promise.all([startApp({ prefix, env }), startApp({ prefix, env })]);
        return { prefix, a, b, org: await seedOrg(a) };
      })
      .extend('prefix', { scope: 'file' }, ({ deployment }) => deployment.prefix)
      .extend('a', { scope: 'file' }, ({ deployment }) => deployment.a)
      .extend('b', { scope: 'file' }, ({ deployment }) => deployment.b)
      .extend('org', { scope: 'file' }, ({ deployment }) => deployment.org)
  );
}
