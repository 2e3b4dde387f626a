// Closing the workers waits for a periodic duty's run in flight (a reconciler must not keep writing
// to a database that is being closed), and no run starts after close.
import { describe, expect } from 'vitest';
import { until } from '../harness/clients.js';
import { it } from '../harness/fixtures.js';
import { startWorkers } from '../../src/worker.js';

describe('worker close', () => {
  it('waits for the periodic run in flight and starts none after', async ({ app }) => {
    const log: string[] = [];
    let release: () => void = () => {};
    const workers = startWorkers(app.container, {
      jobs: [],
      periodic: [
        {
          name: 'slow-duty',
          everyMs: 50,
          run: async () => {
            log.push('start');
            await new Promise<void>((r) => (release = r));
            log.push('end');
          },
        },
      ],
    });
    await until(() => log.includes('start'));
    let closed = false;
    const closing = workers.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 200)); // a quiet period: close must still be waiting
    expect(closed).toBe(false);
    release();
    await closing;
    expect(log).toEqual(['start', 'end']);
    await new Promise((r) => setTimeout(r, 200)); // and no run after close, though 4 periods passed
    expect(log).toEqual(['start', 'end']);
  });
});
