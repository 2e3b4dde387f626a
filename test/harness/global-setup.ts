import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/client.js';
import { TEST_DATABASE_URL } from './env.js';
import {
  canRunCluster,
  markStartedByTests,
  registerUser,
  SHARED_CLUSTER_BASE,
  startCluster,
  startedByTests,
  stopCluster,
  unregisterUser,
} from './redis-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared Redis Cluster's seeds (REDIS_CLUSTER_NODES), or '' when none can run here. */
    redisClusterNodes: string;
  }
}

/**
 * Creates the shared test database once and applies the migrations (tests isolate by org), and
 * starts the shared Redis Cluster unless TEST_REDIS_CLUSTER_NODES names one (tests isolate by
 * prefix). The cluster stops after the run if this run started it and no other run still uses it.
 */
export default async function setup(project?: TestProject) {
  // without a project (a bench reusing this setup) there are no cluster tests to serve
  const cluster = project ? await provideCluster() : { seeds: '', teardown: async () => {} };
  project?.provide('redisClusterNodes', cluster.seeds);
  const url = new URL(TEST_DATABASE_URL);
  const name = url.pathname.slice(1);
  const admin = postgres({ ...parse(url), database: 'postgres', max: 1, onnotice: () => {} });
  const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
  if (!exists) await admin.unsafe(`create database "${name}"`);
  await admin.end();
  const db = await openDatabase(TEST_DATABASE_URL, '');
  await db.migrate();
  await db.close();
  return cluster.teardown;
}

async function provideCluster(): Promise<{ seeds: string; teardown: () => Promise<void> }> {
  const none = async () => {};
  if (process.env.TEST_REDIS_CLUSTER_NODES) {
    // a named cluster (.ci/run's) is never stopped here, but this run still counts as a user of the
    // shared one, so that a concurrent run which happened to start it does not stop it under us
    registerUser(SHARED_CLUSTER_BASE);
    return {
      seeds: process.env.TEST_REDIS_CLUSTER_NODES,
      teardown: async () => void unregisterUser(SHARED_CLUSTER_BASE),
    };
  }
  if (!(await canRunCluster())) return { seeds: '', teardown: none };
  registerUser(SHARED_CLUSTER_BASE);
  const { seeds, started } = await startCluster(SHARED_CLUSTER_BASE);
  if (started) markStartedByTests(SHARED_CLUSTER_BASE);
  return {
    seeds,
    teardown: async () => {
      // the last run out stops it, if a test run started it (not one started by hand or by .ci/run)
      if (unregisterUser(SHARED_CLUSTER_BASE) && startedByTests(SHARED_CLUSTER_BASE)) await stopCluster(SHARED_CLUSTER_BASE);
    },
  };
}

function parse(url: URL) {
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    username: decodeURIComponent(url.username || 'postgres'),
    password: decodeURIComponent(url.password || ''),
  };
}
