import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type VariableNode,
  Kind,
  TypeInfo,
  execute,
  getArgumentValues,
  getVariableValues,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import type { Context } from '../../graphql/context.js';
import type { StreamOpener } from '../../graphql/stream-event.js';
import type { Logger } from '../../shared/logger.js';
import type { Viewer } from '../../shared/viewer.js';
import type { Fanout, Sink } from '../fanout-types.js';
import type { StreamSpec } from '../stream.js';

/**
 * Thrown when a resolver reads a part of the viewer that differs within a render group: the field
 * must be marked `extensions: { viewerDependent: true }`, which gives each user their own render.
 * It fails the render loudly (INTERNAL_SERVER_ERROR to the client, an error log) instead of sending
 * one user's view to everyone in the group.
 */
export class SharedRenderViewerError extends Error {
  constructor(readonly key: string) {
    super(
      `A resolver read viewer.${key} while rendering a payload shared by many subscribers. ` +
        'Mark the field that does so with extensions: { viewerDependent: true }.',
    );
  }
}

/**
 * The viewer as a shared render may see it: only the fields every member of the group has in
 * common (`shared`, by default the organisation); reading any other field throws
 * {@link SharedRenderViewerError}.
 */
export function sharedViewer(viewer: Viewer, shared: ReadonlyArray<keyof Viewer>): Viewer {
  return new Proxy(viewer, {
    get(target, key, receiver) {
      if (typeof key === 'string' && !shared.includes(key as keyof Viewer)) throw new SharedRenderViewerError(key);
      return Reflect.get(target, key, receiver);
    },
    ownKeys: () => [...shared],
    getOwnPropertyDescriptor: (target, key) =>
      shared.includes(key as keyof Viewer) ? Reflect.getOwnPropertyDescriptor(target, key) : undefined,
  });
}

/** What a subscription document means for sharing, computed once per query text. */
export interface QueryShape {
  /** It selects a field marked `viewerDependent`: executions cannot be shared across users. */
  viewerDependent: boolean;
  /** Variables the payload can depend on: used in the root field's selection, directives, fragments. */
  renderVars: string[];
}

const stableStringify = (v: unknown): string => {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
    .join(',')}}`;
};

/** Not a stream field (run it the ordinary way), refused variables, or started (with its stop). */
export type StartResult = undefined | { errors: readonly GraphQLError[] } | { stop: () => void };

/** One stream subscription as the protocol hands it over. */
export interface StreamRequest {
  id: string;
  viewer: Viewer | undefined;
  /** The socket (device) the subscription lives on; its `send` writes one serialized frame. */
  socket: { readonly id: string; send(frame: string): void };
  args: ExecutionArgs;
  op: OperationDefinitionNode;
  query: string;
  /** The server ended the subscription (e.g. membership revoked). */
  end(err: Error): void;
}

export interface SharedRenderDeps {
  fanout: Fanout;
  logger: Logger;
  /** Masks an unexpected error into a client-safe one (yoga's masking). */
  maskError(err: unknown): GraphQLError;
}

/**
 * The shared render: a subscription whose root field declares `extensions.openStream` joins a
 * group of subscriptions with the same operation, variables and authorisation scope; the group is
 * executed once per event and the serialized payload is written to every socket of the group.
 * Safe by construction: the group renders with a context whose viewer exposes only what the group
 * has in common, unless the query was classified viewer-dependent (then the user is in the key).
 */
export function createSharedRender(deps: SharedRenderDeps) {
  const { fanout } = deps;
  const shapes = new Map<string, QueryShape>();

  const shapeOf = (schema: GraphQLSchema, query: string, root: FieldNode, doc: DocumentNode): QueryShape => {
    let shape = shapes.get(query);
    if (shape) return shape;
    let viewerDependent = false;
    const info = new TypeInfo(schema);
    visit(
      doc,
      visitWithTypeInfo(info, {
        Field() {
          if (info.getFieldDef()?.extensions?.viewerDependent) viewerDependent = true;
        },
      }),
    );
    const found = new Set<string>();
    const collect = { Variable: (v: VariableNode) => void found.add(v.name.value) };
    if (root.selectionSet) visit(root.selectionSet, collect);
    for (const d of root.directives ?? []) visit(d, collect);
    for (const def of doc.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) visit(def, collect);
    shape = { viewerDependent, renderVars: [...found].sort() };
    if (shapes.size > 5_000) shapes.clear();
    shapes.set(query, shape);
    return shape;
  };

  // Serialized once per render. Frames stay strings: for a string `ws` writes header and payload
  // as one buffer, for a Buffer it writes two chunks (measured slower, see README Benchmarks).
  const serialize = (r: ExecutionResult): string => JSON.stringify(r.errors ? { ...r, errors: r.errors.map((e) => deps.maskError(e)) } : r);

  /** The keys of a subscription's group and render group. */
  const keysOf = (req: StreamRequest, spec: StreamSpec, shape: QueryShape, vars: Record<string, unknown>) => {
    const { args, query, viewer } = req;
    const scope = shape.viewerDependent && viewer ? `${spec.scope}|u:${viewer.userId}` : spec.scope;
    const key = `${query}\0${args.operationName ?? ''}\0${stableStringify(vars)}\0${scope}`;
    // The payload depends on the selection, not on the root field's arguments (they pick the
    // stream and filter it): subscribers that differ only there share one render per event.
    const renderScope = scope === spec.scope ? (spec.renderScope ?? spec.scope) : scope;
    const renderKey = `${query}\0${args.operationName ?? ''}\0${stableStringify(
      Object.fromEntries(shape.renderVars.map((v) => [v, vars[v]])),
    )}\0${renderScope}`;
    return { key, renderKey };
  };

  /** The context a group renders with: the viewer guarded unless the query is viewer-dependent. */
  const renderContext = (ctx: Context, spec: StreamSpec, shape: QueryShape): Context =>
    shape.viewerDependent || !ctx.viewer ? ctx : { ...ctx, viewer: sharedViewer(ctx.viewer, spec.shares ?? ['orgId']) };

  return {
    /**
     * Starts a stream subscription: resolves with its stop function, with the errors of its
     * variables, or `undefined` when the operation is not a single stream field.
     */
    async start(req: StreamRequest): Promise<StartResult> {
      const { args, op, id } = req;
      const root = op.selectionSet.selections[0];
      const subType = args.schema.getSubscriptionType();
      if (op.selectionSet.selections.length !== 1 || root?.kind !== Kind.FIELD || !subType) return undefined;
      const def = subType.getFields()[root.name.value];
      const open = def?.extensions?.openStream as StreamOpener | undefined;
      if (!def || !open) return undefined;
      const vars = getVariableValues(args.schema, op.variableDefinitions ?? [], args.variableValues ?? {});
      if (vars.errors) return { errors: vars.errors };
      const ctx = args.contextValue as Context;
      const spec = await open(getArgumentValues(def, root, vars.coerced), ctx);
      const shape = shapeOf(args.schema, req.query, root, args.document);
      const { key, renderKey } = keysOf(req, spec, shape, vars.coerced);
      const render = renderer({ ...args, contextValue: renderContext(ctx, spec, shape) });
      const sub = new Subscriber(id, req);
      const remove = await fanout.add(key, spec, render, sub, renderKey);
      return {
        stop: () => {
          sub.active = false;
          remove();
        },
      };
    },
  };

  // Built in functions of their own so that what a subscription keeps alive (its sink, held by
  // the fan-out) closes over a few values, not over the operation's arguments and context.

  /** The group's render: graphql-js 16 `execute` of the subscription's root field against a root value. */
  function renderer(args: ExecutionArgs) {
    return (rootValue: unknown) => {
      const res = execute({ ...args, rootValue }) as ExecutionResult | Promise<ExecutionResult>;
      return res instanceof Promise ? res.then(serialize) : serialize(res);
    };
  }
}

/**
 * The sink of one subscription: frames with its id, nothing once it ended (whoever ended it).
 * A class, so that what an idle subscription holds is one small object, not closures.
 */
class Subscriber implements Sink<string> {
  active = true;
  readonly userId: string;
  readonly socketId: string;
  readonly end: (error: Error) => void;
  private readonly prefix: string;
  private readonly socket: StreamRequest['socket'];
  constructor(id: string, req: Pick<StreamRequest, 'viewer' | 'socket' | 'end'>) {
    this.socket = req.socket;
    this.userId = req.viewer?.userId ?? '';
    this.socketId = req.socket.id;
    this.end = req.end;
    this.prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
  }
  deliver(payload: string) {
    if (this.active) this.socket.send(`${this.prefix}${payload}}`);
  }
}

export type SharedRender = ReturnType<typeof createSharedRender>;
