import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logger. Tokens, message bodies and patient details are never logged: the
 * redaction list is a second line of defence, the first is not passing them to the logger.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: 'wardline', ...base },
    redact: {
      paths: ['authorization', '*.authorization', 'token', '*.token', 'body', '*.body', 'headers.authorization'],
      censor: '[redacted]',
    },
  });
}
