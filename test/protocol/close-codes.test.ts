import WebSocket from 'ws';
import { describe, expect } from 'vitest';
import { collect, gql, wsClient } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import { token } from '../harness/seed.js';
import { EVENTS, conversation } from '../messaging/ops.js';
import { openRaw } from './raw.js';

const ORIGIN = 'https://app.example';
let c: string;
/** `upgrade(headers, protocols)`: what a WebSocket upgrade to the file's instance with these headers comes to. */
const it = withApp({
  WS_INIT_TIMEOUT_MS: '500',
  WS_MAX_PAYLOAD_BYTES: '2048',
  WS_ALLOWED_ORIGINS: `${ORIGIN},https://other.example`,
}).extend(
  'upgrade',
  ({ app, org }) =>
    (headers: Record<string, string>, protocols: string | string[] = 'graphql-transport-ws') =>
      new Promise<{ status?: number; protocol?: string; code?: number; error?: string }>((resolve) => {
        const ws = new WebSocket(app.wsUrl, protocols, { headers });
        ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
        ws.once('open', () => {
          const protocol = ws.protocol;
          ws.once('close', (code) => resolve({ status: 101, protocol, code }));
          ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: org.patient.token } }));
          ws.once('message', () => ws.close(1000));
        });
        ws.once('error', (err) => resolve({ error: err.message }));
      }),
);
it.beforeAll(async ({ app, org }) => {
  c = await conversation(app, org.provider, [org.patient]);
});

const subscribe = (id: string) => ({ id, type: 'subscribe', payload: { query: EVENTS, variables: { c } } });

describe('connection_init', () => {
  it('acks a valid token', async ({ app, org }) => {
    const raw = await openRaw(app);
    await raw.init(org.patient.token);
    expect(raw.frames).toEqual([{ type: 'connection_ack' }]);
    raw.ws.close(1000);
  });

  it('closes with 4403 before any ack for a missing, bad or expired token', async ({ app, org }) => {
    const expired = `Bearer ${await token({ id: org.patient.id, orgId: org.orgId, role: 'patient' }, -60)}`;
    for (const payload of [{}, { authorization: 'Bearer nope' }, { authorization: expired }, undefined]) {
      const raw = await openRaw(app);
      raw.send({ type: 'connection_init', payload });
      expect((await raw.closed).code, JSON.stringify(payload)).toBe(4403);
      expect(raw.frames).toEqual([]);
    }
  });

  it('reports 4403 to the stock client', async ({ app }) => {
    const client = wsClient(app, 'Bearer nope');
    const sub = collect(client, EVENTS, { c });
    await sub.ended();
    expect((sub.errors[0] as { code?: number }).code).toBe(4403);
    expect(sub.items).toEqual([]);
    await client.dispose();
  });

  it('closes with 4408 when no connection_init arrives within WS_INIT_TIMEOUT_MS', async ({ app }) => {
    const started = Date.now();
    const raw = await openRaw(app);
    expect((await raw.closed).code).toBe(4408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(raw.frames).toEqual([]);
  });

  it('closes with 4429 on a second connection_init', async ({ app, org }) => {
    const raw = await openRaw(app);
    await raw.init(org.patient.token);
    raw.send({ type: 'connection_init', payload: { authorization: org.patient.token } });
    expect((await raw.closed).code).toBe(4429);
  });

  it('closes a socket with 4403 when its token expires', async ({ app, org }) => {
    const short = `Bearer ${await token({ id: org.patient.id, orgId: org.orgId, role: 'patient' }, 2)}`;
    const raw = await openRaw(app);
    await raw.init(short);
    raw.send(subscribe('live'));
    const started = Date.now();
    const { code } = await raw.closed;
    expect(code).toBe(4403);
    expect(Date.now() - started).toBeLessThan(3_500);
  });
});

describe('messages', () => {
  it('closes with 4401 when subscribe comes before the ack', async ({ app }) => {
    const raw = await openRaw(app);
    raw.send(subscribe('1'));
    expect((await raw.closed).code).toBe(4401);
    expect(raw.frames).toEqual([]);
  });

  it('closes with 4409 on a duplicate subscription id', async ({ app, org }) => {
    const raw = await openRaw(app);
    await raw.init(org.patient.token);
    raw.send(subscribe('dup'));
    raw.send(subscribe('dup'));
    expect((await raw.closed).code).toBe(4409);
  });

  it('allows reusing an id once its operation completed', async ({ app, org }) => {
    const raw = await openRaw(app);
    await raw.init(org.patient.token);
    raw.send({ id: 'q', type: 'subscribe', payload: { query: '{ me { id } }' } });
    await raw.next((f) => f.id === 'q' && f.type === 'complete');
    raw.frames.length = 0;
    raw.send({ id: 'q', type: 'subscribe', payload: { query: '{ me { role } }' } });
    await raw.next((f) => f.id === 'q' && f.type === 'complete');
    expect(raw.frames[0]).toEqual({ id: 'q', type: 'next', payload: { data: { me: { role: 'PATIENT' } } } });
    raw.ws.close(1000);
  });

  it('closes with 4400 on invalid JSON or an unknown message', async ({ app, org }) => {
    for (const bad of ['{not json', '[]', '{"type":"nope"}', '{"type":"subscribe","id":"x"}']) {
      const raw = await openRaw(app);
      await raw.init(org.patient.token);
      raw.send(bad);
      expect((await raw.closed).code, bad).toBe(4400);
    }
  });

  it('closes with 1009 when a frame exceeds WS_MAX_PAYLOAD_BYTES', async ({ app, org }) => {
    const raw = await openRaw(app);
    await raw.init(org.patient.token);
    raw.send({ id: 'big', type: 'subscribe', payload: { query: `{ me { id } } # ${'x'.repeat(4096)}` } });
    expect((await raw.closed).code).toBe(1009);
    expect(raw.frames).toEqual([{ type: 'connection_ack' }]);
  });

  it('answers ping with pong', async ({ app, org }) => {
    const raw = await openRaw(app);
    await raw.init(org.patient.token);
    raw.send({ type: 'ping', payload: { n: 1 } });
    expect(await raw.next((f) => f.type === 'pong')).toEqual({ type: 'pong', payload: { n: 1 } });
    raw.ws.close(1000);
  });
});

describe('upgrade', () => {
  it('refuses an Origin outside WS_ALLOWED_ORIGINS with HTTP 403', async ({ upgrade }) => {
    expect(await upgrade({ origin: 'https://evil.example' })).toEqual({ status: 403 });
  });

  it('accepts a listed Origin, and clients without an Origin header', async ({ upgrade }) => {
    expect(await upgrade({ origin: ORIGIN })).toMatchObject({ status: 101, protocol: 'graphql-transport-ws', code: 1000 });
    expect(await upgrade({})).toMatchObject({ status: 101, code: 1000 });
  });

  it('closes with 4406 when the graphql-transport-ws subprotocol is not requested', async ({ upgrade }) => {
    expect(await upgrade({}, [])).toMatchObject({ status: 101, protocol: '', code: 4406 });
    // another subprotocol only: no protocol is selected, so a conforming client fails the handshake
    expect(await upgrade({}, 'graphql-ws')).toEqual({ error: expect.stringMatching(/subprotocol/i) });
  });

  it('keeps plain HTTP working on the same path', async ({ app, org }) => {
    expect((await gql(app, org.patient.token, '{ me { id } }')).data.me.id).toBe(org.patient.id);
  });
});
