import type { Executor } from '../db/client.js';
import type { CursorCodec } from '../shared/cursor.js';
import type { Group, SubState } from './fanout-types.js';
import { cursorExpired } from '../shared/errors.js';
import { groupCommit } from '../shared/group-commit.js';
import { type LedgerEvent, type RangeRequest, readRanges } from './ledger.js';

/** Replays rendering the same event for one group share the render (a storm's resumes overlap). */
const replayRenders = new WeakMap<Group<unknown>, { active: number; memo: Map<number, Promise<unknown>> }>();

/**
 * How a subscription joins a live stream without a gap or a duplicate: while it buffers live
 * events, it gets its initial roots, then the ledger after its resume position, then the buffer,
 * deduplicated by position.
 */
export function createCatchUp(deps: {
  db: Executor;
  cursors: CursorCodec;
  renderSafe: <R>(g: Group<R>, root: unknown) => Promise<R | undefined>;
  revoke: <R>(g: Group<R>, s: SubState<R>) => void;
}) {
  const { db, cursors, renderSafe, revoke } = deps;
  // Replays that start together read together: one statement for every range asked for while the
  // previous reads were running. Each read starts after its subscriber joined the live stream, so
  // what it misses is in that subscriber's buffer, as with a read of its own.
  const read = groupCommit((ranges: RangeRequest[]) => readRanges(db, ranges, 500), { max: 200, parallel: 2 });

  const renderShared = <R>(g: Group<R>, ev: LedgerEvent): Promise<R | undefined> => {
    const shared = replayRenders.get(g as Group<unknown>);
    let p = shared?.memo.get(ev.position) as Promise<R | undefined> | undefined;
    if (!p) {
      p = renderSafe(g, g.spec.toRoot(ev, cursors.encode(ev.stream, ev.position)));
      if (shared && shared.memo.size >= 1_000) shared.memo.clear();
      shared?.memo.set(ev.position, p);
    }
    return p;
  };

  const replay = async <R>(g: Group<R>, s: SubState<R>) => {
    const key = g as Group<unknown>;
    const shared = replayRenders.get(key) ?? { active: 0, memo: new Map<number, Promise<unknown>>() };
    replayRenders.set(key, shared);
    shared.active++;
    try {
      await replayRange(g, s);
    } finally {
      // the memo lives while replays of the group overlap, not after
      if (--shared.active === 0 && replayRenders.get(key) === shared) replayRenders.delete(key);
    }
  };

  const replayRange = async <R>(g: Group<R>, s: SubState<R>) => {
    for (;;) {
      const { trimmed, events: batch } = await read({ stream: g.spec.stream, orgId: g.spec.orgId, after: s.last });
      // older than what retention keeps: say so, never hand out a history with a hole in it
      if (trimmed > s.last) throw cursorExpired();
      for (const ev of batch) {
        if (!g.subs.has(s)) return;
        if ((!g.spec.match || g.spec.match(ev)) && (!g.spec.forSubscriber || g.spec.forSubscriber(ev, s.sink))) {
          const r = await renderShared(g, ev);
          if (r !== undefined) s.sink.deliver(r, Date.parse(ev.at));
        }
        s.last = ev.position;
        // the replay reads past a removal committed meanwhile: end there, like the live path does
        if (g.spec.revokes?.(ev)?.includes(s.sink.userId)) return revoke(g, s);
      }
      if (batch.length < 500) break;
    }
  };

  /** Sends the spec's initial roots to this subscriber only, rendered like events. */
  const deliverInitial = async <R>(g: Group<R>, s: SubState<R>, initial: () => Promise<unknown[]>) => {
    const roots = await initial();
    for (const root of roots) {
      if (!g.subs.has(s)) return;
      const r = await renderSafe(g, root);
      if (r !== undefined) s.sink.deliver(r, Date.now());
    }
  };

  /** Delivers what was held back (durable events deduplicated by position) and goes live. */
  const flush = <R>(s: SubState<R>) => {
    const buffered = s.buffer ?? [];
    s.buffer = null;
    for (const b of buffered) {
      if (b.pos !== undefined) {
        if (b.pos <= s.last) continue;
        s.last = b.pos;
      }
      s.sink.deliver(b.r, b.t);
    }
  };

  return { replay, deliverInitial, flush };
}
