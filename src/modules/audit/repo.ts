import { and, arrayContains, desc, eq, gte, lte, sql } from 'drizzle-orm';
import { type Executor, rowsOf } from '../../db/client.js';
import { type AuditInsert, type AuditOperation, type AuditRow, auditEvents } from './tables.js';

/**
 * Writes a batch of entries in one INSERT whose rows come from a single JSON parameter
 * (`jsonb_to_recordset`): one JSON.stringify instead of 16 bound parameters per row, which
 * measured about 10× less CPU in the API process than a multi-row VALUES insert (docs/audit.md).
 */
export async function insertMany(db: Executor, rows: readonly AuditInsert[]): Promise<void> {
  if (!rows.length) return;
  const json = JSON.stringify(
    rows.map((r) => ({
      at: r.at,
      org_id: r.orgId,
      user_id: r.userId,
      role: r.role,
      transport: r.transport,
      ip: r.ip ?? null,
      socket_id: r.socketId ?? null,
      request_id: r.requestId,
      operation: r.operation,
      operation_name: r.operationName ?? null,
      field: r.field,
      object_type: r.objectType,
      object_ids: r.objectIds ?? [],
      outcome: r.outcome,
      detail: r.detail ?? null,
    })),
  );
  await db.execute(sql`insert into audit_events
      (at, org_id, user_id, role, transport, ip, socket_id, request_id, operation, operation_name, field, object_type, object_ids, outcome, detail)
    select at, org_id, user_id, role, transport, ip, socket_id, request_id, operation, operation_name, field, object_type, object_ids, outcome, detail
    from jsonb_to_recordset(${json}::jsonb) as r(
      at timestamptz, org_id text, user_id text, role text, transport text, ip text, socket_id text, request_id text,
      operation text, operation_name text, field text, object_type text, object_ids text[], outcome text, detail jsonb)`);
}

/** What `auditEvents` filters on (all optional, combined with AND). */
export interface AuditFilter {
  userId?: string;
  objectType?: string;
  objectId?: string;
  operation?: AuditOperation;
  outcome?: string;
  from?: Date;
  to?: Date;
}

/** One page of an organisation's audit rows, newest first by (at, id), after the row `afterId`. */
export async function page(db: Executor, orgId: string, f: AuditFilter, limit: number, afterId?: number): Promise<AuditRow[]> {
  const t = auditEvents;
  return db
    .select()
    .from(t)
    .where(
      and(
        eq(t.orgId, orgId),
        f.userId !== undefined ? eq(t.userId, f.userId) : undefined,
        f.objectType !== undefined ? eq(t.objectType, f.objectType) : undefined,
        f.objectId !== undefined ? arrayContains(t.objectIds, [f.objectId]) : undefined,
        f.operation !== undefined ? eq(t.operation, f.operation) : undefined,
        f.outcome !== undefined ? eq(t.outcome, f.outcome) : undefined,
        f.from !== undefined ? gte(t.at, f.from) : undefined,
        f.to !== undefined ? lte(t.at, f.to) : undefined,
        afterId !== undefined
          ? sql`(${t.at}, ${t.id}) < (select k.at, k.id from ${t} k where k.id = ${afterId} and k.org_id = ${orgId})`
          : undefined,
      ),
    )
    .orderBy(desc(t.at), desc(t.id))
    .limit(limit);
}

/**
 * Deletes up to `limit` rows older than `before` (every organisation), oldest first; returns how
 * many went. Bounded so a large backlog never holds one long transaction.
 */
export async function deleteOlderThan(db: Executor, before: Date, limit: number): Promise<number> {
  const t = auditEvents;
  const res = await db.execute(
    sql`with doomed as (select id from ${t} where ${t.at} < ${before.toISOString()}::timestamptz order by ${t.at} limit ${limit})
        delete from ${t} where id in (select id from doomed) returning 1`,
  );
  return rowsOf(res).length;
}

/** Rows of one organisation (tests and tools). */
export const rowsOfOrg = (db: Executor, orgId: string) =>
  db.select().from(auditEvents).where(eq(auditEvents.orgId, orgId)).orderBy(auditEvents.id);
