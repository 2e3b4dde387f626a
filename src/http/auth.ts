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
  // imported once: jose given raw bytes imports a WebCrypto key on every verify (about a third of
  // a verify's cost, paid by every socket of a reconnect storm)
  const secret = auth.jwtSecret
    ? crypto.subtle.importKey('raw', new TextEncoder().encode(auth.jwtSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
    : undefined;
  secret?.catch(() => {}); // a failure is reported by the first verify
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
      const { payload } = secret
        ? await jwtVerify(token, await secret, { ...options, algorithms: ['HS256'] })
        : await jwtVerify(token, jwks as JWTVerifyGetKey, { ...options, algorithms: ['RS256', 'ES256'] });
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
