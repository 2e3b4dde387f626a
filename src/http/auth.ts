import { createHmac, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { Config } from '../config.js';
import { ROLES, type Role, type Viewer } from '../shared/viewer.js';

const claimsSchema = z.object({
  sub: z.string().min(1).max(200),
  org: z.string().min(1).max(200),
  role: z.enum(ROLES),
  exp: z.number().int(),
  iat: z.number().int().optional(),
  name: z.string().max(200).optional(),
});

/** Verifies bearer tokens (HS256 secret, or RS256/ES256 through a JWKS URL). */
export interface Authenticator {
  /** Returns the viewer for a valid token, or undefined for a missing, malformed, bad or expired one. */
  verify(authorization: string | undefined | null): Promise<Viewer | undefined>;
}

export function createAuthenticator(auth: Config['auth']): Authenticator {
  // HS256 is checked synchronously with node:crypto (verifyHs256): WebCrypto's HMAC hands every
  // verify to the thread pool and back, which a reconnect storm pays once per socket
  const secret = auth.jwtSecret ? Buffer.from(auth.jwtSecret, 'utf8') : undefined;
  const jwks: JWTVerifyGetKey | undefined = auth.jwksUrl ? createRemoteJWKSet(new URL(auth.jwksUrl)) : undefined;
  const options = {
    issuer: auth.issuer,
    audience: auth.audience,
    requiredClaims: ['exp', 'sub'],
  };
  // Verified tokens, so a client's repeated requests skip the signature check; an entry is only
  // used until the token's own expiry. Bounded: cleared when full.
  const verified = new Map<string, Viewer>();
  return {
    async verify(authorization) {
      if (!authorization || typeof authorization !== 'string') return undefined;
      const token = authorization.startsWith('Bearer ') ? authorization.slice(7).trim() : authorization.trim();
      if (!token || token.length > 8192) return undefined;
      const hit = verified.get(token);
      if (hit && (hit.exp ?? 0) * 1000 > Date.now()) return hit;
      const viewer = await verifyToken(token);
      if (viewer) {
        if (verified.size >= 10_000) verified.clear();
        verified.set(token, viewer);
      }
      return viewer;
    },
  };

  async function verifyToken(token: string): Promise<Viewer | undefined> {
    try {
      const payload = secret
        ? verifyHs256(token, secret, options)
        : (await jwtVerify(token, jwks as JWTVerifyGetKey, { ...options, algorithms: ['RS256', 'ES256'] })).payload;
      if (!payload) return undefined;
      const c = claimsSchema.safeParse(payload);
      if (!c.success) return undefined;
      return {
        userId: c.data.sub,
        orgId: c.data.org,
        role: c.data.role,
        name: c.data.name ?? c.data.sub,
        exp: c.data.exp,
        iat: c.data.iat,
      };
    } catch {
      return undefined;
    }
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A base64url JSON object segment, or undefined (bad alphabet, bad UTF-8, bad JSON, not an object). */
function jsonSegment(segment: string): Record<string, unknown> | undefined {
  if (!B64URL.test(segment)) return undefined;
  try {
    const v: unknown = JSON.parse(strictUtf8.decode(Buffer.from(segment, 'base64url')));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verifies a compact HS256 JWT and returns its claims, or undefined. The checks are jose's
 * `jwtVerify` with `algorithms: ['HS256']` and the given options (test/api/token-verify.test.ts
 * compares the two on a corpus of good and forged tokens): header `alg` exactly HS256 and no
 * `crit` / `b64` extension; signature compared in constant time on its canonical base64url form;
 * claims a JSON object with the required claims present; `exp`, `nbf`, `iat` numbers when present;
 * expired at `exp <= now`, not yet valid at `nbf > now` (seconds, no tolerance); `iss` and `aud`
 * matched when configured.
 */
export function verifyHs256(
  token: string,
  key: Buffer,
  options: { issuer?: string; audience?: string; requiredClaims?: readonly string[] },
  now = Math.floor(Date.now() / 1000),
): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h, p, sig] = parts as [string, string, string];
  const header = jsonSegment(h);
  if (header?.alg !== 'HS256' || 'crit' in header || 'b64' in header) return undefined;
  if (!B64URL.test(sig)) return undefined;
  const expected = createHmac('sha256', key).update(`${h}.${p}`).digest('base64url');
  if (sig.length !== expected.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(expected))) return undefined;
  const claims = jsonSegment(p);
  if (!claims) return undefined;
  for (const name of options.requiredClaims ?? []) if (!Object.hasOwn(claims, name)) return undefined;
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    if (name in claims && (typeof claims[name] !== 'number' || !Number.isFinite(claims[name]))) return undefined;
  }
  if (typeof claims.exp === 'number' && claims.exp <= now) return undefined;
  if (typeof claims.nbf === 'number' && claims.nbf > now) return undefined;
  if (options.issuer !== undefined && claims.iss !== options.issuer) return undefined;
  if (options.audience !== undefined) {
    const aud = claims.aud;
    const ok = typeof aud === 'string' ? aud === options.audience : Array.isArray(aud) && aud.includes(options.audience);
    if (!ok) return undefined;
  }
  return claims;
}

export interface TokenClaims {
  sub: string;
  org: string;
  role: Role;
  name?: string;
}

/** Mints an HS256 token (dev tooling, seed output and tests). */
export async function mintToken(secret: string, claims: TokenClaims, ttlSeconds = 24 * 3600, auth?: Config['auth']): Promise<string> {
  let jwt = new SignJWT({ org: claims.org, role: claims.role, ...(claims.name ? { name: claims.name } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
  if (auth?.issuer) jwt = jwt.setIssuer(auth.issuer);
  if (auth?.audience) jwt = jwt.setAudience(auth.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
