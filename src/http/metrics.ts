import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one instance (one registry per instance, so tests can run two). */
export interface Metrics {
  registry: Registry;
  sockets: Gauge;
  subscriptions: Gauge;
  deliveries: Counter;
  deliveryLatency: Histogram;
  operationLatency: Histogram;
  slowConsumers: Counter;
  jobDuration: Histogram;
  jobFailures: Counter;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'wardline_process_' });
  return {
    registry,
    sockets: new Gauge({ name: 'wardline_ws_sockets', help: 'Open graphql-ws sockets', registers: [registry] }),
    subscriptions: new Gauge({
      name: 'wardline_ws_subscriptions',
      help: 'Active subscriptions on this instance',
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'wardline_deliveries_total',
      help: 'Subscription events written to sockets',
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'wardline_delivery_latency_seconds',
      help: 'Publish to socket-write latency, observed once per event per subscriber group',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    operationLatency: new Histogram({
      name: 'wardline_operation_latency_seconds',
      help: 'Query and mutation execution latency',
      labelNames: ['operation_type'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    slowConsumers: new Counter({
      name: 'wardline_ws_slow_consumer_closes_total',
      help: 'Sockets closed with 1013 because their send buffer exceeded WS_MAX_BUFFERED_BYTES',
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'wardline_job_duration_seconds',
      help: 'BullMQ job processing time',
      labelNames: ['queue', 'name'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    jobFailures: new Counter({
      name: 'wardline_job_failures_total',
      help: 'BullMQ job attempts that failed',
      labelNames: ['queue', 'name'],
      registers: [registry],
    }),
  };
}

/** Queue depth by state, read from Redis when Prometheus scrapes. */
export function registerQueueMetrics(metrics: Metrics, counts: () => Promise<Record<string, Record<string, number>>>): void {
  new Gauge({
    name: 'wardline_queue_jobs',
    help: 'BullMQ jobs by queue and state (waiting, active, delayed, failed, completed)',
    labelNames: ['queue', 'state'],
    registers: [metrics.registry],
    async collect() {
      this.reset();
      const all = await counts().catch(() => ({}) as Record<string, Record<string, number>>);
      for (const [queue, states] of Object.entries(all)) for (const [state, n] of Object.entries(states)) this.set({ queue, state }, n);
    },
  });
}
