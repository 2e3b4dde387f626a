/**
 * Group commit. Calls that arrive while `parallel` flushes are running wait and go together in the
 * next flush (up to `max` items), so under load many requests share one transaction's round trips,
 * and a request that arrives alone is flushed at once (no added delay). When a group fails, each of
 * its items is retried alone, so one bad item fails only its own caller.
 *
 * `flush` answers item by item, in order.
 */
export function groupCommit<I, O>(flush: (items: I[]) => Promise<O[]>, opts: { max?: number; parallel?: number } = {}) {
  const max = opts.max ?? 64;
  const parallel = opts.parallel ?? 2;
  type Waiting = { item: I; resolve: (o: O) => void; reject: (e: unknown) => void };
  const queue: Waiting[] = [];
  let running = 0;

  const settle = async (group: Waiting[]) => {
    try {
      const out = await flush(group.map((g) => g.item));
      group.forEach((g, i) => g.resolve(out[i] as O));
    } catch (err) {
      if (group.length === 1) return (group[0] as Waiting).reject(err);
      for (const g of group) await settle([g]);
    }
  };
  const drain = async () => {
    running++;
    try {
      while (queue.length > 0) await settle(queue.splice(0, max));
    } finally {
      running--;
    }
  };
  return (item: I): Promise<O> =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      if (running < parallel) void drain();
    });
}
