import type { z } from 'zod';
import type { Config } from '../config.js';
import type { CursorCodec } from './cursor.js';
import { badInput } from './errors.js';
import { isUuid } from './ids.js';

/** Parses with zod; the first problem becomes BAD_USER_INPUT naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, field?: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = field ?? issue?.path.join('.');
  throw badInput(`${path ? `${path}: ` : ''}${issue?.message ?? 'invalid input'}`, path || undefined);
}

/** Relay pagination arguments as clients send them. */
export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

/**
 * Page size clamped to MAX_PAGE_SIZE (documented: larger requests get the maximum), defaulting to
 * DEFAULT_PAGE_SIZE. Negative sizes, or mixing forward and backward arguments, are BAD_USER_INPUT.
 */
export function clampPage(args: PageArgs, limits: Config['limits']): { limit: number; backward: boolean } {
  const forward = args.first != null || args.after != null;
  const backward = args.last != null || args.before != null;
  if (forward && backward) throw badInput('Use first/after or last/before, not both.', 'first');
  const n = (backward ? args.last : args.first) ?? limits.defaultPageSize;
  if (!Number.isInteger(n) || n < 0) throw badInput('Page size must be a non-negative whole number.', backward ? 'last' : 'first');
  return { limit: Math.min(n, limits.maxPageSize), backward: backward || !forward };
}

/** A forward-only page: the size, and the id of the row the client's cursor points after. */
export interface ForwardPage {
  limit: number;
  afterId: string | undefined;
}

/**
 * Reads first/after for a list that pages forward, newest first, by (createdAt, id): the cursor
 * names the last row's id and the repo compares against that row's exact key (PostgreSQL keeps
 * microseconds, so a timestamp in the cursor could skip rows). last/before are BAD_USER_INPUT.
 */
export function forwardPage(args: PageArgs, limits: Config['limits'], cursors: CursorCodec, scope: string, what: string): ForwardPage {
  if (args.last != null || args.before != null)
    throw badInput(`${what} pages forward only: use first and after.`, args.before != null ? 'before' : 'last');
  const { limit } = clampPage({ first: args.first, after: args.after }, limits);
  const afterId = args.after ? cursors.decode(scope, args.after) : undefined;
  if (afterId !== undefined && !isUuid(afterId)) throw badInput('Invalid cursor.', 'after');
  return { limit, afterId };
}

/** The Relay connection for rows fetched with `limit + 1` (the extra row tells there is more). */
export function forwardConnection<R extends { id: string }, N>(
  rows: R[],
  page: ForwardPage,
  cursors: CursorCodec,
  scope: string,
  node: (row: R) => N,
) {
  const edges = rows.slice(0, page.limit).map((r) => ({ node: node(r), cursor: cursors.encode(scope, r.id) }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > page.limit,
      hasPreviousPage: page.afterId !== undefined,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}
