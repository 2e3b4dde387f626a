import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

/**
 * The embedded database (PGlite under DATA_DIR) can be opened by one process at a time; a second
 * opener corrupts or aborts. A lock file beside it (DATA_DIR/wardline.lock: pid, command, URL)
 * lets the second process stop with a message saying who holds it and what to do instead.
 */
export interface LockInfo {
  pid: number;
  command: string;
  startedAt: string;
  /** The GraphQL URL, once the holder serves it. */
  url?: string;
}

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: LockInfo,
  ) {
    super(
      [
        `The embedded database in ${dataDir} is in use by process ${holder.pid} (\`wardline ${holder.command}\`, since ${holder.startedAt}` +
          `${holder.url ? `, serving ${holder.url}` : ''}).`,
        'It can be opened by one process at a time. Either stop that process first (Ctrl-C in its terminal, or',
        `\`kill ${holder.pid}\`), or use another DATA_DIR, or point both at PostgreSQL with DATABASE_URL.`,
        'Tokens need no database: npm run token -- --sub demo-provider --org demo --role provider',
      ].join('\n'),
    );
  }
}

const lockPath = (dataDir: string) => resolve(dataDir, 'wardline.lock');
const held = new Map<string, LockInfo>();

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The live process holding DATA_DIR's lock, if another one does (a stale lock counts as free). */
export function lockHolder(dataDir: string): LockInfo | undefined {
  if (dataDir === ':memory:') return undefined;
  try {
    const info = JSON.parse(readFileSync(lockPath(dataDir), 'utf8')) as LockInfo;
    return info.pid !== process.pid && alive(info.pid) ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Takes DATA_DIR's lock for this process (throws {@link DataDirLockedError} when a live process has it). */
export function lockDataDir(dataDir: string, command = process.argv[2] ?? 'node'): () => void {
  const path = lockPath(dataDir);
  if (held.has(path)) return () => {};
  mkdirSync(dataDir, { recursive: true });
  const info: LockInfo = { pid: process.pid, command, startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify(info));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = lockHolder(dataDir);
      if (holder) throw new DataDirLockedError(dataDir, holder);
      unlinkSync(path); // stale: its process is gone
    }
  }
  held.set(path, info);
  const release = () => {
    if (!held.delete(path)) return;
    try {
      const now = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
      if (now.pid === process.pid) unlinkSync(path);
    } catch {}
  };
  process.once('exit', release);
  return release;
}

/** Records the URL this process serves in its lock (so `seed` run beside it can print it). */
export function noteServedUrl(dataDir: string, url: string): void {
  const path = lockPath(dataDir);
  const info = held.get(path);
  if (!info) return;
  info.url = url;
  try {
    writeFileSync(path, JSON.stringify(info));
  } catch {}
}

export class PortInUseError extends Error {}

/** Fails fast, before anything is opened, when HOST:PORT is taken. Port 0 (any free port) always passes. */
export function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolveFree, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') return reject(err);
      reject(
        new PortInUseError(
          err.code === 'EACCES'
            ? `Port ${port} on ${host} needs privileges this process does not have: choose another, e.g. PORT=4000.`
            : `Port ${port} on ${host} is already in use (another Wardline, or \`npm start\` already running?). ` +
                `Stop it, or choose another port: PORT=${port + 1} npm start`,
        ),
      );
    });
    probe.listen(port, host, () => probe.close(() => resolveFree()));
  });
}
