import type { Executor } from '../db/client.js';
import type { StreamSpec } from './stream.js';
import type { Fanout, FanoutMetrics, Group, Sink, SubState } from './fanout-types.js';
import type { CursorCodec } from '../shared/cursor.js';
import { forbidden } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { EphemeralEvent, Hub } from './hub.js';
import type { LedgerEvent } from './ledger.js';
import { createCatchUp } from './catch-up.js';
import { iterateStream } from './iterate.js';

type Item = { ev: LedgerEvent; t: number } | { eph: EphemeralEvent };

interface LocalStream {
  stream: string;
  groups: Map<string, Group<unknown>>;
  joined: Promise<{ leave: () => void }>;
  queue: Item[];
  running: boolean;
}

/** Deliveries between yields to the event loop within one event of one group. */
const YIELD_EVERY = 512;

export function createFanout(deps: { hub: Hub; db: Executor; cursors: CursorCodec; logger: Logger; metrics?: FanoutMetrics }): Fanout {
  const { hub, db, cursors, logger } = deps;
  const local = new Map<string, LocalStream>();
  let subscriptions = 0;

  const renderSafe = async <R>(g: Group<R>, root: unknown): Promise<R | undefined> => {
    try {
      return await g.render(root);
    } catch (err) {
      logger.error({ err, stream: g.spec.stream }, 'rendering a stream event failed');
      return undefined;
    }
  };

  /**
   * Ends a subscription whose user lost access. It leaves its group at once, so a replay or a
   * buffer still in progress for it (a resumed subscription) delivers nothing more.
   */
  const revoke = <R>(g: Group<R>, s: SubState<R>) => {
    if (!g.subs.delete(s)) return;
    s.sink.end(forbidden('You are no longer a member of this stream.'));
  };

  /** Renders once per render key per event (e.g. many filters, one payload shape). */
  const renderOnce = (memo: Map<string, Promise<unknown>>, g: Group<unknown>, root: () => unknown) => {
    let p = memo.get(g.renderKey);
    if (!p) {
      p = renderSafe(g, root());
      memo.set(g.renderKey, p);
    }
    return p;
  };

  const deliverDurable = async (ls: LocalStream, ev: LedgerEvent, t: number) => {
    const cursor = cursors.encode(ev.stream, ev.position);
    const memo = new Map<string, Promise<unknown>>();
    for (const g of [...ls.groups.values()]) {
      if (g.spec.match && !g.spec.match(ev)) continue;
      const r = await renderOnce(memo, g, () => g.spec.toRoot(ev, cursor));
      if (r !== undefined) {
        let n = 0;
        const forSubscriber = g.spec.forSubscriber;
        for (const s of [...g.subs]) {
          if (ev.position <= s.last || !g.subs.has(s)) continue;
          if (forSubscriber && !forSubscriber(ev, s.sink)) {
            if (!s.buffer) s.last = ev.position;
            continue;
          }
          if (s.buffer) s.buffer.push({ pos: ev.position, r, t });
          else {
            s.last = ev.position;
            s.sink.deliver(r, t);
            // a big group would hold the event loop for tens of ms: let HTTP and database work
            // through every YIELD_EVERY writes (the stream's queue waits, so order is kept)
            if (++n % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
          }
        }
        if (n > 0) deps.metrics?.delivered(n, Date.now() - t);
      }
      const revoked = g.spec.revokes?.(ev);
      if (revoked?.length) {
        for (const s of [...g.subs]) if (revoked.includes(s.sink.userId)) revoke(g, s);
      }
    }
  };

  const deliverEphemeral = async (ls: LocalStream, ev: EphemeralEvent) => {
    const memo = new Map<string, Promise<unknown>>();
    for (const g of [...ls.groups.values()]) {
      if (!g.spec.toRootEphemeral || (g.spec.match && !g.spec.match(ev))) continue;
      const root = g.spec.toRootEphemeral(ev);
      if (root === undefined) continue;
      const r = await renderOnce(memo, g, () => root);
      if (r === undefined) continue;
      const t = Date.parse(ev.at);
      for (const s of g.subs) {
        if (g.spec.forSubscriber && !g.spec.forSubscriber(ev, s.sink)) continue;
        if (s.buffer) s.buffer.push({ pos: undefined, r, t });
        else s.sink.deliver(r, t);
      }
    }
  };

  const run = async (ls: LocalStream) => {
    ls.running = true;
    while (ls.queue.length > 0) {
      const item = ls.queue.shift() as Item;
      try {
        if ('ev' in item) await deliverDurable(ls, item.ev, item.t);
        else await deliverEphemeral(ls, item.eph);
      } catch (err) {
        logger.error({ err, stream: ls.stream }, 'stream delivery failed');
      }
    }
    ls.running = false;
  };

  const enqueue = (ls: LocalStream, item: Item) => {
    ls.queue.push(item);
    if (!ls.running) void run(ls);
  };

  const openLocal = (spec: StreamSpec): LocalStream => {
    let ls = local.get(spec.stream);
    if (ls) return ls;
    const created: LocalStream = {
      stream: spec.stream,
      groups: new Map(),
      queue: [],
      running: false,
      joined: Promise.resolve({ leave: () => {} }),
    };
    created.joined = hub.join(spec.stream, spec.orgId, {
      onEvent: (ev, t) => enqueue(created, { ev, t }),
      onEphemeral: (eph) => enqueue(created, { eph }),
    });
    created.joined.catch(() => {
      if (local.get(spec.stream) === created) local.delete(spec.stream);
    });
    local.set(spec.stream, created);
    ls = created;
    return ls;
  };

  const { replay, deliverInitial, flush } = createCatchUp({ db, cursors, renderSafe, revoke });

  const fanout: Fanout = {
    async add(key, spec, render, sink, renderKey = key) {
      let ls = openLocal(spec);
      let { leave } = await ls.joined;
      while (local.get(spec.stream) !== ls) {
        // the stream was torn down while we waited: join it afresh
        ls = openLocal(spec);
        ({ leave } = await ls.joined);
      }
      let g = ls.groups.get(key) as Group<ReturnType<typeof render>> | undefined;
      if (!g) {
        g = { key, renderKey, spec, render, subs: new Set() };
        ls.groups.set(key, g as Group<unknown>);
      }
      const group = g;
      const stream = ls;
      const s: SubState<ReturnType<typeof render>> = {
        sink: sink as Sink<ReturnType<typeof render>>,
        last: spec.after ?? 0,
        buffer: spec.after !== undefined || spec.initial ? [] : null,
      };
      group.subs.add(s);
      subscriptions++;
      let removed = false;
      const remove = () => {
        if (removed) return;
        removed = true;
        subscriptions--;
        group.subs.delete(s);
        if (group.subs.size === 0 && stream.groups.get(key) === group) stream.groups.delete(key);
        if (ls.groups.size === 0 && local.get(stream.stream) === stream) {
          local.delete(stream.stream);
          leave();
        }
      };
      if (s.buffer) {
        try {
          if (spec.initial) await deliverInitial(group, s, spec.initial.bind(spec));
          if (spec.after !== undefined) await replay(group, s);
          if (group.subs.has(s)) flush(s);
        } catch (err) {
          remove();
          throw err;
        }
      }
      return remove;
    },

    iterate: (spec, userId) => iterateStream(fanout, spec, userId),

    stats() {
      let groups = 0;
      for (const ls of local.values()) groups += ls.groups.size;
      return { streams: local.size, groups, subscriptions };
    },
  };
  return fanout;
}
