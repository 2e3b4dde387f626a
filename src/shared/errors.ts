import { GraphQLError } from 'graphql';

/** The error codes clients can branch on (`extensions.code`). */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'INTERNAL_SERVER_ERROR';

function coded(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extra } });
}

export const unauthenticated = (message = 'Authentication required: send a valid bearer token.') => coded('UNAUTHENTICATED', message);
export const forbidden = (message = 'You are not allowed to do this.') => coded('FORBIDDEN', message);
/** Another organisation's object is reported exactly like a missing one. */
export const notFound = (kind: string) => coded('NOT_FOUND', `${kind} not found.`);
export const badInput = (message: string, field?: string) => coded('BAD_USER_INPUT', message, field ? { field } : {});
/** `extra` adds machine-readable detail to the extensions (e.g. `reason`, `state`). */
export const conflict = (message: string, extra: Record<string, unknown> = {}) => coded('CONFLICT', message, extra);
export const rateLimited = (retryAfterSeconds: number) =>
  coded('RATE_LIMITED', `Too many requests; retry after ${retryAfterSeconds} s.`, { retryAfterSeconds });

/**
 * A resume cursor older than the history the server keeps (LEDGER_RETENTION_DAYS): the client must
 * refetch the current state (queries) and subscribe again without `after`.
 */
export const cursorExpired = () =>
  coded(
    'BAD_USER_INPUT',
    'This cursor is older than the event history the server keeps: refetch the current state, then subscribe without `after`.',
    { field: 'after', reason: 'CURSOR_EXPIRED' },
  );

/** RATE_LIMITED for HTTP: status 429 and Retry-After (yoga takes `http` out of the JSON body). */
export const rateLimitedHttp = (retryAfterSeconds: number) => {
  const e = rateLimited(retryAfterSeconds);
  return coded('RATE_LIMITED', e.message, {
    retryAfterSeconds,
    http: { status: 429, headers: { 'Retry-After': String(retryAfterSeconds) } },
  });
};

/** A refused cap: BAD_USER_INPUT (the client must change what it asks), with the cap named. */
export const capExceeded = (limit: 'SUBSCRIPTIONS_PER_SOCKET' | 'FILTER_COST', max: number, message: string) =>
  coded('BAD_USER_INPUT', message, { limit, max });

/** True for errors created by this catalog (they are shown to clients unmasked). */
export function isCoded(err: unknown): err is GraphQLError {
  return err instanceof GraphQLError && typeof err.extensions?.code === 'string';
}
