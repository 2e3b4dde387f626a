import type { RedisClient } from './redis-client.js';
import type { Logger } from './logger.js';

/** The longest wait between two reconnect attempts: an outage ends at most about this long before we notice. */
export const REDIS_RETRY_MAX_MS = 1_000;

/**
 * ioredis's reconnect schedule for every Wardline connection: 50 ms doubling up to
 * {@link REDIS_RETRY_MAX_MS}, plus jitter so a fleet does not reconnect in lockstep. It never gives
 * up: a process rides out any outage and is back within about a second of Redis.
 */
export const redisRetryStrategy = (times: number): number =>
  Math.min(2 ** Math.max(0, times - 1) * 50, REDIS_RETRY_MAX_MS) + Math.floor(Math.random() * 100);

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNABORTED']);

/** True for errors that only say Redis is unreachable (the connection watcher already reported the outage). */
export function isRedisConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: string }).code;
  return (
    (code !== undefined && CONNECTION_CODES.has(code)) ||
    err.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|connect ETIMEDOUT|Command timed out/.test(err.message)
  );
}

/**
 * Reports a connection's outages as two log lines, "lost" and "restored after N ms", instead of
 * one line per reconnect attempt, and keeps every `error` event handled (an unhandled one would end
 * the process).
 */
export function watchRedis(r: RedisClient, role: string, logger: Logger): void {
  let lostAt = 0;
  let reason = 'closed';
  r.on('error', (err: Error) => {
    if (!lostAt) reason = (err as { code?: string }).code ?? err.message.slice(0, 200);
  });
  // emitted only for connections that dropped unexpectedly (not after quit or disconnect)
  r.on('reconnecting', () => {
    if (lostAt) return;
    lostAt = Date.now();
    logger.warn({ role, reason }, 'redis connection lost; reconnecting');
  });
  r.on('ready', () => {
    if (!lostAt) return;
    logger.info({ role, downMs: Date.now() - lostAt }, 'redis connection restored');
    lostAt = 0;
    reason = 'closed';
  });
}
