import type { Logger } from '../shared/logger.js';
import { connectRedis, type RedisTarget } from '../shared/redis-client.js';

/**
 * A dependency a server needs at start could not be reached in time, or refused us for good (bad
 * password, missing database). The message names it (URL without its password) and the real cause.
 */
export class DependencyError extends Error {}

/** `url` without its password (and without its user's password-like part), for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unparseable URL)';
  }
}

/** Replaces the password of any URL inside `text` (a driver may quote its connection string). */
const redactText = (text: string) => text.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@\s]*@/gi, '$1:***@');

/**
 * The real reason behind an error, one line: the innermost cause's message (a connection error's
 * `connect ECONNREFUSED 127.0.0.1:1`, PostgreSQL's `password authentication failed for user "x"`,
 * `getaddrinfo ENOTFOUND host`), with the code when the message lacks it. Never a password.
 */
export function describeCause(err: unknown): string {
  let e: unknown = err;
  // the innermost cause is the one that says why (drizzle's "Failed query" wraps the driver's error)
  for (let i = 0; i < 10 && e instanceof Error && e.cause !== undefined; i++) e = e.cause;
  // Node's connect to several addresses (localhost: ::1 and 127.0.0.1) fails with an AggregateError
  if (e instanceof AggregateError && e.errors.length > 0) e = e.errors[e.errors.length - 1];
  if (!(e instanceof Error)) return redactText(String(e));
  const code = (e as { code?: unknown }).code;
  const msg = e.message.split('\n')[0]?.trim() || e.name;
  return redactText(typeof code === 'string' && !msg.includes(code) ? `${msg} (${code})` : msg);
}

/** Errors waiting cannot fix: a wrong password or user, a database that does not exist. */
function isPermanent(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 10 && e instanceof Error; i++) {
    const code = (e as { code?: unknown }).code;
    if (code === '28P01' || code === '28000' || code === '3D000') return true;
    if (/^(NOAUTH|WRONGPASS)\b|invalid password|invalid username-password/i.test(e.message)) return true;
    e = e.cause;
  }
  return false;
}

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });

/** One attempt to reach PostgreSQL: connect and `select 1`. */
async function tryPostgres(url: string, ms: number): Promise<void> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, { max: 1, connect_timeout: Math.max(1, Math.ceil(ms / 1000)), onnotice: () => {} });
  try {
    await within(sql`select 1`, ms, 'connected, but PostgreSQL did not answer');
  } finally {
    await sql.end({ timeout: 0 }).catch(() => {});
  }
}

/** One attempt to reach Redis (one server, or a cluster through its seeds): connect (no retries, no queue) and PING. */
async function tryRedis(target: RedisTarget, ms: number): Promise<void> {
  const r = connectRedis(target, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: ms,
    connectionName: 'wardline:startup',
  });
  let last: unknown;
  r.on('error', (err) => {
    last = err;
  });
  try {
    await within(
      r.connect().then(() => r.ping()),
      ms,
      'connected, but Redis did not answer',
    );
  } catch (err) {
    // "Connection is closed" hides the socket error that closed it
    throw /Connection is closed/.test((err as Error).message) && last ? last : err;
  } finally {
    r.disconnect();
  }
}

export interface Dependency {
  name: 'PostgreSQL' | 'Redis';
  /** For a Redis Cluster: the first seed as a URL, for messages. */
  url: string;
  /** Redis only: the cluster's seed nodes (REDIS_CLUSTER_NODES). */
  clusterNodes?: RedisTarget['clusterNodes'];
}

/**
 * Waits until every dependency answers, trying each again every second or so for up to
 * `timeoutMs` (STARTUP_TIMEOUT_MS): a database or Redis that starts a little after the server
 * (compose, a rolling restart) is simply waited for. One line says what is awaited; the cause is
 * reported once, in the {@link DependencyError} thrown at the deadline, or at once when waiting
 * cannot help (wrong password, missing database).
 */
export async function awaitDependencies(deps: readonly Dependency[], timeoutMs: number, logger: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    deps.map(async ({ name, url, clusterNodes }) => {
      const shown = clusterNodes ? `the cluster seeds ${clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}` : redactUrl(url);
      const attempt = name === 'PostgreSQL' ? tryPostgres : (u: string, ms: number) => tryRedis({ url: u, clusterNodes }, ms);
      let waiting = false;
      for (let n = 0; ; n++) {
        const left = deadline - Date.now();
        try {
          await attempt(url, Math.max(200, Math.min(left, 5_000)));
          if (waiting) logger.info({ dependency: name, url: shown }, `${name} reachable; starting`);
          return;
        } catch (err) {
          if (isPermanent(err)) throw new DependencyError(`Cannot use ${name} at ${shown}: ${describeCause(err)}`);
          const pause = Math.min(1_000, 100 * 2 ** n);
          if (Date.now() + pause >= deadline)
            throw new DependencyError(
              `Cannot reach ${name} at ${shown}: ${describeCause(err)} (gave up after ${timeoutMs} ms, STARTUP_TIMEOUT_MS)`,
            );
          if (!waiting) {
            waiting = true;
            logger.warn(
              { dependency: name, url: shown, waitMs: Math.max(0, deadline - Date.now()) },
              `${name} not reachable yet; retrying until STARTUP_TIMEOUT_MS`,
            );
          }
          await new Promise((r) => setTimeout(r, pause));
        }
      }
    }),
  );
}
