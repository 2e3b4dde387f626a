// The front door's traps, as real processes (`node --import tsx src/main.ts …`, what `npm start`,
// `npm run seed` and `npm run token` run): the embedded database is locked to one process, `seed`
// beside a running server prints tokens and the server's real URL instead of opening the database,
// a second server on the same data or on a busy port stops at once with a message saying what to do.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL } from '../harness/env.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const base = mkdtempSync(join(tmpdir(), 'wardline-door-'));
const dataDir = join(base, 'data');
const prefix = `t${randomUUID().slice(0, 8)}`;
const children = new Set<ChildProcess>();

function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['NODE_ENV', 'DATABASE_URL', 'REDIS_URL', 'JWT_SECRET', 'JWKS_URL', 'CURSOR_SECRET', 'PORT', 'HOST', 'SEED_ON_EMPTY'])
    delete e[k];
  return { ...e, LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: prefix, HOST: '127.0.0.1', ...extra };
}

function run(args: string[], extra: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: ROOT, env: env(extra) });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** Runs a one-shot command to its end. */
async function oneShot(args: string[], extra: Record<string, string>, ms = 80_000) {
  const p = run(args, extra);
  const code = await Promise.race([p.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
  if (code === 'timeout') p.child.kill('SIGKILL');
  return { code, out: p.out(), err: p.err() };
}

let port: number;
let server: ReturnType<typeof run>;

describe('front door', () => {
  beforeAll(async () => {
    // any free port, chosen by the server as it listens: a port picked here and bound up to 100 s
    // later (the first start's database) could be taken meanwhile by another test process
    server = run(['all'], { DATA_DIR: dataDir, PORT: '0' });
    const end = Date.now() + 150_000; // a first start took up to 100 s on a loaded 2-core machine
    const listening = () => /listening on http:\/\/127\.0\.0\.1:(\d+)\/graphql/.exec(server.out());
    while (!listening()) {
      if (server.child.exitCode !== null || Date.now() > end) throw new Error(`server did not start:\n${server.out()}\n${server.err()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    port = Number(listening()?.[1]);
  }, 180_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.race([server?.exited, new Promise((r) => setTimeout(r, 8_000))]);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });

  it('seed beside the running server prints the demo tokens and the server’s real URL, without opening its database', async () => {
    const r = await oneShot(['seed'], { DATA_DIR: dataDir });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`Process ${server.child.pid}`);
    expect(r.out).toContain(`GraphiQL: http://127.0.0.1:${port}/graphql`);
    const token = /provider\s+demo-provider\s+(\S+)/.exec(r.out)?.[1];
    // the printed token works against the running server
    const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    expect(((await res.json()) as any).data?.me?.id).toBe('demo-provider');
    // and the server still answers (a second PGlite opener used to abort it)
    expect(server.child.exitCode).toBeNull();
  }, 100_000);

  it('token works while the server runs (it needs no database)', async () => {
    const r = await oneShot(['token', '--sub', 'demo-patient', '--org', 'demo', '--role', 'patient'], { DATA_DIR: dataDir });
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim()).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
  }, 100_000);

  it('a second server on the same data directory stops at once and says who holds it', async () => {
    // port 0 passes the busy-port check whatever else runs on the machine: the data directory is what is tested
    const r = await oneShot(['all'], { DATA_DIR: dataDir, PORT: '0' });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`in use by process ${server.child.pid}`);
    expect(r.err).toContain(`http://127.0.0.1:${port}/graphql`);
    expect(server.child.exitCode).toBeNull();
  }, 100_000);

  it('a server on a busy port stops before opening anything', async () => {
    const other = join(base, 'other');
    const r = await oneShot(['all'], { DATA_DIR: other, PORT: String(port) });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`Port ${port} on 127.0.0.1 is already in use`);
    expect(existsSync(join(other, 'pglite'))).toBe(false);
  }, 100_000);
});
