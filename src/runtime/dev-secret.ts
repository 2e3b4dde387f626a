import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** True when the process needs a generated JWT secret: no JWT_SECRET or JWKS_URL, not production. */
export const needsDevSecret = (env: NodeJS.ProcessEnv): boolean => !env.JWT_SECRET && !env.JWKS_URL && env.NODE_ENV !== 'production';

/**
 * The development JWT secret kept in `<dataDir>/dev-jwt-secret` (mode 0600), generated on first
 * use, so that tokens printed by `npm start` or `npm run token` stay valid across restarts.
 * Never used in production: there `loadConfig` insists on JWT_SECRET or JWKS_URL.
 */
export function devJwtSecret(dataDir: string): string {
  const file = join(dataDir, 'dev-jwt-secret');
  mkdirSync(dataDir, { recursive: true });
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing.length >= 32) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(48).toString('base64url');
  try {
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // another process created it first, or it held something too short: re-read or replace
    const raced = readFileSync(file, 'utf8').trim();
    if (raced.length >= 32) return raced;
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return secret;
}
