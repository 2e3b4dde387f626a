import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logger. Tokens, message bodies and patient details are never logged: the
 * redaction list is a second line of defence, the first is not passing them to the logger.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wardline', ...base },
      // every `{ err }` goes through safeError: driver errors quote query parameters
      serializers: { err: (e: unknown) => safeError(e) },
      redact: {
        paths: ['authorization', '*.authorization', 'token', '*.token', 'body', '*.body', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/**
 * A loggable view of an error without data: driver errors quote the query parameters (message
 * bodies, patient details) in their message, so only the first line before "params:" is kept,
 * plus SQLSTATE codes and the stack frames.
 */
export function safeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const clean = (m: string) => m.split('\nparams:')[0]?.slice(0, 500);
  const cause = err.cause as { code?: string; message?: string; name?: string } | undefined;
  return {
    type: err.name,
    message: clean(err.message),
    code: (err as { code?: string }).code,
    cause: cause ? { type: cause.name, code: cause.code, message: clean(String(cause.message ?? '')) } : undefined,
    // only frames: the lines between the message and the frames can quote parameters too
    stack: err.stack
      ?.split('\n')
      .filter((l) => l.startsWith('    at '))
      .slice(0, 8)
      .join('\n'),
  };
}
