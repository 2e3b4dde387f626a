import { afterEach, describe, expect } from 'vitest';
import { disposeAll, gql, until } from '../harness/clients.js';
import { withTwoInstances } from '../harness/fixtures.js';
import { type SeededOrg, seedOrg } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import {
  START,
  accept,
  conversation,
  device,
  end,
  events,
  getCall,
  key,
  missedCalls,
  ofType,
  ok,
  reject,
  shouldRing,
  signal,
  start,
} from './ops.js';

const it = withTwoInstances({ CALL_MESH_MAX: '3', CALL_START_RATE_PER_MIN: '10', CALL_SIGNAL_RATE: '3' });
afterEach(disposeAll);

const code = (r: { errors?: Array<{ extensions?: Record<string, unknown> }> }) => r.errors?.[0]?.extensions;
const pair = async (app: TestApp, org: SeededOrg) => {
  const caller = await org.user('provider');
  const callee = await org.user('patient');
  const conv = await conversation(app, caller, [callee], 'DIRECT');
  return { caller, callee, conv };
};

describe('races are decided by the first commit', () => {
  it('glare across instances: A→B on one instance and B→A on the other merge into one ACCEPTED call, with no missed call', async ({
    a,
    b,
    org,
  }) => {
    for (let round = 0; round < 5; round++) {
      const { caller: x, callee: y } = await pair(a, org);
      const [rx, ry] = await Promise.all([
        ok(gql(a, x.token, START, { i: { calleeIds: [y.id], media: 'AUDIO', clientCallId: key(), deviceId: 'x1' } })),
        ok(gql(b, y.token, START, { i: { calleeIds: [x.id], media: 'AUDIO', clientCallId: key(), deviceId: 'y1' } })),
      ]);
      expect(rx.startCall.id).toBe(ry.startCall.id);
      const call = await getCall(a, x, rx.startCall.id);
      expect(call).toMatchObject({ state: 'ACCEPTED', reason: 'GLARE_MERGED' });
      expect(await missedCalls(a, x, call!.id)).toEqual([]);
      expect(await missedCalls(a, y, call!.id)).toEqual([]);
      const live = await ok(gql(a, x.token, `{ activeCalls { id } }`));
      expect(live.activeCalls).toEqual([{ id: call!.id }]);
    }
  });

  it('two devices of the callee accept at once on different instances: exactly one wins, the other gets ANSWERED_ELSEWHERE', async ({
    a,
    b,
    org,
  }) => {
    for (let round = 0; round < 5; round++) {
      const { caller, callee, conv } = await pair(a, org);
      const laptop = await device(b, callee, 'laptop');
      const call = await start(a, caller, { conversationId: conv });
      const [r1, r2] = await Promise.all([accept(a, callee, call.id, 'phone'), accept(b, callee, call.id, 'laptop')]);
      const winners = [r1, r2].filter((r) => !r.errors);
      expect(winners).toHaveLength(1);
      const loser = [r1, r2].find((r) => r.errors)!;
      expect(code(loser)).toMatchObject({ code: 'CONFLICT', reason: 'ANSWERED_ELSEWHERE' });
      const winner = winners[0]!.data.acceptCall.participants.find((p: { user: { id: string } }) => p.user.id === callee.id).deviceId;
      // the laptop's stream says who answered: if not the laptop, it stops ringing
      await until(() => ofType(laptop.feed, 'CallStateChanged').length >= 1, 5_000, 'answeredBy');
      expect(ofType(laptop.feed, 'CallStateChanged')[0].answeredBy).toEqual({ userId: callee.id, deviceId: winner });
      // retrying the winning accept (a lost response) returns the call, no second event
      expect((await accept(a, callee, call.id, winner)).errors).toBeUndefined();
      expect(ofType(laptop.feed, 'CallStateChanged')).toHaveLength(1);
      await end(a, caller, call.id);
    }
  });

  it('reject on one device racing accept on another: one outcome, the other gets CONFLICT', async ({ a, b, org }) => {
    for (let round = 0; round < 5; round++) {
      const { caller, callee, conv } = await pair(a, org);
      const call = await start(a, caller, { conversationId: conv });
      const [acc, rej] = await Promise.all([accept(a, callee, call.id, 'phone'), reject(b, callee, call.id)]);
      expect([acc, rej].filter((r) => r.errors)).toHaveLength(1);
      const final = await getCall(a, caller, call.id);
      expect(final!.state).toBe(acc.errors ? 'REJECTED' : 'ACCEPTED');
      expect(code((acc.errors ? acc : rej) as never)).toMatchObject({ code: 'CONFLICT' });
      if (!acc.errors) await end(a, caller, call.id);
    }
  });

  it('caller cancel racing accept: either MISSED (CANCELLED) with one missed call, or the accept won and the cancel hung up', async ({
    a,
    b,
    org,
  }) => {
    for (let round = 0; round < 5; round++) {
      const { caller, callee, conv } = await pair(a, org);
      const call = await start(a, caller, { conversationId: conv });
      const [cancel, acc] = await Promise.all([end(a, caller, call.id), accept(b, callee, call.id, 'phone')]);
      expect(cancel.errors).toBeUndefined();
      const final = (await getCall(a, caller, call.id))!;
      const missed = await missedCalls(a, callee, call.id);
      if (acc.errors) {
        expect(final).toMatchObject({ state: 'MISSED', reason: 'CANCELLED' });
        expect(missed).toHaveLength(1);
      } else {
        expect(final).toMatchObject({ state: 'ENDED', reason: 'HANGUP' });
        expect(missed).toEqual([]);
      }
    }
  });
});

describe('idempotency and validation', () => {
  it('the same clientCallId returns the same call; a different body with it is a CONFLICT', async ({ a, org }) => {
    const { caller, callee, conv } = await pair(a, org);
    const i = { conversationId: conv, media: 'VIDEO', clientCallId: key() };
    const first = await ok(gql(a, caller.token, START, { i }));
    const again = await ok(gql(a, caller.token, START, { i }));
    expect(again.startCall.id).toBe(first.startCall.id);
    const other = await gql(a, caller.token, START, { i: { ...i, media: 'AUDIO' } });
    expect(code(other)).toMatchObject({ code: 'CONFLICT', reason: 'IDEMPOTENCY_KEY_REUSED' });
    // calling the same person again while it rings returns the ringing call
    const dup = await start(a, caller, { calleeIds: [callee.id] });
    expect(dup.id).toBe(first.startCall.id);
    await end(a, caller, first.startCall.id);
  });

  it('refuses self-calls, strangers, other orgs and service accounts, writing nothing', async ({ a, org }) => {
    const { caller, callee, conv } = await pair(a, org);
    const stranger = await org.user('patient');
    const other = await seedOrg(a);
    const bad = async (by: typeof caller, i: Record<string, unknown>) =>
      code(await gql(a, by.token, START, { i: { media: 'AUDIO', clientCallId: key(), ...i } }));
    expect(await bad(caller, { calleeIds: [caller.id] })).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await bad(caller, { calleeIds: [stranger.id] })).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await bad(caller, { calleeIds: [other.patient.id] })).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await bad(stranger, { conversationId: conv })).toMatchObject({ code: 'NOT_FOUND' });
    expect(await bad(other.provider, { conversationId: conv })).toMatchObject({ code: 'NOT_FOUND' });
    expect(await bad(org.service, { calleeIds: [callee.id] })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await bad(caller, {})).toMatchObject({ code: 'BAD_USER_INPUT' });
    const history = await ok(gql(a, callee.token, `{ callHistory { edges { node { id } } } }`));
    expect(history.callHistory.edges).toEqual([]);
  });

  it('a call of another org, or one you are not in, is NOT_FOUND for every mutation and null for call(id)', async ({ a, org }) => {
    const { caller, conv } = await pair(a, org);
    const call = await start(a, caller, { conversationId: conv });
    const other = await seedOrg(a);
    const stranger = await org.user('patient');
    for (const who of [other.patient, stranger]) {
      expect(await getCall(a, who, call.id)).toBeNull();
      for (const r of [await accept(a, who, call.id), await reject(a, who, call.id), await end(a, who, call.id)])
        expect(code(r)).toMatchObject({ code: 'NOT_FOUND' });
    }
    await end(a, caller, call.id);
  });
});

describe('signals', () => {
  it('go only to joined participants on their answering device: never before accept, after the end, to strangers or to other devices', async ({
    a,
    b,
    org,
  }) => {
    const { caller, callee, conv } = await pair(a, org);
    const stranger = await org.user('patient');
    const other = await seedOrg(a);
    const phone = await device(a, callee, 'phone');
    const laptop = await device(b, callee, 'laptop');
    const strangerDevice = await device(b, stranger, 's1');
    const call = await start(a, caller, { conversationId: conv, deviceId: 'c1' });
    const offer = { type: 'offer', sdp: 'v=0' };
    // before the accept: CALL_NOT_ACCEPTED, nothing relayed
    expect(code(await signal(a, caller, { callId: call.id, toUserId: callee.id, kind: 'OFFER', payload: offer }))).toMatchObject({
      code: 'CONFLICT',
      reason: 'CALL_NOT_ACCEPTED',
    });
    await ok(accept(a, callee, call.id, 'phone'));
    // to a stranger, to another org's user, to the non-answering device: FORBIDDEN
    expect(code(await signal(a, caller, { callId: call.id, toUserId: stranger.id, kind: 'OFFER', payload: offer }))).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(code(await signal(a, caller, { callId: call.id, toUserId: other.patient.id, kind: 'OFFER', payload: offer }))).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(
      code(await signal(a, caller, { callId: call.id, toUserId: callee.id, toDeviceId: 'laptop', kind: 'OFFER', payload: offer })),
    ).toMatchObject({ code: 'FORBIDDEN' });
    // a stranger or another org cannot signal into the call; it does not even exist for them
    expect(code(await signal(a, stranger, { callId: call.id, toUserId: callee.id, kind: 'OFFER', payload: offer }))).toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(code(await signal(a, other.patient, { callId: call.id, toUserId: callee.id, kind: 'OFFER', payload: offer }))).toMatchObject({
      code: 'NOT_FOUND',
    });
    // bad payloads
    expect(
      code(await signal(a, caller, { callId: call.id, toUserId: callee.id, kind: 'ICE_CANDIDATE', payload: { nope: 1 } })),
    ).toMatchObject({
      code: 'BAD_USER_INPUT',
    });
    expect(
      code(
        await signal(a, caller, {
          callId: call.id,
          toUserId: callee.id,
          kind: 'OFFER',
          payload: { type: 'offer', sdp: 'x'.repeat(70_000) },
        }),
      ),
    ).toMatchObject({ code: 'BAD_USER_INPUT' });
    await ok(signal(a, caller, { callId: call.id, toUserId: callee.id, kind: 'OFFER', payload: offer }));
    await until(() => ofType(phone.feed, 'CallSignal').length === 1, 5_000, 'the offer');
    await ok(end(b, callee, call.id));
    expect(code(await signal(a, caller, { callId: call.id, toUserId: callee.id, kind: 'OFFER', payload: offer }))).toMatchObject({
      code: 'CONFLICT',
      reason: 'CALL_ENDED',
    });
    await until(() => ofType(laptop.feed, 'CallStateChanged').some((e) => e.to === 'ENDED'), 5_000, 'the end');
    expect(ofType(phone.feed, 'CallSignal')).toHaveLength(1);
    expect(ofType(laptop.feed, 'CallSignal')).toEqual([]);
    expect(events(strangerDevice.feed)).toEqual([]);
  });

  it('an ICE flood on one call is rate limited without affecting another call', async ({ a, org }) => {
    const one = await pair(a, org);
    const two = await pair(a, org);
    const c1 = await start(a, one.caller, { conversationId: one.conv });
    const c2 = await start(a, two.caller, { conversationId: two.conv });
    await ok(accept(a, one.callee, c1.id, 'p1'));
    await ok(accept(a, two.callee, c2.id, 'p2'));
    const ice = (n: number) => ({ candidate: `candidate:${n} 1 udp 1 10.0.0.1 5000 typ host` });
    const flood = await Promise.all(
      Array.from({ length: 40 }, (_, n) =>
        signal(a, one.caller, { callId: c1.id, toUserId: one.callee.id, kind: 'ICE_CANDIDATE', payload: ice(n) }),
      ),
    );
    const limited = flood.filter((r) => code(r)?.code === 'RATE_LIMITED');
    expect(limited.length).toBeGreaterThan(0);
    expect(code(limited[0]!)).toMatchObject({ retryAfterSeconds: 1 });
    await ok(signal(a, two.caller, { callId: c2.id, toUserId: two.callee.id, kind: 'ICE_CANDIDATE', payload: ice(1) }));
    await end(a, one.caller, c1.id);
    await end(a, two.caller, c2.id);
  });
});

describe('groups, busy callees and membership', () => {
  it('a device opened mid-ring rings only for a user still being rung: not the caller, not a group callee who declined', async ({
    a: app,
    org: base,
  }) => {
    const org = base;
    const { provider } = org;
    const [p1, p2] = [await org.user('patient'), await org.user('patient')];
    const direct = await conversation(app, provider, [p1], 'DIRECT');
    const group = await conversation(app, provider, [p1, p2]);
    const one = await start(app, provider, { conversationId: direct, deviceId: 'dr-phone' });
    // the caller's tablet opens while the call rings: it shows the outgoing call, it does not ring
    const drTablet = await device(app, provider, 'dr-tablet');
    await drTablet.feed.waitFor(1, 5_000);
    const mine = events(drTablet.feed)[0];
    expect(mine).toMatchObject({ __typename: 'ActiveCall', call: { id: one.id, state: 'RINGING' } });
    expect.soft(shouldRing(mine as never), `the caller's own device would ring: ${JSON.stringify(mine)}`).toBe(false);
    await ok(end(app, provider, one.id));

    // a group call p1 declined while p2 is still rung: p1's laptop, opened now, must not ring either
    const many = await start(app, provider, { conversationId: group });
    await ok(gql(app, p1.token, `mutation($id: ID!){ rejectCall(id: $id) { state } }`, { id: many.id }));
    const laptop = await device(app, p1, 'p1-laptop');
    await laptop.feed.waitFor(1, 5_000);
    const declined = events(laptop.feed).find((e) => e.call?.id === many.id);
    expect(declined?.call.state).toBe('RINGING');
    expect.soft(shouldRing(declined as never), `a callee who declined would ring again: ${JSON.stringify(declined)}`).toBe(false);
    // p2, still rung, does ring
    const p2Phone = await device(app, p2, 'p2-phone');
    await p2Phone.feed.waitFor(1, 5_000);
    expect(shouldRing(events(p2Phone.feed)[0] as never)).toBe(true);
    await ok(end(app, provider, many.id));
  });

  it('group mesh: the cap refuses one more joiner (CALL_FULL); the call survives one leaving and ends when one is left', async ({
    a,
    org,
  }) => {
    const host = await org.user('provider');
    const guests = await Promise.all([org.user('patient'), org.user('patient'), org.user('provider')]);
    const conv = await conversation(a, host, guests);
    const call = await start(a, host, { conversationId: conv });
    expect(call.kind).toBe('GROUP');
    await ok(accept(a, guests[0]!, call.id, 'g0'));
    await ok(accept(a, guests[1]!, call.id, 'g1'));
    expect(code(await accept(a, guests[2]!, call.id, 'g2'))).toMatchObject({ code: 'CONFLICT', reason: 'CALL_FULL' });
    await ok(reject(a, guests[2]!, call.id));
    await ok(end(a, guests[0]!, call.id));
    expect((await getCall(a, host, call.id))!.state).toBe('ACCEPTED');
    await ok(end(a, guests[1]!, call.id));
    const final = (await getCall(a, host, call.id))!;
    expect(final.state).toBe('ENDED');
    for (const g of guests) expect(await missedCalls(a, g, call.id)).toEqual([]);
  });

  it('a callee already in a call rings with calleeBusy under RING, and is rejected BUSY under REJECT_BUSY (admins set it)', async ({
    a,
    org,
  }) => {
    const other = await seedOrg(a); // its own policy
    const { caller, callee, conv } = await pair(a, other);
    const third = await other.user('provider');
    const conv2 = await conversation(a, third, [callee], 'DIRECT');
    const first = await start(a, caller, { conversationId: conv });
    await ok(accept(a, callee, first.id, 'phone'));
    const ringing = await start(a, third, { conversationId: conv2 });
    expect(ringing).toMatchObject({ state: 'RINGING', calleeBusy: true });
    await end(a, third, ringing.id);
    expect(code(await gql(a, other.provider.token, `mutation { setCallBusyPolicy(policy: REJECT_BUSY) }`))).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect((await ok(gql(a, other.admin.token, `mutation { setCallBusyPolicy(policy: REJECT_BUSY) }`))).setCallBusyPolicy).toBe(
      'REJECT_BUSY',
    );
    const busy = await start(a, third, { conversationId: conv2 });
    expect(busy).toMatchObject({ state: 'REJECTED', reason: 'BUSY' });
    expect(await missedCalls(a, callee, busy.id)).toEqual([]);
    // the first org is untouched
    expect((await ok(gql(a, org.admin.token, `{ callBusyPolicy }`))).callBusyPolicy).toBe('RING');
    await end(a, caller, first.id);
  });

  it('removing a ringing callee from the conversation ends their part: the caller sees it, no missed call', async ({ a, org }) => {
    const host = await org.user('provider');
    const guest = await org.user('patient');
    const guest2 = await org.user('patient');
    const conv = await conversation(a, host, [guest, guest2]);
    const hostDevice = await device(a, host, 'h1');
    const call = await start(a, host, { conversationId: conv, deviceId: 'h1' });
    await ok(
      gql(a, host.token, `mutation($c: ID!, $u: ID!){ removeConversationMember(conversationId: $c, userId: $u) { id } }`, {
        c: conv,
        u: guest.id,
      }),
    );
    await until(() => ofType(hostDevice.feed, 'CallStateChanged').some((e) => e.reason === 'MEMBERSHIP_REVOKED'), 5_000, 'revocation');
    const now = (await getCall(a, host, call.id))!;
    expect(now.participants.find((p) => p.user.id === guest.id)).toMatchObject({ state: 'MISSED', reason: 'MEMBERSHIP_REVOKED' });
    expect(now.state).toBe('RINGING'); // guest2 still rings
    expect(code(await accept(a, guest, call.id, 'x'))).toMatchObject({ code: 'CONFLICT', reason: 'CALL_NOT_RINGING' });
    expect(await missedCalls(a, guest, call.id)).toEqual([]);
    await end(a, host, call.id);
  });
});

describe('limits, TURN and history', () => {
  it('startCall is rate limited per user with retryAfterSeconds, over HTTP with 429 and Retry-After', async ({ b, org }) => {
    const { caller, callee } = await pair(b, org);
    let limited: { status: number; retryAfter: string | null; ext: Record<string, unknown> | undefined } | undefined;
    // a budget of 10 per minute window: 25 tries hit it even when a window boundary passes mid-loop
    for (let i = 0; i < 25 && !limited; i++) {
      const res = await fetch(b.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: caller.token },
        body: JSON.stringify({ query: START, variables: { i: { calleeIds: [callee.id], media: 'AUDIO', clientCallId: key() } } }),
      });
      const r = (await res.json()) as { data?: any; errors?: Array<{ extensions?: Record<string, unknown> }> };
      if (r.errors) limited = { status: res.status, retryAfter: res.headers.get('retry-after'), ext: code(r) };
      else await end(b, caller, r.data.startCall.id);
    }
    expect(limited?.ext).toMatchObject({ code: 'RATE_LIMITED' });
    const wait = limited!.ext!.retryAfterSeconds as number;
    expect(wait).toBeGreaterThan(0);
    // the same answer as the shared budgets (docs/protection.md): 429 and Retry-After
    expect(limited).toMatchObject({ status: 429, retryAfter: String(wait) });
  });

  it('callIceServers: STUN-only and turnConfigured false when no TURN is configured', async ({ a, org }) => {
    const r = await ok(
      gql(a, org.patient.token, `{ callIceServers { iceServers { urls username credential } ttlSeconds turnConfigured } }`),
    );
    expect(r.callIceServers).toMatchObject({ turnConfigured: false, iceServers: [] });
  });

  it('history lists your calls newest first, filterable by state and conversation', async ({ a, org }) => {
    const { caller, callee, conv } = await pair(a, org);
    const c1 = await start(a, caller, { conversationId: conv });
    await ok(reject(a, callee, c1.id));
    const c2 = await start(a, caller, { conversationId: conv });
    await ok(end(a, caller, c2.id));
    const q = `query($s: [CallState!], $c: ID){ callHistory(states: $s, conversationId: $c) { edges { node { id state } } } }`;
    expect((await ok(gql(a, callee.token, q, { c: conv }))).callHistory.edges.map((e: { node: unknown }) => e.node)).toEqual([
      { id: c2.id, state: 'MISSED' },
      { id: c1.id, state: 'REJECTED' },
    ]);
    expect((await ok(gql(a, callee.token, q, { s: ['MISSED'] }))).callHistory.edges).toHaveLength(1);
    // the missed call's notification carries what a "call back" needs
    const [n] = await missedCalls(a, callee, c2.id);
    expect(n!.data).toMatchObject({ callId: c2.id, callerId: caller.id, conversationId: conv, callback: { callbackOf: c2.id } });
    const back = await start(a, callee, { calleeIds: [caller.id], callbackOf: c2.id });
    expect(back.callbackOf).toBe(c2.id);
    await end(a, callee, back.id);
  });
});
