import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import type { Logger } from '../shared/logger.js';

/** The Redis a process uses, and how to let go of it on shutdown. */
export interface ProvidedRedis {
  url: string;
  /** How it was found: the configured URL, the default local port, or a redis-server started here. */
  source: 'REDIS_URL' | 'local' | 'spawned';
  /** Stops the redis-server started here (graceful: the AOF is flushed); a no-op otherwise. */
  stop(): Promise<void>;
}

/** No Redis could be found or started; the message names every way to provide one. */
export class RedisUnavailableError extends Error {}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 6379;

/**
 * Answers whether a Redis server answers PING on host:port within `timeoutMs`. Any RESP reply
 * counts (`+PONG`, or `-NOAUTH` from a server that wants a password), so a protected server is
 * used and fails later with its own clear error instead of being shadowed by a spawned one.
 */
export function probeRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host, port });
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      done(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => finish(d.length > 0 && (d[0] === 0x2b /* + */ || d[0] === 0x2d) /* - */));
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}

/** The absolute path of `name` on PATH, if it is there and executable. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, DEFAULT_HOST, () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? done(addr.port) : fail(new Error('no port'))));
    });
  });
}

const unavailableMessage = (dataDir: string) =>
  [
    'No Redis available: REDIS_URL is not set, nothing answers on 127.0.0.1:6379, and redis-server is not on PATH.',
    'Provide Redis in one of these ways:',
    '  - set REDIS_URL to a Redis you have, e.g. REDIS_URL=redis://my-redis:6379',
    '  - install redis-server (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`);',
    `    npm start then uses it on 127.0.0.1:6379, or starts its own with data under ${join(dataDir, 'redis')}`,
    '  - with Docker: `docker compose up -d redis` (publishes 127.0.0.1:6379), or `docker compose up` for the whole stack',
  ].join('\n');

export interface ProvideRedisOptions {
  /** Where a local Redis is looked for (default 6379 on 127.0.0.1; tests pass a port nobody uses). */
  localPort?: number;
  /** The PATH searched for redis-server (default process.env.PATH). */
  path?: string;
}

/**
 * Provides Redis for a process: `redisUrl` when configured; else the server on 127.0.0.1:6379 when
 * one answers; else a `redis-server` from PATH started on a free port with its append-only file
 * under `<dataDir>/redis` (stopped by {@link ProvidedRedis.stop}); else a
 * {@link RedisUnavailableError} naming the ways to provide one.
 */
export async function provideRedis(
  redisUrl: string | undefined,
  dataDir: string,
  logger: Logger,
  opts: ProvideRedisOptions = {},
): Promise<ProvidedRedis> {
  const noop = async () => {};
  if (redisUrl) return { url: redisUrl, source: 'REDIS_URL', stop: noop };
  const localPort = opts.localPort ?? DEFAULT_PORT;
  if (await probeRedis(DEFAULT_HOST, localPort)) {
    return { url: `redis://${DEFAULT_HOST}:${localPort}`, source: 'local', stop: noop };
  }
  const bin = findOnPath('redis-server', opts.path);
  if (!bin) throw new RedisUnavailableError(unavailableMessage(dataDir));
  return spawnRedis(bin, resolve(dataDir, 'redis'), logger);
}

interface StateFile {
  pid: number;
  port: number;
}

/** Stops a redis-server a previous run started here and could not stop (it was killed). */
async function stopStale(stateFile: string, logger: Logger): Promise<void> {
  if (!existsSync(stateFile)) return;
  try {
    const { pid } = JSON.parse(readFileSync(stateFile, 'utf8')) as StateFile;
    const cmdline = readProcCmdline(pid);
    // only a live redis-server: the pid may have been reused by something else
    if (cmdline?.includes('redis-server')) {
      logger.warn({ pid }, 'stopping a redis-server left behind by an earlier run');
      process.kill(pid, 'SIGTERM');
      const end = Date.now() + 5_000;
      while (readProcCmdline(pid) !== undefined && Date.now() < end) await sleep(50);
    }
  } catch {
    // unreadable state: nothing we can safely stop
  }
  rmSync(stateFile, { force: true });
}

/** The command line of a live process, or undefined (no /proc: assume it is gone). */
function readProcCmdline(pid: number): string | undefined {
  try {
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return existsSync('/proc') ? undefined : 'redis-server';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function spawnRedis(bin: string, dir: string, logger: Logger): Promise<ProvidedRedis> {
  mkdirSync(dir, { recursive: true });
  const stateFile = join(dir, 'wardline-redis.json');
  await stopStale(stateFile, logger);
  const port = await freePort();
  const args = ['--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes', '--bind', DEFAULT_HOST];
  // its own process group: a Ctrl-C in the terminal reaches only us, and we stop it last, after
  // the connections that use it are closed
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  // keep the last lines of its output for an error message; nothing is forwarded (it is noisy)
  const tail: string[] = [];
  const keep = (b: Buffer) => {
    tail.push(...b.toString().split('\n').filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - 20));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  let stopping = false;
  const exit = new Promise<void>((r) =>
    child.once('exit', (code, signal) => {
      exited = true;
      if (!stopping) logger.error({ code, signal, port }, 'redis-server exited; restart wardline to start it again');
      r();
    }),
  );
  child.once('error', (err) => {
    tail.push(err.message); // could not be spawned: no 'exit' follows
    exited = true;
  });
  // if this process dies without shutting down (an uncaught error), take redis-server along
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);

  const end = Date.now() + 10_000;
  while (!(await probeRedis(DEFAULT_HOST, port, 250))) {
    if (exited || Date.now() > end) {
      stopping = true;
      child.kill('SIGKILL');
      process.off('exit', killOnExit);
      throw new RedisUnavailableError(
        `redis-server (${bin}) did not start on 127.0.0.1:${port}${exited ? ` (exit code ${child.exitCode})` : ''}:\n` +
          tail.map((l) => `  ${l}`).join('\n'),
      );
    }
    await sleep(50);
  }
  writeFileSync(stateFile, JSON.stringify({ pid: child.pid ?? 0, port } satisfies StateFile));
  logger.info({ port, dir, pid: child.pid }, 'started redis-server (no REDIS_URL, nothing on 127.0.0.1:6379)');
  return {
    url: `redis://${DEFAULT_HOST}:${port}`,
    source: 'spawned',
    stop: async () => {
      stopping = true;
      await stopChild(child, exit, () => exited, stateFile, killOnExit);
    },
  };
}

async function stopChild(child: ChildProcess, exit: Promise<void>, exited: () => boolean, stateFile: string, killOnExit: () => void) {
  process.off('exit', killOnExit);
  if (!exited()) {
    child.kill('SIGTERM'); // redis-server shuts down gracefully on SIGTERM (AOF fsynced)
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exit;
    clearTimeout(force);
  }
  rmSync(stateFile, { force: true });
}
