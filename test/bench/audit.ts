// The audit log's own costs (not a test): what recording one entry costs on the request path, and how
// fast the writer stores entries in PostgreSQL (multi-row INSERT batches). See docs/audit.md.
//
//   npm run bench:audit          (BENCH_DATABASE_URL, default $TEST_DATABASE_URL or …/wardline_test)
//   BENCH_AUDIT_ENTRIES=50000    entries written in the write-rate part (default 50,000)
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { sql } from 'drizzle-orm';
import { type GraphQLResolveInfo, Kind, OperationTypeNode } from 'graphql';
import { Registry } from 'prom-client';
import { openDatabase } from '../../src/db/client.js';
import { createAuditService } from '../../src/modules/audit/service.js';
import { createAuditWriter } from '../../src/modules/audit/writer.js';
import { createCursorCodec } from '../../src/shared/cursor.js';
import { createLogger } from '../../src/shared/logger.js';
import { ensureDatabase, fmt, fmtInt } from './common.js';

const env = process.env;
const url = env.BENCH_DATABASE_URL ?? env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/wardline_test';
const entries = Math.max(1_000, Number(env.BENCH_AUDIT_ENTRIES ?? 50_000));
const orgId = `bench-audit-${randomUUID().slice(0, 8)}`;

await ensureDatabase(url);
const database = await openDatabase(url, '.data');
await database.migrate();
const logger = createLogger('warn');
const limits = { maxDepth: 12, maxAliases: 15, maxTokens: 2000, maxCost: 5000, maxDirectives: 50, maxPageSize: 100, defaultPageSize: 20 };
const base = { enabled: true, retentionDays: 2190, retentionBatch: 10_000, retentionEveryMs: 3_600_000 };

/** A service whose writer writes every `flushMs` in batches of `batchSize`. */
const service = (flushMs: number, batchSize: number, maxBuffer = 10_000_000) =>
  createAuditService({
    db: database.db,
    logger,
    cursors: createCursorCodec('x'.repeat(32)),
    limits,
    config: { ...base, flushMs, batchSize, maxBuffer },
    writer: createAuditWriter({ db: database.db, logger, config: { flushMs, batchSize, maxBuffer }, registry: new Registry() }),
  });

// what a sendMessage records: its input ids and the message returned
const ctx = {
  viewer: { userId: `${orgId}:u`, orgId, role: 'provider' as const, name: 'u' },
  requestId: randomUUID(),
  transport: 'http' as const,
  ip: '127.0.0.1',
};
const info = {
  operation: { operation: OperationTypeNode.MUTATION, kind: Kind.OPERATION_DEFINITION, name: undefined },
} as unknown as GraphQLResolveInfo;
const policy = { field: 'sendMessage', objectType: 'Message' };
const args = { input: { conversationId: randomUUID(), body: 'hello', clientMessageId: 'k1' } };
const value = { id: randomUUID(), conversationId: args.input.conversationId, body: 'hello', sender: { id: ctx.viewer.userId } };

// 1. request path: recording only (the writer's interval is long, nothing is written meanwhile)
{
  const a = service(3_600_000, 1_000_000);
  for (let i = 0; i < 20_000; i++) a.field(ctx, info, policy, args, value, false); // warm-up
  const n = 200_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) a.field(ctx, info, policy, args, value, false);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`request path: ${fmt(ns / 1000, 2)} µs per recorded root field (${fmtInt(n)} entries, buffered, no I/O)`);
  // drop what was buffered without writing it
  (a.writer as { close(): Promise<void> }).close = async () => {};
}

// 2. write rate: `entries` entries through the writer (batches of 500), CPU of this process per entry
{
  const a = service(250, 500);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < entries; i++) a.field(ctx, info, policy, args, value, false);
  await a.writer.close();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = (cpu.user + cpu.system) / entries;
  console.log(
    `write rate: ${fmtInt(entries)} entries in ${fmtInt(ms)} ms = ${fmtInt((entries / ms) * 1000)} rows/s in batches of 500; ` +
      `${fmt(cpuUs, 1)} µs CPU of the API process per entry (record + INSERT)`,
  );
}

console.log(
  `(${cpus().length} cores, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')})`,
);
await database.db.execute(sql`delete from audit_events where org_id = ${orgId}`);
await database.close();
