// Operations and helpers shared by the presence tests (not a test file).
import type { Client } from 'graphql-ws';
import { type Collector, collect, gql, until, wsClient } from '../harness/clients.js';
import type { SeededUser } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';

/** Short timings so expiry and coalescing happen within a test. */
export const PRESENCE_ENV = { PRESENCE_TTL_MS: '3000', PRESENCE_REFRESH_MS: '1000', PRESENCE_COALESCE_MS: '100' };

const FIELDS = 'userId status statusText lastSeenAt devices updatedAt version';
export const PRESENCE = `query($u:[ID!]!){ presence(userIds:$u){ ${FIELDS} } }`;
export const CHANGED = `subscription($u:[ID!]!){ presenceChanged(userIds:$u){ ${FIELDS} } }`;
export const SET = `mutation($s:PresenceStatus!, $t:String){ setPresence(status:$s, statusText:$t){ ${FIELDS} } }`;

export interface PresenceItem {
  userId: string;
  status: string;
  statusText: string | null;
  lastSeenAt: string | null;
  devices: number;
  updatedAt: string;
  version: number;
}

/** The `presenceChanged` payloads a collector received. */
export const changes = (sub: Collector): PresenceItem[] => sub.items.map((i) => i.presenceChanged);

/** Opens a graphql-ws connection (a device) and resolves once the server acknowledged it. */
export async function device(app: TestApp, user: SeededUser): Promise<Client> {
  let acked!: () => void;
  const ready = new Promise<void>((r) => (acked = r));
  const client = wsClient(app, user.token, { lazy: false, on: { connected: () => acked() } });
  await ready;
  return client;
}

/** Subscribes to `presenceChanged` and waits for the initial state of every user. */
export async function watch(app: TestApp, by: SeededUser, userIds: string[]): Promise<{ client: Client; sub: Collector }> {
  const client = wsClient(app, by.token);
  const sub = collect(client, CHANGED, { u: userIds });
  await sub.waitFor(new Set(userIds).size);
  return { client, sub };
}

/** Waits until the latest change received for `userId` satisfies `pred`; returns it. */
export async function waitForPresence(
  sub: Collector,
  userId: string,
  pred: (p: PresenceItem) => boolean,
  ms = 8_000,
): Promise<PresenceItem> {
  const last = () =>
    changes(sub)
      .filter((c) => c.userId === userId)
      .at(-1);
  await until(
    () => {
      const l = last();
      return l !== undefined && pred(l);
    },
    ms,
    `a state of ${userId}`,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last: ${JSON.stringify(last())}`);
  });
  return last()!;
}

/** Runs `setPresence` over HTTP as `user` (fails loudly on errors). */
export async function setOverHttp(app: TestApp, user: SeededUser, status: string, text?: string | null): Promise<PresenceItem> {
  const r = await gql(app, user.token, SET, text === undefined ? { s: status } : { s: status, t: text });
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  return r.data.setPresence;
}

/** Runs `setPresence` on a device's own connection (applies to that device only). */
export function setOnDevice(client: Client, status: string): Promise<PresenceItem> {
  return new Promise((resolve, reject) => {
    let result: PresenceItem | undefined;
    client.subscribe<{ setPresence: PresenceItem }>(
      { query: SET, variables: { s: status } },
      {
        next: (v) => {
          if (v.errors) reject(new Error(JSON.stringify(v.errors)));
          result = v.data?.setPresence;
        },
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error('no result'))),
      },
    );
  });
}

/** The current presence of users, queried over HTTP as `by`. */
export async function query(app: TestApp, by: SeededUser, userIds: string[]): Promise<PresenceItem[]> {
  const r = await gql(app, by.token, PRESENCE, { u: userIds });
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  return r.data.presence;
}
