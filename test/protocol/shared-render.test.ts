// The shared render is safe by construction: a payload field that reads the viewer without being
// marked viewer-dependent fails loudly instead of sending one user's view to the whole group; a
// marked one renders per user. Runs the real fan-out, hub, ledger, PostgreSQL and Redis with a
// schema made for the test (the product schema has no such unmarked field, by design).
import { randomUUID } from 'node:crypto';
import {
  GraphQLError,
  GraphQLInt,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  type ExecutionArgs,
  getOperationAST,
  parse,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/graphql/context.js';
import { createCommit } from '../../src/realtime/commit.js';
import { defineStream } from '../../src/realtime/stream.js';
import { SharedRenderViewerError, createSharedRender } from '../../src/realtime/ws/shared-render.js';
import type { Viewer } from '../../src/shared/viewer.js';
import { startApp, stopAll, type TestApp } from '../harness/start-app.js';
import { until } from '../harness/clients.js';

const ticks = defineStream<string, { Tick: { n: number } }>({ name: (key) => `test-render:${key}` });

const Tick = new GraphQLObjectType<{ n: number }, Context>({
  name: 'Tick',
  fields: {
    n: { type: GraphQLInt },
    // reads the viewer but is NOT marked: the mistake the guard must catch
    unmarkedViewerId: { type: GraphQLString, resolve: (_t, _a, ctx) => ctx.viewer?.userId },
    markedViewerId: { type: GraphQLString, extensions: { viewerDependent: true }, resolve: (_t, _a, ctx) => ctx.viewer?.userId },
    // reads only what every subscriber of the group shares: allowed
    orgId: { type: GraphQLString, resolve: (_t, _a, ctx) => ctx.viewer?.orgId },
  },
});

let app: TestApp;
let key: string;
const orgId = `org-${randomUUID()}`;
const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: 'Query', fields: { ok: { type: GraphQLInt, resolve: () => 1 } } }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      ticks: {
        type: Tick,
        // the fan-out executes the field against each event's root value
        resolve: (root: unknown) => root,
        extensions: {
          openStream: async () => ticks.open(key, { orgId, scope: orgId, toRoot: (ev) => ev.payload }),
        },
      },
    },
  }),
});

const masked: unknown[] = [];
const maskError = (err: unknown) => {
  masked.push(err instanceof GraphQLError ? (err.originalError ?? err) : err);
  return new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
};

beforeAll(async () => {
  app = await startApp();
});
afterAll(stopAll);

/** Subscribes `viewer` through the shared render and collects the frames it is sent. */
async function subscribe(render: ReturnType<typeof createSharedRender>, viewer: Viewer, query: string) {
  const frames: Array<{ payload: { data?: { ticks: Record<string, unknown> | null }; errors?: Array<{ extensions: { code: string } }> } }> =
    [];
  const document = parse(query);
  const args: ExecutionArgs = { schema, document, contextValue: { viewer, transport: 'ws' } as Context };
  const started = await render.start({
    id: '1',
    viewer,
    socket: { id: randomUUID(), send: (frame: string) => frames.push(JSON.parse(frame)) },
    args,
    op: getOperationAST(document)!,
    query,
    end: () => {},
  });
  if (!started || !('stop' in started)) throw new Error('not started as a stream');
  return { frames, stop: started.stop };
}

async function tick(n: number) {
  const commit = createCommit(app.container.database.db, app.container.hub, app.container.logger);
  await commit((tx, events) => ticks.append(tx, events, { key, orgId, type: 'Tick', payload: { n } }));
}

const viewer = (name: string): Viewer => ({ userId: `${orgId}:${name}`, orgId, role: 'provider', name });

describe('the shared render', () => {
  it("fails loudly when an unmarked field reads the viewer: no subscriber gets another user's view", async () => {
    key = randomUUID();
    masked.length = 0;
    const render = createSharedRender({ fanout: app.container.fanout, logger: app.container.logger, maskError });
    const q = 'subscription { ticks { n unmarkedViewerId orgId } }';
    const [a, b] = [await subscribe(render, viewer('a'), q), await subscribe(render, viewer('b'), q)];
    await tick(1);
    await until(() => a.frames.length === 1 && b.frames.length === 1, 5_000, 'both subscribers to get the event');
    for (const s of [a, b]) {
      expect(s.frames[0]!.payload.data?.ticks).toEqual({ n: 1, unmarkedViewerId: null, orgId });
      expect(s.frames[0]!.payload.errors?.[0]?.extensions.code).toBe('INTERNAL_SERVER_ERROR');
    }
    expect(masked.some((e) => e instanceof SharedRenderViewerError && /viewerDependent/.test(e.message))).toBe(true);
    a.stop();
    b.stop();
  });

  it('renders a marked viewer-dependent field per user', async () => {
    key = randomUUID();
    masked.length = 0;
    const render = createSharedRender({ fanout: app.container.fanout, logger: app.container.logger, maskError });
    const q = 'subscription { ticks { n markedViewerId } }';
    const [a, b] = [await subscribe(render, viewer('a'), q), await subscribe(render, viewer('b'), q)];
    await tick(2);
    await until(() => a.frames.length === 1 && b.frames.length === 1, 5_000, 'both subscribers to get the event');
    expect(a.frames[0]!.payload).toEqual({ data: { ticks: { n: 2, markedViewerId: viewer('a').userId } } });
    expect(b.frames[0]!.payload).toEqual({ data: { ticks: { n: 2, markedViewerId: viewer('b').userId } } });
    expect(masked).toEqual([]);
    a.stop();
    b.stop();
  });
});
