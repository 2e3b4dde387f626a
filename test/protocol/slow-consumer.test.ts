import type { Socket } from 'node:net';
import { describe, expect } from 'vitest';
import { gql, until } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import type { TestApp } from '../harness/start-app.js';
import { EVENTS, SEND, conversation } from '../messaging/ops.js';
import { openRaw } from './raw.js';

const it = withApp({ WS_MAX_BUFFERED_BYTES: '16384' });

const slowCloses = async (app: TestApp) => {
  const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
  return Number(/^wardline_ws_slow_consumer_closes_total (\d+)/m.exec(text)?.[1] ?? 0);
};

describe('slow consumers', () => {
  it('closes a socket that stops reading with 1013 instead of buffering without bound', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const raw = await openRaw(app);
    await raw.init(org.patient.token);
    // many subscriptions on one socket multiply every event, so the kernel buffers fill quickly
    const subs = 40;
    for (let i = 0; i < subs; i++) raw.send({ id: `s${i}`, type: 'subscribe', payload: { query: EVENTS, variables: { c } } });
    await until(() => app.container.fanout.stats().subscriptions >= subs, 5_000, 'subscriptions');
    (raw.ws as unknown as { _socket: Socket })._socket.pause();

    const attachments = Array.from({ length: 10 }, (_, i) => ({
      url: `https://files.example/${'p'.repeat(1900)}/${i}`,
      contentType: 'image/png',
      size: 1,
    }));
    const before = await slowCloses(app);
    let sent = 0;
    while ((await slowCloses(app)) === before) {
      expect(sent, 'the server never gave up on the paused socket').toBeLessThan(400);
      await Promise.all(Array.from({ length: 5 }, () => gql(app, org.provider.token, SEND, { c, b: 'x'.repeat(10_000), a: attachments })));
      sent += 5;
    }
    (raw.ws as unknown as { _socket: Socket })._socket.resume();
    const { code } = await raw.closed;
    expect(code).toBe(1013);
    // the instance let go of the socket and its subscriptions
    await until(() => app.container.fanout.stats().subscriptions === 0 && app.api.ws.socketCount() === 0, 5_000, 'cleanup');
  });
});
