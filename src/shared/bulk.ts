import { badInput, isCoded } from './errors.js';

/** One item's outcome in a bulk request: its value, or the typed error that refused it. */
export interface ItemResult<T> {
  index: number;
  value: T | null;
  error: { code: string; message: string } | null;
}

/**
 * Runs `one` for every item of a bulk request, a few at a time, each on its own (its own
 * transaction, its own idempotency key): a refused item gets its typed error and the others go on
 * (partial success). Unexpected failures are not swallowed. Results come back in input order.
 */
export async function eachItem<I, T>(
  items: readonly I[],
  max: number,
  one: (item: I) => Promise<T>,
  concurrency = 8,
): Promise<ItemResult<T>[]> {
  if (items.length === 0 || items.length > max) throw badInput(`Pass between 1 and ${max} items.`, 'inputs');
  const out: ItemResult<T>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) {
      try {
        out[i] = { index: i, value: await one(items[i] as I), error: null };
      } catch (err) {
        if (!isCoded(err)) throw err;
        out[i] = { index: i, value: null, error: { code: String(err.extensions.code), message: err.message } };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}
