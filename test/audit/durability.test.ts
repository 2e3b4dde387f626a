// The audit writer under stress: nothing lost on a graceful shutdown, entries kept through a
// PostgreSQL outage (bounded, drops counted), retention in bounded batches, rows never updated.
import { randomUUID } from 'node:crypto';
import { type Server, type Socket, connect as connectTcp, createServer } from 'node:net';
import { sql } from 'drizzle-orm';
import { describe, expect } from 'vitest';
import { rowsOf } from '../../src/db/client.js';
import { insertMany } from '../../src/modules/audit/repo.js';
import { auditWorker } from '../../src/modules/audit/jobs.js';
import { connect, gql, live } from '../harness/clients.js';
import { TEST_DATABASE_URL } from '../harness/env.js';
import { withApp } from '../harness/fixtures.js';
import { seedOrg } from '../harness/seed.js';
import { startApp, type TestApp } from '../harness/start-app.js';
import { EVENTS, SEND, conversation } from '../messaging/ops.js';
import { metric } from '../predictions/ops.js';
import { auditRows } from './ops.js';

/** A counter of the app's registry (NaN when absent). */
const counter = async (app: TestApp, name: string) => metric(await app.container.metrics.registry.metrics(), name) ?? Number.NaN;

const it = withApp({ AUDIT_RETENTION_DAYS: '30', AUDIT_RETENTION_BATCH: '100' });

/** A TCP proxy to PostgreSQL that a test can cut (every connection dropped, new ones refused) and restore. */
async function pgProxy() {
  const target = new URL(TEST_DATABASE_URL);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      const srv = createServer((client) => {
        const upstream = connectTcp(Number(target.port || 5432), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => {});
          s.on('close', () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      server = srv;
      srv.listen(port, '127.0.0.1', () => {
        port = (srv.address() as { port: number }).port;
        resolve();
      });
    });
  await listen();
  const url = new URL(TEST_DATABASE_URL);
  url.port = String(port);
  url.hostname = '127.0.0.1';
  return {
    url: url.toString(),
    async cut() {
      const closed = new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    restore: listen,
  };
}

describe('graceful shutdown', () => {
  it('every entry buffered when the app stops is written, the subscriptions’ stops included', async ({ app }) => {
    // a long interval and big batches: nothing is written before the stop
    // rate limits off: 300 sends at once from one user is the point here
    const victim = await startApp({ env: { AUDIT_FLUSH_MS: '60000', AUDIT_BATCH_SIZE: '2000', RATE_LIMITS: 'off' } });
    const org = await seedOrg(victim);
    const c = await conversation(victim, org.provider, [org.patient]);
    const client = connect(victim, org.patient);
    await live(victim, client, EVENTS, { c });
    const n = 300;
    const sent = await Promise.all(Array.from({ length: n }, (_, i) => gql(victim, org.provider.token, SEND, { c, b: `m${i}` })));
    expect(sent.every((r) => !r.errors)).toBe(true);
    const db = app.container.database.db; // another instance's connection reads the table
    const count = async () =>
      rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from audit_events where org_id = ${org.orgId}`))[0]?.n;
    expect(await count()).toBe(0);
    expect(victim.container.services.audit.writer.buffered).toBe(n + 2);
    await victim.stop(); // the API closes (the subscription stops: one more entry), then the container flushes
    const rows = await auditRows(app, org.orgId);
    expect(rows).toHaveLength(n + 3);
    expect(rows.filter((r) => r.field === 'sendMessage' && r.outcome === 'ok')).toHaveLength(n);
    expect(rows.filter((r) => r.field === 'conversationEvents').map((r) => [r.operation, r.detail])).toEqual([
      ['subscribe', null],
      ['unsubscribe', { reason: 'closed' }],
    ]);
  });
});

describe('batching', () => {
  it('a steady trickle is written once per AUDIT_FLUSH_MS, not once per entry', async () => {
    const app = await startApp({ env: { AUDIT_FLUSH_MS: '400', RATE_LIMITS: 'off' } });
    const org = await seedOrg(app);
    const c = await conversation(app, org.provider, [org.patient]);
    await app.container.services.audit.flush();
    const before = await counter(app, 'wardline_audit_batches_total');
    const t0 = Date.now();
    for (let i = 0; i < 60; i++) await gql(app, org.patient.token, `query($id: ID!){ conversation(id: $id){ id } }`, { id: c });
    const ms = Date.now() - t0;
    await app.container.services.audit.flush();
    expect(await counter(app, 'wardline_audit_written_total')).toBeGreaterThanOrEqual(61);
    const batches = (await counter(app, 'wardline_audit_batches_total')) - before;
    expect(batches).toBeLessThanOrEqual(Math.ceil(ms / 400) + 2);
    expect((await auditRows(app, org.orgId)).filter((r) => r.field === 'conversation')).toHaveLength(60);
    await app.stop();
  });
});

describe('an entry that cannot be encoded', () => {
  it('is dropped and counted; the request that recorded it and the entries around it are unaffected', async ({ app }) => {
    const org = await seedOrg(app);
    const audit = app.container.services.audit;
    const droppedBefore = await counter(app, 'wardline_audit_dropped_total');
    const entry = (requestId: string, detail: Record<string, unknown> | null) => ({
      at: new Date(),
      orgId: org.orgId,
      userId: `${org.orgId}:u`,
      role: 'admin',
      transport: 'http',
      ip: null,
      socketId: null,
      requestId,
      operation: 'mutation' as const,
      operationName: null,
      field: 'promoteModel',
      objectType: 'Model',
      objectIds: [],
      outcome: 'ok',
      detail,
    });
    // a detail JSON cannot hold: recording it does not throw into the caller
    expect(() => audit.record(entry('bad', { version: 1n }))).not.toThrow();
    audit.record(entry('good', { version: 1 }));
    await audit.flush();
    expect(await counter(app, 'wardline_audit_dropped_total')).toBe(droppedBefore + 1);
    const rows = (await auditRows(app, org.orgId)).filter((r) => r.field === 'promoteModel');
    expect(rows.map((r) => r.requestId)).toEqual(['good']);
  });
});

describe('PostgreSQL outage', () => {
  it('keeps up to AUDIT_MAX_BUFFER entries (beyond: dropped and counted) and writes them once it is back', async ({ app }) => {
    const proxy = await pgProxy();
    const victim = await startApp({
      env: { DATABASE_URL: proxy.url, AUDIT_FLUSH_MS: '60000', AUDIT_BATCH_SIZE: '2000', AUDIT_MAX_BUFFER: '100', RATE_LIMITS: 'off' },
    });
    const org = await seedOrg(victim);
    const c = await conversation(victim, org.provider, [org.patient]); // 1 entry
    await Promise.all(
      Array.from({ length: 120 }, () => gql(victim, org.patient.token, `query($id: ID!){ conversation(id: $id){ id } }`, { id: c })),
    );
    expect(victim.container.services.audit.writer.buffered).toBe(100);
    expect(await counter(victim, 'wardline_audit_dropped_total')).toBe(21);

    await proxy.cut();
    await victim.container.services.audit.flush(); // fails: the entries stay buffered
    expect(await counter(victim, 'wardline_audit_write_failures_total')).toBeGreaterThanOrEqual(1);
    expect(victim.container.services.audit.writer.buffered).toBe(100);
    expect(await auditRows(app, org.orgId)).toHaveLength(0);

    await proxy.restore();
    await victim.container.services.audit.flush();
    expect(victim.container.services.audit.writer.buffered).toBe(0);
    const rows = await auditRows(app, org.orgId);
    expect(rows).toHaveLength(100);
    expect(rows[0]?.field).toBe('createConversation'); // the oldest are kept
    await victim.stop();
    await proxy.cut();
  });
});

describe('retention and append-only', () => {
  it('the worker duty deletes rows older than AUDIT_RETENTION_DAYS in bounded batches and keeps the rest', async ({ app }) => {
    const orgId = `org-${randomUUID()}`;
    const row = (daysAgo: number, i: number) => ({
      at: new Date(Date.now() - daysAgo * 86_400_000),
      orgId,
      userId: `${orgId}:u`,
      role: 'provider',
      transport: 'http',
      ip: null,
      socketId: null,
      requestId: `r${i}`,
      operation: 'query' as const,
      operationName: null,
      field: 'conversation',
      objectType: 'Conversation',
      objectIds: [`c${i}`],
      outcome: 'ok',
      detail: null,
    });
    const db = app.container.database.db;
    await insertMany(db, [
      ...Array.from({ length: 250 }, (_, i) => row(31 + (i % 5), i)),
      ...Array.from({ length: 5 }, (_, i) => row(29, 1000 + i)),
    ]);
    const { duties } = await auditWorker(app.container as never, { audit: app.container.services.audit });
    const duty = duties.periodic.find((p) => p.name === 'audit-retention');
    expect(duty?.everyMs).toBe(app.config.audit.retentionEveryMs);
    await duty?.run();
    const left = await auditRows(app, orgId);
    expect(left.map((r) => r.requestId).sort()).toEqual(['r1000', 'r1001', 'r1002', 'r1003', 'r1004']);
  });

  it('rows cannot be updated', async ({ app }) => {
    const org = await seedOrg(app);
    await conversation(app, org.provider, [org.patient]);
    const [r] = await auditRows(app, org.orgId);
    await expect(app.container.database.db.execute(sql`update audit_events set outcome = 'x' where id = ${r?.id}`)).rejects.toThrow();
    expect((await auditRows(app, org.orgId))[0]?.outcome).toBe('ok');
  });
});
