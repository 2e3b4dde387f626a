import type { Services } from '../modules/modules.js';
import type { Fanout } from '../realtime/fanout-types.js';
import type { Revocations } from '../realtime/revocations.js';
import type { ConnectionControl } from '../realtime/ws/sessions.js';
import { unauthenticated } from '../shared/errors.js';
import type { Viewer } from '../shared/viewer.js';

/** Per-operation context, identical on HTTP and WebSocket. */
export interface Context {
  viewer: Viewer | undefined;
  services: Services;
  /** Stream delivery, for subscription fields executed outside the WebSocket fan-out path. */
  realtime: Fanout;
  requestId: string;
  /** How the operation arrived. Subscriptions are only served over WebSocket. */
  transport: 'http' | 'ws';
  /** The graphql-ws connection the operation arrived on (undefined over HTTP): the device, for presence. */
  socketId?: string;
  /** The graphql-ws connection itself (in-band token refresh); undefined over HTTP. */
  connection?: ConnectionControl;
  /** Session revocation shared by all instances (API processes only). */
  revocations?: Pick<Revocations, 'revoke'>;
  /** The client's address (as for rate limits: TRUSTED_PROXIES decides whether X-Forwarded-For counts): for the audit log. */
  ip?: string;
}

/** The viewer, or UNAUTHENTICATED. */
export function requireViewer(ctx: Context): Viewer {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer;
}
