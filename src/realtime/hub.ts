import type { Executor } from '../db/client.js';
import { isCluster, type RedisClient } from '../shared/redis-client.js';
import type { Logger } from '../shared/logger.js';
import { groupCommit } from '../shared/group-commit.js';
import { type LedgerEvent, changedSince, readHeadsAt, readRange } from './ledger.js';

/** A non-durable event (typing indicators, presence): no position, never replayed. */
export interface EphemeralEvent {
  stream: string;
  orgId: string;
  type: string;
  payload: Record<string, unknown>;
  at: string;
  /**
   * Ordering of events about one thing (e.g. one user's presence) published by any instance:
   * each instance delivers an event only if its `seq` is greater than the last one it delivered
   * for `key` on this stream, so a late publish never overwrites a newer state.
   */
  order?: { key: string; seq: number };
}

/** What the hub hands to a stream's listener. Durable events come exactly once each, in order. */
export interface StreamListener {
  onEvent(event: LedgerEvent, publishedAt: number): void;
  onEphemeral?(event: EphemeralEvent): void;
}

/** Wire format on Redis: `d` durable, `e` ephemeral; `t` is the publish time (ms) for latency. */
type Wire = { d: LedgerEvent; t: number } | { e: EphemeralEvent; t: number };

/** The sending half of fan-out: what services and commits need (a `worker` process has only this). */
export interface Publisher {
  /** Publishes committed events (call only after the transaction committed). */
  publish(events: readonly LedgerEvent[]): Promise<void>;
  publishEphemeral(event: EphemeralEvent): Promise<void>;
}

/**
 * The pub/sub the hub and the revocations use: graphql-redis-subscriptions' RedisPubSub on one
 * Redis, {@link ShardedPubSub} (SSUBSCRIBE/SPUBLISH) on a cluster. Payloads travel as JSON.
 */
export interface FanoutPubSub {
  publish<T>(channel: string, payload: T): Promise<void>;
  subscribe<T = unknown>(channel: string, onMessage: (msg: T) => void): Promise<number>;
  unsubscribe(subId: number): void;
  /** Emits `ready` when the subscriber connection(s) are back and subscribed again. */
  getSubscriber(): { on(event: 'ready', cb: () => void): unknown; off(event: 'ready', cb: () => void): unknown };
}

/** The Redis channel of a stream. */
const streamChannel = (prefix: string, stream: string) => `${prefix}:s:${stream}`;

/**
 * Publishes on the stream channels with a plain connection (no subscriber needed): the same wire
 * format as the hub's, JSON as graphql-redis-subscriptions writes it.
 */
export function createPublisher(redis: RedisClient, channelPrefix: string): Publisher {
  // a cluster's hubs listen with SSUBSCRIBE (see ShardedPubSub), which only SPUBLISH reaches
  const send = isCluster(redis) ? (ch: string, m: string) => redis.spublish(ch, m) : (ch: string, m: string) => redis.publish(ch, m);
  return {
    async publish(events) {
      const t = Date.now();
      await Promise.all(events.map((d) => send(streamChannel(channelPrefix, d.stream), JSON.stringify({ d, t } satisfies Wire))));
    },
    async publishEphemeral(e) {
      await send(streamChannel(channelPrefix, e.stream), JSON.stringify({ e, t: Date.now() } satisfies Wire));
    },
  };
}

export interface Hub extends Publisher {
  /**
   * Starts receiving `stream` on this instance. Resolves once the Redis channel is subscribed and
   * the baseline position is known; the listener then gets every event after `baseline`.
   */
  join(stream: string, orgId: string, listener: StreamListener): Promise<{ baseline: number; leave: () => void }>;
  /** Finds the live streams that are behind the ledger and fetches what pub/sub lost. */
  poll(): Promise<void>;
  stats(): { streams: number };
  close(): Promise<void>;
}

export interface HubDeps {
  pubsub: FanoutPubSub;
  db: Executor;
  logger: Logger;
  channelPrefix: string;
  pollMs: number;
}

/** How long an ordering key is remembered after its last event (versions are time-based, see EphemeralEvent.order). */
const ORDER_MEMORY_MS = 10 * 60_000;

/** The highest `seq` delivered per key, in two generations so keys gone quiet are forgotten. */
class OrderMemory {
  private cur = new Map<string, number>();
  private old = new Map<string, number>();
  private since = Date.now();
  /** True (and remembered) when `seq` is newer than anything delivered for `key`. */
  fresh(key: string, seq: number): boolean {
    const now = Date.now();
    if (now - this.since > ORDER_MEMORY_MS) {
      this.old = this.cur;
      this.cur = new Map();
      this.since = now;
    }
    const last = this.cur.get(key) ?? this.old.get(key);
    if (last !== undefined && seq <= last) return false;
    this.cur.set(key, seq);
    return true;
  }
}

class StreamState {
  readonly listeners = new Set<StreamListener>();
  /** Ephemeral events with an `order` already delivered, per key. */
  readonly order = new OrderMemory();
  /** Last position dispatched to listeners; -1 until the baseline is read. */
  last = -1;
  /** Events that arrived ahead of `last + 1` or before the baseline, with their arrival number. */
  pending: Array<{ ev: LedgerEvent; t: number; n: number }> = [];
  /** Events received from pub/sub so far (numbers the pending ones). */
  arrivals = 0;
  catchingUp = false;
  /** The highest head the poll has seen for this stream (it stays behind until `last` reaches it). */
  known = 0;
  subId = 0;
  ready: Promise<void> | undefined;
  closed = false;
  constructor(
    readonly stream: string,
    readonly orgId: string,
  ) {}
}

/**
 * One hub per API instance. It keeps one Redis subscription per stream that has local listeners
 * and turns Redis's at-most-once pub/sub into an exactly-once, in-order feed: duplicates are
 * dropped by position, and a hole (an event whose position is not last+1, a Redis reconnect, or
 * the periodic head poll) triggers a fetch of the missing range from the ledger.
 */
export function createHub(deps: HubDeps): Hub {
  const { pubsub, db, logger } = deps;
  const streams = new Map<string, StreamState>();
  /** Streams known to be behind the ledger, retried on every poll until they have caught up. */
  const behind = new Set<StreamState>();
  const channel = (stream: string) => streamChannel(deps.channelPrefix, stream);

  const dispatch = (s: StreamState, ev: LedgerEvent, t: number) => {
    s.last = ev.position;
    for (const l of s.listeners) {
      try {
        l.onEvent(ev, t);
      } catch (err) {
        logger.error({ err, stream: s.stream }, 'stream listener failed');
      }
    }
  };

  /** Fetches everything after `last` from the ledger, then what is still pending. */
  const catchUp = async (s: StreamState): Promise<void> => {
    if (s.catchingUp || s.last < 0 || s.closed) return;
    s.catchingUp = true;
    // every event received so far was published after its commit, and so was every position below
    // it (positions are taken under the head row's lock): the reads below see all of them
    const covered = s.arrivals;
    try {
      for (;;) {
        const { events: batch } = await readRange(db, s.stream, s.orgId, s.last, 500);
        // the ledger is the source of truth: what it holds after `last` is dispatched in order
        for (const ev of batch) if (!s.closed && ev.position > s.last) dispatch(s, ev, Date.parse(ev.at));
        if (batch.length < 500) break;
      }
    } catch (err) {
      logger.warn({ err, stream: s.stream }, 'ledger catch-up failed; will retry on next poll');
      // not drainPending: with events still pending it would start the next catch-up at once,
      // spinning (and logging) as fast as the failure comes back. The next poll retries it.
      if (s.pending.length > 0) s.known = Math.max(s.known, ...s.pending.map((p) => p.ev.position));
      behind.add(s);
      s.catchingUp = false;
      return;
    }
    s.catchingUp = false;
    drainPending(s, covered);
  };

  /**
   * Dispatches pending events that continue the sequence; a hole triggers a catch-up. After a
   * catch-up, an event that arrived before its reads began is dispatched even across a hole: those
   * reads saw every position below it, so such a hole is permanent (no re-read loop if the ledger
   * ever lacks a position). An event that arrived during the reads may be ahead of one committed
   * after their snapshot whose publish is still on its way: it waits for the next catch-up.
   */
  const drainPending = (s: StreamState, covered = 0) => {
    if (s.catchingUp || s.last < 0) return;
    s.pending.sort((a, b) => a.ev.position - b.ev.position);
    const rest: typeof s.pending = [];
    for (const p of s.pending) {
      if (p.ev.position <= s.last) continue;
      if (rest.length === 0 && (p.ev.position === s.last + 1 || p.n <= covered)) dispatch(s, p.ev, p.t);
      else rest.push(p);
    }
    s.pending = rest;
    if (rest.length > 0) void catchUp(s);
  };

  const receive = (s: StreamState, msg: Wire) => {
    if ('e' in msg) {
      const o = msg.e.order;
      if (o && !s.order.fresh(o.key, o.seq)) return; // older than what this instance delivered
      for (const l of s.listeners) l.onEphemeral?.(msg.e);
      return;
    }
    const ev = msg.d;
    s.arrivals++;
    if (s.last >= 0 && !s.catchingUp && ev.position === s.last + 1 && s.pending.length === 0) {
      dispatch(s, ev, msg.t);
      return;
    }
    if (s.last >= 0 && ev.position <= s.last) return; // duplicate or already fetched
    s.pending.push({ ev, t: msg.t, n: s.arrivals });
    drainPending(s);
  };

  /**
   * The head poll's lower bound: every event a live stream may still lack was written by a
   * transaction with an id at least this (the `xmin` of the snapshot of the latest poll, or of the
   * first join's baseline read). Undefined until a stream is joined.
   */
  let since: number | undefined;

  // streams joined together (a reconnect storm) read their baselines in one statement; each read
  // still starts after its channel is subscribed, so nothing falls between the two
  const headOf = groupCommit((names: string[]) => readHeadsAt(db, names), { max: 500, parallel: 2 });

  const start = async (s: StreamState) => {
    s.subId = await pubsub.subscribe<Wire>(channel(s.stream), (msg) => receive(s, msg));
    const head = await headOf(s.stream);
    since ??= head.xmin;
    s.last = head.position;
    drainPending(s);
  };

  const stop = (s: StreamState) => {
    s.closed = true;
    streams.delete(s.stream);
    s.ready?.then(
      () => pubsub.unsubscribe(s.subId),
      () => {},
    );
  };

  /**
   * Reads which streams changed since the previous poll (all of the deployment's, one query) and
   * catches up the live ones that are behind. Its cost follows the changes, not the number of
   * streams this instance holds open.
   */
  let polling = false;
  const poll = async () => {
    if (since === undefined || polling) return;
    if (streams.size === 0) {
      // nothing held here: no read at all, and the next join starts the bound afresh from its baseline
      since = undefined;
      behind.clear();
      return;
    }
    polling = true;
    try {
      const changed = await changedSince(db, since);
      since = Math.max(since, changed.xmin);
      for (const h of changed.heads) {
        const s = streams.get(h.stream);
        if (s && h.position > s.known) s.known = h.position;
        if (s && s.last >= 0 && h.position > s.last) behind.add(s);
      }
      // a stream stays on this list until it has caught up: a failed catch-up is retried next poll
      for (const s of behind) {
        if (s.closed || s.last >= s.known) behind.delete(s);
        else if (!s.catchingUp) void catchUp(s);
      }
    } catch (err) {
      logger.warn({ err }, 'ledger head poll failed');
    } finally {
      polling = false;
    }
  };

  const timer = setInterval(() => void poll(), deps.pollMs);
  timer.unref();
  // ioredis re-subscribes silently after a reconnect; whatever was published meanwhile is lost
  // from pub/sub, so look at the ledger as soon as the subscriber is back.
  const onReady = () => void poll();
  pubsub.getSubscriber().on('ready', onReady);

  return {
    async publish(events) {
      const t = Date.now();
      await Promise.all(events.map((d) => pubsub.publish(channel(d.stream), { d, t } satisfies Wire)));
    },
    async publishEphemeral(e) {
      await pubsub.publish(channel(e.stream), { e, t: Date.now() } satisfies Wire);
    },
    async join(stream, orgId, listener) {
      let s = streams.get(stream);
      if (!s) {
        s = new StreamState(stream, orgId);
        streams.set(stream, s);
        const state = s;
        s.ready = start(s).catch((err) => {
          stop(state);
          throw err;
        });
      }
      if (s.orgId !== orgId) throw new Error('hub: stream joined with another organisation');
      const state = s;
      state.listeners.add(listener);
      try {
        await state.ready;
      } catch (err) {
        state.listeners.delete(listener);
        throw err;
      }
      return {
        baseline: state.last,
        leave: () => {
          state.listeners.delete(listener);
          if (state.listeners.size === 0 && !state.closed) stop(state);
        },
      };
    },
    poll,
    stats: () => ({ streams: streams.size }),
    async close() {
      clearInterval(timer);
      pubsub.getSubscriber().off('ready', onReady);
      for (const s of [...streams.values()]) stop(s);
    },
  };
}
