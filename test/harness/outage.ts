// Dependencies a test may break: a private redis-server it stops and starts, and a private database
// (so a real worker process's reconcilers see only this test's rows). Not a test file.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { openDatabase } from '../../src/db/client.js';
import { freePort, probeRedis } from '../../src/runtime/embedded-redis.js';
import { TEST_DATABASE_URL } from './env.js';

/** Polls `cond` every 25 ms until it holds; throws naming `what` after `ms`. */
async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** Stops the server: `keep` = graceful (the append-only file is flushed), `lose` = SIGKILL and its data deleted. */
  stop(data: 'keep' | 'lose'): Promise<void>;
  /** Starts it again on the same port (with whatever data is left on disk); resolves once it answers. */
  start(): Promise<void>;
  /** SIGSTOP: the server keeps its port open and accepts connections but answers nothing (a hung Redis). */
  pause(): void;
  /** SIGCONT: it answers again, including what it was sent while paused. */
  resume(): void;
  /** Stops it for good and deletes its folder. */
  dispose(): Promise<void>;
}

/** A redis-server of this test's own on a free port, persisted with an append-only file. */
export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'wl-redis-'));
  let proc: ChildProcess | undefined;
  const start = async () => {
    const p = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--logfile', ''],
      { stdio: 'ignore' },
    );
    proc = p;
    await waitFor(() => probeRedis('127.0.0.1', port, 200), 10_000, `redis-server on port ${port}`);
  };
  const stop = async (data: 'keep' | 'lose') => {
    const p = proc;
    proc = undefined;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(data === 'keep' ? 'SIGTERM' : 'SIGKILL');
      await exited;
    }
    if (data === 'lose') {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
    }
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    pause: () => void proc?.kill('SIGSTOP'),
    resume: () => void proc?.kill('SIGCONT'),
    async dispose() {
      proc?.kill('SIGCONT');
      await stop('lose');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivateDatabase {
  url: string;
  /** Drops the database (after every connection to it closed). */
  dispose(): Promise<void>;
}

/** A new database on the test PostgreSQL server with the migrations applied. */
export async function privateDatabase(): Promise<PrivateDatabase> {
  const name = `wardline_t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const base = new URL(TEST_DATABASE_URL);
  const adminUrl = new URL(base);
  adminUrl.pathname = '/postgres';
  const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const db = await openDatabase(url.toString(), '');
  await db.migrate();
  await db.close();
  return {
    url: url.toString(),
    async dispose() {
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
}
