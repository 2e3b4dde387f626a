import { randomUUID } from 'node:crypto';
import type { Fanout } from './fanout-types.js';
import type { StreamSpec } from './stream.js';

/**
 * The roots of one subscription as an async iterable, for plain graphql `subscribe` callers
 * (in-process use): a group of its own on the fan-out, queued until read.
 */
export function iterateStream(fanout: Pick<Fanout, 'add'>, spec: StreamSpec, userId: string): AsyncIterableIterator<unknown> {
  const queue: unknown[] = [];
  let wake: (() => void) | undefined;
  let failed: Error | undefined;
  let done = false;
  let remove: (() => void) | undefined;
  const ready = fanout
    .add(`iter:${randomUUID()}`, spec, (root) => root, {
      userId,
      deliver: (root) => {
        queue.push(root);
        wake?.();
      },
      end: (err) => {
        failed = err;
        wake?.();
      },
    })
    .then((r) => {
      remove = r;
      if (done) r();
    });
  const finish = async () => {
    done = true;
    remove?.();
    wake?.();
    return { value: undefined, done: true as const };
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      await ready;
      for (;;) {
        if (queue.length > 0) return { value: queue.shift(), done: false };
        if (failed) throw failed;
        if (done) return { value: undefined, done: true };
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    },
    return: finish,
    throw: async (err: unknown) => {
      await finish();
      throw err;
    },
  };
}
