import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql } from '../harness/clients.js';
import { seedOrg, type SeededOrg } from '../harness/seed.js';
import { startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { EVENTS, conversation, send, until } from '../messaging/ops.js';

let app: TestApp;
let org: SeededOrg;
beforeAll(async () => {
  app = await startApp();
  org = await seedOrg(app);
});
afterAll(stopAll);

/** A subscription over HTTP server-sent events (yoga serves them on POST with Accept: text/event-stream). */
async function sse(token: string, variables: Record<string, unknown>) {
  const before = app.container.fanout.stats().subscriptions;
  const abort = new AbortController();
  const res = await fetch(app.url, {
    method: 'POST',
    signal: abort.signal,
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: token },
    body: JSON.stringify({ query: EVENTS, variables }),
  });
  const events: Array<{ event: string; data: any }> = [];
  let ended = false;
  void (async () => {
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) break;
      text += decoder.decode(value, { stream: true });
      let i: number;
      while ((i = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, i);
        text = text.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event) events.push({ event, data: data ? JSON.parse(data) : undefined });
      }
    }
    ended = true;
  })();
  // SSE has no subscribe acknowledgement: wait until the instance has the subscription live
  await until(() => ended || app.container.fanout.stats().subscriptions > before, 5_000, 'the SSE subscription');
  return { status: res.status, events, ended: () => ended, close: () => abort.abort() };
}

describe('subscriptions over HTTP (SSE)', () => {
  it('deliver events to members', async () => {
    const c = await conversation(app, org.provider, [org.patient]);
    const s = await sse(org.patient.token, { c });
    try {
      expect(s.status).toBe(200);
      const m = await send(app, org.provider, c, 'over sse');
      await until(() => s.events.length >= 1, 5_000, 'an SSE event');
      expect(s.events[0]?.data.data.conversationEvents.message.id).toBe(m);
    } finally {
      s.close();
    }
  });

  // KNOWN BUG (reported, not fixed here: the fix belongs in src/realtime/fanout.ts): `fanout.iterate`
  // registers its sink with userId '' so `revokes` never matches, and a member removed from the
  // conversation keeps receiving its events over SSE. Flip to `it` once fixed.
  it.fails('end for a removed member with FORBIDDEN, and deliver nothing after the removal', async () => {
    const c = await conversation(app, org.provider, [org.patient, org.admin]);
    const s = await sse(org.patient.token, { c });
    try {
      await gql(app, org.provider.token, `mutation($c:ID!, $u:ID!){ removeConversationMember(conversationId:$c, userId:$u){ id } }`, {
        c,
        u: org.patient.id,
      });
      await send(app, org.provider, c, 'not for the removed member');
      await until(() => s.events.length >= 2 || s.ended(), 3_000, 'the end of the stream');
      expect(JSON.stringify(s.events)).not.toContain('not for the removed member');
      expect(JSON.stringify(s.events)).toContain('FORBIDDEN');
    } finally {
      s.close();
    }
  });
});
