import { defineStream } from '../../realtime/stream.js';
import type { OpResult, PresenceStatus } from './store.js';

/** A user's presence as queries, the mutation and events carry it. */
export interface PresenceView {
  userId: string;
  status: PresenceStatus;
  statusText: string | null;
  /** Now while the user appears present; else when they went offline; null if never seen. */
  lastSeenAt: string | null;
  devices: number;
  updatedAt: string;
  /** Orders this user's published changes (strictly increasing); see store.ts `ver`. */
  version: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The view of a store result. `fallbackUpdatedMs` is used when nothing was ever recorded for the
 * user (their account's creation time).
 */
export function toView(userId: string, r: OpResult, fallbackUpdatedMs: number): PresenceView {
  return {
    userId,
    status: r.status,
    statusText: r.text,
    lastSeenAt: r.status !== 'offline' ? iso(r.now) : r.offAt ? iso(r.offAt) : null,
    devices: r.devices,
    updatedAt: iso(r.changedAt || fallbackUpdatedMs),
    version: r.version,
  };
}

/** Ephemeral event types of the presence stream. */
export interface PresenceEphemeralPayloads {
  PresenceChanged: PresenceView;
}

/** The ephemeral stream of one organisation's presence changes (never stored, never replayed), keyed by org id. */
export const presenceStream = defineStream<string, Record<never, never>, PresenceEphemeralPayloads>({
  name: (orgId) => `presence:${orgId}`,
});
