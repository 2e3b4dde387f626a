/**
 * Details a service attaches to what it returns for the audit row of that root field (e.g. a
 * promotion's old and new version): a symbol-keyed property, invisible to GraphQL and JSON.
 * Ids and versions only, never content.
 */
const AUDIT_DETAIL = Symbol.for('wardline.auditDetail');

/** Returns `value` carrying `detail` for its audit row. */
export function withAuditDetail<T extends object>(value: T, detail: Record<string, unknown>): T {
  Object.defineProperty(value, AUDIT_DETAIL, { value: detail, enumerable: false });
  return value;
}

/** The detail a resolver's value carries, or null. */
export function auditDetailOf(value: unknown): Record<string, unknown> | null {
  if (!value || typeof value !== 'object') return null;
  return ((value as Record<symbol, unknown>)[AUDIT_DETAIL] as Record<string, unknown> | undefined) ?? null;
}
