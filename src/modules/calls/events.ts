import { z } from 'zod';
import { defineJob } from '../../jobs/define.js';
import { defineTimer } from '../../jobs/timer.js';
import { type EphemeralOf, type EventOf, type StreamEventRoot, defineStream } from '../../realtime/stream.js';
import type { CallKind, CallMedia, CallReason, CallState, ParticipantState } from './tables.js';

/** A participant as events and queries carry it (name and role denormalised: rendering needs no lookup). */
export interface ParticipantSnapshot {
  user: { id: string; name: string; role: string };
  role: 'caller' | 'callee';
  state: ParticipantState;
  deviceId: string | null;
  joinedAt: string | null;
  leftAt: string | null;
  reason: CallReason | null;
}

/** A call as events and queries carry it. */
export interface CallSnapshot {
  id: string;
  orgId: string;
  kind: CallKind;
  media: CallMedia;
  state: CallState;
  reason: CallReason | null;
  initiatorId: string;
  conversationId: string | null;
  callbackOf: string | null;
  calleeBusy: boolean;
  participants: ParticipantSnapshot[];
  createdAt: string;
  ringDeadline: string | null;
  acceptedAt: string | null;
  connectedAt: string | null;
  endedAt: string | null;
}

/**
 * Durable events of a user's call stream. `IncomingCall` goes to callees once per call;
 * `CallStateChanged` to every participant on every transition, with the call as of that commit.
 */
export interface CallEventPayloads {
  IncomingCall: { call: CallSnapshot };
  CallStateChanged: {
    call: CallSnapshot;
    from: CallState | null;
    to: CallState;
    reason: CallReason | null;
    /** Who caused it; null for the system (timeouts, reconciler, liveness). */
    actorId: string | null;
    answeredBy: { userId: string; deviceId: string } | null;
  };
}

export const SIGNAL_KINDS = ['offer', 'answer', 'ice_candidate'] as const;
export type SignalKind = (typeof SIGNAL_KINDS)[number];

/** SDP and ICE: ephemeral (Redis only, never stored or replayed), addressed to one device. */
export interface CallEphemeralPayloads {
  CallSignal: {
    callId: string;
    fromUserId: string;
    fromUserName: string;
    fromUserRole: string;
    fromDeviceId: string;
    toUserId: string;
    toDeviceId: string;
    signalKind: SignalKind;
    payload: unknown;
    seq: number;
  };
}

/** The ledger stream of one user's calls (`calls:<userId>`): every call they are invited to, in commit order. */
export const callStream = defineStream<string, CallEventPayloads, CallEphemeralPayloads>({ name: (userId) => `calls:${userId}` });

export type CallEventRoot =
  /** A live call the subscriber takes part in, sent first to a subscription opened without a cursor. */
  | { kind: 'ActiveCall'; at: string; call: CallSnapshot }
  | (StreamEventRoot & { kind: 'IncomingCall'; call: CallSnapshot })
  | (StreamEventRoot & { kind: 'CallStateChanged' } & CallEventPayloads['CallStateChanged'])
  | ({ kind: 'CallSignal'; at: string } & CallEphemeralPayloads['CallSignal']);

export function toCallRoot(ev: EventOf<CallEventPayloads>, cursor: string): CallEventRoot {
  if (ev.type === 'IncomingCall') return { kind: 'IncomingCall', cursor, at: ev.at, call: ev.payload.call };
  return { kind: 'CallStateChanged', cursor, at: ev.at, ...ev.payload };
}

export function toSignalRoot(ev: EphemeralOf<CallEphemeralPayloads>): CallEventRoot {
  return { kind: 'CallSignal', at: ev.at, ...ev.payload };
}

const ids = z.object({ callId: z.string().uuid(), orgId: z.string().min(1).max(200) });

/** Fires when a call's ring deadline passes: whoever still rings missed it. Ids only. */
export const ringTimeoutJob = defineJob({
  queue: 'calls',
  name: 'call-ring-timeout',
  schema: ids,
  defaults: { attempts: 8, backoff: { type: 'exponential', delay: 200 } },
});
/** Fires when an accepted call's connect deadline passes without media: it failed to set up. */
export const connectTimeoutJob = defineJob({
  queue: 'calls',
  name: 'call-connect-timeout',
  schema: ids,
  defaults: { attempts: 8, backoff: { type: 'exponential', delay: 200 } },
});

/** The ring timeout of a call (BullMQ refuses custom ids with a single `:`, hence the dashes). */
export const ringTimer = defineTimer({ job: ringTimeoutJob, id: ({ callId }) => `call-ring-${callId}` });
export const connectTimer = defineTimer({ job: connectTimeoutJob, id: ({ callId }) => `call-connect-${callId}` });

/** Idempotency key of a callee's missed-call notification: one per call and user, whatever re-runs. */
export const missedCallKey = (callId: string, userId: string) => `missed-call:${callId}:${userId}`;

/** Milliseconds of ringing left at `now` (0 once over or not ringing). */
export function ringRemainingMs(call: Pick<CallSnapshot, 'state' | 'ringDeadline' | 'participants'>, now = Date.now()): number {
  if (!call.ringDeadline || !call.participants.some((p) => p.state === 'ringing')) return 0;
  return Math.max(0, Date.parse(call.ringDeadline) - now);
}
