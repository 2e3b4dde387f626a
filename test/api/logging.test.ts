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
    const logger = createLogger('info', {}, { write: (s: string) => void lines.push(s) });
    logger.child({}).error({ err: new Error('boom\nparams: secret-value'), authorization: 'Bearer abc.def', body: 'hello doctor' }, 'x');
    const line = lines.join('');
    expect(line).toContain('boom');
    expect(line).not.toContain('secret-value');
    expect(line).not.toContain('abc.def');
    expect(line).not.toContain('hello doctor');
  });
});
