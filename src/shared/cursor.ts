import { createHmac, timingSafeEqual } from 'node:crypto';
import { badInput } from './errors.js';

/**
 * Opaque, signed cursors. A cursor names a scope (a stream key or a list) and a position in it;
 * it is HMAC-signed so that a tampered cursor, or one minted for another scope, is rejected with
 * BAD_USER_INPUT instead of leaking or skipping data.
 */
export interface CursorCodec {
  encode(scope: string, position: number | string): string;
  /** Returns the position, or throws BAD_USER_INPUT. */
  decode(scope: string, cursor: string): string;
  decodeNumber(scope: string, cursor: string): number;
}

export function createCursorCodec(secret: string): CursorCodec {
  const sign = (scope: string, pos: string) => createHmac('sha256', secret).update(scope).update('\0').update(pos).digest().subarray(0, 12);
  const invalid = () => badInput('Invalid cursor: pass a cursor this API returned for the same stream or list.', 'after');
  const codec: CursorCodec = {
    encode(scope, position) {
      const pos = String(position);
      return `${Buffer.from(pos).toString('base64url')}.${sign(scope, pos).toString('base64url')}`;
    },
    decode(scope, cursor) {
      if (typeof cursor !== 'string' || cursor.length > 200) throw invalid();
      const dot = cursor.indexOf('.');
      if (dot <= 0) throw invalid();
      const pos = Buffer.from(cursor.slice(0, dot), 'base64url').toString();
      const mac = Buffer.from(cursor.slice(dot + 1), 'base64url');
      const expected = sign(scope, pos);
      if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw invalid();
      return pos;
    },
    decodeNumber(scope, cursor) {
      const n = Number(codec.decode(scope, cursor));
      if (!Number.isSafeInteger(n) || n < 0) throw invalid();
      return n;
    },
  };
  return codec;
}
