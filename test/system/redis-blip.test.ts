// Redis pub/sub is at-most-once: a dropped subscriber connection, or an instance that dies between
// commit and publish, loses live events. Subscribers must still get every event exactly once and
// in order, from the ledger (gap detection on the next live event, or the head poll).
import type { Redis } from 'ioredis';
import { afterEach, describe, expect } from 'vitest';
import { startApp, type TestApp } from '../harness/start-app.js';
import { conversation, events, expectContiguous, history, messageIds, send, waitForMessages, EVENTS, it } from '../harness/system.js';
import { connect, disposeAll, live, sleep, until } from '../harness/clients.js';

// REALTIME_POLL_MS=1000 (harness default)
afterEach(disposeAll);

/** Kills exactly this connection on the Redis server (found by its own address, not by name). */
async function killConnection(admin: Redis, conn: Redis): Promise<void> {
  const stream = (conn as unknown as { stream: { localAddress: string; localPort: number } }).stream;
  const addr = `${stream.localAddress}:${stream.localPort}`;
  const list = (await admin.client('LIST')) as string;
  const line = list.split('\n').find((l) => l.includes(` addr=${addr} `));
  expect(line, `a client at ${addr}`).toContain('name=wardline:sub');
  const id = /^id=(\d+)/.exec(line!)![1]!;
  expect(await admin.client('KILL', 'ID', id)).toBe(1);
}

describe('Redis pub/sub interrupted', () => {
  it("delivers what was published while A's subscriber connection was down, exactly once and in order", async ({ a, b, org }) => {
    const c = await conversation(a, org.provider, [org.patient]);
    const onA = await live(a, connect(a, org.patient), EVENTS, { c });
    const onB = await live(b, connect(b, org.provider), EVENTS, { c });
    const sent = [await send(b, org.provider, c, 'before')];
    await waitForMessages(onA, 1);

    const sub = a.container.redis.sub as Redis; // this file runs on one Redis
    const retry = sub.options.retryStrategy;
    // the outage: A's subscriber is dropped by the server and cannot come back for 2.5 s (long
    // enough for five sends on a loaded machine: the sends must fall inside the outage)
    sub.options.retryStrategy = () => 2_500;
    try {
      await killConnection(a.container.redis.commands as Redis, sub);
      await until(() => sub.status !== 'ready', 2_000, 'the subscriber connection to drop');
      for (let i = 0; i < 5; i++) sent.push(await send(b, org.provider, c, `during-${i}`));
      expect(sub.status).not.toBe('ready'); // all five were published while A could not hear them
      await until(() => sub.status === 'ready', 5_000, 'the subscriber connection to come back');
    } finally {
      sub.options.retryStrategy = retry;
    }
    for (let i = 0; i < 5; i++) sent.push(await send(i % 2 ? a : b, org.provider, c, `after-${i}`));

    await waitForMessages(onA, sent.length, 5_000);
    await waitForMessages(onB, sent.length, 5_000);
    await sleep(300);
    for (const s of [onA, onB]) {
      expect(messageIds(s)).toEqual(sent);
      expectContiguous(a, c, events(s));
    }
    expect(await history(a, org.patient, c)).toEqual(sent);
  });

  it('gets the last event even when nothing follows it (the head poll)', async ({ a, b, org }) => {
    const c = await conversation(a, org.provider, [org.patient]);
    const onA = await live(a, connect(a, org.patient), EVENTS, { c });
    const sent = [await send(b, org.provider, c, 'first')];
    await waitForMessages(onA, 1);
    // B commits but dies before publishing (simulated: its publish is dropped once)
    const hub = b.container.hub;
    const publish = hub.publish;
    hub.publish = async () => {};
    try {
      sent.push(await send(b, org.provider, c, 'never published'));
    } finally {
      hub.publish = publish;
    }
    await waitForMessages(onA, 2, 3_000); // within a poll interval or two
    await sleep(200);
    expect(messageIds(onA)).toEqual(sent);
    expectContiguous(a, c, events(onA));
  });
});

describe('gap detection without the head poll', () => {
  let a2: TestApp;
  it.beforeAll(async ({ prefix }) => {
    // an instance of the same deployment that polls the ledger heads only once a minute
    a2 = await startApp({ prefix, env: { REALTIME_POLL_MS: '60000' } });
  });

  it('fetches the missing range as soon as a later event shows the hole', async ({ a, b, org }) => {
    const c = await conversation(a2, org.provider, [org.patient]);
    const sub = await live(a2, connect(a2, org.patient), EVENTS, { c });
    const sent = [await send(b, org.provider, c, 'one')];
    await waitForMessages(sub, 1);
    const hub = b.container.hub;
    const publish = hub.publish;
    hub.publish = async () => {};
    try {
      for (let i = 0; i < 3; i++) sent.push(await send(b, org.provider, c, `lost-${i}`));
    } finally {
      hub.publish = publish;
    }
    await sleep(200);
    expect(messageIds(sub)).toHaveLength(1); // nothing came through pub/sub, and no poll ran
    sent.push(await send(a, org.provider, c, 'reveals the hole'));
    await waitForMessages(sub, sent.length, 2_000);
    await sleep(200);
    expect(messageIds(sub)).toEqual(sent);
    expectContiguous(a2, c, events(sub));
  });

  it('looks at the ledger as soon as the subscriber connection is back, with nothing published after it', async ({ b, org }) => {
    const c = await conversation(a2, org.provider, [org.patient]);
    const sub = await live(a2, connect(a2, org.patient), EVENTS, { c });
    const sent = [await send(b, org.provider, c, 'one')];
    await waitForMessages(sub, 1);
    const conn = a2.container.redis.sub as Redis;
    const retry = conn.options.retryStrategy;
    // down for 2.5 s: long enough for three sends on a loaded machine (they must fall inside it)
    conn.options.retryStrategy = () => 2_500;
    try {
      await killConnection(a2.container.redis.commands as Redis, conn);
      await until(() => conn.status !== 'ready', 2_000, 'the subscriber connection to drop');
      for (let i = 0; i < 3; i++) sent.push(await send(b, org.provider, c, `during-${i}`));
      expect(conn.status).not.toBe('ready');
    } finally {
      conn.options.retryStrategy = retry;
    }
    await waitForMessages(sub, sent.length, 8_000); // the 60 s poll cannot be what delivers them
    await sleep(200);
    expect(messageIds(sub)).toEqual(sent);
    expectContiguous(a2, c, events(sub));
  });
});

describe('the ledger unreachable for a moment', () => {
  it('retries on the next poll instead of spinning, then delivers everything in order', async ({ prefix, b, org }) => {
    const a3 = await startApp({ prefix });
    const c = await conversation(b, org.provider, [org.patient]);
    const sub = await live(a3, connect(a3, org.patient), EVENTS, { c });
    const sent = [await send(b, org.provider, c, 'one')];
    await waitForMessages(sub, 1);

    // a3 cannot reach PostgreSQL (every query it starts fails, built or raw), and a publish from B is lost
    const db = a3.container.database.db as unknown as { select: unknown; execute: unknown };
    const { select, execute } = db;
    const refused: unknown = new Proxy(
      {},
      {
        // every query builder step returns the query; awaiting it fails after a moment, like a refused connection
        get: (_t, key) =>
          key === 'then'
            ? (_ok: unknown, fail: (e: Error) => void) => setTimeout(() => fail(new Error('connection refused (simulated)')), 1)
            : () => refused,
      },
    );
    db.select = () => refused;
    db.execute = () => refused;
    const logger = a3.container.logger;
    const warn = logger.warn.bind(logger);
    let failures = 0;
    logger.warn = ((obj: unknown, msg?: string) => {
      if (typeof msg === 'string' && msg.startsWith('ledger catch-up failed')) failures++;
      return warn(obj as object, msg);
    }) as typeof logger.warn;
    const hub = b.container.hub;
    const publish = hub.publish;
    try {
      hub.publish = async () => {};
      try {
        sent.push(await send(b, org.provider, c, 'lost'));
      } finally {
        hub.publish = publish;
      }
      sent.push(await send(b, org.provider, c, 'shows the hole')); // a3 must fetch 'lost' and cannot
      await until(() => failures > 0, 5_000, 'a catch-up attempt');
      await sleep(400); // a quiet period: the next attempt waits for the next poll, there is no retry loop
      expect(failures, 'catch-up attempts while the ledger is unreachable').toBeGreaterThan(0);
      expect(failures, 'catch-up attempts while the ledger is unreachable').toBeLessThanOrEqual(3);
      expect(messageIds(sub)).toEqual(sent.slice(0, 1));
    } finally {
      db.select = select;
      db.execute = execute;
      logger.warn = warn;
    }
    await waitForMessages(sub, sent.length, 3_000); // the next head poll (1 s) catches up
    await sleep(200);
    expect(messageIds(sub)).toEqual(sent);
    expectContiguous(a3, c, events(sub));
  });
});
