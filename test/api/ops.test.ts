import type { Socket } from 'node:net';
import { describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import { seedOrg } from '../harness/seed.js';
import { startApp, type TestApp } from '../harness/start-app.js';
import { gql, connect, live, settled } from '../harness/clients.js';
import { EVENTS, conversation, send } from '../messaging/ops.js';
import { openRaw } from '../protocol/raw.js';

const get = async (a: TestApp, path: string) => {
  const res = await fetch(`http://127.0.0.1:${a.port}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
};
/** The value of one sample line of the Prometheus text, e.g. `name{label="x"}`. */
const sample = (text: string, name: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

describe('health', () => {
  it('/health/live answers 200', async ({ app }) => {
    const r = await get(app, '/health/live');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ status: 'ok' });
  });

  it('/health/ready answers 200 with db and redis ok', async ({ app }) => {
    const r = await get(app, '/health/ready');
    expect(r.status).toBe(200);
    const body = JSON.parse(r.text);
    expect(body).toMatchObject({ status: 'ok', checks: { db: 'ok', redis: 'ok', queues: 'ok' } });
    expect(body.queues.reminders).toMatchObject({ waiting: expect.any(Number), failed: expect.any(Number) });
  });

  it('/health/ready answers 503 naming the dependency that is down', async () => {
    const other = await startApp();
    other.container.redis.commands.disconnect();
    const r = await get(other, '/health/ready');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.text)).toMatchObject({ status: 'degraded', checks: { db: 'ok', redis: 'down' } });
    expect((await get(other, '/health/live')).status).toBe(200);
  });

  it('on shutdown, readiness fails first, then sockets close with 1001', async () => {
    const other = await startApp();
    const o = await seedOrg(other);
    const raw = await openRaw(other);
    await raw.init(o.patient.token);
    // a socket that does not answer the close handshake keeps the shutdown in its socket phase
    const socket = (raw.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const stopping = other.stop();
    const r = await get(other, '/health/ready');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.text).status).toBe('draining');
    socket.resume();
    expect((await raw.closed).code).toBe(1001);
    await stopping;
  });
});

describe('/metrics', () => {
  it('exposes sockets, subscriptions, deliveries, delivery latency and operation latency', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const sub = await live(app, connect(app, org.patient), EVENTS, { c });
    await send(app, org.provider, c, 'measured');
    await sub.waitFor(1);

    const m = await get(app, '/metrics');
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/text\/plain/);
    expect(sample(m.text, 'wardline_ws_sockets')).toBeGreaterThanOrEqual(1);
    expect(m.text).toMatch(/^wardline_queue_jobs\{queue="alerts",state="delayed"\} \d+/m);
    expect(sample(m.text, 'wardline_ws_subscriptions')).toBeGreaterThanOrEqual(1);
    expect(sample(m.text, 'wardline_deliveries_total')).toBeGreaterThanOrEqual(1);
    expect(sample(m.text, 'wardline_delivery_latency_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(m.text).toMatch(/^wardline_delivery_latency_seconds_bucket\{le="0.1"\} \d+/m);
    // mutations over HTTP (how services call Wardline) are measured, not only those over WebSocket
    expect(sample(m.text, 'wardline_operation_latency_seconds_count{operation_type="mutation"}')).toBeGreaterThanOrEqual(1);
    await settled(app);
    const after = await get(app, '/metrics');
    expect(sample(after.text, 'wardline_ws_subscriptions')).toBe(0);
  });

  it('counts queries once whether they come over HTTP or WebSocket', async ({ app, org }) => {
    const count = async () =>
      sample((await get(app, '/metrics')).text, 'wardline_operation_latency_seconds_count{operation_type="query"}') ?? 0;
    const before = await count();
    await gql(app, org.patient.token, '{ me { id } }');
    const raw = await openRaw(app);
    await raw.init(org.patient.token);
    raw.send({ id: 'q', type: 'subscribe', payload: { query: '{ me { id } }' } });
    await raw.next((f) => f.id === 'q' && f.type === 'complete');
    raw.ws.close(1000);
    expect((await count()) - before).toBe(2);
  });
});
