import type { EphemeralEvent } from '../../realtime/hub.js';
import type { OpResult, PresenceStatus } from './store.js';

/** The ephemeral stream of one organisation's presence changes (never stored, never replayed). */
export const presenceStream = (orgId: string) => `presence:${orgId}`;

/** Event type of a published presence change. */
export const PRESENCE_CHANGED = 'PresenceChanged';

/** A user's presence as queries, the mutation and events carry it. */
export interface PresenceView {
  userId: string;
  status: PresenceStatus;
  statusText: string | null;
  /** Now while the user appears present; else when they went offline; null if never seen. */
  lastSeenAt: string | null;
  devices: number;
  updatedAt: string;
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
  };
}

/** The ephemeral event that carries a change to the organisation's presence stream. */
export function toPresenceEvent(orgId: string, view: PresenceView, at: number): EphemeralEvent {
  return { stream: presenceStream(orgId), orgId, type: PRESENCE_CHANGED, payload: { ...view }, at: iso(at) };
}

/** Root value of a `presenceChanged` subscription for an ephemeral event. */
export function toPresenceRoot(ev: EphemeralEvent): PresenceView | undefined {
  return ev.type === PRESENCE_CHANGED ? (ev.payload as unknown as PresenceView) : undefined;
}
