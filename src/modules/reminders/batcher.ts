/** Groups concurrent calls into batches (group-commit style). */
export interface Batcher<I, O> {
  /** Resolves with this item's result once the batch that took it has run. */
  submit(item: I): Promise<O>;
}

/**
 * Runs at most `maxInFlight` batches at once; each takes everything queued so far (up to
 * `maxBatch`). Under light load an item runs alone and at once; under load the batches grow by
 * themselves, which is what amortises a transaction over many reminder deliveries. A failing
 * batch rejects all of its items (their jobs retry).
 */
export function createBatcher<I, O>(run: (items: I[]) => Promise<O[]>, opts: { maxBatch: number; maxInFlight: number }): Batcher<I, O> {
  const queue: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  let inFlight = 0;
  let scheduled = false;
  const pump = () => {
    scheduled = false;
    while (inFlight < opts.maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, opts.maxBatch);
      inFlight++;
      run(batch.map((b) => b.item))
        .then(
          (out) => batch.forEach((b, i) => b.resolve(out[i] as O)),
          (err: unknown) => batch.forEach((b) => b.reject(err)),
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };
  return {
    submit: (item) =>
      new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        // items submitted in the same turn of the event loop share a batch
        if (!scheduled) {
          scheduled = true;
          setImmediate(pump);
        }
      }),
  };
}
