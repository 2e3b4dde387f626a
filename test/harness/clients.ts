import { createClient, type Client, type ClientOptions } from 'graphql-ws';
import WebSocket from 'ws';
import type { TestApp } from './start-app.js';

export interface GqlResponse<T = any> {
  status: number;
  data?: T;
  errors?: Array<{ message: string; path?: string[]; extensions?: { code?: string; [k: string]: unknown } }>;
}

/** POSTs an operation over HTTP like an internal service would. */
export async function gql<T = any>(
  app: TestApp | string,
  auth: string | undefined,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GqlResponse<T>> {
  const url = typeof app === 'string' ? app : app.url;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as Omit<GqlResponse<T>, 'status'>;
  return { status: res.status, ...body };
}

/** The stock graphql-ws client on Node's `ws`. No retries unless asked. */
export function wsClient(app: TestApp, auth: string | undefined, opts: Partial<ClientOptions> = {}): Client {
  return createClient({
    url: app.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: auth ? { authorization: auth } : {},
    retryAttempts: 0,
    lazy: true,
    ...opts,
  });
}

export interface Collector<T = any> {
  items: T[];
  errors: unknown[];
  completed: boolean;
  /** Resolves when at least `n` items arrived (rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<T[]>;
  /** Resolves when the subscription errored or completed. */
  ended(ms?: number): Promise<void>;
  stop(): void;
}

/** Subscribes and collects `next` payloads' data (or the whole result with `raw`). */
export function collect<T = any>(client: Client, query: string, variables?: Record<string, unknown>): Collector<T> {
  const items: T[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const w of waiters) w();
  };
  const stop = client.subscribe<T>(
    { query, variables },
    {
      next: (v) => {
        items.push((v.data ?? v) as T);
        poke();
      },
      error: (e) => {
        errors.push(e);
        completed = true;
        poke();
      },
      complete: () => {
        completed = true;
        poke();
      },
    },
  );
  const until = (cond: () => boolean, ms: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      if (cond()) return resolve();
      const check = () => {
        if (cond()) {
          clearTimeout(t);
          waiters.delete(check);
          resolve();
        }
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for ${what} (have ${items.length} items, ${errors.length} errors)`));
      }, ms);
      waiters.add(check);
    });
  return {
    items,
    errors,
    get completed() {
      return completed;
    },
    waitFor: async (n, ms = 10_000) => {
      await until(() => items.length >= n, ms, `${n} items`);
      return items;
    },
    ended: (ms = 10_000) => until(() => completed, ms, 'the end of the subscription'),
    stop,
  };
}

/** Opens a raw graphql-transport-ws socket for protocol-level assertions. */
export function rawSocket(app: TestApp, headers: Record<string, string> = {}): WebSocket {
  return new WebSocket(app.wsUrl, 'graphql-transport-ws', { headers });
}

/** Resolves with the close code and reason of a raw socket. */
export const closed = (ws: WebSocket, ms = 10_000) =>
  new Promise<{ code: number; reason: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('socket did not close')), ms);
    ws.once('close', (code, reason) => {
      clearTimeout(t);
      resolve({ code, reason: reason.toString() });
    });
  });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 20 ms until it holds (throws after `ms`). */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const open = new Set<Client>();
/** The stock client (see {@link wsClient}) for a user or an `authorization` value, disposed by {@link disposeAll}/{@link settled} even when a test failed. */
export function connect(app: TestApp, user: { token: string } | string, opts: Partial<ClientOptions> = {}): Client {
  const c = wsClient(app, typeof user === 'string' ? user : user.token, opts);
  open.add(c);
  return c;
}

/** Disposes every client {@link connect} opened. */
export async function disposeAll(): Promise<void> {
  await Promise.all([...open].map((c) => c.dispose()));
  open.clear();
}

/** Disposes the clients of the test, then waits until the instance has no live subscriptions. */
export async function settled(app: TestApp): Promise<void> {
  await disposeAll();
  await until(() => app.container.fanout.stats().subscriptions === 0, 5_000, 'subscriptions to end');
}

/**
 * Subscribes with the stock client and resolves once the instance has the subscription live (its
 * Redis channel joined and the stream's baseline read), so events committed afterwards must arrive.
 * With `after`, the replay may still be under way when this resolves: later events are buffered
 * behind it and arrive after it, in order. Call {@link settled} between tests so the count starts
 * from a quiet instance.
 */
export async function live(app: TestApp, client: Client, query: string, variables: Record<string, unknown> = {}): Promise<Collector> {
  const before = app.container.fanout.stats().subscriptions;
  const sub = collect(client, query, variables);
  await until(() => sub.completed || app.container.fanout.stats().subscriptions > before, 5_000, 'the subscription to be live');
  return sub;
}

/** The GraphQL errors an ended stock-client subscription reported. */
export const subscriptionErrors = (sub: Collector) =>
  sub.errors.flatMap((e) => (Array.isArray(e) ? e : [e])) as Array<{ message: string; extensions?: { code?: string } }>;
