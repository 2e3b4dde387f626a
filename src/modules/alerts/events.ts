import { z } from 'zod';
import { defineJob } from '../../jobs/define.js';
import { defineTimer } from '../../jobs/timer.js';
import { type EventOf, type StreamEventRoot, defineStream } from '../../realtime/stream.js';
import type { Viewer } from '../../shared/viewer.js';
import { ALERT_LEVELS, type AlertLevel, type Audience } from './tables.js';

/** An alert as events and queries carry it. */
export interface AlertSnapshot {
  id: string;
  orgId: string;
  level: AlertLevel;
  type: string;
  title: string;
  body: string | null;
  lat: number | null;
  lng: number | null;
  regionCode: string | null;
  riskScore: number | null;
  actionRequired: boolean;
  actionUrl: string | null;
  expiresAt: string | null;
  audience: Audience;
  raisedBy: string;
  clientKey: string | null;
  createdAt: string;
  escalatedAt: string | null;
}

/** Who acknowledged, denormalised into the event so rendering it needs no lookup. */
export interface AckUser {
  id: string;
  name: string;
  role: string;
}

/**
 * Ledger event types of an alert stream. Every payload carries the alert, so the same filter,
 * audience and expiry check decides delivery of all three (an acknowledgement or an escalation
 * reaches exactly the subscribers who receive the alert itself).
 */
export interface AlertEventPayloads {
  AlertRaised: { alert: AlertSnapshot };
  AlertAcknowledged: { alert: AlertSnapshot; alertId: string; user: AckUser; at: string };
  AlertEscalated: { alert: AlertSnapshot };
}
export type AlertEventType = keyof AlertEventPayloads;

/** The ledger stream of one organisation's alerts (every alert event of the org, in commit order), keyed by org id. */
export const alertStream = defineStream<string, AlertEventPayloads>({ name: (orgId) => `alerts:${orgId}` });

export type AlertEventRoot = StreamEventRoot &
  (
    | { kind: 'AlertRaised'; alert: AlertSnapshot }
    | { kind: 'AlertAcknowledged'; alert: AlertSnapshot; alertId: string; user: AckUser }
    | { kind: 'AlertEscalated'; alert: AlertSnapshot }
  );

/** Root value of a durable alert event. An acknowledgement's `at` is the recorded ack time. */
export function toAlertRoot(ev: EventOf<AlertEventPayloads>, cursor: string): AlertEventRoot {
  if (ev.type === 'AlertAcknowledged') {
    const a = ev.payload;
    return { kind: 'AlertAcknowledged', cursor, at: a.at, alert: a.alert, alertId: a.alertId, user: a.user };
  }
  return { kind: ev.type, cursor, at: ev.at, alert: ev.payload.alert };
}

/** A validated subscription / query filter. Every given criterion must hold (AND); lists are ORs. */
export interface AlertFilterSpec {
  minLevel?: AlertLevel;
  types?: string[];
  near?: { lat: number; lng: number; radiusKm: number };
  /** Upper-cased region codes. */
  regions?: string[];
  minRisk?: number;
}

export const levelRank = (l: AlertLevel): number => ALERT_LEVELS.indexOf(l);

const EARTH_RADIUS_KM = 6371.0088;
const rad = (d: number) => (d * Math.PI) / 180;

/** Great-circle distance in km (haversine); the SQL in repo.ts computes the same formula. */
export function haversineKm(lat1: number, lng1: number, lat2: number, lng2: number): number {
  const dLat = rad(lat2 - lat1);
  const dLng = rad(lng2 - lng1);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}
export { EARTH_RADIUS_KM };

/** Whether the alert's attributes satisfy the filter. An alert lacking a filtered attribute fails it. */
export function matchesFilter(a: AlertSnapshot, f: AlertFilterSpec): boolean {
  if (f.minLevel && levelRank(a.level) < levelRank(f.minLevel)) return false;
  if (f.types && !f.types.includes(a.type)) return false;
  if (f.regions && (a.regionCode === null || !f.regions.includes(a.regionCode))) return false;
  if (f.minRisk !== undefined && (a.riskScore === null || a.riskScore < f.minRisk)) return false;
  if (f.near) {
    if (a.lat === null || a.lng === null) return false;
    if (haversineKm(f.near.lat, f.near.lng, a.lat, a.lng) > f.near.radiusKm) return false;
  }
  return true;
}

/**
 * Whether the viewer is a recipient: the audience names the whole organisation, their role or
 * their id; and once an alert has escalated, the organisation's admins are recipients too.
 */
export function isRecipient(a: Pick<AlertSnapshot, 'orgId' | 'audience' | 'escalatedAt'>, viewer: Viewer): boolean {
  if (a.orgId !== viewer.orgId) return false;
  if (a.escalatedAt && viewer.role === 'admin') return true;
  const au = a.audience;
  if (au.kind === 'org') return true;
  if (au.kind === 'roles') return au.roles.includes(viewer.role);
  return au.userIds.includes(viewer.userId);
}

export const isExpired = (a: Pick<AlertSnapshot, 'expiresAt'>, now = Date.now()): boolean =>
  a.expiresAt !== null && Date.parse(a.expiresAt) <= now;

/**
 * The group-level filter of an `alertRaised` subscription, evaluated when each event is delivered
 * (live and on replay): the viewer is a recipient, the filter matches, and the alert has not
 * expired at delivery time.
 */
export function alertMatcher(viewer: Viewer, filter: AlertFilterSpec) {
  return (ev: EventOf<AlertEventPayloads>): boolean => {
    const { alert } = ev.payload;
    return isRecipient(alert, viewer) && matchesFilter(alert, filter) && !isExpired(alert);
  };
}

/**
 * The escalation job contract, shared by the producer (service.ts, API process) and the handler
 * (jobs.ts, worker process only). Ids only: the alert is read from PostgreSQL when it runs.
 */
export const escalationJob = defineJob({
  queue: 'alerts',
  name: 'alert-escalation',
  schema: z.object({ alertId: z.string().uuid(), orgId: z.string().min(1).max(200) }),
  defaults: { attempts: 8, backoff: { type: 'exponential', delay: 1_000 } },
});

/**
 * Deterministic BullMQ job id of an alert's escalation. BullMQ 6 refuses custom ids with one
 * ':' (it reserves them for repeatable jobs), hence the dash.
 */
export const escalationJobId = (alertId: string) => `alert-escalation-${alertId}`;

/** The durable timer of an alert's escalation (a delayed job backed by `alerts.escalate_at`). */
export const escalationTimer = defineTimer({ job: escalationJob, id: ({ alertId }) => escalationJobId(alertId) });
/** Idempotency key of the admins' escalation notification: a re-run never notifies twice. */
export const escalationNotificationKey = (alertId: string) => `alert-escalation:${alertId}`;
