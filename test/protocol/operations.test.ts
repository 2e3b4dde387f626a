import { randomUUID } from 'node:crypto';
import { describe, expect } from 'vitest';
import { collect, connect, live, settled, subscriptionErrors, until } from '../harness/clients.js';
import { it as base } from '../harness/fixtures.js';
import { EVENTS, SEND, conversation, events, send } from '../messaging/ops.js';
import { type Raw, openRaw } from './raw.js';

let c: string;
const sockets: Raw[] = [];
/** `raw(user = org.patient)`: a raw socket on the file's instance, initialised as `user`, closed after the test. */
const it = base.extend('raw', ({ app, org }) => async (user = org.patient) => {
  const r = await openRaw(app);
  sockets.push(r);
  await r.init(user.token);
  return r;
});
it.beforeAll(async ({ app, org }) => {
  c = await conversation(app, org.provider, [org.patient]);
});
it.afterEach(async ({ app }) => {
  for (const s of sockets.splice(0)) s.ws.close(1000);
  await settled(app);
});
const framesOf = (r: Raw, id: string) => r.frames.filter((f) => f.id === id);

describe('queries and mutations over WebSocket', () => {
  it('answers a query with next then complete', async ({ org, raw }) => {
    const r = await raw();
    r.send({ id: 'q1', type: 'subscribe', payload: { query: '{ me { id role } }' } });
    await r.next((f) => f.id === 'q1' && f.type === 'complete');
    expect(framesOf(r, 'q1')).toEqual([
      { id: 'q1', type: 'next', payload: { data: { me: { id: org.patient.id, role: 'PATIENT' } } } },
      { id: 'q1', type: 'complete' },
    ]);
  });

  it('runs a mutation, whose event reaches subscribers', async ({ app, org, raw }) => {
    const sub = await live(app, connect(app, org.provider), EVENTS, { c });
    const r = await raw();
    r.send({ id: 'm1', type: 'subscribe', payload: { query: SEND, variables: { c, b: 'over ws', k: randomUUID() } } });
    await r.next((f) => f.id === 'm1' && f.type === 'complete');
    const [next] = framesOf(r, 'm1');
    expect(next?.payload.data.sendMessage).toMatchObject({ body: 'over ws', sender: { id: org.patient.id } });
    await sub.waitFor(1);
    expect(events(sub)[0].message.id).toBe(next?.payload.data.sendMessage.id);
  });

  it('returns resolver errors in `next` with extensions.code, then complete', async ({ raw }) => {
    const r = await raw();
    r.send({ id: 'm2', type: 'subscribe', payload: { query: SEND, variables: { c: randomUUID(), b: 'x' } } });
    await r.next((f) => f.id === 'm2' && f.type === 'complete');
    const [next] = framesOf(r, 'm2');
    expect(next?.type).toBe('next');
    expect(next?.payload.errors[0].extensions.code).toBe('NOT_FOUND');
  });

  it('works through the stock client', async ({ app, org }) => {
    const client = connect(app, org.patient);
    const result = await new Promise<any>((resolve, reject) => {
      let value: unknown;
      client.subscribe({ query: '{ me { id } }' }, { next: (v) => (value = v), error: reject, complete: () => resolve(value) });
    });
    expect(result).toEqual({ data: { me: { id: org.patient.id } } });
  });

  it('clamps an inline page size to MAX_PAGE_SIZE over WebSocket too', async ({ app, org, raw }) => {
    const conv = await conversation(app, org.provider, [org.patient]);
    for (let i = 0; i < 3; i++) await send(app, org.provider, conv, `m${i}`);
    const r = await raw();
    const query = `query($c:ID!){ conversation(id:$c){ messages(first:1000){ edges { node { id } } } } }`;
    r.send({ id: 'p', type: 'subscribe', payload: { query, variables: { c: conv } } });
    await r.next((f) => f.id === 'p' && f.type === 'complete');
    expect(framesOf(r, 'p')[0]?.payload.data.conversation.messages.edges).toHaveLength(3);
  });
});

describe('subscription errors', () => {
  it('sends an `error` message with extensions.code for a conversation that is missing or not yours', async ({ org, raw }) => {
    const outsider = await org.user('patient');
    const r = await raw(outsider);
    r.send({ id: 's1', type: 'subscribe', payload: { query: EVENTS, variables: { c } } });
    r.send({ id: 's2', type: 'subscribe', payload: { query: EVENTS, variables: { c: randomUUID() } } });
    const e1 = await r.next((f) => f.id === 's1');
    const e2 = await r.next((f) => f.id === 's2');
    expect(e1).toEqual({
      id: 's1',
      type: 'error',
      payload: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'NOT_FOUND' }) })],
    });
    expect(e2.payload).toEqual(e1.payload); // not a member looks exactly like missing
    expect(r.ws.readyState).toBe(r.ws.OPEN); // the socket stays usable
  });

  it('sends an `error` message with BAD_USER_INPUT for an invalid operation', async ({ raw }) => {
    const r = await raw();
    r.send({ id: 'v1', type: 'subscribe', payload: { query: 'subscription { conversationEvents { nope } }' } });
    r.send({ id: 'v2', type: 'subscribe', payload: { query: 'subscription {' } });
    r.send({ id: 'v3', type: 'subscribe', payload: { query: EVENTS, variables: { c: 42, a: { x: 1 } } } });
    for (const id of ['v1', 'v2', 'v3']) {
      const f = await r.next((x) => x.id === id);
      expect(f.type, id).toBe('error');
      expect(f.payload[0].extensions.code, id).toBe('BAD_USER_INPUT');
    }
  });

  it('reports subscription errors to the stock client with extensions.code', async ({ app, org }) => {
    const sub = collect(connect(app, org.patient), EVENTS, { c: randomUUID() });
    await sub.ended();
    expect(subscriptionErrors(sub).map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
  });

  it('stops delivering after the client sends complete', async ({ app, org, raw }) => {
    const r = await raw();
    const count = () => app.container.fanout.stats().subscriptions;
    const before = count();
    r.send({ id: 'live', type: 'subscribe', payload: { query: EVENTS, variables: { c } } });
    // the raw subscription is live before the watcher subscribes (so the watcher's wait is for its own)
    await until(() => count() > before, 5_000, 'the raw subscription to be live');
    const watcher = await live(app, connect(app, org.provider), EVENTS, { c });
    // both are live: the first message reaches both
    const first = await send(app, org.provider, c, 'one');
    await r.next((f) => f.id === 'live' && f.payload?.data?.conversationEvents?.message?.id === first);
    r.send({ id: 'live', type: 'complete' });
    // the server has ended it (the complete frame and the next mutation travel on different
    // connections, so without this the mutation could overtake the frame)
    await until(() => count() === before + 1, 5_000, 'the raw subscription to end');
    await send(app, org.provider, c, 'two');
    await watcher.waitFor(2);
    await send(app, org.provider, c, 'three'); // give the raw socket time to (wrongly) receive 'two'
    await watcher.waitFor(3);
    expect(framesOf(r, 'live')).toHaveLength(1);
  });
});
