// The real server process (`node --import tsx src/main.ts serve`) under faults at its edges: with a
// dependency unreachable at start it reports the cause once, without the password, and exits 1
// after STARTUP_TIMEOUT_MS; on SIGTERM it answers /health/ready with 503 for SHUTDOWN_DRAIN_MS while
// it keeps serving (new connections included), then closes its sockets with 1001 and exits 0.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { describeCause, redactUrl } from '../../src/runtime/dependencies.js';
import { freePort } from '../../src/runtime/embedded-redis.js';
import { until } from '../harness/clients.js';
import { TEST_DATABASE_URL, TEST_JWT_SECRET, TEST_REDIS_URL } from '../harness/env.js';
import { token } from '../harness/seed.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const base = mkdtempSync(join(tmpdir(), 'wardline-faults-'));
const children = new Set<ChildProcess>();

function run(args: string[], extra: Record<string, string>) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  Object.assign(env, {
    NODE_ENV: 'test',
    JWT_SECRET: TEST_JWT_SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    SEED_ON_EMPTY: 'false',
    DATA_DIR: join(base, randomUUID()),
    REDIS_PREFIX: `t${randomUUID().slice(0, 8)}`,
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    ...extra,
  });
  const startedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: ROOT, env });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((r) => child.once('exit', (code) => r({ code, at: Date.now() })));
  return { child, startedAt, output: () => output, exited };
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(base, { recursive: true, force: true });
});

const occurrences = (text: string, part: string) => text.split(part).length - 1;

/**
 * Starting `node --import tsx src/main.ts` took over 20 s on a loaded 2-core machine: the waits for a
 * process to start (not what these tests measure) get this much, and the tests room for it.
 */
const START_MS = 60_000;
const TEST_MS = 2 * START_MS;

/** Waits until a server started with PORT=0 printed the port it listens on; returns its origin. */
async function origin(p: ReturnType<typeof run>): Promise<string> {
  const listening = () => /listening on (http:\/\/127\.0\.0\.1:\d+)\/graphql/.exec(p.output())?.[1];
  await until(() => listening() !== undefined || p.child.exitCode !== null, START_MS, `the server to listen\n${p.output()}`);
  const url = listening();
  if (!url) throw new Error(`the server exited:\n${p.output()}`);
  return url;
}

describe('a dependency unreachable at start', () => {
  const STARTUP_TIMEOUT_MS = 1_500;

  it.each([
    ['Redis', { REDIS_URL: 'redis://:redis-secret-1@127.0.0.1:1' }, 'redis-secret-1'],
    ['PostgreSQL', { DATABASE_URL: 'postgres://postgres:pg-secret-1@127.0.0.1:1/x' }, 'pg-secret-1'],
  ])(
    '%s: the cause is reported once, without the password, and the process exits 1 after STARTUP_TIMEOUT_MS',
    async (name, env, secret) => {
      const p = run(['serve'], { ...env, STARTUP_TIMEOUT_MS: String(STARTUP_TIMEOUT_MS) });
      const { code, at } = await Promise.race([
        p.exited,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`still running:\n${p.output()}`)), STARTUP_TIMEOUT_MS + START_MS),
        ),
      ]);
      const out = p.output();
      expect(code, out).toBe(1);
      // it waited for the dependency (a dependency starting a moment late is not fatal), and not for ever
      expect(at - p.startedAt).toBeGreaterThanOrEqual(STARTUP_TIMEOUT_MS);
      expect(at - p.startedAt).toBeLessThan(STARTUP_TIMEOUT_MS + START_MS);
      expect(occurrences(out, 'ECONNREFUSED 127.0.0.1:1'), out).toBe(1);
      expect(out).toContain(`Cannot reach ${name} at`);
      expect(out).not.toContain(secret);
      expect(out).not.toContain('listening');
    },
    TEST_MS,
  );

  it(
    'a Redis that starts a moment after the server is waited for, and the server starts',
    async () => {
      const redisPort = await freePort();
      const p = run(['serve'], { REDIS_URL: `redis://127.0.0.1:${redisPort}`, STARTUP_TIMEOUT_MS: String(2 * START_MS) });
      await until(() => p.output().includes('Redis not reachable yet'), START_MS, `the server to wait for Redis\n${p.output()}`);
      const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
        stdio: 'ignore',
      });
      children.add(redis);
      try {
        const url = await origin(p);
        await until(
          async () => (await fetch(`${url}/health/ready`).catch(() => undefined))?.status === 200,
          START_MS,
          `the server to be ready\n${p.output()}`,
        );
        expect(occurrences(p.output(), 'not reachable yet')).toBe(1); // one line for the whole wait
        p.child.kill('SIGTERM');
        expect((await p.exited).code).toBe(0);
      } finally {
        redis.kill('SIGTERM');
      }
    },
    3 * START_MS,
  );

  it(
    'a database that does not exist is reported at once (waiting cannot help)',
    async () => {
      const p = run(['serve'], {
        DATABASE_URL: TEST_DATABASE_URL.replace(/\/[^/]*$/, '/wardline_no_such_db'),
        STARTUP_TIMEOUT_MS: String(3 * START_MS),
      });
      const { code, at } = await p.exited;
      expect(code, p.output()).toBe(1);
      expect(at - p.startedAt).toBeLessThan(START_MS); // the process's own start, far less than STARTUP_TIMEOUT_MS
      expect(occurrences(p.output(), 'database "wardline_no_such_db" does not exist')).toBe(1);
    },
    TEST_MS,
  );
});

describe('the cause of a start-up failure', () => {
  it('is the innermost error (a driver error wrapped by the ORM), with passwords hidden', () => {
    const driver = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const wrapped = new Error('Failed query: CREATE SCHEMA IF NOT EXISTS "drizzle"\nparams: ', { cause: driver });
    expect(describeCause(wrapped)).toBe('connect ECONNREFUSED 127.0.0.1:1');
    const auth = Object.assign(new Error('password authentication failed for user "app"'), { code: '28P01' });
    expect(describeCause(auth)).toBe('password authentication failed for user "app" (28P01)');
    expect(describeCause(new Error('bad url postgres://app:s3cret@db:5432/x'))).toBe('bad url postgres://app:***@db:5432/x');
    expect(redactUrl('redis://:s3cret@cache:6379/0')).toBe('redis://:***@cache:6379/0');
    expect(redactUrl('postgres://app@db/x')).toBe('postgres://app@db/x');
  });
});

describe('SIGTERM', () => {
  /** Long enough for the checks during the drain to run on a loaded machine. */
  const DRAIN_MS = 6_000;

  it(
    'answers /health/ready 503 (draining) for SHUTDOWN_DRAIN_MS while serving, then closes sockets with 1001 and exits 0',
    async () => {
      const p = run(['serve'], { SHUTDOWN_DRAIN_MS: String(DRAIN_MS) });
      const url = await origin(p);
      const ready = async () => {
        const r = await fetch(`${url}/health/ready`).catch(() => undefined);
        return r ? { status: r.status, body: (await r.json()) as { status: string } } : undefined;
      };
      await until(async () => (await ready())?.status === 200, START_MS, `the server to be ready\n${p.output()}`);

      const orgId = `org-${randomUUID()}`;
      const auth = `Bearer ${await token({ id: `${orgId}:u`, orgId, role: 'provider', name: 'u' })}`;
      const me = () =>
        fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: auth },
          body: JSON.stringify({ query: '{ me { id } }' }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { data?: { me?: { id: string } } } }));
      expect((await me()).body.data?.me?.id).toBe(`${orgId}:u`);

      // a graphql-ws connection that is open when the signal comes
      let closedWith: { code: number; at: number } | undefined;
      const client = createClient({
        url: `${url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: auth },
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => {}, // the 1001 close is what this test expects
        on: {
          closed: (e) => {
            closedWith ??= { code: (e as { code: number }).code, at: Date.now() };
          },
        },
      });
      let acked = false;
      client.on('connected', () => {
        acked = true;
      });
      await until(() => acked, 20_000, 'the socket to be acknowledged');

      const signalledAt = Date.now();
      p.child.kill('SIGTERM');
      // each step below gets the whole drain; that all of it happened during the drain is asserted after
      await until(async () => (await ready())?.status === 503, DRAIN_MS, 'readiness to fail');
      expect((await ready())?.body.status).toBe('draining');
      // still serving during the drain: a new HTTP connection is accepted and answered
      const during = await me();
      expect(during.status).toBe(200);
      expect(during.body.data?.me?.id).toBe(`${orgId}:u`);
      expect(closedWith).toBeUndefined(); // the socket is still open
      // and a new WebSocket is accepted and acknowledged too (the load balancer stops sending, not us)
      let lateAcked = false;
      const late = createClient({
        url: `${url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: auth },
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => {},
        on: {
          connected: () => {
            lateAcked = true;
          },
        },
      });
      await until(() => lateAcked, DRAIN_MS, 'a new socket to be acknowledged during the drain');
      expect(Date.now() - signalledAt).toBeLessThan(DRAIN_MS);

      const { code, at } = await p.exited;
      expect(code, p.output()).toBe(0);
      expect(closedWith?.code).toBe(1001);
      // the socket was closed only after the drain
      expect(closedWith!.at - signalledAt).toBeGreaterThanOrEqual(DRAIN_MS - 50);
      expect(at - signalledAt).toBeGreaterThanOrEqual(DRAIN_MS);
      await Promise.all([client.dispose(), late.dispose()]);
    },
    TEST_MS,
  );
});
