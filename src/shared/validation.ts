import type { z } from 'zod';
import type { Config } from '../config.js';
import { badInput } from './errors.js';

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
