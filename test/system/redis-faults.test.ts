// Redis stopped or gone in the middle of sending: a mutation whose transaction committed answers
// within PUBLISH_TIMEOUT_MS whether the publish fails (Redis down) or hangs (Redis SIGSTOPped: the
// port accepts, nothing answers), a command that needs Redis before its commit fails within
// REDIS_COMMAND_TIMEOUT_MS instead of hanging, and subscribers get every committed event once Redis
// is back, or earlier from the ledger poll (late publishes are deduplicated by position). Two instances, a private
// redis-server this file stops.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, disposeAll, gql, live } from '../harness/clients.js';
import { type PrivateRedis, privateRedis } from '../harness/outage.js';
import { type SeededOrg, seedOrg } from '../harness/seed.js';
import { newPrefix, startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { conversation, EVENTS, expectContiguous, events, history, messageIds, SEND, waitForMessages } from '../harness/system.js';

const PUBLISH_TIMEOUT_MS = 150;
const COMMAND_TIMEOUT_MS = 2_000;

let redis: PrivateRedis;
let a: TestApp;
let b: TestApp;
let org: SeededOrg;

beforeAll(async () => {
  redis = await privateRedis();
  const prefix = newPrefix();
  const env = {
    REDIS_URL: redis.url,
    PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
    REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
    REALTIME_POLL_MS: '500',
  };
  [a, b] = await Promise.all([startApp({ prefix, env }), startApp({ prefix, env })]);
  org = await seedOrg(a);
}, 30_000);

afterEach(async () => {
  redis.resume();
  await disposeAll();
});

afterAll(async () => {
  redis?.resume();
  await stopAll();
  await redis?.dispose();
});

/** Sends on `app` and returns the message id and how long the mutation took to answer. */
async function timedSend(app: TestApp, c: string, body: string): Promise<{ id: string; ms: number }> {
  const t0 = performance.now();
  const r = await gql(app, org.provider.token, SEND, { c, b: body });
  const ms = performance.now() - t0;
  expect(r.errors, body).toBeUndefined();
  return { id: r.data.sendMessage.id as string, ms };
}

describe('Redis stopped mid-send', () => {
  it('answers committed mutations within the publish bound while Redis hangs (SIGSTOP), and delivers them after SIGCONT', async () => {
    const c = await conversation(a, org.provider, [org.patient]);
    const sub = await live(a, connect(a, org.patient), EVENTS, { c });
    const sent = [(await timedSend(b, c, 'before')).id];
    await waitForMessages(sub, 1);

    redis.pause();
    const during: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await timedSend(b, c, `during-${i}`);
      sent.push(s.id);
      during.push(s.ms);
    }
    // each answered after waiting at most PUBLISH_TIMEOUT_MS for its publish, not after the
    // command timeout (2 s) and certainly not never
    expect(Math.max(...during), `answer times ${during.map(Math.round).join(', ')} ms`).toBeLessThan(1_200);
    // (subscribers may already have them: the ledger poll reads PostgreSQL, not Redis)

    // a command that needs Redis before anything is committed fails within the command timeout
    const t0 = performance.now();
    const typing = await gql(b, org.provider.token, 'mutation($c:ID!){ setTyping(conversationId:$c, typing:true) }', { c });
    const typingMs = performance.now() - t0;
    expect(typing.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(typingMs).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 100);
    expect(typingMs).toBeLessThan(COMMAND_TIMEOUT_MS + 2_000);

    redis.resume();
    await waitForMessages(sub, sent.length, 10_000);
    expect(messageIds(sub)).toEqual(sent);
    expectContiguous(a, c, events(sub));
    expect(await history(a, org.patient, c)).toEqual(sent);
  });

  it('answers committed mutations while Redis is down, and delivers them once it is back', async () => {
    const c = await conversation(a, org.provider, [org.patient]);
    const sub = await live(a, connect(a, org.patient), EVENTS, { c });
    const sent = [(await timedSend(b, c, 'before')).id];
    await waitForMessages(sub, 1);

    await redis.stop('keep');
    const during: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await timedSend(i % 2 ? a : b, c, `down-${i}`);
      sent.push(s.id);
      during.push(s.ms);
    }
    expect(Math.max(...during), `answer times ${during.map(Math.round).join(', ')} ms`).toBeLessThan(1_200);

    await redis.start();
    sent.push((await timedSend(b, c, 'after')).id);
    await waitForMessages(sub, sent.length, 10_000);
    expect(messageIds(sub)).toEqual(sent);
    expectContiguous(a, c, events(sub));
  });
});
