import type { StreamSpec } from './stream.js';

/** Receives what a group rendered for each event (a serialized payload for sockets). */
export interface Sink<R> {
  readonly userId: string;
  /** The socket (device) the subscription lives on, for the spec's per-subscriber filter. */
  readonly socketId?: string;
  deliver(rendered: R, publishedAt: number): void;
  /** The server ended the subscription (e.g. membership revoked). */
  end(error: Error): void;
}

export interface FanoutMetrics {
  delivered(count: number, latencyMs: number): void;
}

/**
 * Delivers stream events to subscriptions on this instance. Subscriptions with the same group key
 * (operation, variables, authorisation scope) share one render per event, and every member of the
 * group receives the same rendered value: the per-subscriber cost is a position check and a write.
 *
 * A subscription with a resume position joins live first (buffering), replays the ledger after
 * its position, then drains the buffer: no gap, no duplicate (dedup by position). A subscription
 * whose spec has `initial` roots gets them the same way: first, while live events wait.
 */
export interface Fanout {
  add<R>(
    key: string,
    spec: StreamSpec,
    render: (root: unknown) => R | Promise<R>,
    sink: Sink<R>,
    /** Defaults to `key`; groups whose payload cannot differ may share one (see ws/shared-render.ts). */
    renderKey?: string,
  ): Promise<() => void>;
  /** Roots of one subscription as an async iterable (plain graphql `subscribe`, in-process use). */
  iterate(spec: StreamSpec, userId: string): AsyncIterableIterator<unknown>;
  stats(): { streams: number; groups: number; subscriptions: number };
}

/** One subscription of a group. */
export interface SubState<R> {
  sink: Sink<R>;
  last: number;
  /** Live events held back while initial roots or the replay are delivered (`pos` undefined: ephemeral). */
  buffer: Array<{ pos: number | undefined; r: R; t: number }> | null;
}

/** Subscriptions that share a render per event. */
export interface Group<R> {
  key: string;
  /** Groups with equal render keys get the same rendered value for an event (rendered once). */
  renderKey: string;
  spec: StreamSpec;
  render: (root: unknown) => R | Promise<R>;
  subs: Set<SubState<R>>;
}
