import type { StreamEventRoot, StreamSpec } from '../realtime/stream.js';
import { builder } from './builder.js';
import { type Context, requireViewer } from './context.js';

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
