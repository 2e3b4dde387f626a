import type { LedgerEvent } from '../realtime/ledger.js';
import type { EphemeralEvent } from '../realtime/hub.js';
import { builder } from './builder.js';
import { type Context, requireViewer } from './context.js';

/**
 * What a durable subscription field resolves to before any event flows: which stream, from which
 * position, and how events become GraphQL root values. Built by a domain service after it has
 * authorised the viewer.
 */
export interface StreamSpec {
  stream: string;
  orgId: string;
  /** Resume after this position (decoded from the client's `after` cursor). */
  after: number | undefined;
  /**
   * Subscribers with the same operation, variables and scope share one execution per event, so
   * the scope must capture everything that changes what a subscriber may see (org, role, user...).
   */
  scope: string;
  /**
   * What the rendered payload may depend on, when narrower than `scope` (e.g. scope carries the
   * user for audience matching, but every user of a role sees the same payload). Defaults to scope.
   */
  renderScope?: string;
  /** Filter evaluated once per group: it may depend only on the arguments and the scope. */
  match?(event: LedgerEvent | EphemeralEvent): boolean;
  /** Users who lose access with this event; their subscriptions end with FORBIDDEN. */
  revokes?(event: LedgerEvent): readonly string[] | undefined;
  /** Root value for a durable event. */
  toRoot(event: LedgerEvent, cursor: string): unknown;
  /** Root value for an ephemeral event, or undefined to ignore it. */
  toRootEphemeral?(event: EphemeralEvent): unknown;
  /**
   * Root values the new subscriber receives first (e.g. the current state of what it watches),
   * rendered like events and sent to that subscriber only. Live events that arrive while they are
   * read are held back and delivered after them, so a change racing with the read is never lost
   * (it may repeat a state the initial roots already showed).
   */
  initial?(): Promise<unknown[]>;
}

/** Attached to subscription fields as `extensions.openStream`; the WebSocket server calls it. */
export type StreamOpener = (args: Record<string, unknown>, ctx: Context) => Promise<StreamSpec>;

/**
 * The resolver options every stream subscription field shares: the WebSocket server reads
 * `extensions.openStream` and fans out; `subscribe` serves in-process `graphql.subscribe` callers
 * through the same stream machinery. Spread into `t.field({ type, args, description, ...here })`.
 */
export function streamResolvers<Root>(open: StreamOpener) {
  return {
    extensions: { openStream: open },
    subscribe: async (_root: unknown, args: Record<string, unknown>, ctx: Context) =>
      ctx.realtime.iterate(await open(args, ctx), requireViewer(ctx).userId) as AsyncIterable<Root>,
    resolve: (event: Root) => event,
  };
}

/** Root value shape of every durable event. */
export interface StreamEventRoot {
  kind: string;
  cursor: string;
  at: string;
}

export const StreamEvent = builder.interfaceRef<StreamEventRoot>('StreamEvent').implement({
  description:
    'A durable event of a stream. Pass the last `cursor` you received as `after` when you resubscribe to get exactly what you missed, in order, then live events.',
  fields: (t) => ({
    cursor: t.exposeString('cursor', {
      description: 'Opaque position of this event in its stream; only valid for the same stream.',
    }),
    at: t.field({
      type: 'DateTime',
      description: 'When the change that caused this event was committed.',
      resolve: (e) => e.at,
    }),
  }),
});
