import type { Executor } from '../db/client.js';
import type { CursorCodec } from '../shared/cursor.js';
import type { Viewer } from '../shared/viewer.js';
import type { EventSink } from './commit.js';
import type { EphemeralEvent, Publisher } from './hub.js';
import {
  type AppendInput,
  type FusedMany,
  type LedgerEvent,
  appendFusedMany,
  insertEvents,
  nextPosition,
  redact,
  reservePositions,
} from './ledger.js';

/** A stream's durable events by type name → payload (an interface such as `{ MessageAdded: {...} }`). */
export type Payloads = object;

/** A durable event of a stream with payloads `E`, narrowed by its `type`. */
export type EventOf<E extends Payloads> = {
  [K in keyof E & string]: Omit<LedgerEvent<E[K]>, 'type'> & { type: K };
}[keyof E & string];

/** An ephemeral event of a stream with ephemeral payloads `P`, narrowed by its `type`. */
export type EphemeralOf<P extends Payloads> = {
  [K in keyof P & string]: Omit<EphemeralEvent, 'type' | 'payload'> & { type: K; payload: P[K] };
}[keyof P & string];

/** Root value shape of every durable event (the GraphQL `StreamEvent` interface). */
export interface StreamEventRoot {
  kind: string;
  cursor: string;
  at: string;
}

/** Who receives a delivery: the per-subscriber filter sees the user and their socket (device). */
export interface Subscriber {
  userId: string;
  /** The graphql-ws connection (device) of the subscription; undefined in-process. */
  socketId?: string;
}

/**
 * What a durable subscription resolves to before any event flows: which stream, from which
 * position, and how events become GraphQL root values. Built by {@link StreamDef.open} after the
 * domain service has authorised the viewer; consumed by the fan-out (untyped on purpose: the fan-out
 * serves every domain).
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
  /**
   * The viewer fields every subscriber sharing a render has in common (what `renderScope` fixes).
   * A shared render may read only these; reading another fails loudly. Default: `orgId`.
   */
  shares?: ReadonlyArray<keyof Viewer>;
  /** Filter evaluated once per group: it may depend only on the arguments and the scope. */
  match?(event: LedgerEvent | EphemeralEvent): boolean;
  /** Filter evaluated per subscriber (e.g. only the answering device): after `match`, before the write. */
  forSubscriber?(event: LedgerEvent | EphemeralEvent, subscriber: Subscriber): boolean;
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

/** The typed hooks a domain gives {@link StreamDef.open}. */
export interface OpenOptions<E extends Payloads, P extends Payloads> {
  orgId: string;
  /** The client's `after` cursor, if any (verified against this stream with `cursors`). */
  after?: string | null;
  cursors?: CursorCodec;
  scope: string;
  renderScope?: string;
  shares?: ReadonlyArray<keyof Viewer>;
  match?(event: EventOf<E> | EphemeralOf<P>): boolean;
  forSubscriber?(event: EventOf<E> | EphemeralOf<P>, subscriber: Subscriber): boolean;
  revokes?(event: EventOf<E>): readonly string[] | undefined;
  /** Root value of a durable event (a stream without durable events passes none). */
  toRoot?(event: EventOf<E>, cursor: string): unknown;
  toRootEphemeral?(event: EphemeralOf<P>): unknown;
  initial?(): Promise<unknown[]>;
}

/** One durable event of type `T` to append to the stream of `key`; `subject` is the entity it is about (for redaction). */
export interface Append<K, E extends Payloads, T extends keyof E & string> {
  key: K;
  orgId: string;
  type: T;
  payload: E[T];
  subject?: string;
}

/** Any durable event of the stream, to append (a union over its types). */
export type AppendOf<K, E extends Payloads> = { [T in keyof E & string]: Append<K, E, T> }[keyof E & string];

/**
 * A stream declared once by its domain: how it is named, what its durable and ephemeral events
 * carry, and how a subscription to it is opened. Every write to the ledger goes through it, so
 * payloads are typed at the append and narrowed (not cast) at the read.
 */
export interface StreamDef<K, E extends Payloads, P extends Payloads> {
  /** The ledger name of the stream of `key` (e.g. `conv:<id>`). */
  name(key: K): string;
  /** Appends one event inside the caller's transaction and queues it for publishing after commit. */
  append<T extends keyof E & string>(tx: Executor, sink: EventSink, ev: Append<K, E, T>): Promise<void>;
  /** Takes the next position of `key`'s stream (its head row stays locked until commit). */
  nextPosition(tx: Executor, key: K, orgId: string): Promise<number>;
  /** Reserves `count` consecutive positions on each stream in one statement; first position by key. */
  reserve(tx: Executor, reqs: ReadonlyArray<{ key: K; orgId: string; count: number }>): Promise<Map<K, number>>;
  /** Writes events at positions taken by {@link nextPosition} / {@link reserve}, in one statement. */
  insertAt<T extends keyof E & string>(
    tx: Executor,
    sink: EventSink,
    evs: ReadonlyArray<Append<K, E, T> & { position: number }>,
  ): Promise<void>;
  /**
   * Appends many events fused with the domain's rows in ONE statement (group commit of the send
   * hot path): see ledger `appendFusedMany`. Resolves per event, in order, with its position
   * (undefined when not written) and the domain's `pre` row.
   */
  appendFusedMany<T extends keyof E & string>(
    db: Executor,
    sink: EventSink,
    evs: ReadonlyArray<Append<K, E, T> & { at: Date }>,
    fused: { domain: FusedMany; positionAt?: readonly string[] },
  ): Promise<Array<{ position?: number; pre: Record<string, unknown> }>>;
  /**
   * Overwrites `path` with `value` in every earlier event of `key`'s stream about `subject` (a
   * deleted message's body is gone from replay too), inside the caller's transaction.
   */
  redact(tx: Executor, key: K, orgId: string, subject: string, path: string[], value: unknown): Promise<void>;
  /** Publishes an ephemeral event (never stored, never replayed). */
  publish<T extends keyof P & string>(
    publisher: Publisher,
    key: K,
    orgId: string,
    type: T,
    payload: P[T],
    atMs?: number,
    order?: EphemeralEvent['order'],
  ): Promise<void>;
  /** Describes a subscription to `key`'s stream for the fan-out, with typed hooks. */
  open(key: K, opts: OpenOptions<E, P>): StreamSpec;
}

/**
 * Declares a stream. `E` are the durable payloads by type, `P` the ephemeral ones. `open` verifies
 * an `after` cursor with the codec it is given (cursors are bound to the stream name). The casts
 * from stored payloads to `E` live here and only here: a stream's events are written only through
 * its own definition.
 */
export function defineStream<K, E extends Payloads, P extends Payloads = Record<never, never>>(def: {
  name: (key: K) => string;
}): StreamDef<K, E, P> {
  const { name } = def;
  // stored payloads are JSON objects; the ledger keeps them untyped
  const input = (ev: AppendOf<K, E> | Append<K, E, keyof E & string>): AppendInput<Record<string, unknown>> => ({
    stream: name(ev.key),
    orgId: ev.orgId,
    type: ev.type,
    payload: ev.payload as unknown as Record<string, unknown>,
    subject: ev.subject,
  });
  const durable = (ev: LedgerEvent) => ev as unknown as EventOf<E>;
  const ephemeral = (ev: EphemeralEvent) => ev as unknown as EphemeralOf<P>;
  return {
    name,
    async append(tx, sink, ev) {
      sink.push(...(await insertEvents(tx, [{ ...input(ev), position: await nextPosition(tx, name(ev.key), ev.orgId) }])));
    },
    nextPosition: (tx, key, orgId) => nextPosition(tx, name(key), orgId),
    async reserve(tx, reqs) {
      const first = await reservePositions(
        tx,
        reqs.map((r) => ({ stream: name(r.key), orgId: r.orgId, count: r.count })),
      );
      return new Map(reqs.map((r) => [r.key, first.get(name(r.key)) as number]));
    },
    async insertAt(tx, sink, evs) {
      sink.push(
        ...(await insertEvents(
          tx,
          evs.map((e) => ({ ...input(e), position: e.position })),
        )),
      );
    },
    async appendFusedMany(db, sink, evs, { domain, positionAt }) {
      const done = await appendFusedMany(
        db,
        evs.map((ev) => ({ ...input(ev), at: ev.at })),
        domain,
        positionAt,
      );
      for (const d of done) if (d.event) sink.push(d.event as LedgerEvent);
      return done.map((d) => ({ position: d.event?.position, pre: d.pre }));
    },
    redact: (tx, key, orgId, subject, path, value) => redact(tx, name(key), orgId, subject, path, value),
    publish: (publisher, key, orgId, type, payload, atMs = Date.now(), order) =>
      publisher.publishEphemeral({
        stream: name(key),
        orgId,
        type,
        payload: payload as Record<string, unknown>,
        at: new Date(atMs).toISOString(),
        ...(order ? { order } : {}),
      }),
    open(key, o) {
      const stream = name(key);
      const either = (ev: LedgerEvent | EphemeralEvent) => ('position' in ev ? durable(ev) : ephemeral(ev));
      const { match, forSubscriber, revokes, toRootEphemeral } = o;
      return {
        stream,
        orgId: o.orgId,
        after: o.after ? decodeAfter(o.cursors, stream, o.after) : undefined,
        scope: o.scope,
        renderScope: o.renderScope,
        shares: o.shares,
        match: match && ((ev) => match(either(ev))),
        forSubscriber: forSubscriber && ((ev, s) => forSubscriber(either(ev), s)),
        revokes: revokes && ((ev) => revokes(durable(ev))),
        toRoot: (ev, cursor) => o.toRoot?.(durable(ev), cursor),
        toRootEphemeral: toRootEphemeral && ((ev) => toRootEphemeral(ephemeral(ev))),
        initial: o.initial,
      };
    },
  };
}

function decodeAfter(cursors: CursorCodec | undefined, stream: string, after: string): number {
  if (!cursors) throw new Error(`stream ${stream}: a resumable subscription needs the cursor codec`);
  return cursors.decodeNumber(stream, after);
}
