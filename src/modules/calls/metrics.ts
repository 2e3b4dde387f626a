import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Call metrics (no user labels), registered in this instance's registry. `liveCounts` feeds the
 * gauge of live calls by state, read from PostgreSQL when Prometheus scrapes (cached 5 s).
 */
export function callMetrics(registry?: Registry, liveCounts?: () => Promise<Array<{ state: string; n: number }>>) {
  const registers = registry ? [registry] : [];
  let cached: { at: number; rows: Array<{ state: string; n: number }> } | undefined;
  if (liveCounts)
    new Gauge({
      name: 'wardline_calls_active',
      help: 'Live calls by state (RINGING, ACCEPTED, IN_PROGRESS), from the database',
      labelNames: ['state'],
      registers,
      async collect() {
        if (!cached || Date.now() - cached.at > 5_000) cached = { at: Date.now(), rows: await liveCounts().catch(() => []) };
        this.reset();
        for (const r of cached.rows) this.set({ state: r.state }, r.n);
      },
    });
  const secs = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  return {
    started: new Counter({ name: 'wardline_calls_started_total', help: 'Calls started', labelNames: ['kind', 'media'], registers }),
    transitions: new Counter({
      name: 'wardline_call_transitions_total',
      help: 'Call state transitions',
      labelNames: ['from', 'to', 'reason'],
      registers,
    }),
    ended: new Counter({ name: 'wardline_calls_ended_total', help: 'Calls by outcome', labelNames: ['state', 'reason'], registers }),
    missed: new Counter({ name: 'wardline_call_missed_notifications_total', help: 'Missed-call notifications written', registers }),
    setup: new Histogram({ name: 'wardline_call_setup_seconds', help: 'startCall to ACCEPTED (ring-to-answer)', buckets: secs, registers }),
    connect: new Histogram({ name: 'wardline_call_connect_seconds', help: 'ACCEPTED to IN_PROGRESS', buckets: secs, registers }),
    duration: new Histogram({
      name: 'wardline_call_duration_seconds',
      help: 'Connected call duration',
      buckets: [10, 30, 60, 300, 900, 1800, 3600, 7200, 14400],
      registers,
    }),
    ringLag: new Histogram({
      name: 'wardline_call_ring_timeout_lag_seconds',
      help: 'Commit of a ring timeout minus its deadline',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    }),
    repairs: new Counter({
      name: 'wardline_call_reconciler_repairs_total',
      help: 'Calls the reconciler moved (non-zero: timer jobs were lost or late)',
      labelNames: ['kind'],
      registers,
    }),
    glare: new Counter({ name: 'wardline_call_glare_merged_total', help: 'Crossing calls merged into one', registers }),
    answeredElsewhere: new Counter({
      name: 'wardline_call_answered_elsewhere_total',
      help: 'Accepts refused because another device answered first',
      registers,
    }),
    signals: new Counter({
      name: 'wardline_call_signals_total',
      help: 'Signals by kind and result',
      labelNames: ['kind', 'result'],
      registers,
    }),
    signalBytes: new Histogram({
      name: 'wardline_call_signal_bytes',
      help: 'Signal payload size',
      buckets: [128, 512, 1024, 4096, 16384, 65536],
      registers,
    }),
    signalSeconds: new Histogram({
      name: 'wardline_call_signal_relay_seconds',
      help: 'sendCallSignal: request to publish',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    }),
    rtt: new Histogram({
      name: 'wardline_call_quality_rtt_ms',
      help: 'Reported round-trip time',
      buckets: [25, 50, 100, 200, 400, 800, 1600],
      registers,
    }),
    loss: new Histogram({
      name: 'wardline_call_quality_loss_pct',
      help: 'Reported packet loss',
      buckets: [0.5, 1, 2, 5, 10, 20, 50],
      registers,
    }),
    pairs: new Counter({
      name: 'wardline_call_candidate_pairs_total',
      help: 'Quality reports by ICE candidate-pair type (relay share sizes TURN)',
      labelNames: ['type'],
      registers,
    }),
    turnIssued: new Counter({ name: 'wardline_turn_credentials_issued_total', help: 'TURN credentials issued', registers }),
  };
}

export type CallMetrics = ReturnType<typeof callMetrics>;
