import { describe, expect } from 'vitest';
import { collect, connect, gql, live, settled, subscriptionErrors, until } from '../harness/clients.js';
import { seedOrg } from '../harness/seed.js';
import { eq, inArray, sql } from 'drizzle-orm';
import { scoringBatches, scoringResults, scoringBatchRows } from '../../src/modules/predictions/tables.js';
import { withApp } from '../harness/fixtures.js';
import { PROGRESS, SUBMIT, batch, metric, metricsText, riskRows, scoringWorker, storedBatch, submit } from './ops.js';

// small chunks and a fast progress clock, so a 2,500-row batch shows several progress events
const it = withApp({ SCORING_CHUNK_SIZE: '250', SCORING_PROGRESS_MIN_MS: '50', SCORING_RECONCILE_MS: '300', SCORING_STALL_MS: '500' });

describe('batch scoring', () => {
  it('workers score every row once; progress is monotone, starts with a snapshot and completes; results page in order', async ({
    app,
    org,
  }) => {
    const b = await submit(app, org.service, { model: 'risk-30d', rows: riskRows(2_500, 100), clientBatchId: 'b-1', explain: true });
    expect(b).toMatchObject({ status: 'QUEUED', totalRows: 2_500, processedRows: 0, model: { id: 'risk-30d@1.0.0' } });
    const client = connect(app, org.service);
    const sub = await live(app, client, PROGRESS, { id: b.id });
    await sub.waitFor(1);
    const workers = scoringWorker(app, () => [org.orgId]);
    try {
      await sub.ended(30_000);
      const snaps = sub.items.map((i) => i.scoringBatchProgress);
      expect(snaps[0].processedRows).toBe(0);
      const counts = snaps.map((s: { processedRows: number }) => s.processedRows);
      expect(counts).toEqual([...counts].sort((x, y) => x - y));
      expect(snaps.at(-1)).toMatchObject({ status: 'PARTIAL', processedRows: 2_500, failedRows: 25, progress: 1 });
      expect(sub.errors).toEqual([]);

      const stored = await storedBatch(app, b.id);
      expect(stored.results).toEqual({ n: 2_500, distinct: 2_500, errors: 25 });
      expect(stored.batch.processedRows).toBe(2_500);
      expect(stored.notifications).toBe(1);

      const page1 = await batch(app, org.service, b.id, 100);
      expect(page1?.results.edges.map((e: { node: { rowIndex: number } }) => e.node.rowIndex)).toEqual(
        Array.from({ length: 100 }, (_, i) => i),
      );
      expect(page1?.results.edges[99].node).toMatchObject({ rowIndex: 99, error: expect.stringMatching(/required/) });
      expect(page1?.results.edges[0].node).toMatchObject({ subjectId: 's0', fallback: false, explanationMethod: 'EXACT_LINEAR_SHAPLEY' });
      const page2 = await batch(app, org.service, b.id, 100, page1?.results.pageInfo.endCursor);
      expect(page2?.results.edges[0].node.rowIndex).toBe(100);

      // the batch metrics: rows by result, rows/s of the last batch, batch inference by model and backend, queue depth
      const text = await metricsText(app);
      const { backend } = await app.container.services.predictions.health();
      expect(metric(text, 'wardline_scoring_rows_total', { model: 'risk-30d', result: 'ok' })).toBe(2_475);
      expect(metric(text, 'wardline_scoring_rows_total', { model: 'risk-30d', result: 'error' })).toBe(25);
      expect(metric(text, 'wardline_scoring_rows_per_second')).toBeGreaterThan(0);
      expect(
        metric(text, 'wardline_inference_seconds_count', { model: 'risk-30d', version: '1.0.0', mode: 'batch', backend }),
      ).toBeGreaterThanOrEqual(10); // one per chunk
      expect(metric(text, 'wardline_queue_jobs', { queue: 'scoring', state: 'waiting' })).toBe(0);
    } finally {
      await workers.close();
      await settled(app);
    }
  });

  it('resubmitting the same clientBatchId returns the same batch; another body is a CONFLICT', async ({ app, org }) => {
    const input = { model: 'risk-30d', rows: riskRows(10), clientBatchId: 'b-2' };
    const a = await submit(app, org.service, input);
    const again = await submit(app, org.service, input);
    expect(again.id).toBe(a.id);
    const r = await gql(app, org.service.token, SUBMIT, { input: { ...input, rows: riskRows(11) } });
    expect(r.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  it('only the submitter, org admins and org services see a batch', async ({ app, org }) => {
    const b = await submit(app, org.provider, { model: 'risk-30d', rows: riskRows(5), clientBatchId: 'b-3' });
    expect(await batch(app, org.provider, b.id)).not.toBeNull();
    expect(await batch(app, org.admin, b.id)).not.toBeNull();
    expect(await batch(app, org.service, b.id)).not.toBeNull();
    expect(await batch(app, org.patient, b.id)).toBeNull();
    const colleague = await org.user('provider');
    expect(await batch(app, colleague, b.id)).toBeNull();
    const other = await seedOrg(app);
    expect(await batch(app, other.admin, b.id)).toBeNull();
    expect(await batch(app, other.service, b.id)).toBeNull();
    const r = await gql(app, org.patient.token, SUBMIT, { input: { model: 'risk-30d', rows: riskRows(1), clientBatchId: 'p' } });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    // the progress subscription: the same people, the others are refused before any snapshot
    for (const who of [org.provider, org.admin, org.service]) {
      const sub = collect(connect(app, who), PROGRESS, { id: b.id });
      expect((await sub.waitFor(1))[0].scoringBatchProgress).toMatchObject({ id: b.id, totalRows: 5 });
      sub.stop();
    }
    for (const who of [org.patient, colleague, other.admin, other.service]) {
      const sub = collect(connect(app, who), PROGRESS, { id: b.id });
      await sub.ended();
      expect(sub.items).toEqual([]);
      expect(subscriptionErrors(sub)[0]?.extensions?.code, who.id).toMatch(/^(FORBIDDEN|NOT_FOUND)$/);
    }
  });

  it('the reconciler re-creates lost chunk jobs and the batch completes', async ({ app, org }) => {
    const b = await submit(app, org.service, {
      model: 'symptom-urgency',
      rows: riskRows(600).map((r) => ({
        ...r,
        features: { respiratoryRate: 18, spo2: 97, onOxygen: false, systolicBp: 120, pulse: 80, consciousness: 'ALERT', temperature: 37 },
      })),
      clientBatchId: 'b-4',
    });
    // every chunk job is lost (as if Redis dropped them)
    await app.container.queues.queue('scoring').obliterate({ force: true });
    const workers = scoringWorker(app, () => [org.orgId]);
    try {
      await until(async () => (await storedBatch(app, b.id)).batch.status === 'succeeded', 20_000, 'the reconciled batch');
      const stored = await storedBatch(app, b.id);
      expect(stored.results).toEqual({ n: 600, distinct: 600, errors: 0 });
      expect(stored.batch.processedRows).toBe(600);
    } finally {
      await workers.close();
    }
  });
});

describe('retention', () => {
  it('the workers’ periodic duty deletes finished batches older than SCORING_RESULT_RETENTION_DAYS with their rows and results, and keeps the rest', async ({
    app,
    org,
  }) => {
    // more old batches than one retention statement deletes (5): the sweep goes on until none is left
    const olds: Array<Record<string, any>> = [];
    for (let i = 0; i < 7; i++)
      olds.push(await submit(app, org.service, { model: 'risk-30d', rows: riskRows(20), clientBatchId: `ret-old-${i}` }));
    const old = olds[0] as Record<string, any>;
    const recent = await submit(app, org.service, { model: 'risk-30d', rows: riskRows(20), clientBatchId: 'ret-recent' });
    const finished = async (id: string) => (await storedBatch(app, id)).batch.status === 'succeeded';
    let workers = scoringWorker(app, () => [org.orgId]);
    try {
      await until(
        async () => (await Promise.all([...olds, recent].map((b) => finished(b.id)))).every(Boolean),
        20_000,
        'the batches scored',
      );
    } finally {
      await workers.close();
    }
    const db = app.container.database.db;
    const left = async (id: string) => {
      const [r] = await db.select({ n: sql<number>`count(*)::int` }).from(scoringResults).where(eq(scoringResults.batchId, id));
      const [w] = await db.select({ n: sql<number>`count(*)::int` }).from(scoringBatchRows).where(eq(scoringBatchRows.batchId, id));
      return { results: r?.n, rows: w?.n };
    };
    const exists = async (id: string) => (await db.select().from(scoringBatches).where(eq(scoringBatches.id, id))).length > 0;
    expect(await left(old.id)).toEqual({ results: 20, rows: 20 });
    // (the retention duty of every scoring worker sharing this database, other test files' too, may delete it from here on)
    const days = app.config.predictions.retentionDays;
    await db
      .update(scoringBatches)
      .set({ finishedAt: new Date(Date.now() - (days + 1) * 86_400_000) })
      .where(
        inArray(
          scoringBatches.id,
          olds.map((b) => b.id),
        ),
      );
    await db
      .update(scoringBatches)
      .set({ finishedAt: new Date(Date.now() - (days - 1) * 86_400_000) })
      .where(eq(scoringBatches.id, recent.id));
    workers = scoringWorker(app, () => [org.orgId]); // periodic duties run at start, then every interval
    try {
      await until(async () => !(await Promise.all(olds.map((b) => exists(b.id)))).some(Boolean), 20_000, 'the old batches deleted');
    } finally {
      await workers.close();
    }
    expect(await left(old.id)).toEqual({ results: 0, rows: 0 });
    expect(await batch(app, org.service, recent.id)).toMatchObject({ status: 'SUCCEEDED', processedRows: 20 });
    expect(await left(recent.id)).toEqual({ results: 20, rows: 20 });
  });
});

describe('a chunk retried after its commit', () => {
  it('stores and counts nothing twice', async ({ app, org }) => {
    const { createChunks } = await import('../../src/modules/predictions/chunks.js');
    const { chunkJob } = await import('../../src/modules/predictions/jobs.js');
    const { startWorkers } = await import('../../src/worker.js');
    const c = app.container;
    let failures = 0;
    const chunks = createChunks(
      {
        db: c.database.db,
        commit: (await import('../../src/realtime/commit.js')).createCommit(c.database.db, c.publisher, c.logger),
        queues: c.queues,
        logger: c.logger,
        config: c.config.predictions,
        predictions: c.services.predictions,
        notifications: c.services.notifications,
        metrics: c.services.predictions.metrics,
      },
      {
        afterCommit: async () => {
          if (failures++ === 0) throw new Error('lost the connection before acknowledging');
        },
      },
    );
    const workers = startWorkers(c, { jobs: [chunkJob(chunks)], periodic: [] });
    try {
      const b = await submit(app, org.service, { model: 'risk-30d', rows: riskRows(300), clientBatchId: 'retry-1' });
      await until(async () => (await storedBatch(app, b.id)).batch.status === 'succeeded', 20_000, 'the batch');
      const job = await c.queues.queue('scoring').getJob(`scoring-chunk-${b.id}-0`);
      expect(job?.attemptsMade).toBeGreaterThanOrEqual(1);
      expect(failures).toBeGreaterThan(1);
      const stored = await storedBatch(app, b.id);
      expect(stored.results).toEqual({ n: 300, distinct: 300, errors: 0 });
      expect(stored.batch.processedRows).toBe(300);
      expect(stored.notifications).toBe(1);
    } finally {
      await workers.close();
    }
  });
});
