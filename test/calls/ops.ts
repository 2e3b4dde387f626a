// Operations and helpers shared by the call tests (not a test file).
import type { Client } from 'graphql-ws';
import { expect } from 'vitest';
import type { Duties } from '../../src/jobs/define.js';
import { type Collector, type GqlResponse, connect, gql, live } from '../harness/clients.js';
import type { SeededUser } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';

export const CALL_FIELDS = `id kind media state reason ringRemainingMs ringDeadline calleeBusy createdAt acceptedAt connectedAt endedAt durationSeconds
  callbackOf initiator { id } participants { user { id } role state deviceId reason }`;

export const START = `mutation($i: StartCallInput!){ startCall(input: $i) { ${CALL_FIELDS} } }`;
export const ACCEPT = `mutation($id: ID!, $d: String){ acceptCall(id: $id, deviceId: $d) { ${CALL_FIELDS} } }`;
export const REJECT = `mutation($id: ID!){ rejectCall(id: $id) { ${CALL_FIELDS} } }`;
export const END = `mutation($id: ID!, $r: CallEndReason){ endCall(id: $id, reason: $r) { ${CALL_FIELDS} } }`;
export const SIGNAL = `mutation($i: CallSignalInput!){ sendCallSignal(input: $i) }`;
export const CALL = `query($id: ID!){ call(id: $id) { ${CALL_FIELDS} } }`;

export const EVENTS = `subscription($a: String, $d: String){ callEvents(after: $a, deviceId: $d) {
  __typename
  ... on StreamEvent { cursor at }
  ... on ActiveCall { call { id state ringRemainingMs } }
  ... on IncomingCall { call { id state ringRemainingMs kind media initiator { id } } }
  ... on CallStateChanged { from to reason actor { id } answeredBy { userId deviceId } call { id state durationSeconds participants { user { id } state deviceId } } }
  ... on CallSignal { callId sender { id } fromDeviceId toDeviceId kind payload seq }
} }`;

export type CallView = {
  id: string;
  state: string;
  reason: string | null;
  ringRemainingMs: number;
  participants: Array<{ user: { id: string }; role: string; state: string; deviceId: string | null; reason: string | null }>;
  [k: string]: unknown;
};

/** The callEvents payloads of a collector. */
export const events = (sub: Collector) => sub.items.map((i) => i.callEvents);
export const kinds = (sub: Collector) => events(sub).map((e) => e.__typename as string);
export const ofType = (sub: Collector, t: string) => events(sub).filter((e) => e.__typename === t);
/** Whether a client following the documented rule would ring for this event. */
export const shouldRing = (e: { __typename: string; call: { state: string; ringRemainingMs: number } }) =>
  (e.__typename === 'IncomingCall' || e.__typename === 'ActiveCall') && e.call.state === 'RINGING' && e.call.ringRemainingMs > 0;

export async function ok<T = any>(p: Promise<GqlResponse<T>>): Promise<T> {
  const r = await p;
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data as T;
}

let n = 0;
export const key = () => `k-${process.pid}-${Date.now()}-${n++}`;

export async function start(app: TestApp, by: SeededUser, input: Record<string, unknown>): Promise<CallView> {
  return (await ok(gql(app, by.token, START, { i: { media: 'VIDEO', clientCallId: key(), ...input } }))).startCall;
}
export const accept = (app: TestApp, by: SeededUser, id: string, d?: string) => gql(app, by.token, ACCEPT, { id, d });
export const reject = (app: TestApp, by: SeededUser, id: string) => gql(app, by.token, REJECT, { id });
export const end = (app: TestApp, by: SeededUser, id: string, r?: string) => gql(app, by.token, END, { id, r });
export const signal = (app: TestApp, by: SeededUser, i: Record<string, unknown>) => gql(app, by.token, SIGNAL, { i });
export const getCall = async (app: TestApp, by: SeededUser, id: string): Promise<CallView | null> =>
  (await ok(gql(app, by.token, CALL, { id }))).call;

/** A device: a graphql-ws connection of `user` on `app` with callEvents open under `deviceId`. */
export interface Device {
  user: SeededUser;
  id: string;
  client: Client;
  feed: Collector;
}
export async function device(app: TestApp, user: SeededUser, id: string, after?: string): Promise<Device> {
  const client = connect(app, user);
  const feed = await live(app, client, EVENTS, { d: id, a: after });
  return { user, id, client, feed };
}

/** Runs a query or mutation over a device's WebSocket (so the server sees its connection). */
export function overSocket<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}): Promise<GqlResponse<T>> {
  return new Promise((resolve, reject) => {
    let result: GqlResponse<T> | undefined;
    client.subscribe<T>(
      { query, variables },
      {
        next: (v) => {
          result = { status: 200, data: (v.data ?? undefined) as T, errors: v.errors as GqlResponse['errors'] };
        },
        error: (e) => (Array.isArray(e) ? resolve({ status: 200, errors: e as GqlResponse['errors'] }) : reject(e)),
        complete: () => resolve(result ?? { status: 200 }),
      },
    );
  });
}

/** A conversation of these users (created by the first), returning its id. */
export async function conversation(app: TestApp, by: SeededUser, others: SeededUser[], kind = 'GROUP'): Promise<string> {
  const r = await ok(
    gql(app, by.token, `mutation($k: ConversationKind!, $m: [ID!]!){ createConversation(input: {kind: $k, memberIds: $m}) { id } }`, {
      k: kind,
      m: others.map((u) => u.id),
    }),
  );
  return r.createConversation.id as string;
}

export const inbox = async (app: TestApp, user: SeededUser) =>
  (await ok(gql(app, user.token, `{ notifications(first: 50) { edges { node { kind title data } } } }`))).notifications.edges.map(
    (e: { node: unknown }) => e.node,
  ) as Array<{ kind: string; title: string; data: Record<string, unknown> }>;
export const missedCalls = async (app: TestApp, user: SeededUser, callId: string) =>
  (await inbox(app, user)).filter((n) => n.kind === 'MISSED_CALL' && n.data.callId === callId);

/**
 * The container's worker duties without the reminders module's: a tick or reconciler of an
 * unscoped worker claims every organisation's due reminders, and the test database is shared
 * with the reminders tests.
 */
export function callWorkerDuties(app: TestApp): Duties {
  const d = app.container.duties as Duties;
  return { jobs: d.jobs.filter((j) => j.def.queue !== 'reminders'), periodic: d.periodic.filter((p) => !p.name.startsWith('reminder')) };
}
