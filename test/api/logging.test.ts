import { describe, expect, it } from 'vitest';
import { createLogger, safeError } from '../../src/shared/logger.js';

describe('logging never carries data', () => {
  it('strips query parameters from driver errors, in the message and in the stack', () => {
    const cause = Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505', name: 'PostgresError' });
    const err = new Error('Failed query: insert into "messages" values ($1, $2)\nparams: Patient body text,patient-42', { cause });
    err.name = 'DrizzleQueryError';
    const out = JSON.stringify(safeError(err));
    expect(out).not.toContain('Patient body text');
    expect(out).not.toContain('patient-42');
    expect(out).toContain('23505');
  });

  it('routes `err` through the same serializer and redacts authorization and body fields', () => {
    const lines: string[] = [];
    const logger = createLogger('info');
    const child = logger.child({});
    // pino writes synchronously to its destination; capture by swapping the stream write
    const stream = (logger as unknown as { [k: symbol]: { write: (s: string) => void } })[
      Object.getOwnPropertySymbols(logger).find((s) => s.description === 'pino.stream') as symbol
    ];
    const write = stream.write.bind(stream);
    stream.write = (s: string) => void lines.push(s);
    try {
      child.error({ err: new Error('boom\nparams: secret-value'), authorization: 'Bearer abc.def', body: 'hello doctor' }, 'x');
    } finally {
      stream.write = write;
    }
    const line = lines.join('');
    expect(line).toContain('boom');
    expect(line).not.toContain('secret-value');
    expect(line).not.toContain('abc.def');
    expect(line).not.toContain('hello doctor');
  });
});
