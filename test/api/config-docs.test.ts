// The README documents every configuration variable (every limit among them) with its default, and
// .env.example lists it: both are compared with what src/config.ts reads, so a new variable or a
// changed default cannot go undocumented.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configVariables } from '../../src/config.js';

const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const envExample = readFileSync(new URL('.env.example', root), 'utf8');

/** README Configuration rows: variable → default cell (backticks removed). A row may name several variables. */
const rows = new Map<string, string>();
for (const line of readme.split('\n')) {
  const m = /^\| ((?:`[A-Z][A-Z0-9_]+`(?:, )?)+) \| ([^|]+) \|/.exec(line);
  if (!m) continue;
  for (const v of m[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) rows.set(v[1]!, m[2]!.replace(/`/g, '').trim());
}

/** How the README writes a default: numbers as digits, budgets as rate/burst. */
const written = (v: unknown): string => {
  if (v !== null && typeof v === 'object' && 'rate' in v && 'burst' in v) return `${v.rate}/${v.burst}`;
  return String(v);
};

describe('configuration documentation', () => {
  const vars = configVariables();

  it('the README has a row for every variable, with the default the code uses', () => {
    const missing = Object.keys(vars).filter((name) => !rows.has(name));
    expect(missing, 'variables without a README row').toEqual([]);
    const wrong = Object.entries(vars)
      .filter(([, d]) => d !== undefined)
      .map(([name, d]) => {
        const cell = rows.get(name)!;
        const expected = d === '' ? 'unset' : written(d);
        return cell === expected || cell.startsWith(`${expected} `) ? undefined : `${name}: README says "${cell}", the code ${expected}`;
      })
      .filter(Boolean);
    expect(wrong).toEqual([]);
  });

  it('the README documents no variable the code does not read', () => {
    const known = new Set([...Object.keys(vars), 'TEST_DATABASE_URL', 'TEST_REDIS_URL', 'TEST_REDIS_CLUSTER_NODES', 'TEST_LOG_LEVEL']);
    expect([...rows.keys()].filter((name) => !known.has(name))).toEqual([]);
  });

  it('.env.example lists every variable (a former name may be named in a comment)', () => {
    const former = new Set(['WS_ALLOWED_ORIGINS']);
    const listed = (name: string) => new RegExp(`^#?\\s*${name}=`, 'm').test(envExample) || (former.has(name) && envExample.includes(name));
    expect(Object.keys(vars).filter((name) => !listed(name))).toEqual([]);
  });

  it('covers the limits of rate, caps, bodies and the audit log (service budgets included)', () => {
    for (const name of [
      'RATE_LIMITS',
      'RATE_LIMIT_QUERY',
      'RATE_LIMIT_MUTATION_IP',
      'RATE_LIMIT_SUBSCRIBE_SERVICE',
      'RATE_LIMIT_CONNECT_SERVICE',
      'RATE_LIMIT_SIGNAL_SERVICE',
      'WS_MAX_SOCKETS_PER_USER',
      'WS_MAX_SUBSCRIPTIONS_PER_SOCKET',
      'WS_MAX_FILTER_COST',
      'HTTP_MAX_BODY_BYTES',
      'HTTP_MAX_BODY_BYTES_SERVICE',
      'AUDIT_RETENTION_DAYS',
    ])
      expect(vars, name).toHaveProperty(name);
  });
});
