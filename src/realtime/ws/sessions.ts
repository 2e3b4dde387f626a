import type { Viewer } from '../../shared/viewer.js';

/** What an operation on a socket may do to its connection (context `connection`; WebSocket only). */
export interface ConnectionControl {
  /**
   * Replaces the socket's token with a fresh one for the same user, organisation and role: the
   * socket then closes with 4403 at the new token's expiry instead. FORBIDDEN (nothing changes)
   * for an invalid, expired, revoked or foreign token.
   */
  refreshToken(authorization: string): Promise<Viewer>;
}

/** One authenticated socket as revocation sees it; `viewer` follows in-band token refreshes. */
export interface SocketSession {
  viewer: Viewer;
  close(code: number, reason: string): void;
}

/** The authenticated sockets of this instance, by user, so a revocation can end them at once. */
export interface SocketSessions {
  add(socketId: string, session: SocketSession): void;
  remove(socketId: string, viewer: Viewer): void;
  /**
   * Closes this instance's sockets of a user whose token was issued before `notBeforeMs`
   * (a socket that already refreshed to a newer token stays). Returns how many were closed.
   */
  closeUser(orgId: string, userId: string, notBeforeMs: number, code: number, reason: string): number;
}

const key = (orgId: string, userId: string) => `${orgId}\n${userId}`;

export function createSocketSessions(): SocketSessions {
  const byUser = new Map<string, Map<string, SocketSession>>();
  return {
    add(socketId, session) {
      const k = key(session.viewer.orgId, session.viewer.userId);
      let m = byUser.get(k);
      if (!m) {
        m = new Map();
        byUser.set(k, m);
      }
      m.set(socketId, session);
    },
    remove(socketId, viewer) {
      const k = key(viewer.orgId, viewer.userId);
      const m = byUser.get(k);
      if (!m) return;
      m.delete(socketId);
      if (m.size === 0) byUser.delete(k);
    },
    closeUser(orgId, userId, notBeforeMs, code, reason) {
      const m = byUser.get(key(orgId, userId));
      if (!m) return 0;
      let n = 0;
      for (const s of [...m.values()]) {
        if ((s.viewer.iat ?? 0) * 1000 >= notBeforeMs) continue;
        s.close(code, reason);
        n++;
      }
      return n;
    },
  };
}
