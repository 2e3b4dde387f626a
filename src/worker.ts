import { UnrecoverableError, Worker } from 'bullmq';
import type { CoreContainer } from './container.js';
import type { Duties, JobImpl, Periodic } from './jobs/define.js';
import { queuePrefix } from './jobs/queues.js';
import { QUEUE_SETTINGS } from './modules/modules.js';
import type { Logger } from './shared/logger.js';
import { isRedisConnectionError } from './shared/redis-watch.js';

export interface Workers {
  /** Waits for in-flight jobs and periodic runs to finish, then closes. */
  close(): Promise<void>;
}

export interface WorkerOptions {
  /**
   * Called when the workers cannot go on by themselves (their Redis connection ended for good).
   * The process should say why and exit non-zero so a supervisor restarts it; never half-alive.
   */
  onFatal?(reason: string): void;
  /** How often the watchdog checks the job loops (default 1 s). */
  watchdogMs?: number;
}

/**
 * Starts one BullMQ Worker per queue, dispatching by job name to the module handlers, with the
 * connection BullMQ's production guide asks for (`maxRetriesPerRequest: null`, its own
 * connection). Handlers validate their payload and are idempotent, so a retried or re-run
 * (stalled) job never does its work twice.
 */
export function startWorkers(c: CoreContainer, duties: Duties | undefined = c.duties, opts: WorkerOptions = {}): Workers {
  if (!duties) throw new Error('workers need a container built for the worker or all role');
  const { logger, config } = c;
  const { jobs: impls, periodic } = duties;
  let closing = false;
  const byQueue = new Map<string, Map<string, JobImpl>>();
  for (const impl of impls) {
    const m = byQueue.get(impl.def.queue) ?? new Map<string, JobImpl>();
    m.set(impl.def.name, impl);
    byQueue.set(impl.def.queue, m);
  }
  const connection = c.redisConnection('worker');
  const workers = [...byQueue].map(([queue, handlers]) => {
    const settings = QUEUE_SETTINGS[queue]?.(config.worker) ?? { concurrency: config.worker.concurrency, lockMs: config.worker.lockMs };
    const w = new Worker(
      queue,
      async (job, token) => {
        const impl = handlers.get(job.name);
        if (!impl) throw new UnrecoverableError(`no handler for job ${job.name}`);
        const started = performance.now();
        try {
          return await impl.handle(job.data, { attempt: job.attemptsMade + 1, jobId: job.id ?? '', job, token });
        } finally {
          c.metrics.jobDuration.observe({ queue, name: job.name }, (performance.now() - started) / 1000);
        }
      },
      {
        connection,
        prefix: queuePrefix(config),
        concurrency: settings.concurrency,
        lockDuration: settings.lockMs,
        stalledInterval: settings.lockMs,
        maxStalledCount: 5,
        autorun: true,
      },
    );
    w.on('failed', (job, err) => {
      c.metrics.jobFailures.inc({ queue, name: job?.name ?? 'unknown' });
      logger.warn({ queue, job: job?.name, jobId: job?.id, attempt: job?.attemptsMade, err }, 'job failed');
    });
    // outages are reported once by the connection watcher; anything else is worth a line each
    w.on('error', (err) => {
      if (!isRedisConnectionError(err)) logger.warn({ queue, err }, 'worker error');
    });
    return w;
  });
  connection.on('end', () => {
    if (!closing) opts.onFatal?.("the workers' Redis connection ended and will not reconnect");
  });
  const watchdog = setInterval(() => {
    if (closing || connection.status !== 'ready') return;
    for (const w of workers) {
      // BullMQ's job loop ends if an error escapes it; a worker that takes no jobs must not look alive
      if (w.isRunning() || w.closing) continue;
      logger.warn({ queue: w.name }, 'job loop had stopped; restarting it');
      w.run().catch((err) => logger.warn({ queue: w.name, err }, 'job loop ended'));
    }
  }, opts.watchdogMs ?? 1_000);
  watchdog.unref();
  const timers = periodic.map((p) => runPeriodically(logger, p));
  logger.info({ queues: workers.map((w) => w.name) }, 'workers started');
  return {
    async close() {
      closing = true;
      clearInterval(watchdog);
      await Promise.all([...timers.map((t) => t.stop()), ...workers.map((w) => w.close())]);
    },
  };
}

/**
 * Runs a periodic duty at start and then every `everyMs`, one run at a time (a reconciler repairs
 * what went overdue while no worker ran as soon as one starts). A run that has not settled after five
 * periods (at least 30 s) no longer blocks the next one: a duty stuck on a dead connection must not
 * silence the reconciler for good. `stop` ends the schedule and waits for the run in flight (at most
 * `graceMs`), so closing the workers never leaves a duty writing to a database being closed.
 */
function runPeriodically(logger: Logger, p: Periodic): { stop(graceMs?: number): Promise<void> } {
  const { everyMs } = p;
  const stuckAfterMs = Math.max(30_000, 5 * everyMs);
  let startedAt = 0;
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = () => {
    const now = Date.now();
    if (stopped || (startedAt && now - startedAt < stuckAfterMs)) return;
    if (startedAt) logger.warn({ task: p.name, ms: now - startedAt }, 'periodic task still running; starting another');
    const mine = now;
    startedAt = mine;
    running = p
      .run()
      .catch((err) => {
        if (isRedisConnectionError(err)) logger.debug({ task: p.name }, 'periodic task skipped: Redis unavailable');
        else logger.warn({ task: p.name, err }, 'periodic task failed');
      })
      .finally(() => {
        if (startedAt === mine) startedAt = 0;
      });
  };
  const t = setInterval(tick, everyMs);
  t.unref();
  setImmediate(tick).unref();
  return {
    async stop(graceMs = 10_000) {
      stopped = true;
      clearInterval(t);
      if (!running) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    },
  };
}
