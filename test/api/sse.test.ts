import { describe, expect } from 'vitest';
import { gql } from '../harness/clients.js';
import { it } from '../harness/fixtures.js';
import { EVENTS, conversation, send } from '../messaging/ops.js';

/**
 * Over HTTP (server-sent events) a stream could outlive its token and ignore a membership
 * removal, so subscriptions are refused there with a typed error naming WebSocket.
 */
describe('subscriptions over HTTP', () => {
  it('are refused over server-sent events with BAD_USER_INPUT, and nothing is delivered', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const res = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: org.patient.token },
      body: JSON.stringify({ query: EVENTS, variables: { c } }),
      signal: AbortSignal.timeout(5_000),
    });
    await send(app, org.provider, c, 'not over sse');
    const text = await res.text(); // the stream ends right after the error
    expect(text).toContain('BAD_USER_INPUT');
    expect(text).toContain('WebSocket');
    expect(text).not.toContain('not over sse');
    expect(app.container.fanout.stats().subscriptions).toBe(0);
  });

  it('are refused as a plain POST too', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const r = await gql(app, org.patient.token, EVENTS, { c });
    expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(r.errors?.[0]?.message).toMatch(/WebSocket/);
  });
});
