// The synchronous HS256 check (src/http/auth.ts verifyHs256) against jose's jwtVerify, token by
// token: a corpus of good tokens and of forged, tampered, expired and malformed ones must get the
// same verdict (and the same claims) from both, with and without an issuer and audience configured
// (except that ours refuses padding and spaces inside a segment, which jose tolerates).
import { createHmac } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { verifyHs256 } from '../../src/http/auth.js';

const SECRET = 'test-secret-test-secret-test-secret-0123';
const KEY = Buffer.from(SECRET);
const OTHER = new TextEncoder().encode('another-secret-another-secret-0123456789');
const now = Math.floor(Date.now() / 1000);

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
/** A token built by hand: any header and payload, signed with `key` over exactly what is sent. */
function raw(header: unknown, payload: unknown, key: Buffer | Uint8Array = KEY, alg = 'sha256'): string {
  const signing = `${b64(header)}.${b64(payload)}`;
  return `${signing}.${createHmac(alg, key).update(signing).digest('base64url')}`;
}
const claims = { sub: 'u1', org: 'o1', role: 'patient', exp: now + 600, iat: now };

async function corpus(): Promise<Record<string, string>> {
  const good = await new SignJWT({ org: 'o1', role: 'patient' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('u1')
    .setIssuedAt()
    .setExpirationTime(now + 600)
    .sign(KEY);
  const [h, p, s] = good.split('.') as [string, string, string];
  const withIssAud = await new SignJWT({ org: 'o1', role: 'patient' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('u1')
    .setIssuer('https://issuer.example')
    .setAudience(['wardline', 'other'])
    .setExpirationTime(now + 600)
    .sign(KEY);
  return {
    good,
    withIssAud,
    audString: raw({ alg: 'HS256' }, { ...claims, iss: 'https://issuer.example', aud: 'wardline' }),
    wrongIss: raw({ alg: 'HS256' }, { ...claims, iss: 'https://evil.example', aud: 'wardline' }),
    wrongAud: raw({ alg: 'HS256' }, { ...claims, iss: 'https://issuer.example', aud: ['nope'] }),
    otherSecret: await new SignJWT({ org: 'o1', role: 'patient' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u1')
      .setExpirationTime(now + 600)
      .sign(OTHER),
    tamperedPayload: `${h}.${b64({ ...claims, role: 'admin' })}.${s}`,
    tamperedSig: `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'AB' : 'AA'}`,
    sigWithPadding: `${h}.${p}.${s}=`,
    sigWithJunk: `${h}.${p}.${s}*`,
    sigWithSpace: `${h}.${p}.${s.slice(0, 10)} ${s.slice(10)}`,
    sigWithThreePads: `${h}.${p}.${s}===`,
    headerWithPadding: raw('{"alg":"HS256"}', claims).replace('.', '=.'),
    headerPaddedSigned: (() => {
      const signing = `${b64({ alg: 'HS256' })}==.${b64(claims)}`;
      return `${signing}.${createHmac('sha256', KEY).update(signing).digest('base64url')}`;
    })(),
    payloadPaddedSigned: (() => {
      const signing = `${b64({ alg: 'HS256' })}.${b64(claims)}=`;
      return `${signing}.${createHmac('sha256', KEY).update(signing).digest('base64url')}`;
    })(),
    payloadWithSpaceSigned: (() => {
      const pl = b64(claims);
      const signing = `${b64({ alg: 'HS256' })}.${pl.slice(0, 8)} ${pl.slice(8)}`;
      return `${signing}.${createHmac('sha256', KEY).update(signing).digest('base64url')}`;
    })(),
    sigStandardAlphabet: `${h}.${p}.${s.replaceAll('-', '+').replaceAll('_', '/')}`,
    emptySig: `${h}.${p}.`,
    algNone: `${b64({ alg: 'none' })}.${p}.`,
    algNoneSigned: raw({ alg: 'none' }, claims),
    algHS384: raw({ alg: 'HS384' }, claims, KEY, 'sha384'),
    algHS256Lower: raw({ alg: 'hs256' }, claims),
    algMissing: raw({ typ: 'JWT' }, claims),
    critHeader: raw({ alg: 'HS256', crit: ['exp'] }, claims),
    b64False: raw({ alg: 'HS256', b64: false, crit: ['b64'] }, claims),
    headerNotJson: `${b64('not json')}.${p}.${createHmac('sha256', KEY)
      .update(`${b64('not json')}.${p}`)
      .digest('base64url')}`,
    headerArray: raw(['HS256'], claims),
    payloadNotJson: raw({ alg: 'HS256' }, 'plain text'),
    payloadArray: raw({ alg: 'HS256' }, [claims]),
    payloadNull: raw({ alg: 'HS256' }, 'null'),
    expired: raw({ alg: 'HS256' }, { ...claims, exp: now - 1 }),
    expiresNow: raw({ alg: 'HS256' }, { ...claims, exp: now }),
    expString: raw({ alg: 'HS256' }, { ...claims, exp: String(now + 600) }),
    noExp: raw({ alg: 'HS256' }, { sub: 'u1', org: 'o1', role: 'patient' }),
    noSub: raw({ alg: 'HS256' }, { org: 'o1', role: 'patient', exp: now + 600 }),
    nbfFuture: raw({ alg: 'HS256' }, { ...claims, nbf: now + 60 }),
    nbfPast: raw({ alg: 'HS256' }, { ...claims, nbf: now - 60 }),
    nbfString: raw({ alg: 'HS256' }, { ...claims, nbf: 'yesterday' }),
    iatString: raw({ alg: 'HS256' }, { ...claims, iat: 'now' }),
    iatFuture: raw({ alg: 'HS256' }, { ...claims, iat: now + 3600 }),
    twoSegments: `${h}.${p}`,
    fourSegments: `${good}.${s}`,
    empty: '',
    dots: '..',
    badUtf8Payload: (() => {
      const payload = Buffer.from([0x7b, 0x22, 0x73, 0x75, 0x62, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]).toString('base64url');
      return `${h}.${payload}.${createHmac('sha256', KEY).update(`${h}.${payload}`).digest('base64url')}`;
    })(),
  };
}

/**
 * Where the two differ on purpose: RFC 7515's compact form is unpadded base64url without
 * whitespace, and jose's decoder (atob) tolerates padding and spaces inside a segment; ours refuses.
 */
const STRICTER = new Set(['sigWithPadding', 'sigWithSpace', 'payloadPaddedSigned', 'payloadWithSpaceSigned']);

async function josePayload(token: string, options: { issuer?: string; audience?: string }) {
  try {
    return (await jwtVerify(token, KEY, { ...options, requiredClaims: ['exp', 'sub'], algorithms: ['HS256'] })).payload;
  } catch {
    return undefined;
  }
}

describe('verifyHs256', () => {
  for (const [label, options] of [
    ['no issuer or audience configured', {}],
    ['issuer and audience configured', { issuer: 'https://issuer.example', audience: 'wardline' }],
  ] as const) {
    it(`gives jose's verdict on every token, ${label}`, async () => {
      const tokens = await corpus();
      const verdicts: Record<string, boolean> = {};
      for (const [name, token] of Object.entries(tokens)) {
        const ours = verifyHs256(token, KEY, { ...options, requiredClaims: ['exp', 'sub'] });
        const theirs = await josePayload(token, options);
        expect(ours, name).toEqual(STRICTER.has(name) ? undefined : theirs);
        verdicts[name] = ours !== undefined;
      }
      // the corpus exercises both answers: its good tokens pass and its forgeries do not
      expect(verdicts.good).toBe(!('issuer' in options));
      expect(verdicts.withIssAud).toBe(true);
      expect(verdicts.tamperedPayload || verdicts.algNone || verdicts.algHS384 || verdicts.expired || verdicts.otherSecret).toBe(false);
    });
  }
});
