// Predictions benchmark (issue 8): model inference alone per backend, `score` over HTTP (persisted),
// and batch scoring end to end by a real worker process, against the raw ceiling of storing the
// same result rows in PostgreSQL.
//
//   npm run bench:predictions                  # full run
//   BENCH_QUICK=1 npm run bench:predictions    # shorter
//
// Knobs: BENCH_SCORE_SECONDS (10), BENCH_SCORE_CONCURRENCY (16), BENCH_BATCH_ROWS (10000),
// BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/wardline_bench_predictions, created and
// migrated if missing), BENCH_REDIS_URL (redis://127.0.0.1:6379).
//
// Processes: this driver (load, timing, report), one API instance (`server`, `wardline serve`) and
// one worker process (`worker`, `wardline worker`); inference runs in one child per backend.
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { Histogram, sleep, limitsEnv } from './common.js';

const SECRET = 'bench-secret-bench-secret-bench-secret-01';
const env = process.env;
const QUICK = env.BENCH_QUICK === '1';
const SCORE_SECONDS = Number(env.BENCH_SCORE_SECONDS ?? (QUICK ? 4 : 10));
const CONCURRENCY = Number(env.BENCH_SCORE_CONCURRENCY ?? 16);
const BATCH_ROWS = Number(env.BENCH_BATCH_ROWS ?? 10_000);
const DATABASE_URL = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/wardline_bench_predictions';
const REDIS_URL = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const self = fileURLToPath(import.meta.url);

const kids = new Set<ChildProcess>();
// children never outlive the driver, even when it fails
process.on('exit', () => {
  for (const k of kids) k.kill('SIGKILL');
});
const child = (role: string, extraEnv: Record<string, string> = {}) => {
  const c = fork(self, [role], {
    // BENCH_PROFILE=<dir>: the API server writes a CPU profile there when it stops
    execArgv: ['--import', 'tsx', ...(role === 'server' && env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE}`] : [])],
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  kids.add(c);
  c.once('exit', () => kids.delete(c));
  return c;
};
const message = <T>(p: ChildProcess, ms = 120_000) =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('child did not answer')), ms);
    p.once('message', (m) => {
      clearTimeout(t);
      resolve(m as T);
    });
    p.once('exit', (code) => reject(new Error(`child exited (${code})`)));
  });

// ---- children ----------------------------------------------------------------------------------

async function serve(role: 'serve' | 'worker') {
  const { loadConfig } = await import('../../src/config.js');
  const { createContainer } = await import('../../src/container.js');
  const config = loadConfig(process.env);
  process.once('SIGTERM', () => process.exit(0)); // an exit that writes BENCH_PROFILE's profile
  if (role === 'serve') {
    const { createApi } = await import('../../src/api.js');
    const container = await createContainer(config, { role: 'serve' });
    await container.services.predictions.models(); // loaded before traffic
    const api = createApi(container);
    process.send?.({ port: await api.listen(0, '127.0.0.1') });
  } else {
    const { startWorkers } = await import('../../src/worker.js');
    const container = await createContainer(config, { role: 'worker', migrate: false });
    await container.services.predictions.models();
    startWorkers(container);
    process.send?.({ ready: true });
  }
}

/** Inference alone on one backend: rows/s at batch sizes, with and without explanations. */
async function inference(backend: string) {
  const { loadModels } = await import('../../src/modules/predictions/models.js');
  const { defaultModelsDir } = await import('../../src/modules/predictions/module.js');
  const { scoreRows } = await import('../../src/modules/predictions/scorer.js');
  const { checkRow } = await import('../../src/modules/predictions/features.js');
  const { riskData, urgencyData } = await import('../../scripts/synth.js');
  const { createLogger } = await import('../../src/shared/logger.js');
  const set = await loadModels(defaultModelsDir(), backend as 'wasm', createLogger('silent'));
  if (set.backend !== backend) return process.send?.({ backend, unavailable: true });
  const out: Array<Record<string, unknown>> = [];
  for (const m of set.all()) {
    const data = m.card.name === 'risk-30d' ? riskData(5_000, 1).map((d) => d.row) : urgencyData(5_000, 1).map((d) => d.row);
    const rows = data.map((r) => {
      const c = checkRow(m.card.featureSpec, r);
      if (!c.ok) throw new Error(c.error);
      return c.row;
    });
    for (const size of [1, 1_000, 5_000])
      for (const explain of [false, true]) {
        const batch = rows.slice(0, size);
        const opts = { explain, topK: 3 };
        scoreRows(set.tf, m, m.card, batch, opts);
        const reps = Math.max(3, Math.ceil(20_000 / size));
        const t0 = performance.now();
        let worst = 0;
        for (let i = 0; i < reps; i++) {
          const t = performance.now();
          scoreRows(set.tf, m, m.card, batch, opts);
          worst = Math.max(worst, performance.now() - t);
        }
        const s = (performance.now() - t0) / 1000;
        out.push({
          model: m.id,
          batch: size,
          explain,
          rowsPerSecond: Math.round((size * reps) / s),
          msPerCall: (s * 1000) / reps,
          worstMs: worst,
        });
      }
  }
  process.send?.({ backend, results: out, tensors: set.numTensors() });
}

// ---- driver ------------------------------------------------------------------------------------

function db(database?: string) {
  const url = new URL(DATABASE_URL);
  return postgres({
    host: url.hostname,
    port: Number(url.port || 5432),
    username: url.username || 'postgres',
    database: database ?? url.pathname.slice(1),
    max: 1,
    onnotice: () => {},
  });
}

const riskFeatures = (i: number) => ({
  lengthOfStay: i % 15,
  acuteAdmission: i % 3 === 0,
  charlson: i % 6,
  edVisits6m: i % 4,
  age: 40 + (i % 55),
  egfr: 30 + (i % 80),
  systolicBp: 100 + (i % 60),
  heartRate: 60 + (i % 50),
  spo2: 88 + (i % 12),
  activeMedications: i % 14,
  livesAlone: i % 4 === 0,
  priorAdmissions12m: i % 3,
});

async function post(url: string, token: string, query: string, variables: unknown) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors).slice(0, 300));
  return body.data;
}

/** Share of mutations the server finished within `le` seconds (from its own latency histogram). */
async function serverShare(port: number, le: string): Promise<{ within: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const bucket = new RegExp(`wardline_operation_latency_seconds_bucket\\{le="${le}",operation_type="mutation"\\} (\\d+)`).exec(text);
  const count = /wardline_operation_latency_seconds_count\{operation_type="mutation"\} (\d+)/.exec(text);
  return { within: Number(bucket?.[1] ?? 0), count: Number(count?.[1] ?? 0) };
}

async function scoreBench(url: string, port: number, token: string) {
  const SCORE = `mutation($input: ScoreInput!){ score(input:$input){ id score fallback explanation { feature contribution } } }`;
  const h = new Histogram();
  let n = 0;
  let i = 0;
  const before = await serverShare(port, '0.025');
  const end = Date.now() + SCORE_SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        const k = i++;
        const t = performance.now();
        await post(url, token, SCORE, { input: { model: 'risk-30d', features: riskFeatures(k), subjectId: `p${k % 500}` } });
        h.add(performance.now() - t);
        n++;
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  const after = await serverShare(port, '0.025');
  const count = after.count - before.count;
  return { perSecond: n / s, client: h.summary(), serverWithin25ms: count ? (after.within - before.within) / count : Number.NaN, count };
}

async function batchBench(url: string, token: string, explain: boolean) {
  const SUBMIT = `mutation($input: ScoringBatchInput!){ submitScoringBatch(input:$input){ id } }`;
  const rows = Array.from({ length: BATCH_ROWS }, (_, i) => ({ subjectId: `s${i}`, features: riskFeatures(i) }));
  const { submitScoringBatch: b } = await post(url, token, SUBMIT, {
    input: { model: 'risk-30d', rows, clientBatchId: randomUUID(), explain },
  });
  const committed = Date.now(); // the answer arrives after the commit: a conservative start
  const sql = db();
  let row: { status: string; finished: number | null; processed: number } | undefined;
  for (;;) {
    [row] = await sql<{ status: string; finished: number | null; processed: number }[]>`
      select status, (extract(epoch from finished_at) * 1000)::float8 as finished, processed_rows as processed from scoring_batches where id = ${b.id}`;
    if (row?.finished) break;
    await sleep(20);
  }
  await sql.end();
  const seconds = ((row?.finished ?? 0) - committed) / 1000;
  return { batchId: b.id as string, status: row?.status, rows: BATCH_ROWS, seconds, rowsPerSecond: BATCH_ROWS / seconds };
}

/** The raw ceiling: the same result rows stored by COPY and by our one-statement insert, no scoring. */
async function ceiling(batchId: string) {
  const sql = db();
  const res = await sql`select batch_id, row_index, subject_id, produced_by, score, label, probabilities, fallback, fallback_reason,
    explanation, explanation_method, warnings, error from scoring_results where batch_id = ${batchId} order by row_index`;
  await sql`create temp table copy_ceiling (like scoring_results including defaults including constraints including indexes)`;
  const csv = (v: unknown) =>
    v === null || v === undefined ? '' : `"${(typeof v === 'object' ? JSON.stringify(v) : String(v)).replaceAll('"', '""')}"`;
  const lines = res
    .map((r) =>
      [
        r.batch_id,
        r.row_index,
        r.subject_id,
        r.produced_by,
        r.score,
        r.label,
        r.probabilities,
        r.fallback,
        r.fallback_reason,
        r.explanation,
        r.explanation_method,
        r.warnings,
        r.error,
      ]
        .map(csv)
        .join(','),
    )
    .join('\n');
  const t0 = performance.now();
  const w =
    await sql`copy copy_ceiling (batch_id, row_index, subject_id, produced_by, score, label, probabilities, fallback, fallback_reason, explanation, explanation_method, warnings, error) from stdin with (format csv)`.writable();
  await new Promise<void>((resolve, reject) => {
    w.on('error', reject);
    w.on('finish', resolve);
    w.end(`${lines}\n`);
  });
  const copyS = (performance.now() - t0) / 1000;
  await sql`truncate copy_ceiling`;
  const json = JSON.stringify(
    res.map((r) => ({
      i: r.row_index,
      s: r.subject_id,
      pb: r.produced_by,
      sc: r.score,
      l: r.label,
      pr: r.probabilities,
      fb: r.fallback,
      fr: r.fallback_reason,
      ex: r.explanation,
      em: r.explanation_method,
      w: r.warnings,
      e: r.error,
    })),
  );
  const t1 = performance.now();
  for (let from = 0; from < res.length; from += 1_000) {
    const part = JSON.stringify(JSON.parse(json).slice(from, from + 1_000));
    await sql.unsafe(
      `insert into copy_ceiling (batch_id, row_index, subject_id, produced_by, score, label, probabilities, fallback, fallback_reason, explanation, explanation_method, warnings, error)
       select $1::uuid, r.i, r.s, r.pb, r.sc, r.l, r.pr, coalesce(r.fb, false), r.fr, r.ex, r.em, r.w, r.e
       from jsonb_to_recordset($2::text::jsonb) as r(i int, s text, pb text, sc float8, l text, pr jsonb, fb boolean, fr text, ex jsonb, em text, w jsonb, e text)
       on conflict do nothing`,
      [batchId, part],
    );
  }
  const insertS = (performance.now() - t1) / 1000;
  await sql.end();
  return { copyRowsPerSecond: res.length / copyS, insertRowsPerSecond: res.length / insertS };
}

async function driver() {
  const admin = db('postgres');
  const name = new URL(DATABASE_URL).pathname.slice(1);
  const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
  if (!exists) await admin.unsafe(`create database "${name}"`);
  await admin.end();

  console.log('inference alone (in-process, one thread):');
  for (const backend of ['wasm', 'cpu', 'tensorflow']) {
    const c = child('inference', { BENCH_BACKEND: backend });
    const r = await message<{ backend: string; unavailable?: boolean; results?: Array<Record<string, any>> }>(c);
    if (r.unavailable) console.log(`  ${backend}: not available here`);
    for (const x of r.results ?? [])
      console.log(
        `  ${backend.padEnd(10)} ${String(x.model).padEnd(22)} batch ${String(x.batch).padStart(5)} explain ${x.explain ? 'top-3' : 'off  '}  ${String(x.rowsPerSecond).padStart(9)} rows/s  ${x.msPerCall.toFixed(3)} ms/call (worst ${x.worstMs.toFixed(1)} ms)`,
      );
  }

  const prefix = `bp${randomUUID().slice(0, 6)}`;
  const common = {
    DATABASE_URL,
    REDIS_URL,
    JWT_SECRET: SECRET,
    REDIS_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    ...limitsEnv(process.env.BENCH_LIMITS),
    SEED_ON_EMPTY: 'false',
  };
  const server = child('server', common);
  const { port } = await message<{ port: number }>(server);
  const { mintToken } = await import('../../src/http/auth.js');
  const orgId = `bench-${randomUUID().slice(0, 8)}`;
  const token = await mintToken(SECRET, { sub: `${orgId}:svc`, org: orgId, role: 'service', name: 'Bench service' }, 3600);
  const url = `http://127.0.0.1:${port}/graphql`;

  await scoreBench(url, port, token).catch(() => undefined); // warm-up
  const s = await scoreBench(url, port, token);
  console.log(
    `score over HTTP (persisted, explanations on, ${CONCURRENCY} concurrent): ${s.perSecond.toFixed(0)}/s; client p50 ${s.client.p50.toFixed(1)} ms p99 ${s.client.p99.toFixed(1)} ms; server-side ≤ 25 ms: ${(100 * s.serverWithin25ms).toFixed(2)} % of ${s.count}`,
  );

  const worker = child('worker', common);
  await message(worker);
  for (const explain of [false, true]) {
    await batchBench(url, token, explain); // warm-up
    const b = await batchBench(url, token, explain);
    const c = await ceiling(b.batchId);
    const best = Math.max(c.copyRowsPerSecond, c.insertRowsPerSecond);
    console.log(
      `batch ${b.rows} rows, explain ${explain ? 'top-3' : 'off'}: ${b.status} in ${b.seconds.toFixed(2)} s = ${b.rowsPerSecond.toFixed(0)} rows/s (submit answer → last chunk commit); ` +
        `ceiling: COPY ${c.copyRowsPerSecond.toFixed(0)} rows/s, one INSERT per 1,000 ${c.insertRowsPerSecond.toFixed(0)} rows/s; ours = ${((100 * b.rowsPerSecond) / best).toFixed(0)} % of the best`,
    );
  }
  await Promise.all(
    [server, worker].map(
      (p) =>
        new Promise((r) => {
          p.once('exit', r);
          p.kill('SIGTERM');
          setTimeout(r, 10_000).unref();
        }),
    ),
  );
  const sql = db();
  await sql`delete from scoring_batches where org_id = ${orgId}`;
  await sql`delete from predictions where org_id = ${orgId}`;
  await sql`delete from notifications where org_id = ${orgId}`;
  await sql`delete from stream_events where org_id = ${orgId}`;
  await sql`delete from stream_heads where org_id = ${orgId}`;
  await sql.end();
  process.exit(0);
}

const role = process.argv[2];
if (role === 'server') await serve('serve');
else if (role === 'worker') await serve('worker');
else if (role === 'inference') await inference(env.BENCH_BACKEND ?? 'wasm');
else
  await driver().catch((err) => {
    console.error(err);
    process.exit(1);
  });
