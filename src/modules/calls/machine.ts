import type { CallReason, CallState, ParticipantState } from './tables.js';

/**
 * The call state machine as a pure function: given a call, its participants and an action, what
 * changes (or why the action is refused). No I/O and no clock reads: the service loads the rows
 * under a lock, applies {@link transition}, and writes the result and its events in the same
 * transaction. Unit-tested on its own (test/calls/machine.test.ts).
 *
 * Call states: RINGING → ACCEPTED → IN_PROGRESS → ENDED, or RINGING → REJECTED | MISSED, or
 * ACCEPTED → FAILED. Terminal states absorb. Participants: RINGING → JOINED | DECLINED | MISSED,
 * JOINED → LEFT; the caller starts JOINED.
 */
export interface MachineCall {
  state: CallState;
  kind: 'direct' | 'group';
  initiatorId: string;
  /** Until when callees may answer (null once nobody rings). */
  ringDeadline?: Date | null;
}

export interface MachineParticipant {
  userId: string;
  role: 'caller' | 'callee';
  state: ParticipantState;
  deviceId: string | null;
}

export type Action =
  /** A callee answers on `deviceId` at `at` (ms) (T2); `glare`: the callee's own crossing call merged into this one (T1g). */
  | { type: 'accept'; userId: string; deviceId: string; meshMax: number; at: number; glare?: boolean; presenceDevice?: string }
  /** A callee declines (T3). */
  | { type: 'reject'; userId: string }
  /** A participant hangs up: the caller cancels a ringing call (T4) or anyone leaves a joined call (T8). */
  | { type: 'end'; userId: string; reason?: 'hangup' | 'ice_failed' | 'media_failed' }
  /** The ring deadline passed: whoever still rings missed it (T5). */
  | { type: 'ringTimeout' }
  /** The first SDP answer was relayed between joined participants (T6). */
  | { type: 'connected' }
  /** ACCEPTED without media for the connect timeout (T7). */
  | { type: 'connectTimeout' }
  /** Joined participants whose devices were gone for the liveness grace (T9). */
  | { type: 'lost'; userIds: readonly string[] }
  /** The call reached its maximum duration (T9). */
  | { type: 'maxDuration' }
  /** A participant lost access to the conversation (T10). */
  | { type: 'revoke'; userId: string };

export type Refusal = 'NOT_PARTICIPANT' | 'ANSWERED_ELSEWHERE' | 'CALL_NOT_RINGING' | 'CALL_FULL' | 'NOT_JOINED' | 'CALL_ENDED';

export interface ParticipantChange {
  userId: string;
  state: ParticipantState;
  reason: CallReason | null;
  deviceId?: string;
  presenceDevice?: string;
}

export type Outcome =
  | { ok: false; refusal: Refusal }
  | {
      ok: true;
      /** Nothing changed (a repeat): no write, no event. */
      noop: boolean;
      state: CallState;
      /** The call-level reason after the change (null: unchanged). */
      reason: CallReason | null;
      participants: ParticipantChange[];
      /** Callees that missed the call: each gets a MISSED_CALL notification in the same transaction. */
      missed: string[];
      /** Set when a callee answered: who and on which device. */
      answeredBy?: { userId: string; deviceId: string };
    };

export const TERMINAL: ReadonlySet<CallState> = new Set(['ended', 'rejected', 'missed', 'failed']);
export const isTerminal = (s: CallState) => TERMINAL.has(s);

const noop = (call: MachineCall): Outcome => ({ ok: true, noop: true, state: call.state, reason: null, participants: [], missed: [] });
const refuse = (refusal: Refusal): Outcome => ({ ok: false, refusal });

/** Applies `action` to the call. Pure: the same inputs always give the same outcome. */
export function transition(call: MachineCall, parts: readonly MachineParticipant[], action: Action): Outcome {
  const byUser = new Map(parts.map((p) => [p.userId, p]));
  const me = 'userId' in action ? byUser.get(action.userId) : undefined;
  if ('userId' in action && !me) return refuse('NOT_PARTICIPANT');
  const terminal = isTerminal(call.state);
  const changes = new Map<string, ParticipantChange>();
  const stateOf = (p: MachineParticipant) => changes.get(p.userId)?.state ?? p.state;
  const set = (p: MachineParticipant, state: ParticipantState, reason: CallReason | null, deviceId?: string, presenceDevice?: string) =>
    changes.set(p.userId, {
      userId: p.userId,
      state,
      reason,
      ...(deviceId ? { deviceId } : {}),
      ...(presenceDevice ? { presenceDevice } : {}),
    });
  let answeredBy: { userId: string; deviceId: string } | undefined;
  let callReason: CallReason | null = null;

  switch (action.type) {
    case 'accept': {
      const p = me as MachineParticipant;
      if (p.state === 'joined') return p.deviceId === action.deviceId ? noop(call) : refuse('ANSWERED_ELSEWHERE');
      if (terminal || p.state !== 'ringing') return refuse('CALL_NOT_RINGING');
      // past the ring deadline nobody can answer any more (the timer marks it MISSED, even late)
      if (call.ringDeadline && call.ringDeadline.getTime() <= action.at) return refuse('CALL_NOT_RINGING');
      const joined = parts.filter((x) => x.state === 'joined').length;
      if (joined >= action.meshMax) return refuse('CALL_FULL');
      set(p, 'joined', null, action.deviceId, action.presenceDevice);
      answeredBy = { userId: p.userId, deviceId: action.deviceId };
      if (action.glare) callReason = 'glare_merged';
      break;
    }
    case 'reject': {
      const p = me as MachineParticipant;
      if (p.role === 'caller') return refuse('CALL_NOT_RINGING');
      if (p.state === 'declined') return noop(call);
      if (terminal || p.state !== 'ringing') return refuse('CALL_NOT_RINGING');
      set(p, 'declined', 'declined');
      callReason = 'declined';
      break;
    }
    case 'end': {
      const p = me as MachineParticipant;
      if (terminal) return noop(call); // hanging up an ended call is a repeat (T11)
      if (p.state === 'ringing') {
        // a ringing callee that "hangs up" declines
        set(p, 'declined', 'declined');
        callReason = 'declined';
        break;
      }
      if (p.state !== 'joined') return noop(call);
      if (call.state === 'ringing' && p.role === 'caller') {
        // the caller cancels: every callee still ringing missed the call
        set(p, 'left', 'cancelled');
        for (const x of parts) if (x.state === 'ringing') set(x, 'missed', 'cancelled');
        callReason = 'cancelled';
        break;
      }
      const reason = action.reason ?? 'hangup';
      set(p, 'left', reason);
      callReason = reason;
      break;
    }
    case 'ringTimeout': {
      if (terminal) return noop(call);
      const ringing = parts.filter((x) => x.state === 'ringing');
      if (ringing.length === 0) return noop(call);
      for (const x of ringing) set(x, 'missed', 'timeout');
      callReason = 'timeout';
      break;
    }
    case 'connected':
      if (call.state !== 'accepted') return noop(call);
      return { ok: true, noop: false, state: 'in_progress', reason: null, participants: [], missed: [] };
    case 'connectTimeout':
      if (call.state !== 'accepted') return noop(call);
      for (const x of parts) {
        if (x.state === 'joined') set(x, 'left', 'setup_timeout');
        if (x.state === 'ringing') set(x, 'missed', 'setup_timeout');
      }
      return finish(call, parts, changes, 'failed', 'setup_timeout');
    case 'lost': {
      if (terminal || call.state === 'ringing') return noop(call);
      for (const id of action.userIds) {
        const x = byUser.get(id);
        if (x?.state === 'joined') set(x, 'left', 'connection_lost');
      }
      if (changes.size === 0) return noop(call);
      callReason = 'connection_lost';
      break;
    }
    case 'maxDuration':
      if (terminal) return noop(call);
      for (const x of parts) {
        if (x.state === 'joined') set(x, 'left', 'max_duration');
        if (x.state === 'ringing') set(x, 'missed', 'max_duration');
      }
      return finish(call, parts, changes, call.state === 'ringing' ? 'missed' : 'ended', 'max_duration');
    case 'revoke': {
      const p = me as MachineParticipant;
      if (terminal) return noop(call);
      if (p.state === 'ringing') set(p, 'missed', 'membership_revoked');
      else if (p.state === 'joined') set(p, 'left', 'membership_revoked');
      else return noop(call);
      if (p.role === 'caller' && call.state === 'ringing') {
        for (const x of parts) if (x.state === 'ringing') set(x, 'missed', 'membership_revoked');
      }
      callReason = 'membership_revoked';
      break;
    }
  }

  // the call follows its participants
  const after = parts.map((p) => ({ ...p, state: stateOf(p) }));
  const joined = after.filter((p) => p.state === 'joined').length;
  const ringing = after.filter((p) => p.state === 'ringing').length;
  let state: CallState = call.state;
  if (call.state === 'ringing') {
    const calleeJoined = after.some((p) => p.role === 'callee' && p.state === 'joined');
    if (calleeJoined) state = 'accepted';
    else if (ringing === 0 || joined === 0) {
      // nobody left to answer, or nobody left to answer to
      const missedAny = after.some((p) => p.role === 'callee' && p.state === 'missed');
      state = missedAny ? 'missed' : 'rejected';
      if (joined === 0 && ringing > 0) for (const x of after) if (x.state === 'ringing') set(x, 'missed', callReason);
      for (const x of after) if (x.state === 'joined') set(x, 'left', callReason);
    }
  } else if (!terminal && joined < 2 && ringing === 0) {
    state = 'ended';
    for (const x of after) if (x.state === 'joined') set(x, 'left', callReason);
  } else if (!terminal && joined === 0) {
    state = 'ended';
    for (const x of after) if (x.state === 'ringing') set(x, 'missed', callReason);
  }
  if (action.type === 'end' && state === 'ended' && (action.reason === 'ice_failed' || action.reason === 'media_failed')) state = 'failed';
  return finish(call, parts, changes, state, callReason, answeredBy);
}

function finish(
  call: MachineCall,
  parts: readonly MachineParticipant[],
  changes: Map<string, ParticipantChange>,
  state: CallState,
  reason: CallReason | null,
  answeredBy?: { userId: string; deviceId: string },
): Outcome {
  const was = new Map(parts.map((p) => [p.userId, p.state]));
  // a callee misses the call only by going from RINGING to MISSED here (never answered elsewhere,
  // declined or merged); losing access to the conversation is not a missed call
  const missed = [...changes.values()]
    .filter((c) => c.state === 'missed' && was.get(c.userId) === 'ringing' && c.reason !== 'membership_revoked')
    .map((c) => c.userId);
  return {
    ok: true,
    noop: changes.size === 0 && state === call.state,
    state,
    reason: reason ?? null,
    participants: [...changes.values()],
    missed,
    ...(answeredBy ? { answeredBy } : {}),
  };
}
