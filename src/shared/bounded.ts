/**
 * Waits for `work` at most `ms`, never longer and never throwing: what a committed mutation does
 * with its Redis side effects (publish, enqueue). `work` goes on in the background after the bound;
 * its failure, early or late, goes to `onError` (the ledger poll and the reconcilers make up for it).
 * Resolves `true` when `work` settled within the bound, `false` when the caller stopped waiting.
 */
export function settleWithin(work: Promise<unknown>, ms: number, onError: (err: unknown, late: boolean) => void): Promise<boolean> {
  let timedOut = false;
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      timedOut = true;
      resolve(false);
    }, ms);
    work.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      (err: unknown) => {
        clearTimeout(timer);
        onError(err, timedOut);
        resolve(true);
      },
    );
  });
}
