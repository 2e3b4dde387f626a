import { type SQL, sql } from 'drizzle-orm';
import type { AnyPgColumn, PgTable } from 'drizzle-orm/pg-core';

/**
 * Keyset condition for newest-first lists: rows strictly older than the row `afterId` by
 * (created_at, id), with that row's exact key read from the table (no timestamp precision lost
 * in a cursor). The table needs `id`, `created_at` and `org_id` columns.
 */
export function olderThanRow(
  table: PgTable & { createdAt: AnyPgColumn; id: AnyPgColumn },
  orgId: string,
  afterId: string | undefined,
): SQL | undefined {
  if (afterId === undefined) return undefined;
  return sql`(${table.createdAt}, ${table.id}) < (select k.created_at, k.id from ${table} k where k.id = ${afterId} and k.org_id = ${orgId})`;
}
