// A real local Redis Cluster (3 masters + 3 replicas, scripts/redis-cluster.sh) for the tests (not a
// test file): the suite's shared one, started once by the global setup, and private ones for tests
// that break a cluster (failover), each on free ports of its own.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/redis-cluster.sh', import.meta.url));

/** The suite's shared cluster: ports 7101–7106 (and their bus ports 17101–17106). */
export const SHARED_CLUSTER_BASE = 7101;

/** True when redis-server and redis-cli are on PATH (the cluster can be started here). */
export async function canRunCluster(): Promise<boolean> {
  try {
    await run('redis-server', ['--version']);
    await run('redis-cli', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** Starts (or finds running) the cluster on `base`…`base+5`; returns its seeds and whether this call started it. */
export async function startCluster(base: number): Promise<{ seeds: string; started: boolean }> {
  const { stdout } = await run(SCRIPT, ['start', String(base)], { timeout: 150_000 });
  const [state = '', seeds = ''] = stdout.trim().split('\n');
  return { seeds, started: state === 'started' };
}

export async function stopCluster(base: number): Promise<void> {
  await run(SCRIPT, ['stop', String(base)], { timeout: 30_000 });
  rmSync(usersDir(base), { recursive: true, force: true });
}

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** A base port whose six ports and six bus ports (+10000) are free, for a private cluster. */
export async function freeClusterBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 7200 + 6 * Math.floor(Math.random() * 120);
    const ports = [0, 1, 2, 3, 4, 5].flatMap((k) => [base + k, base + k + 10_000]);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('no free ports for a private Redis Cluster');
}

/**
 * The shared cluster's users: several vitest runs (other worktrees, CI) may share it, so each run
 * registers itself, and the one that leaves last (and had started it) stops it.
 */
const usersDir = (base: number) => join(tmpdir(), `wardline-redis-cluster-${base}.users`);

export function registerUser(base: number): void {
  mkdirSync(usersDir(base), { recursive: true });
  writeFileSync(join(usersDir(base), String(process.pid)), '');
}

/** Notes that a test run started the shared cluster (so the last run out stops it). */
export const markStartedByTests = (base: number) => writeFileSync(join(usersDir(base), 'started-by-tests'), '');
export const startedByTests = (base: number) => existsSync(join(usersDir(base), 'started-by-tests'));

/** Unregisters this run; true when no other live run still uses the cluster. */
export function unregisterUser(base: number): boolean {
  const dir = usersDir(base);
  rmSync(join(dir, String(process.pid)), { force: true });
  if (!existsSync(dir)) return true;
  const alive = readdirSync(dir).filter((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      process.kill(Number(pid), 0);
      return true;
    } catch {
      rmSync(join(dir, pid), { force: true });
      return false;
    }
  });
  return alive.length === 0;
}
