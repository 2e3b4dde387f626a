// The call state machine on its own: a pure function, no database.
import { describe, expect, it } from 'vitest';
import { type Action, type MachineCall, type MachineParticipant, transition } from '../../src/modules/calls/machine.js';

const caller = (state: MachineParticipant['state'] = 'joined'): MachineParticipant => ({
  userId: 'a',
  role: 'caller',
  state,
  deviceId: 'a1',
});
const callee = (id: string, state: MachineParticipant['state'] = 'ringing', deviceId: string | null = null): MachineParticipant => ({
  userId: id,
  role: 'callee',
  state,
  deviceId,
});
const direct = (state: MachineCall['state'] = 'ringing'): MachineCall => ({ state, kind: 'direct', initiatorId: 'a' });
const group = (state: MachineCall['state'] = 'ringing'): MachineCall => ({ state, kind: 'group', initiatorId: 'a' });
const accept = (userId: string, deviceId = `${userId}1`, meshMax = 4, at = 0): Action => ({
  type: 'accept',
  userId,
  deviceId,
  meshMax,
  at,
});

const ok = (o: ReturnType<typeof transition>) => {
  if (!o.ok) throw new Error(`refused: ${o.refusal}`);
  return o;
};

describe('1:1 calls', () => {
  it('accept: RINGING → ACCEPTED, records the answering device, no missed call', () => {
    const o = ok(transition(direct(), [caller(), callee('b')], accept('b', 'b-phone')));
    expect(o).toMatchObject({ noop: false, state: 'accepted', missed: [], answeredBy: { userId: 'b', deviceId: 'b-phone' } });
    expect(o.participants).toEqual([{ userId: 'b', state: 'joined', reason: null, deviceId: 'b-phone' }]);
  });

  it('accept again on the same device is a no-op; on another device it is ANSWERED_ELSEWHERE', () => {
    const parts = [caller(), callee('b', 'joined', 'b-phone')];
    expect(ok(transition(direct('accepted'), parts, accept('b', 'b-phone'))).noop).toBe(true);
    expect(transition(direct('accepted'), parts, accept('b', 'b-laptop'))).toEqual({ ok: false, refusal: 'ANSWERED_ELSEWHERE' });
  });

  it('accept after the ring ended is CALL_NOT_RINGING; strangers are NOT_PARTICIPANT', () => {
    expect(transition(direct('missed'), [caller('left'), callee('b', 'missed')], accept('b'))).toEqual({
      ok: false,
      refusal: 'CALL_NOT_RINGING',
    });
    expect(transition(direct(), [caller(), callee('b')], accept('z'))).toEqual({ ok: false, refusal: 'NOT_PARTICIPANT' });
  });

  it('accept at or after the ring deadline is CALL_NOT_RINGING, even before the timer has run', () => {
    const ringing = { ...direct(), ringDeadline: new Date(10_000) };
    expect(ok(transition(ringing, [caller(), callee('b')], accept('b', 'b1', 4, 9_999))).state).toBe('accepted');
    expect(transition(ringing, [caller(), callee('b')], accept('b', 'b1', 4, 10_000))).toEqual({ ok: false, refusal: 'CALL_NOT_RINGING' });
    // a repeat on the answering device stays a no-op after the deadline
    expect(
      ok(transition({ ...ringing, state: 'accepted' }, [caller(), callee('b', 'joined', 'b1')], accept('b', 'b1', 4, 20_000))).noop,
    ).toBe(true);
  });

  it('reject: RINGING → REJECTED (DECLINED) with no missed call; the caller cannot reject', () => {
    const o = ok(transition(direct(), [caller(), callee('b')], { type: 'reject', userId: 'b' }));
    expect(o).toMatchObject({ state: 'rejected', reason: 'declined', missed: [] });
    expect(transition(direct(), [caller(), callee('b')], { type: 'reject', userId: 'a' })).toEqual({
      ok: false,
      refusal: 'CALL_NOT_RINGING',
    });
  });

  it('caller cancel while ringing: MISSED (CANCELLED), the callee missed it', () => {
    const o = ok(transition(direct(), [caller(), callee('b')], { type: 'end', userId: 'a' }));
    expect(o).toMatchObject({ state: 'missed', reason: 'cancelled', missed: ['b'] });
  });

  it('a ringing callee hanging up declines', () => {
    expect(ok(transition(direct(), [caller(), callee('b')], { type: 'end', userId: 'b' }))).toMatchObject({
      state: 'rejected',
      missed: [],
    });
  });

  it('ring timeout: MISSED (TIMEOUT) once; a second run is a no-op', () => {
    const o = ok(transition(direct(), [caller(), callee('b')], { type: 'ringTimeout' }));
    expect(o).toMatchObject({ state: 'missed', reason: 'timeout', missed: ['b'] });
    expect(ok(transition(direct('missed'), [caller('left'), callee('b', 'missed')], { type: 'ringTimeout' })).noop).toBe(true);
  });

  it('ring timeout after an accept does nothing (never both ACCEPTED and missed)', () => {
    const o = ok(transition(direct('accepted'), [caller(), callee('b', 'joined', 'b1')], { type: 'ringTimeout' }));
    expect(o).toMatchObject({ noop: true, missed: [] });
  });

  it('connected: ACCEPTED → IN_PROGRESS only from ACCEPTED', () => {
    const parts = [caller(), callee('b', 'joined', 'b1')];
    expect(ok(transition(direct('accepted'), parts, { type: 'connected' }))).toMatchObject({ state: 'in_progress', noop: false });
    expect(ok(transition(direct('in_progress'), parts, { type: 'connected' })).noop).toBe(true);
  });

  it('hangup of a connected call: ENDED (HANGUP), both leave; ICE_FAILED makes it FAILED', () => {
    const parts = [caller(), callee('b', 'joined', 'b1')];
    const o = ok(transition(direct('in_progress'), parts, { type: 'end', userId: 'b' }));
    expect(o).toMatchObject({ state: 'ended', reason: 'hangup', missed: [] });
    expect(o.participants.map((p) => [p.userId, p.state]).sort()).toEqual([
      ['a', 'left'],
      ['b', 'left'],
    ]);
    expect(ok(transition(direct('in_progress'), parts, { type: 'end', userId: 'a', reason: 'ice_failed' })).state).toBe('failed');
  });

  it('ending an ended call is a no-op (idempotent)', () => {
    expect(ok(transition(direct('ended'), [caller('left'), callee('b', 'left')], { type: 'end', userId: 'a' })).noop).toBe(true);
  });

  it('connect timeout: ACCEPTED → FAILED (SETUP_TIMEOUT); not once IN_PROGRESS', () => {
    const parts = [caller(), callee('b', 'joined', 'b1')];
    expect(ok(transition(direct('accepted'), parts, { type: 'connectTimeout' }))).toMatchObject({
      state: 'failed',
      reason: 'setup_timeout',
    });
    expect(ok(transition(direct('in_progress'), parts, { type: 'connectTimeout' })).noop).toBe(true);
  });

  it('liveness and max duration end live calls', () => {
    const parts = [caller(), callee('b', 'joined', 'b1')];
    expect(ok(transition(direct('in_progress'), parts, { type: 'lost', userIds: ['b'] }))).toMatchObject({
      state: 'ended',
      reason: 'connection_lost',
    });
    expect(ok(transition(direct('in_progress'), parts, { type: 'maxDuration' }))).toMatchObject({ state: 'ended', reason: 'max_duration' });
    expect(ok(transition(direct(), [caller(), callee('b')], { type: 'lost', userIds: ['a'] })).noop).toBe(true);
  });

  it('membership revoked while ringing: the call ends, nobody gets a missed call', () => {
    const o = ok(transition(direct(), [caller(), callee('b')], { type: 'revoke', userId: 'b' }));
    expect(o).toMatchObject({ state: 'missed', reason: 'membership_revoked', missed: [] });
  });
});

describe('group calls', () => {
  const parts = () => [caller(), callee('b'), callee('c'), callee('d')];

  it('the first answer makes the call ACCEPTED; the others keep ringing', () => {
    const o = ok(transition(group(), parts(), accept('b')));
    expect(o.state).toBe('accepted');
    expect(o.participants).toHaveLength(1);
  });

  it('one decline leaves it ringing; all declines make it REJECTED', () => {
    expect(ok(transition(group(), parts(), { type: 'reject', userId: 'b' })).state).toBe('ringing');
    const declined = [caller(), callee('b', 'declined'), callee('c', 'declined'), callee('d')];
    expect(ok(transition(group(), declined, { type: 'reject', userId: 'd' }))).toMatchObject({ state: 'rejected', missed: [] });
  });

  it('ring timeout after someone joined: only those still ringing missed it; the call goes on', () => {
    const p = [caller(), callee('b', 'joined', 'b1'), callee('c'), callee('d', 'declined')];
    const o = ok(transition(group('in_progress'), p, { type: 'ringTimeout' }));
    expect(o).toMatchObject({ state: 'in_progress', missed: ['c'] });
  });

  it('the mesh cap refuses one more joiner (CALL_FULL)', () => {
    const p = [caller(), callee('b', 'joined', 'b1'), callee('c')];
    expect(transition(group('accepted'), p, accept('c', 'c1', 2))).toEqual({ ok: false, refusal: 'CALL_FULL' });
  });

  it('survives one leaving while two stay; ends when one is left and nobody rings', () => {
    const p = [caller(), callee('b', 'joined', 'b1'), callee('c', 'joined', 'c1')];
    expect(ok(transition(group('in_progress'), p, { type: 'end', userId: 'a' })).state).toBe('in_progress');
    const two = [caller('left'), callee('b', 'joined', 'b1'), callee('c', 'joined', 'c1')];
    expect(ok(transition(group('in_progress'), two, { type: 'end', userId: 'b' }))).toMatchObject({ state: 'ended', missed: [] });
  });

  it('the caller cancelling a ringing group call: every ringing callee missed it', () => {
    const o = ok(transition(group(), [caller(), callee('b'), callee('c', 'declined'), callee('d')], { type: 'end', userId: 'a' }));
    expect(o).toMatchObject({ state: 'missed', reason: 'cancelled' });
    expect(o.missed.sort()).toEqual(['b', 'd']);
  });
});
