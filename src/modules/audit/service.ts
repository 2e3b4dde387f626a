import { type ExecutionArgs, type GraphQLResolveInfo, type OperationDefinitionNode, getArgumentValues, getVariableValues } from 'graphql';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { CursorCodec } from '../../shared/cursor.js';
import { badInput, forbidden, isCoded } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { rootFields } from '../../shared/root-fields.js';
import { type PageArgs, clampPage } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import { auditDetailOf } from './detail.js';
import { type FieldPolicy, argumentIds, policyOf, resultIds } from './policy.js';
import * as repo from './repo.js';
import { AUDIT_OPERATIONS, type AuditOperation, type AuditRow } from './tables.js';
import type { AuditEntry, AuditWriter } from './writer.js';

/** What the audit reads of an operation's context (the GraphQL context has these fields). */
export interface AuditContext {
  viewer: Viewer | undefined;
  requestId: string;
  transport: 'http' | 'ws';
  socketId?: string;
  ip?: string;
}

/** A subscription's audit trail: a `subscribe` row when it starts or is refused, `unsubscribe` when it stops. */
export interface SubscriptionTrail {
  started(): void;
  /** Ends the trail: before `started` it records a refused subscribe (with the errors' code), after it an unsubscribe. */
  ended(reason: 'complete' | 'closed' | 'done' | 'error', errors?: readonly unknown[]): void;
}

export interface AuditDeps {
  db: Db;
  logger: Logger;
  cursors: CursorCodec;
  config: Config['audit'];
  limits: Config['limits'];
  writer: AuditWriter;
}

const outcomeOf = (err: unknown) => (isCoded(err) ? String(err.extensions.code) : 'INTERNAL_SERVER_ERROR');

const filterInput = z.object({
  userId: z.string().min(1).max(300).nullish(),
  objectType: z.string().min(1).max(100).nullish(),
  objectId: z.string().min(1).max(300).nullish(),
  operation: z.enum(AUDIT_OPERATIONS).nullish(),
  outcome: z.string().min(1).max(100).nullish(),
  from: z.date().nullish(),
  to: z.date().nullish(),
});
export type AuditFilterInput = z.input<typeof filterInput>;

const undef = <T>(v: T | null | undefined) => (v === null ? undefined : v);

/** The audit log: what resolvers and the WebSocket protocol record, and the admins' query. */
export function createAuditService(deps: AuditDeps) {
  const { db, writer, cursors } = deps;
  const enabled = deps.config.enabled;

  const entry = (
    ctx: AuditContext,
    operation: AuditOperation,
    operationName: string | undefined,
    policy: FieldPolicy,
    ids: Set<string>,
    outcome: string,
    detail: Record<string, unknown> | null = null,
  ): AuditEntry | undefined => {
    const v = ctx.viewer;
    if (!v) return undefined; // nothing is served to an anonymous caller; not recorded (docs/audit.md)
    return {
      at: new Date(),
      orgId: v.orgId,
      userId: v.userId,
      role: v.role,
      transport: ctx.transport,
      ip: ctx.ip ?? null,
      socketId: ctx.socketId ?? null,
      requestId: ctx.requestId,
      operation,
      operationName: operationName?.slice(0, 100) ?? null,
      field: policy.field,
      objectType: policy.objectType,
      objectIds: [...ids],
      outcome,
      detail,
    };
  };

  const record = (e: AuditEntry | undefined) => {
    if (e) writer.record(e);
  };

  const SCOPE = 'audit-page';

  return {
    enabled,
    writer,

    /**
     * Records one resolved (or failed) query or mutation root field. Called by the root-field
     * wrapper (capture.ts) after the resolver settled; no I/O here (the writer buffers).
     */
    field(
      ctx: AuditContext,
      info: GraphQLResolveInfo,
      policy: FieldPolicy,
      args: Record<string, unknown>,
      value: unknown,
      failed: boolean,
    ) {
      if (!ctx.viewer) return;
      const ids = argumentIds(args);
      if (!failed) resultIds(value, ids);
      const op = info.operation.operation === 'mutation' ? 'mutation' : 'query';
      record(
        entry(ctx, op, info.operation.name?.value, policy, ids, failed ? outcomeOf(value) : 'ok', failed ? null : auditDetailOf(value)),
      );
    },

    /** The trail of a subscription about to start (undefined when audit is off or the field is not audited). */
    subscription(ctx: AuditContext, args: ExecutionArgs, op: OperationDefinitionNode): SubscriptionTrail | undefined {
      if (!enabled || !ctx.viewer) return undefined;
      // its one root field, also when it is written inside a fragment (validation allows one root field)
      const root = rootFields(op, args.document)[0];
      const def = root ? args.schema.getSubscriptionType()?.getFields()[root.name.value] : undefined;
      const policy = def && policyOf(def);
      if (!def || !policy || !root) return undefined;
      const ids = new Set<string>();
      try {
        const vars = getVariableValues(args.schema, op.variableDefinitions ?? [], args.variableValues ?? {});
        if (!vars.errors) argumentIds(getArgumentValues(def, root, vars.coerced), ids);
      } catch {
        // arguments that do not coerce: the subscribe is refused and recorded without ids
      }
      const name = op.name?.value;
      // the trail lives as long as the subscription: it keeps these few values, not the whole context
      const who: AuditContext = {
        viewer: ctx.viewer,
        requestId: ctx.requestId,
        transport: ctx.transport,
        socketId: ctx.socketId,
        ip: ctx.ip,
      };
      let started = false;
      let ended = false;
      return {
        started() {
          if (started || ended) return;
          started = true;
          record(entry(who, 'subscribe', name, policy, ids, 'ok'));
        },
        ended(reason, errors) {
          if (ended) return;
          ended = true;
          if (!started) {
            // refused (its errors' code), answered at once without a stream ('done'), or cancelled by the client first
            const outcome = errors?.length ? outcomeOf(errors[0]) : reason === 'done' ? 'ok' : 'CANCELLED';
            record(entry(who, 'subscribe', name, policy, ids, outcome));
            return;
          }
          const outcome = reason === 'error' && errors?.length ? outcomeOf(errors[0]) : 'ok';
          record(entry(who, 'unsubscribe', name, policy, ids, outcome, { reason }));
        },
      };
    },

    /** Records an entry built elsewhere (e.g. an admin action with details). */
    record(e: AuditEntry) {
      if (enabled) writer.record(e);
    },

    /**
     * The organisation's audit rows, newest first, for its admins only (others: FORBIDDEN).
     * Pages forward with signed cursors; filters combine with AND.
     */
    async events(viewer: Viewer, filter: AuditFilterInput | null | undefined, args: PageArgs) {
      if (viewer.role !== 'admin') throw forbidden('Only organisation admins can read the audit log.');
      const f = filterInput.safeParse(filter ?? {});
      if (!f.success) throw badInput(`filter.${f.error.issues[0]?.path.join('.')}: ${f.error.issues[0]?.message}`, 'filter');
      if (f.data.from && f.data.to && f.data.from > f.data.to) throw badInput('filter.from must not be after filter.to.', 'filter.from');
      if (args.last != null || args.before != null)
        throw badInput('The audit log pages forward only: use first and after.', args.before != null ? 'before' : 'last');
      const { limit } = clampPage({ first: args.first, after: args.after }, deps.limits);
      const scope = `${SCOPE}:${viewer.orgId}`;
      const afterId = args.after ? cursors.decodeNumber(scope, args.after) : undefined;
      const rows = await repo.page(
        db,
        viewer.orgId,
        {
          userId: undef(f.data.userId),
          objectType: undef(f.data.objectType),
          objectId: undef(f.data.objectId),
          operation: undef(f.data.operation),
          outcome: undef(f.data.outcome),
          from: undef(f.data.from),
          to: undef(f.data.to),
        },
        limit + 1,
        afterId,
      );
      const edges = rows.slice(0, limit).map((r: AuditRow) => ({ node: r, cursor: cursors.encode(scope, r.id) }));
      return {
        edges,
        pageInfo: {
          hasNextPage: rows.length > limit,
          hasPreviousPage: afterId !== undefined,
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    },

    /** Retention: deletes rows older than AUDIT_RETENTION_DAYS in bounded batches; returns how many. */
    async purge(now = new Date(), maxBatches = 100): Promise<number> {
      const before = new Date(now.getTime() - deps.config.retentionDays * 86_400_000);
      let total = 0;
      for (let i = 0; i < maxBatches; i++) {
        const n = await repo.deleteOlderThan(db, before, deps.config.retentionBatch);
        total += n;
        if (n < deps.config.retentionBatch) break;
      }
      if (total) deps.logger.info({ deleted: total, before }, 'audit log retention');
      return total;
    },

    /** Writes what is buffered (tests, shutdown). */
    flush: () => writer.flush(),
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
