// `auditEvents`: org admins only, their org's rows only, filters, and forward paging with signed cursors.
import { describe, expect } from 'vitest';
import { gql } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import { type SeededOrg, seedOrg } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import { SEND, conversation, send } from '../messaging/ops.js';
import { AUDIT_EVENTS } from './ops.js';

const it = withApp({ AUDIT_FLUSH_MS: '50' });

type Node = {
  id: string;
  at: string;
  userId: string;
  operation: string;
  field: string;
  objectType: string;
  objectIds: string[];
  outcome: string;
};

/** An org with a known history: a conversation, two messages, a read, a refused send. */
async function history(app: TestApp) {
  const org = await seedOrg(app);
  const c = await conversation(app, org.provider, [org.patient]);
  const m1 = await send(app, org.provider, c, 'one');
  const m2 = await send(app, org.patient, c, 'two');
  await gql(app, org.patient.token, `query($id: ID!){ conversation(id: $id){ id } }`, { id: c });
  const outsider = await org.user('patient');
  await gql(app, outsider.token, SEND, { c, b: 'nope' });
  await app.container.services.audit.flush();
  return { org, c, m1, m2, outsider };
}

const events = async (app: TestApp, org: SeededOrg, f: Record<string, unknown> = {}, first = 50, after?: string) => {
  const r = await gql(app, org.admin.token, AUDIT_EVENTS, { f, first, after });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.auditEvents as {
    edges: Array<{ cursor: string; node: Node }>;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
};
/** The rows of a page, less the admin's own reads of the log (recorded too, see the last test). */
const nodes = (p: { edges: Array<{ node: Node }> }) => p.edges.map((e) => e.node).filter((n) => n.field !== 'auditEvents');

describe('auditEvents', () => {
  it('org admins only: patients, providers and services get FORBIDDEN', async ({ app }) => {
    const org = await seedOrg(app);
    for (const u of [org.patient, org.provider, org.service]) {
      const r = await gql(app, u.token, AUDIT_EVENTS, {});
      expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(r.data).toBeNull();
    }
    expect((await gql(app, undefined, AUDIT_EVENTS, {})).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('newest first, every filter, and an admin of another org sees none of it', async ({ app }) => {
    const { org, c, m1, m2, outsider } = await history(app);
    const all = nodes(await events(app, org));
    expect(all.map((n) => n.field)).toEqual(['sendMessage', 'conversation', 'sendMessage', 'sendMessage', 'createConversation']);
    for (let i = 1; i < all.length; i++) expect(Date.parse(all[i - 1]!.at)).toBeGreaterThanOrEqual(Date.parse(all[i]!.at));

    expect(nodes(await events(app, org, { userId: org.patient.id })).map((n) => n.field)).toEqual(['conversation', 'sendMessage']);
    expect(nodes(await events(app, org, { objectType: 'Message' }))).toHaveLength(3);
    expect(nodes(await events(app, org, { objectId: m1 })).map((n) => n.userId)).toEqual([org.provider.id]);
    expect(nodes(await events(app, org, { objectId: m2 })).map((n) => n.userId)).toEqual([org.patient.id]);
    expect(nodes(await events(app, org, { objectId: c }))).toHaveLength(5);
    expect(nodes(await events(app, org, { operation: 'QUERY' })).map((n) => n.field)).toEqual(['conversation']);
    const refused = nodes(await events(app, org, { outcome: all[0]!.outcome }));
    expect(refused).toEqual([expect.objectContaining({ userId: outsider.id, field: 'sendMessage' })]);
    expect(refused[0]!.outcome).toMatch(/FORBIDDEN|NOT_FOUND/);
    expect(nodes(await events(app, org, { outcome: 'ok', operation: 'MUTATION' }))).toHaveLength(3);
    // a time window: from the second row's time to the fourth's (inclusive)
    const window = nodes(await events(app, org, { from: all[3]!.at, to: all[1]!.at }));
    expect(window.map((n) => n.id)).toEqual(all.slice(1, 4).map((n) => n.id));
    expect(nodes(await events(app, org, { from: new Date(Date.now() + 60_000).toISOString() }))).toEqual([]);

    const other = await seedOrg(app);
    expect(nodes(await events(app, other, { userId: org.provider.id }))).toEqual([]);
    expect(nodes(await events(app, other, { objectId: c }))).toEqual([]);
    expect(nodes(await events(app, other)).every((n) => n.userId.startsWith(other.orgId))).toBe(true);
  });

  it('pages forward with signed cursors bound to the org; a tampered or foreign cursor is BAD_USER_INPUT', async ({ app }) => {
    const { org } = await history(app);
    const all = (await events(app, org, { operation: 'MUTATION' })).edges.map((e) => e.node);
    const seen: Node[] = [];
    let after: string | undefined;
    for (;;) {
      const p = await events(app, org, { operation: 'MUTATION' }, 2, after);
      seen.push(...p.edges.map((e) => e.node));
      if (!p.pageInfo.hasNextPage) break;
      after = p.pageInfo.endCursor ?? undefined;
    }
    expect(seen.map((n) => n.id)).toEqual(all.map((n) => n.id));
    const page = await events(app, org, {}, 1);
    const cursor = page.pageInfo.endCursor as string;
    const tampered = `${Buffer.from('1').toString('base64url')}${cursor.slice(cursor.indexOf('.'))}`;
    expect((await gql(app, org.admin.token, AUDIT_EVENTS, { first: 1, after: tampered })).errors?.[0]?.extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    const other = await seedOrg(app);
    expect((await gql(app, other.admin.token, AUDIT_EVENTS, { first: 1, after: cursor })).errors?.[0]?.extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    const back = await gql(app, org.admin.token, `{ auditEvents(last: 2){ edges { cursor } } }`);
    expect(back.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const inverted = await gql(app, org.admin.token, AUDIT_EVENTS, {
      f: { from: new Date().toISOString(), to: new Date(0).toISOString() },
    });
    expect(inverted.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('reading the audit log is itself recorded', async ({ app }) => {
    const org = await seedOrg(app);
    await events(app, org, { objectType: 'Message' });
    await app.container.services.audit.flush();
    const mine = (await events(app, org, { objectType: 'AuditEvent' })).edges.map((e) => e.node);
    expect(mine[mine.length - 1]).toMatchObject({ field: 'auditEvents', operation: 'QUERY', userId: org.admin.id, outcome: 'ok' });
  });
});
