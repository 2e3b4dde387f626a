// Rate limits and caps (docs/protection.md, "Rate limits and caps"): Redis-backed budgets shared by
// two instances of one deployment, per user and per client address, over HTTP (429 + Retry-After)
// and graphql-ws (an error for the operation, the socket stays), the socket cap across instances,
// the per-socket subscription cap, the filter-cost cap, and RATE_LIMITS=off.
// Every test uses its own users and its own client address (X-Forwarded-For with TRUSTED_PROXIES=1),
// so budgets of one test never meet another's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import WebSocket from 'ws';
import { sleep, until } from '../harness/clients.js';
import { seedOrg, type SeededOrg, type SeededUser } from '../harness/seed.js';
import { newPrefix, startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { randomUUID } from 'node:crypto';
import { createRateLimiter, limitMetrics } from '../../src/protection/rate-limits.js';
import type { Viewer } from '../../src/shared/viewer.js';
import { privateRedis } from '../harness/outage.js';
import { CREATE, SEND } from '../messaging/ops.js';
import { type Raw, openRaw } from '../protocol/raw.js';

// Buckets refill slowly (one token every 5 s) so that a test's requests, sent one after another,
// spend the burst before a token comes back even on a loaded machine; the waits the server
// advertises (1-5 s) are read from its answers, not assumed.
const LIMITS = {
  RATE_LIMITS: 'on', // the harness turns them off for every other test
  TRUSTED_PROXIES: '1',
  RATE_LIMIT_QUERY: '0.2/5', // a patient: 5 at once, then one every 5 s
  RATE_LIMIT_QUERY_IP: '0.2/8',
  RATE_LIMIT_QUERY_SERVICE: '0.01/60', // a burst of 60 leases up to 6 tokens to an instance at a time
  RATE_LIMIT_MUTATION: '0.2/3',
  RATE_LIMIT_SIGNAL: '0.2/4',
  RATE_LIMIT_CONNECT_IP: '0.2/3',
  WS_MAX_SOCKETS_PER_USER: '2',
  WS_MAX_SUBSCRIPTIONS_PER_SOCKET: '2',
  WS_MAX_FILTER_COST: '10',
};

let a: TestApp;
let b: TestApp;
let off: TestApp;
let org: SeededOrg;
let offOrg: SeededOrg;
const sockets: Raw[] = [];
beforeAll(async () => {
  const prefix = newPrefix();
  [a, b, off] = await Promise.all([
    startApp({ prefix, env: LIMITS }),
    startApp({ prefix, env: LIMITS }),
    startApp({ env: { ...LIMITS, RATE_LIMITS: 'off' } }),
  ]);
  [org, offOrg] = await Promise.all([seedOrg(a), seedOrg(off)]);
});
afterAll(async () => {
  for (const s of sockets.splice(0)) s.ws.terminate();
  await stopAll();
});

let nextIp = 0;
/** A client address of this test's own. */
const newIp = () => `10.9.${Math.floor(++nextIp / 250)}.${nextIp % 250}`;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}
async function post(
  app: TestApp,
  user: SeededUser | undefined,
  ip: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<Answer> {
  const res = await fetch(app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip, ...(user ? { authorization: user.token } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Answer['body'] };
}
const code = (r: Answer) => r.body.errors?.[0]?.extensions?.code;

async function socket(app: TestApp, ip: string): Promise<Raw> {
  const raw = await openRaw(app, { 'x-forwarded-for': ip });
  sockets.push(raw);
  return raw;
}
/** Subscribes on `raw` and resolves with the first `next` or `error` frame of that id. */
async function run(raw: Raw, id: string, query: string, variables?: Record<string, unknown>) {
  raw.send({ id, type: 'subscribe', payload: { query, variables } });
  return raw.next((f) => f.id === id && (f.type === 'next' || f.type === 'error'));
}

const ME = '{ me { id } }';
const ALERTS = 'subscription($f: AlertFilter){ alertRaised(filter: $f) { __typename } }';

describe('rate limits', () => {
  it('a user spread over instances A and B spends one budget; over it: 429, Retry-After, RATE_LIMITED with retryAfterSeconds', async () => {
    const u = await org.user('patient');
    const answers: Answer[] = [];
    for (let i = 0; i < 5; i++) answers.push(await post(i % 2 ? b : a, u, newIp(), ME));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.every((r) => r.body.data?.me?.id === u.id)).toBe(true);

    const refused = await post(b, u, newIp(), ME);
    expect(refused.status).toBe(429);
    expect(refused.retryAfter).toMatch(/^[1-5]$/); // until the bucket holds a token again, rounded up
    expect(code(refused)).toBe('RATE_LIMITED');
    expect(refused.body.errors?.[0]?.extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: Number(refused.retryAfter) });
    expect(refused.body.data ?? null).toBeNull();
    // the other instance refuses too: one budget
    expect((await post(a, u, newIp(), ME)).status).toBe(429);
    // another user is not affected
    expect((await post(a, await org.user('patient'), newIp(), ME)).status).toBe(200);

    // the rejection is counted by class, with no user or address label
    const metrics = await (await fetch(`http://127.0.0.1:${b.port}/metrics`)).text();
    expect(metrics).toMatch(/wardline_rate_limited_total\{class="query"\} [1-9]/);
    expect(metrics).not.toContain(u.id);

    // after the advertised wait, the user is served again
    await sleep(Number(refused.retryAfter) * 1000);
    expect((await post(b, u, newIp(), ME)).status).toBe(200);
  });

  it('limits one client address across users and instances; another address is unaffected', async () => {
    const ip = newIp();
    const users = await Promise.all([1, 2, 3, 4].map(() => org.user('provider')));
    const ok: number[] = [];
    for (let i = 0; i < 8; i++) ok.push((await post(i % 2 ? b : a, users[i % 4], ip, ME)).status);
    expect(ok).toEqual(Array(8).fill(200));
    const fresh = await org.user('provider'); // a user with a full budget, from the spent address
    const refused = await post(a, fresh, ip, ME);
    expect(refused.status).toBe(429);
    expect(code(refused)).toBe('RATE_LIMITED');
    expect((await post(b, undefined, ip, '{ __typename }')).status).toBe(429); // unauthenticated: by address only
    expect((await post(a, fresh, newIp(), ME)).status).toBe(200);
  });

  it('a refused mutation changes nothing', async () => {
    const [sender, reader] = [await org.user('provider'), await org.user('patient')];
    const ip = newIp();
    const created = await post(a, sender, ip, CREATE, { kind: 'GROUP', m: [reader.id] });
    const c = created.body.data.createConversation.id as string;
    for (const body of ['one', 'two']) expect((await post(b, sender, ip, SEND, { c, b: body })).body.errors).toBeUndefined();
    const refused = await post(a, sender, ip, SEND, { c, b: 'three', k: 'k3' });
    expect(refused.status).toBe(429);
    expect(code(refused)).toBe('RATE_LIMITED');
    const history = await post(
      b,
      reader,
      newIp(),
      'query($c: ID!){ conversation(id: $c){ messages(first: 10){ edges { node { body } } } } }',
      { c },
    );
    expect(history.body.data.conversation.messages.edges.map((e: { node: { body: string } }) => e.node.body).sort()).toEqual([
      'one',
      'two',
    ]);
  });

  it('call signals spend their own budget, not the mutation budget', async () => {
    const [caller, callee] = [await org.user('provider'), await org.user('patient')];
    const ip = newIp();
    const SIGNAL = 'mutation($i: CallSignalInput!){ sendCallSignal(input: $i) }';
    const input = {
      callId: '00000000-0000-4000-8000-000000000000',
      toUserId: callee.id,
      kind: 'ICE_CANDIDATE',
      payload: { candidate: '' },
    };
    const codes: unknown[] = [];
    for (let i = 0; i < 5; i++) codes.push(code(await post(i % 2 ? b : a, caller, ip, SIGNAL, { i: input })));
    // four reach the call service (no such call), the fifth is over the signal budget
    expect(codes).toEqual(['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'RATE_LIMITED']);
    // the mutation budget is untouched
    const created = await post(a, caller, ip, CREATE, { kind: 'GROUP', m: [callee.id] });
    expect(created.body.errors).toBeUndefined();
  });

  it('with leases (a burst of 60 leases up to 6 per instance), a token spread over A and B gets its burst, at most the leases left over fewer, never more', async () => {
    const service = await org.user('service');
    let ok = 0;
    let refusedInARow = 0;
    let slowest = 0;
    for (let i = 0; i < 90 && refusedInARow < 4; i++) {
      const started = performance.now();
      const status = (await post(i % 2 ? b : a, service, newIp(), ME)).status;
      slowest = Math.max(slowest, performance.now() - started);
      if (status === 200) {
        ok++;
        refusedInARow = 0;
      } else {
        expect(status).toBe(429);
        refusedInARow++;
      }
    }
    expect(refusedInARow).toBe(4); // both instances refuse: the shared budget is spent
    expect(ok).toBeLessThanOrEqual(60);
    // at worst each instance's last lease goes unused (up to 6 each); a lease is held for 30 s
    // (RATE_LIMIT_LEASE_MS), far longer than this loop takes
    if (slowest < 300) expect(ok).toBeGreaterThanOrEqual(60 - 2 * 6);
  });

  /**
   * A limiter of instance A's deployment and a fresh service token subject (budget 0.01/60, leases
   * up to 6), its leases held for `leaseMs` (RATE_LIMIT_LEASE_MS, 30 s by default).
   */
  const serviceLimiter = (leaseMs = a.config.rateLimits.leaseMs) => ({
    limiter: createRateLimiter({
      config: { ...a.config.rateLimits, leaseMs },
      redis: a.container.redis.commands,
      prefix: a.config.redisPrefix,
      metrics: limitMetrics(a.container.metrics),
      logger: a.container.logger,
    }),
    viewer: { role: 'service', orgId: org.orgId, userId: `svc-${randomUUID()}`, name: 'bridge' } as Viewer,
  });

  it('checks of one bucket that miss at once lease once: 42 within a burst of 60 all pass', async () => {
    const { limiter, viewer } = serviceLimiter();
    // a first check leases nothing; then a lease of 1 is spent, so the next asks for 2. In one tick
    // all 40 miss the (empty) lease together: were each to lease, the burst of 60 would be gone
    // after 20
    expect(await limiter.take('query', viewer, undefined)).toBeUndefined();
    expect(await limiter.take('query', viewer, undefined)).toBeUndefined();
    const verdicts = await Promise.all(Array.from({ length: 40 }, () => limiter.take('query', viewer, undefined)));
    expect(verdicts.filter((v) => v !== undefined)).toEqual([]);
  });

  it('a client that asks once in a while holds no lease: each check takes one token of the shared budget', async () => {
    // leases held for 2 s here, so that the test can wait past one
    const { limiter, viewer } = serviceLimiter(2_000);
    const key = `${a.config.redisPrefix}:rl:query:s:${org.orgId}:${viewer.userId}`;
    const tokens = async () => Number(await a.container.redis.commands.hget(key, 't'));
    expect(await limiter.take('query', viewer, undefined)).toBeUndefined();
    expect(await tokens()).toBeCloseTo(59, 0);
    // past the lease period: the next check learns that nothing was spent, and leases nothing
    await new Promise((r) => setTimeout(r, 2_200));
    expect(await limiter.take('query', viewer, undefined)).toBeUndefined();
    expect(await tokens()).toBeCloseTo(58, 0);
    // a busy client's lease grows: 1 + 1 taken at once
    expect(await limiter.take('query', viewer, undefined)).toBeUndefined();
    expect(await tokens()).toBeCloseTo(56, 0);
    // the leased token answers at once (no promise, no Redis), and the spent lease is refilled in
    // the background to twice its size
    expect(limiter.take('query', viewer, undefined)).toBeUndefined();
    await until(async () => Math.round(await tokens()) === 54, 5_000, 'a refill of 2');
    // half of that spent: topped up to 4 (3 more)
    expect(limiter.take('query', viewer, undefined)).toBeUndefined();
    await until(async () => Math.round(await tokens()) === 51, 5_000, 'a refill of 3');
    // the refilled lease serves the next checks without Redis
    expect(limiter.take('query', viewer, undefined)).toBeUndefined();
    expect(Math.round(await tokens())).toBe(51);
  });

  it('refills the leases of many busy clients in one Redis call', async () => {
    const { limiter } = serviceLimiter();
    const viewers = Array.from(
      { length: 20 },
      () => ({ role: 'service', orgId: org.orgId, userId: `svc-${randomUUID()}`, name: 'bridge' }) as Viewer,
    );
    // each gets a lease of one token (a first check, then one that leases)
    for (const v of viewers) {
      expect(await limiter.take('query', v, undefined)).toBeUndefined();
      expect(await limiter.take('query', v, undefined)).toBeUndefined();
    }
    const keys = new Set(viewers.map((v) => `${a.config.redisPrefix}:rl:query:s:${org.orgId}:${v.userId}`));
    const monitor = await (a.container.redis.commands as Redis).monitor();
    const calls: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'evalsha' && args.some((x) => keys.has(x))) calls.push(args);
    });
    try {
      // all twenty spend their leased token at once: each answer comes without Redis
      for (const v of viewers) expect(limiter.take('query', v, undefined)).toBeUndefined();
      const tokens = async () => Promise.all([...keys].map(async (k) => Math.round(Number(await a.container.redis.commands.hget(k, 't')))));
      // every bucket refilled with 2 (60 - 1 - 2 - 2)
      await until(async () => (await tokens()).every((t) => t === 55), 5_000, 'the refills');
      await until(() => calls.length > 0, 5_000, 'the refill call seen by MONITOR');
      // one script call carried all twenty buckets
      expect(Number(calls[0]?.[2])).toBe(20);
      expect(calls.length).toBe(1);
    } finally {
      monitor.disconnect();
    }
  });

  it('service tokens have their own, larger budget and no per-address budget', async () => {
    const ip = newIp();
    const service = await org.user('service');
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push((await post(i % 2 ? b : a, service, ip, ME)).status);
    expect(statuses).toEqual(Array(15).fill(200));
    const patient = await org.user('patient');
    const p: number[] = [];
    for (let i = 0; i < 6; i++) p.push((await post(a, patient, newIp(), ME)).status);
    expect(p).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('over graphql-ws the refused operation gets an error, the socket stays open and works after the wait', async () => {
    const u = await org.user('patient');
    const raw = await socket(a, newIp());
    await raw.init(u.token);
    for (let i = 1; i <= 5; i++) expect((await run(raw, `q${i}`, ME)).type).toBe('next');
    const refused = await run(raw, 'q6', ME);
    expect(refused.type).toBe('error');
    const wait = refused.payload[0].extensions.retryAfterSeconds as number;
    expect(refused.payload[0].extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: wait });
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(5);
    // the same budget as over HTTP, on the other instance
    expect((await post(b, u, newIp(), ME)).status).toBe(429);
    await sleep(wait * 1_000);
    const again = await run(raw, 'q7', ME);
    expect(again.type).toBe('next');
    expect(again.payload.data.me.id).toBe(u.id);
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('refuses WebSocket upgrades over the address budget with HTTP 429 before the socket opens', async () => {
    const ip = newIp();
    for (let i = 0; i < 3; i++) await socket(i % 2 ? b : a, ip);
    const answer = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
      const ws = new WebSocket(a.wsUrl, 'graphql-transport-ws', { headers: { 'x-forwarded-for': ip } });
      ws.on('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined });
        ws.terminate();
      });
      ws.on('open', () => reject(new Error('the upgrade was accepted')));
      ws.on('error', () => {});
    });
    expect(answer.status).toBe(429);
    expect(answer.retryAfter).toMatch(/^[1-5]$/);
  });
});

describe('caps', () => {
  it('caps sockets per user across both instances (1013); a closed socket frees its slot', async () => {
    const u = await org.user('provider');
    const first = await socket(a, newIp());
    await first.init(u.token);
    const second = await socket(b, newIp());
    await second.init(u.token);
    const third = await socket(a, newIp());
    third.send({ type: 'connection_init', payload: { authorization: u.token } });
    expect(await third.closed).toEqual({ code: 1013, reason: 'Try again later: too many sockets for this user' });
    expect(third.frames).toEqual([]);
    // another user is not affected
    const other = await socket(b, newIp());
    await other.init((await org.user('provider')).token);

    first.ws.close(1000);
    await first.closed;
    let acked: Raw | undefined;
    await until(
      async () => {
        const s = await socket(b, newIp());
        s.send({ type: 'connection_init', payload: { authorization: u.token } });
        const outcome = await Promise.race([
          s.next((f) => f.type === 'connection_ack').then(() => 'ack' as const),
          s.closed.then(() => 'closed' as const),
        ]).catch(() => 'closed' as const);
        if (outcome === 'ack') acked = s;
        return outcome === 'ack';
      },
      5_000,
      'a slot to free up',
    );
    expect(acked?.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("frees a crashed instance's slots once their lease runs out", async () => {
    const u = await org.user('provider');
    // two sockets held by an instance that died without closing them: leases nobody renews
    const redis = a.container.redis.commands;
    const [sec, micro] = await redis.time();
    const expiry = Number(sec) * 1000 + Math.floor(Number(micro) / 1000) + 1_500;
    await redis.zadd(`${a.config.redisPrefix}:lim:sockets:${org.orgId}:${u.id}`, expiry, 'ghost-1', expiry, 'ghost-2');
    const refused = await socket(a, newIp());
    refused.send({ type: 'connection_init', payload: { authorization: u.token } });
    expect((await refused.closed).code).toBe(1013);
    await sleep(1_500);
    const s = await socket(b, newIp());
    await s.init(u.token);
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('caps subscriptions per socket; completing one makes room', async () => {
    const u = await org.user('patient');
    const raw = await socket(b, newIp());
    await raw.init(u.token);
    const live = () => b.container.fanout.stats().subscriptions;
    const before = live();
    raw.send({ id: 's1', type: 'subscribe', payload: { query: ALERTS } });
    raw.send({ id: 's2', type: 'subscribe', payload: { query: 'subscription { notificationEvents { __typename } }' } });
    await until(() => live() >= before + 2, 5_000, 'two live subscriptions');
    const refused = await run(raw, 's3', ALERTS);
    expect(refused.type).toBe('error');
    expect(refused.payload[0].extensions).toEqual({ code: 'BAD_USER_INPUT', limit: 'SUBSCRIPTIONS_PER_SOCKET', max: 2 });
    raw.send({ id: 's1', type: 'complete' });
    await until(() => live() === before + 1, 5_000, 's1 to end');
    raw.send({ id: 's4', type: 'subscribe', payload: { query: ALERTS } });
    await until(() => live() === before + 2, 5_000, 's4 to be live');
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
    expect(raw.frames.filter((f) => f.type === 'error').map((f) => f.id)).toEqual(['s3']);
  });

  it('refuses a subscription whose filter is too costly, whatever the form of its arguments', async () => {
    const u = await org.user('provider');
    const raw = await socket(a, newIp());
    await raw.init(u.token);
    const regions = Array.from({ length: 11 }, (_, i) => `GB-R${i}`);
    const viaVariables = await run(raw, 'f1', ALERTS, { f: { regions } });
    expect(viaVariables.type).toBe('error');
    expect(viaVariables.payload[0].extensions).toEqual({ code: 'BAD_USER_INPUT', limit: 'FILTER_COST', max: 10 });
    const inline = await run(
      raw,
      'f2',
      `subscription { alertRaised(filter: { types: ["a","b","c","d","e","f"], regions: ["x","y","z","w","v"] }) { __typename } }`,
    );
    expect(inline.payload[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 'FILTER_COST' });
    // a root field inside an inline or a named fragment costs the same
    const inFragment = await run(
      raw,
      'f4',
      'subscription($f: AlertFilter){ ... on Subscription { alertRaised(filter: $f) { __typename } } }',
      {
        f: { regions },
      },
    );
    expect(inFragment.payload[0].extensions).toEqual({ code: 'BAD_USER_INPUT', limit: 'FILTER_COST', max: 10 });
    const inNamed = await run(
      raw,
      'f5',
      'subscription($f: AlertFilter){ ...A } fragment A on Subscription { alertRaised(filter: $f) { __typename } }',
      { f: { regions } },
    );
    expect(inNamed.payload[0].extensions).toEqual({ code: 'BAD_USER_INPUT', limit: 'FILTER_COST', max: 10 });
    // within the cap it runs
    const before = a.container.fanout.stats().subscriptions;
    raw.send({
      id: 'f3',
      type: 'subscribe',
      payload: { query: ALERTS, variables: { f: { regions: regions.slice(0, 5), minLevel: 'HIGH' } } },
    });
    await until(() => a.container.fanout.stats().subscriptions > before, 5_000, 'the filtered subscription to be live');
    expect(raw.frames.some((f) => f.id === 'f3')).toBe(false);
  });
});

describe('RATE_LIMITS=off', () => {
  it('refuses nothing: no budget, no socket, subscription or filter cap', async () => {
    const u = await offOrg.user('patient');
    const ip = newIp();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await post(off, u, ip, ME)).status);
    expect(statuses).toEqual(Array(12).fill(200));
    const raws: Raw[] = [];
    for (let i = 0; i < 4; i++) {
      const raw = await socket(off, ip);
      await raw.init(u.token);
      raws.push(raw);
    }
    const raw = raws[0]!;
    const before = off.container.fanout.stats().subscriptions;
    const regions = Array.from({ length: 20 }, (_, i) => `R${i}`);
    for (let i = 0; i < 3; i++) raw.send({ id: `s${i}`, type: 'subscribe', payload: { query: ALERTS, variables: { f: { regions } } } });
    await until(() => off.container.fanout.stats().subscriptions >= before + 3, 5_000, 'three live subscriptions');
    expect(raw.frames.filter((f) => f.type === 'error')).toEqual([]);
  });
});

describe('when Redis fails', () => {
  it('lets operations through unchecked (fail open) within RATE_LIMIT_REDIS_TIMEOUT_MS, whether Redis hangs or is down', async () => {
    const redis = await privateRedis();
    try {
      const app = await startApp({
        env: { REDIS_URL: redis.url, RATE_LIMITS: 'on', RATE_LIMIT_QUERY: '0.1/2', RATE_LIMIT_REDIS_TIMEOUT_MS: '200' },
      });
      const u = await seedOrg(app).then((o) => o.patient);
      expect([(await post(app, u, newIp(), ME)).status, (await post(app, u, newIp(), ME)).status]).toEqual([200, 200]);
      expect((await post(app, u, newIp(), ME)).status).toBe(429); // checked while Redis answers

      // a hung Redis (the process stopped, the connection open): each check waits at most the bound
      const pid = Number(/process_id:(\d+)/.exec(await app.container.redis.commands.info('server'))?.[1]);
      process.kill(pid, 'SIGSTOP');
      try {
        // the budget is spent (one token in 10 s): each of these is served only because the check fails open
        const started = performance.now();
        const hung = [await post(app, u, newIp(), ME), await post(app, u, newIp(), ME), await post(app, u, newIp(), ME)];
        expect(hung.map((r) => r.status)).toEqual([200, 200, 200]);
        expect(performance.now() - started).toBeLessThan(3 * 200 + 1_500);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      // Redis down: no wait at all
      await redis.stop('keep');
      await until(() => app.container.redis.commands.status !== 'ready', 5_000, 'the connection to notice');
      const down = [await post(app, u, newIp(), ME), await post(app, u, newIp(), ME), await post(app, u, newIp(), ME)];
      expect(down.map((r) => r.status)).toEqual([200, 200, 200]);
      const metrics = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
      expect(metrics).toMatch(/wardline_rate_limit_fail_open_total [1-9]/);
      await app.stop();
    } finally {
      await redis.dispose();
    }
  });
});
