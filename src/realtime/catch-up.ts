import type { Executor } from '../db/client.js';
import type { CursorCodec } from '../shared/cursor.js';
import type { Group, SubState } from './fanout-types.js';
import { cursorExpired } from '../shared/errors.js';
import { readRange } from './ledger.js';

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

  const replay = async <R>(g: Group<R>, s: SubState<R>) => {
    for (;;) {
      const { trimmed, events: batch } = await readRange(db, g.spec.stream, g.spec.orgId, s.last, 500);
      // older than what retention keeps: say so, never hand out a history with a hole in it
      if (trimmed > s.last) throw cursorExpired();
      for (const ev of batch) {
        if (!g.subs.has(s)) return;
        if ((!g.spec.match || g.spec.match(ev)) && (!g.spec.forSubscriber || g.spec.forSubscriber(ev, s.sink))) {
          const r = await renderSafe(g, g.spec.toRoot(ev, cursors.encode(ev.stream, ev.position)));
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
