// The zero-config path a newcomer takes: `npm start` (node --import tsx src/main.ts all) with no
// DATABASE_URL and no JWT_SECRET, as a real child process. PGlite under a temp DATA_DIR, the demo
// seed and its printed tokens, graceful SIGTERM, and a restart that keeps the data and the dev
// secret without seeding twice. Redis is the test Redis (with its own prefix); the spawned
// redis-server path and the "no Redis anywhere" message are checked on provideRedis directly.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findOnPath, freePort, probeRedis, provideRedis, RedisUnavailableError } from '../../src/runtime/embedded-redis.js';
import { createLogger } from '../../src/shared/logger.js';
import { gql } from '../harness/clients.js';
import { TEST_REDIS_URL } from '../harness/env.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'wardline-embedded-'));
const prefix = `t${randomUUID().slice(0, 8)}`;
const children = new Set<ChildProcess>();

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  url: string;
  exited: Promise<number | null>;
}

/** The environment of a fresh machine: none of the variables a test run or a developer may have set. */
function freshEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['NODE_ENV', 'DATABASE_URL', 'REDIS_URL', 'JWT_SECRET', 'JWKS_URL', 'CURSOR_SECRET', 'PORT', 'HOST', 'SEED_ON_EMPTY'])
    delete env[k];
  return { ...env, LOG_LEVEL: 'warn', ...extra };
}

function run(env: Record<string, string>): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'all'], { cwd: ROOT, env: freshEnv(env) });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** Starts `all` on the embedded defaults and resolves once /health/ready answers 200. */
async function start(): Promise<Started> {
  const p = run({ DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: prefix });
  // a fresh PGlite takes 3-4 s to create on an idle machine, and about a minute on a loaded 2-core one
  const end = Date.now() + 150_000;
  let port: string | undefined;
  while (!port) {
    port = /listening on http:\/\/[^:]+:(\d+)\/graphql/.exec(p.out())?.[1];
    if (p.child.exitCode !== null || Date.now() > end) {
      // a server left running would hold DATA_DIR's lock and fail the next test too
      p.child.kill('SIGKILL');
      await p.exited;
      throw new Error(`server did not start:\n${p.out()}\n${p.err()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const base = `http://127.0.0.1:${port}`;
  const ready = await fetch(`${base}/health/ready`);
  expect(ready.status).toBe(200);
  return { ...p, url: `${base}/graphql` };
}

async function stop(s: Started): Promise<number | null> {
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  const code = await Promise.race([s.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 8_000))]);
  expect(code, `exit after SIGTERM (${Date.now() - t0} ms)\n${s.err()}`).toBe(0);
  return code === 'timeout' ? null : code;
}

/** The demo tokens printed on stdout, by role. */
const tokens = (out: string): Record<string, string> =>
  Object.fromEntries(
    [...out.matchAll(/^ {2}(patient|provider|admin|service)\s+\S+\s.*?\s(eyJ[\w-]+\.[\w-]+\.[\w-]+)$/gm)].map((m) => [m[1], m[2]]),
  );

const CONVERSATIONS = `{ me { id role } conversations(first: 5) { edges { node { id kind title lastMessage { body } } } } }`;

describe('npm start on embedded defaults', () => {
  let conversationId: string;
  let patientToken: string;

  it('starts on PGlite, seeds the demo org, prints usable tokens and stops on SIGTERM with exit 0', async () => {
    const s = await start();
    const t = tokens(s.out());
    expect(Object.keys(t).sort()).toEqual(['admin', 'patient', 'provider', 'service']);
    expect(s.out()).toMatch(/GraphiQL: http:\/\/127\.0\.0\.1:\d+\/graphql/);
    expect(existsSync(join(dataDir, 'pglite'))).toBe(true);
    expect(statSync(join(dataDir, 'dev-jwt-secret')).mode & 0o777).toBe(0o600);

    patientToken = t.patient as string;
    const r = await gql(s.url, `Bearer ${patientToken}`, CONVERSATIONS);
    expect(r.errors).toBeUndefined();
    expect(r.data.me).toEqual({ id: 'demo-patient', role: 'PATIENT' });
    const convs = r.data.conversations.edges.map((e: { node: unknown }) => e.node);
    expect(convs).toHaveLength(1);
    expect(convs[0]).toMatchObject({ kind: 'CARE_TEAM', lastMessage: { body: expect.stringContaining('care team') } });
    conversationId = convs[0].id;

    const p = await gql(s.url, `Bearer ${t.provider}`, `{ me { id role } }`);
    expect(p.data?.me).toEqual({ id: 'demo-provider', role: 'PROVIDER' });

    // the send path on PGlite: concurrent sends share statements; a repeated key is one message
    const SEND = `mutation($c: ID!, $b: String!, $k: String) { sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { id } }`;
    const sent = await Promise.all(
      ['a', 'b', 'c', 'same', 'same'].map((b, i) =>
        gql(s.url, `Bearer ${t.provider}`, SEND, { c: conversationId, b, k: b === 'same' ? 'k-same' : `k-${i}` }),
      ),
    );
    for (const x of sent) expect(x.errors).toBeUndefined();
    expect(sent[3]?.data.sendMessage.id).toBe(sent[4]?.data.sendMessage.id);
    const h = await gql(
      s.url,
      `Bearer ${t.provider}`,
      `query($c: ID!) { conversation(id: $c) { messages(last: 10) { edges { node { body } } } } }`,
      {
        c: conversationId,
      },
    );
    expect(
      h.data.conversation.messages.edges
        .map((e: { node: { body: string } }) => e.node.body)
        .slice(1)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'same']);
    await stop(s);
  }, 200_000);

  it('restarts on the same DATA_DIR with the data and the dev secret kept, and does not seed again', async () => {
    const s = await start();
    expect(s.out()).not.toMatch(/Demo organisation/);
    expect(Object.keys(tokens(s.out()))).toHaveLength(0);
    // the token printed by the first run still verifies: the dev secret survived the restart
    const r = await gql(s.url, `Bearer ${patientToken}`, CONVERSATIONS);
    expect(r.errors).toBeUndefined();
    expect(r.data.conversations.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([conversationId]);
    await stop(s);
  }, 200_000);

  it('reports every configuration problem at once and exits 1 without a stack trace', async () => {
    const p = run({ DATA_DIR: dataDir, PORT: 'eighty', MAX_PAGE_SIZE: '0', REDIS_URL: 'http://nope' });
    expect(await p.exited).toBe(1);
    expect(p.err()).toContain('Invalid configuration');
    expect(p.err()).toMatch(/PORT: /);
    expect(p.err()).toMatch(/MAX_PAGE_SIZE: /);
    expect(p.err()).toMatch(/REDIS_URL: /);
    expect(p.err()).not.toMatch(/^\s+at /m);
  });
});

describe('provideRedis without REDIS_URL', () => {
  const logger = createLogger('silent');

  it.skipIf(!findOnPath('redis-server'))('starts redis-server from PATH with its data under DATA_DIR and stops it', async () => {
    const nobody = await freePort(); // stands in for an empty 127.0.0.1:6379
    const redis = await provideRedis(undefined, dataDir, logger, { localPort: nobody });
    expect(redis.source).toBe('spawned');
    const port = Number(new URL(redis.url).port);
    expect(await probeRedis('127.0.0.1', port)).toBe(true);
    expect(existsSync(join(dataDir, 'redis', 'appendonlydir'))).toBe(true);
    await redis.stop();
    expect(await probeRedis('127.0.0.1', port)).toBe(false);
    expect(existsSync(join(dataDir, 'redis', 'wardline-redis.json'))).toBe(false);
  });

  it('names every way to provide Redis when there is none', async () => {
    const nobody = await freePort();
    const err = await provideRedis(undefined, dataDir, logger, { localPort: nobody, path: '' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisUnavailableError);
    const msg = (err as Error).message;
    expect(msg).toContain('REDIS_URL');
    expect(msg).toContain('apt-get install redis-server');
    expect(msg).toContain('docker compose up');
  });

  it('uses REDIS_URL as given', async () => {
    const redis = await provideRedis(TEST_REDIS_URL, dataDir, logger);
    expect(redis).toMatchObject({ url: TEST_REDIS_URL, source: 'REDIS_URL' });
    await redis.stop();
  });
});
