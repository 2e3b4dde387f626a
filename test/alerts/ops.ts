// Operations and helpers shared by the alert tests (not a test file).
import { expect } from 'vitest';
import { type Collector, gql, sleep } from '../harness/clients.js';
import type { SeededUser } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';

export const ALERT_FIELDS = `id level type title body location { lat lng } regionCode riskScore actionRequired actionUrl
  expiresAt audience { kind roles userIds } raisedById createdAt escalatedAt`;

export const RAISE = `mutation($i: RaiseAlertInput!){ raiseAlert(input: $i) { ${ALERT_FIELDS} } }`;
export const ACK = `mutation($id: ID!){ acknowledgeAlert(id: $id) { id acknowledgements { user { id name role } at } acknowledgedByMe } }`;
export const LIST = `query($f: AlertFilter, $n: Int, $a: String, $x: Boolean){ alerts(filter: $f, first: $n, after: $a, includeExpired: $x) {
  edges { cursor node { id title } } pageInfo { hasNextPage endCursor } } }`;
export const EVENTS = `subscription($f: AlertFilter, $a: String){ alertRaised(filter: $f, after: $a) {
  __typename
  ... on StreamEvent { cursor at }
  ... on AlertRaised { alert { id title level escalatedAt } }
  ... on AlertAcknowledged { alertId userId user { id name } alert { id } }
  ... on AlertEscalated { alert { id title escalatedAt } }
} }`;

/** The `alertRaised` payloads of a collector. */
export const events = (sub: Collector) => sub.items.map((i) => i.alertRaised);
/** The titles of the alerts a collector received, in order (`Type:title`). */
export const seen = (sub: Collector) =>
  events(sub).map((e) => (e.__typename === 'AlertRaised' ? e.alert.title : `${e.__typename}:${e.alert.id}`));

/** Raises an alert and returns it (fails the test on errors). */
export async function raise(app: TestApp, by: SeededUser, input: Record<string, unknown>) {
  const r = await gql(app, by.token, RAISE, { i: { level: 'LOW', type: 'test', ...input } });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.raiseAlert as { id: string; title: string; escalatedAt: string | null; [k: string]: unknown };
}

/** Titles of the alerts `user` lists with this filter. */
export async function listed(app: TestApp, user: SeededUser, f?: Record<string, unknown>, includeExpired = false) {
  const r = await gql(app, user.token, LIST, { f, n: 100, x: includeExpired });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.alerts.edges.map((e: { node: { title: string } }) => e.node.title) as string[];
}

/** Waits until every collector has its expected count, then a quiet period, and returns what they saw. */
export async function settle(subs: Array<[Collector, number]>, quietMs = 400): Promise<void> {
  await Promise.all(subs.map(([s, n]) => s.waitFor(n, 10_000)));
  await sleep(quietMs);
}
