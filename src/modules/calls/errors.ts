import { conflict } from '../../shared/errors.js';
import type { Refusal } from './machine.js';
import type { CallState } from './tables.js';

const MESSAGES: Record<Refusal | 'CALL_NOT_ACCEPTED' | 'IDEMPOTENCY_KEY_REUSED', string> = {
  NOT_PARTICIPANT: 'You are not a participant of this call.',
  ANSWERED_ELSEWHERE: 'The call was already answered on another device.',
  CALL_NOT_RINGING: 'The call is not ringing for you any more.',
  CALL_FULL: 'The call already has the most participants it can take.',
  NOT_JOINED: 'You have not joined this call.',
  CALL_ENDED: 'The call has ended.',
  CALL_NOT_ACCEPTED: 'Nobody has answered the call yet: send the offer once it is ACCEPTED.',
  IDEMPOTENCY_KEY_REUSED: 'clientCallId was already used for a different call.',
};

/** A CONFLICT naming why (`extensions.reason`) and the call's state (`extensions.state`, upper case). */
export const callConflict = (reason: keyof typeof MESSAGES, state: CallState) =>
  conflict(MESSAGES[reason], { reason, state: state.toUpperCase() });
