// Helpers shared by the audit tests (not a test file).
import { rowsOfOrg } from '../../src/modules/audit/repo.js';
import type { AuditRow } from '../../src/modules/audit/tables.js';
import type { TestApp } from '../harness/start-app.js';

/** The audit rows of an org as stored, after the instance's buffer was written. */
export async function auditRows(app: TestApp, orgId: string): Promise<AuditRow[]> {
  await app.container.services.audit.flush();
  return rowsOfOrg(app.container.database.db, orgId);
}

/** The rows of one root field. */
export const ofField = (rows: AuditRow[], field: string) => rows.filter((r) => r.field === field);

export const AUDIT_EVENTS = `query($f: AuditEventFilter, $first: Int, $after: String){ auditEvents(filter: $f, first: $first, after: $after){
  edges { cursor node { id at userId role transport ip socketId requestId operation operationName field objectType objectIds outcome detail } }
  pageInfo { hasNextPage endCursor } } }`;
