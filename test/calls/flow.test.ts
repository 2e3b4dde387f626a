import { afterEach, describe, expect } from 'vitest';
import { disposeAll, gql, until } from '../harness/clients.js';
import { withTwoInstances } from '../harness/fixtures.js';
import {
  ACCEPT,
  END,
  SIGNAL,
  conversation,
  device,
  end,
  events,
  getCall,
  kinds,
  missedCalls,
  ofType,
  ok,
  overSocket,
  shouldRing,
  signal,
  start,
} from './ops.js';

const it = withTwoInstances();
afterEach(disposeAll);

const presence = async (app: Parameters<typeof gql>[0], by: { token: string }, id: string) =>
  (await ok(gql(app, by.token, `query($u: [ID!]!){ presence(userIds: $u) { status } }`, { u: [id] }))).presence[0].status as string;

describe('a video call across two instances and two devices', () => {
  it('rings both devices, is answered on one, relays SDP/ICE only to it, shows IN_CALL, and ends for both with a duration', async ({
    a,
    b,
    org,
  }) => {
    const { patient, provider } = org;
    const conv = await conversation(a, provider, [patient], 'DIRECT');
    const phone = await device(a, patient, 'patient-phone');
    const laptop = await device(b, patient, 'patient-laptop');
    const drPhone = await device(b, provider, 'dr-phone');
    const before = await presence(a, provider, patient.id);

    // the provider starts a video call from the conversation, on instance B
    const call = await start(b, provider, { conversationId: conv, deviceId: 'dr-phone' });
    expect(call).toMatchObject({ state: 'RINGING', kind: 'DIRECT', media: 'VIDEO' });
    await phone.feed.waitFor(1);
    await laptop.feed.waitFor(1);
    for (const d of [phone, laptop]) {
      const [incoming] = events(d.feed);
      expect(incoming.__typename).toBe('IncomingCall');
      expect(shouldRing(incoming)).toBe(true);
      expect(incoming.call.ringRemainingMs).toBeLessThanOrEqual(30_000);
      expect(incoming.call.initiator.id).toBe(provider.id);
    }

    // the patient answers on the phone (over its socket, instance A): the laptop learns at once
    const accepted = await ok(overSocket(phone.client, ACCEPT, { id: call.id, d: 'patient-phone' }));
    expect(accepted.acceptCall.state).toBe('ACCEPTED');
    await laptop.feed.waitFor(2);
    const change = events(laptop.feed)[1];
    expect(change).toMatchObject({
      __typename: 'CallStateChanged',
      from: 'RINGING',
      to: 'ACCEPTED',
      answeredBy: { userId: patient.id, deviceId: 'patient-phone' },
    });
    // ...and cannot answer too
    const late = await overSocket(laptop.client, ACCEPT, { id: call.id, d: 'patient-laptop' });
    expect(late.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'ANSWERED_ELSEWHERE', state: 'ACCEPTED' });
    await until(async () => (await presence(b, provider, patient.id)) === 'IN_CALL', 5_000, 'patient IN_CALL');

    // offer → answering device only; answer back → IN_PROGRESS; ICE both ways, numbered per sender
    const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };
    expect((await ok(signal(a, provider, { callId: call.id, toUserId: patient.id, kind: 'OFFER', payload: offer }))).sendCallSignal).toBe(
      true,
    );
    for (let i = 0; i < 3; i++)
      await ok(
        signal(b, provider, {
          callId: call.id,
          toUserId: patient.id,
          kind: 'ICE_CANDIDATE',
          payload: { candidate: `candidate:${i} 1 udp 1 10.0.0.${i} 5000 typ host`, sdpMid: '0' },
        }),
      );
    await ok(
      overSocket(phone.client, SIGNAL, {
        i: { callId: call.id, toUserId: provider.id, kind: 'ANSWER', payload: { type: 'answer', sdp: 'v=0\r\n' } },
      }),
    );
    await until(() => ofType(phone.feed, 'CallSignal').length === 4 && ofType(drPhone.feed, 'CallSignal').length === 1, 5_000, 'signals');
    const got = ofType(phone.feed, 'CallSignal');
    expect(got.map((s) => s.kind)).toEqual(['OFFER', 'ICE_CANDIDATE', 'ICE_CANDIDATE', 'ICE_CANDIDATE']);
    expect(got.map((s) => s.seq)).toEqual([1, 2, 3, 4]);
    expect(got[0]).toMatchObject({ sender: { id: provider.id }, fromDeviceId: 'dr-phone', toDeviceId: 'patient-phone', payload: offer });
    expect(ofType(drPhone.feed, 'CallSignal')[0]).toMatchObject({ kind: 'ANSWER', fromDeviceId: 'patient-phone', seq: 1 });
    await until(async () => (await getCall(a, provider, call.id))?.state === 'IN_PROGRESS', 5_000, 'IN_PROGRESS');
    expect(ofType(laptop.feed, 'CallSignal')).toEqual([]);

    // the patient hangs up: both sides see ENDED with the duration; presence returns
    const ended = await ok(overSocket(phone.client, END, { id: call.id }));
    expect(ended.endCall).toMatchObject({ state: 'ENDED', reason: 'HANGUP' });
    expect(ended.endCall.durationSeconds).toBeGreaterThanOrEqual(0);
    for (const d of [drPhone, laptop, phone])
      await until(() => ofType(d.feed, 'CallStateChanged').some((e) => e.to === 'ENDED'), 5_000, 'ENDED everywhere');
    const last = ofType(drPhone.feed, 'CallStateChanged').at(-1);
    expect(last).toMatchObject({ from: 'IN_PROGRESS', to: 'ENDED', reason: 'HANGUP', actor: { id: patient.id } });
    expect(typeof last.call.durationSeconds).toBe('number');
    await until(async () => (await presence(b, provider, patient.id)) === before, 5_000, 'presence restored');
    // answered calls are never missed calls
    expect(await missedCalls(a, patient, call.id)).toEqual([]);
    // signals are never replayed: a resubscribe from the start sees only durable events
    const again = await device(a, patient, 'patient-phone', events(phone.feed)[0].cursor);
    await until(() => ofType(again.feed, 'CallStateChanged').some((e) => e.to === 'ENDED'), 5_000, 'replay');
    expect(kinds(again.feed).every((k) => k === 'CallStateChanged')).toBe(true);
    // ending again changes nothing
    expect((await ok(end(b, provider, call.id))).endCall.state).toBe('ENDED');
    // operators see it in the metrics of the instances that did the work (no user labels)
    const metrics = async (app: typeof a) => (await fetch(new URL('/metrics', app.url))).text();
    expect(await metrics(b)).toMatch(/wardline_calls_started_total\{kind="direct",media="video"\} [1-9]/);
    expect(await metrics(a)).toMatch(/wardline_call_signals_total\{kind="offer",result="delivered"\} 1/);
    expect(await metrics(a)).toMatch(
      /wardline_calls_active\{state="ringing"\}|wardline_calls_active \d|# TYPE wardline_calls_active gauge/,
    );
    expect(await metrics(a)).not.toContain(patient.id);
  });
});
