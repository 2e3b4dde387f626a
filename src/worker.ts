import { UnrecoverableError, Worker } from 'bullmq';
import type { Container } from './container.js';
import { type JobImpl, QUEUES } from './jobs/define.js';
import { JOB_IMPLS, PERIODIC, type Periodic } from './jobs/registry.js';

export interface Workers {
  /** Waits for in-flight jobs to finish, then closes. */
  close(): Promise<void>;
}


/**
 * Starts one BullMQ Worker per queue, dispatching by job name to the module handlers, with the
 * connection BullMQ's production guide asks for (`maxRetriesPerRequest: null`, its own
 * connection). Handlers validate their payload and are idempotent, so a retried or re-run
 * (stalled) job never does its work twice.
 */
export function startWorkers(c: Container, impls: JobImpl[] = JOB_IMPLS, periodic: Periodic[] = PERIODIC): Workers {
  const { logger, config } = c;
  const byQueue = new Map<string, Map<string, JobImpl>>();
  for (const impl of impls) {
    const m = byQueue.get(impl.def.queue) ?? new Map<string, JobImpl>();
    m.set(impl.def.name, impl);
    byQueue.set(impl.def.queue, m);
  }
  const connection = c.redisConnection('worker');
  const workers = QUEUES.filter((q) => byQueue.has(q)).map((queue) => {
    const handlers = byQueue.get(queue) as Map<string, JobImpl>;
    const w = new Worker(
      queue,
      async (job, token) => {
        const impl = handlers.get(job.name);
        if (!impl) throw new UnrecoverableError(`no handler for job ${job.name}`);
        const started = performance.now();
        try {
          return await impl.handle(job.data, { container: c, attempt: job.attemptsMade + 1, jobId: job.id ?? '', job, token });
        } finally {
          c.metrics.jobDuration.observe({ queue, name: job.name }, (performance.now() - started) / 1000);
        }
      },
      {
        connection,
        prefix: `${config.redisPrefix}:bull`,
        concurrency: config.worker.concurrency,
        lockDuration: config.worker.lockMs,
        stalledInterval: config.worker.lockMs,
        maxStalledCount: 5,
        autorun: true,
      },
    );
    w.on('failed', (job, err) => {
      c.metrics.jobFailures.inc({ queue, name: job?.name ?? 'unknown' });
      logger.warn({ queue, job: job?.name, jobId: job?.id, attempt: job?.attemptsMade, err }, 'job failed');
    });
    w.on('error', (err) => logger.warn({ queue, err }, 'worker error'));
    return w;
  });
  const timers = periodic.map((p) => {
    let running = false;
    const t = setInterval(() => {
      if (running) return;
      running = true;
      p.run(c)
        .catch((err) => logger.warn({ task: p.name, err }, 'periodic task failed'))
        .finally(() => {
          running = false;
        });
    }, p.everyMs(c));
    t.unref();
    return t;
  });
  logger.info({ queues: workers.map((w) => w.name) }, 'workers started');
  return {
    async close() {
      for (const t of timers) clearInterval(t);
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
