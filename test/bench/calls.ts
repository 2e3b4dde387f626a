// Call-signaling benchmark (issue 7, "Benchmarks"): two API instances of one deployment (separate
// processes, one Redis prefix) and a real worker process, on the real PostgreSQL and Redis.
//
//   npm run -s bench:calls                                   # ~1-2.5 min: the three phases below
//   CALLS_RATE=100 CALLS_SECONDS=5 npm run -s bench:calls    # lighter load
//   CALLS_PHASES=ring npm run -s bench:calls                 # one phase only
//
// Phases (each prints p50/p99 and counts; one JSON line at the end, also in bench-results/), run in
// the order 3, 1, 2 so that no call left live by one phase can ring into the timing of the ring phase:
//   1. setup   open loop at CALLS_RATE call setups/s for CALLS_SECONDS over distinct caller/callee
//              pairs (each with its own DIRECT conversation, so glare and busy never apply): the caller
//              POSTs startCall to instance A; hop 1 = until IncomingCall arrives on the callee's socket
//              on instance B; the callee then sends acceptCall over that socket; hop 2 = from that send
//              until CallStateChanged(ACCEPTED) arrives on the caller's socket on A; the caller ends the
//              call (endCall over HTTP) and the pair is free again. The CALLS_SETUP_PAIRS pairs bound
//              the setups in flight: when all are busy the launch falls behind schedule (the achieved
//              rate says so); a setup not done after 20 s is counted as an error and hung up.
//              Target p99 < 50 ms per hop.
//   2. signal  CALLS_SIGNAL_CALLS accepted calls (OFFER/ANSWER exchanged, so IN_PROGRESS) whose two
//              answering devices are on different instances; each party also has a second, idle
//              device subscribed on the other instance. ICE_CANDIDATE signals at CALLS_SIGNAL_RATE/s
//              (open loop with at most 500 in flight, both directions, round-robin over the
//              2 x calls senders) from the
//              sender's mutation (over its socket; CALLS_SIGNAL_VIA=http to POST instead) to arrival
//              on the addressed socket. Lost = acked but never received; misrouted = received by a
//              device it was not addressed to; seq checked per sender (distinct, no gaps, and a signal
//              sent after another was acked always has the larger seq). Target p99 < 20 ms, 0 lost,
//              0 misrouted.
//   3. ring    CALLS_RING_CALLS calls that nobody answers, started as fast as possible (64 at a time)
//              through the calls service in the driver's own container (the code startCall runs, with
//              CALL_RING_TIMEOUT_MS=CALLS_RING_TIMEOUT_MS there only: the API instances keep the
//              default 30 s so phases 1-2 never race it); the worker process's ring timeout makes them
//              MISSED and the events reach the callers' sockets on A. Lateness = endedAt (from
//              PostgreSQL, the transition's own timestamp) minus the ringDeadline startCall returned,
//              and the same for the MISSED event's arrival on the caller's socket; plus exactly one
//              MISSED_CALL notification per call (and none for a call that was not missed). The
//              starts stop after 20 s (or when BENCH_MAX_MS runs short); "ringing at once" counts
//              the calls started before the first one ended. Target p99 lateness < 1 s.
//
// Knobs: CALLS_RATE (200), CALLS_SECONDS (10), CALLS_SETUP_PAIRS (200: the pairs phase 1 cycles
// through, so also its cap on setups in flight; 1 s of the target rate),
// CALLS_SIGNAL_RATE (2000), CALLS_SIGNAL_SECONDS (10), CALLS_SIGNAL_CALLS (100), CALLS_SIGNAL_VIA
// (socket | http), CALLS_RING_CALLS (1000), CALLS_RING_TIMEOUT_MS (3000, phase 3's calls),
// CALLS_API_RING_TIMEOUT_MS (the instances' CALL_RING_TIMEOUT_MS, default the config's 30 s),
// CALLS_RECONCILE_MS (CALL_RECONCILE_MS of every process, default the config's), CALLS_PHASES
// (setup,signal,ring), BENCH_MAX_MS (180000: hard stop; phases are cut short to fit, and a partial
// report is written if it fires), BENCH_DATABASE_URL (else TEST_DATABASE_URL,
// else postgres://postgres@127.0.0.1:5432/wardline_test; created and migrated if needed),
// BENCH_REDIS_URL (else TEST_REDIS_URL, else redis://127.0.0.1:6379), BENCH_KEEP_DATA=1 (keep the
// bench org's rows and Redis keys).
//
// The instances run with CALL_SIGNAL_RATE=10000 (the config's maximum; the default 50/s per device
// would only matter if one sender exceeded it) and CALL_START_RATE_PER_MIN=10000 (a pair is reused
// every few seconds). Users and conversations are bulk-inserted (the rows createConversation writes,
// minus its MembersChanged events); only the pairs phases 1-2 use get sockets. Processes: this
// driver (holds every socket and makes every request, so send and receive times come from one
// clock), two API instances
// (`server`: loadConfig + createContainer + createApi) and one worker (`worker`: createContainer
// with role worker + startWorkers, i.e. `wardline worker`). Everything stays on 127.0.0.1.
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import WebSocket from 'ws';
import type { CoreContainer } from '../../src/container.js';
import {
  Histogram,
  type LatencySummary,
  benchInstance,
  ensureDatabase,
  pgClient,
  pool,
  sampleSystem,
  sleep,
  systemCpu,
  limitsEnv,
} from './common.js';

const SECRET = 'bench-secret-bench-secret-bench-secret-01';
const env = process.env;
const num = (name: string, def: number): number => {
  const raw = env[name];
  const n = raw === undefined || raw === '' ? def : Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a non-negative number, got ${raw}`);
  return n;
};
const RATE = num('CALLS_RATE', 200);
const SECONDS = num('CALLS_SECONDS', 10);
const SIG_RATE = num('CALLS_SIGNAL_RATE', 2_000);
const SIG_SECONDS = num('CALLS_SIGNAL_SECONDS', 10);
const SIG_CALLS = Math.max(1, Math.floor(num('CALLS_SIGNAL_CALLS', 100)));
const SIG_VIA = env.CALLS_SIGNAL_VIA === 'http' ? 'http' : 'socket';
const RING_CALLS = Math.floor(num('CALLS_RING_CALLS', 1_000));
const RING_TIMEOUT_MS = num('CALLS_RING_TIMEOUT_MS', 3_000);
const SETUP_PAIRS = Math.max(1, Math.floor(num('CALLS_SETUP_PAIRS', 200)));
const PAIRS = Math.max(SETUP_PAIRS, RING_CALLS, SIG_CALLS);
/** Pairs whose two devices have a socket: those phases 1 and 2 use (phase 3 observes MISSED on these). */
const SOCKET_PAIRS = Math.max(SETUP_PAIRS, SIG_CALLS);
const PHASES = new Set((env.CALLS_PHASES ?? 'setup,signal,ring').split(',').map((s) => s.trim()));
const MAX_MS = num('BENCH_MAX_MS', 180_000);
const DATABASE_URL = env.BENCH_DATABASE_URL ?? env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/wardline_test';
const REDIS_URL = env.BENCH_REDIS_URL ?? env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const HOST = '127.0.0.1';
/** A call setup that has not completed after this long is abandoned (counted as an error, then ended). */
const STALL_MS = 20_000;
/** When the phases must be done (BENCH_MAX_MS less time to stop and clean up); set by the driver. */
let budgetEnd = Number.POSITIVE_INFINITY;
const budgetLeft = () => budgetEnd - Date.now();

const START = 'mutation($i: StartCallInput!){ startCall(input: $i) { id state ringDeadline } }';
const ACCEPT = 'mutation($id: ID!, $d: String){ acceptCall(id: $id, deviceId: $d) { id state } }';
const END = 'mutation($id: ID!){ endCall(id: $id) { id state } }';
const SIGNAL = 'mutation($i: CallSignalInput!){ sendCallSignal(input: $i) }';
const EVENTS = `subscription($d: String){ callEvents(deviceId: $d) {
  __typename
  ... on StreamEvent { at }
  ... on IncomingCall { call { id } }
  ... on CallStateChanged { to reason call { id } }
  ... on CallSignal { callId fromDeviceId toDeviceId kind seq payload }
} }`;

// ---- child processes: the real entry points ------------------------------------------------------

type Msg = { t: 'ready'; port?: number } | { t: 'cpu'; cpu: NodeJS.CpuUsage; wall: number } | { t: 'metrics'; text: string };

const self = fileURLToPath(import.meta.url);
const child = (role: string, extraEnv: Record<string, string>) =>
  fork(self, [role], { execArgv: ['--import', 'tsx'], env: { ...env, ...extraEnv }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });

/** Resolves with the child's next message of type `t` (after sending `send`, if given). */
const ask = <T extends Msg['t']>(p: ChildProcess, t: T, ms: number, send?: { t: string }) =>
  new Promise<Extract<Msg, { t: T }>>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${t} not received within ${ms} ms`)), ms);
    const on = (m: Msg) => m?.t === t && done(undefined, m as Extract<Msg, { t: T }>);
    const gone = (code: number | null) => done(new Error(`child exited (${code}) before ${t}`));
    const done = (err?: Error, m?: Extract<Msg, { t: T }>) => {
      clearTimeout(timer);
      p.off('message', on);
      p.off('exit', gone);
      if (err) reject(err);
      else resolve(m as Extract<Msg, { t: T }>);
    };
    p.on('message', on);
    p.once('exit', gone);
    if (send) p.send(send);
  });

/** Answers `cpu` (and `metrics`) requests; stops on `stop`, SIGTERM or when the driver goes away. */
function childLoop(stop: () => Promise<void>, metrics?: () => Promise<string>) {
  process.on('message', (m: { t?: string }) => {
    if (m.t === 'stop') void stop();
    else if (m.t === 'cpu') process.send?.({ t: 'cpu', cpu: process.cpuUsage(), wall: Date.now() } satisfies Msg);
    else if (m.t === 'metrics' && metrics)
      void metrics().then(
        (text) => process.send?.({ t: 'metrics', text } satisfies Msg),
        () => process.send?.({ t: 'metrics', text: '' }),
      );
  });
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
}

async function server() {
  const api = await benchInstance('api', { migrate: false, apiRole: 'serve' });
  process.send?.({ t: 'ready', port: api.port } satisfies Msg);
  childLoop(() => api.stop().then(() => process.exit(0)));
}

async function worker() {
  const w = await benchInstance('worker');
  process.send?.({ t: 'ready' } satisfies Msg);
  childLoop(() => w.stop().then(() => process.exit(0)), w.metrics);
}

// ---- clients: HTTP and raw graphql-transport-ws ----------------------------------------------------

interface GqlResult {
  data?: any;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

const agents = new Map<number, Agent>();
const agentFor = (port: number) => {
  let a = agents.get(port);
  if (!a) {
    a = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
    agents.set(port, a);
  }
  return a;
};

/** POSTs an operation; transport failures come back as `errors` too. */
function post(port: number, token: string, query: string, variables: Record<string, unknown>): Promise<GqlResult> {
  const payload = JSON.stringify({ query, variables });
  return new Promise((resolve) => {
    const req = request(
      {
        host: HOST,
        port,
        path: '/graphql',
        method: 'POST',
        agent: agentFor(port),
        timeout: 30_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: token },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve(JSON.parse(text) as GqlResult);
          } catch {
            resolve({ errors: [{ message: `HTTP ${res.statusCode}: ${text.slice(0, 200)}` }] });
          }
        });
        res.on('error', (err) => resolve({ errors: [{ message: err.message }] }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ errors: [{ message: err.message }] }));
    req.end(payload);
  });
}

const errText = (r: GqlResult) => {
  const e = r.errors?.[0];
  if (!e) return 'no data';
  const x = e.extensions ?? {};
  return [e.message, x.code, x.reason].filter(Boolean).join(' / ').slice(0, 300);
};

type DevRole = 'caller' | 'callee' | 'callerAlt' | 'calleeAlt';

interface User {
  id: string;
  token: string;
}

interface Pair {
  i: number;
  caller: User;
  callee: User;
  conversationId: string;
  /** The caller's device on instance A (places the calls). */
  callerDev: Dev;
  /** The callee's device on instance B (answers them). */
  calleeDev: Dev;
  /** Idle second devices (phase 2): the caller's on B, the callee's on A. */
  callerAlt?: Dev;
  calleeAlt?: Dev;
  /** The phase-1 setup in flight on this pair. */
  cur?: SetupRec;
}

let frameErrors = 0;
let firstFrameError: string | undefined;
let socketCloses = 0;
let connectFailures = 0;

/** One device: a graphql-ws socket with `callEvents(deviceId)` open; mutations may go over it too. */
class Dev {
  ws: WebSocket | undefined;
  private readonly ops = new Map<string, { resolve: (r: GqlResult) => void; result: GqlResult | undefined }>();
  private opSeq = 1;

  constructor(
    readonly port: number,
    readonly token: string,
    readonly id: string,
    readonly role: DevRole,
    readonly pair: Pair | undefined,
  ) {}

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${HOST}:${this.port}/graphql`, 'graphql-transport-ws', { perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => {
        reject(new Error(`device ${this.id}: no connection_ack within 60 s`));
        ws.terminate();
      }, 60_000);
      ws.once('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: this.token } })));
      ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.on('close', () => {
        socketCloses++;
        for (const op of this.ops.values()) op.resolve({ errors: [{ message: 'socket closed' }] });
        this.ops.clear();
      });
      ws.on('message', (raw: Buffer) => {
        const now = performance.now();
        let m: { type: string; id?: string; payload?: any };
        try {
          m = JSON.parse(raw.toString());
        } catch {
          frameErrors++;
          return;
        }
        if (m.type === 'next' && m.id === '1') {
          const ev = m.payload?.data?.callEvents;
          if (ev) onEvent(this, ev, now);
          else {
            frameErrors++;
            firstFrameError ??= raw.toString().slice(0, 300);
          }
        } else if (m.type === 'next') {
          const op = this.ops.get(m.id ?? '');
          if (op) op.result = m.payload as GqlResult;
        } else if (m.type === 'complete' || m.type === 'error') {
          const op = this.ops.get(m.id ?? '');
          if (op) {
            this.ops.delete(m.id ?? '');
            op.resolve(m.type === 'error' ? { errors: m.payload } : (op.result ?? { errors: [{ message: 'completed without a result' }] }));
          } else if (m.id === '1') {
            frameErrors++;
            firstFrameError ??= raw.toString().slice(0, 300);
          }
        } else if (m.type === 'connection_ack') {
          clearTimeout(timer);
          ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: EVENTS, variables: { d: this.id } } }));
          resolve();
        } else if (m.type === 'ping') ws.send('{"type":"pong"}');
      });
    });
  }

  /** Runs a mutation over this socket (the server sees this device's connection). */
  mutate(query: string, variables: Record<string, unknown>): Promise<GqlResult> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve({ errors: [{ message: 'socket not open' }] });
    const id = String(++this.opSeq);
    return new Promise((resolve) => {
      this.ops.set(id, { resolve, result: undefined });
      ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    });
  }

  close() {
    this.ws?.terminate();
  }
}

// ---- event routing -----------------------------------------------------------------------------

type Phase = 'idle' | 'setup' | 'signal' | 'ring';
let phase: Phase = 'idle';

interface CallEvent {
  __typename: string;
  at?: string;
  to?: string;
  reason?: string | null;
  call?: { id: string };
  callId?: string;
  fromDeviceId?: string;
  toDeviceId?: string;
  kind?: string;
  seq?: number;
  payload?: { candidate?: unknown };
}

function onEvent(dev: Dev, ev: CallEvent, now: number) {
  if (ev.__typename === 'CallSignal') return onSignal(dev, ev, now);
  if (phase === 'setup') onSetupEvent(dev, ev, now);
  else if (phase === 'ring') onRingEvent(dev, ev);
}

// ---- phase 1: call setup -----------------------------------------------------------------------

interface SetupRec {
  pair: Pair;
  t0: number;
  id?: string;
  tIncoming?: number;
  tAccept?: number;
  tAccepted?: number;
  ending?: boolean;
  /** Stalled before startCall answered: end the call once it does (the pair stays busy until then). */
  endWhenStarted?: boolean;
  done?: boolean;
}

const P1 = {
  hop1: new Histogram(),
  hop2: new Histogram(),
  total: new Histogram(),
  startHttp: new Histogram(),
  acceptRtt: new Histogram(),
  endHttp: new Histogram(),
  launched: 0,
  accepted: 0,
  finished: 0,
  errors: { start: 0, accept: 0, end: 0, stalledBeforeIncoming: 0, stalledBeforeAccepted: 0 },
  firstError: undefined as string | undefined,
  noFreePair: 0,
  duplicateIncoming: 0,
  unexpectedEvents: 0,
  ids: [] as string[],
  incomingSeen: new Set<string>(),
  inflight: new Set<SetupRec>(),
  free: [] as Pair[],
  portA: 0,
};

const p1Error = (what: keyof typeof P1.errors, detail: string) => {
  P1.errors[what]++;
  P1.firstError ??= `${what}: ${detail}`;
};

function launchSetup(pair: Pair) {
  const rec: SetupRec = { pair, t0: performance.now() };
  pair.cur = rec;
  P1.inflight.add(rec);
  P1.launched++;
  void post(P1.portA, pair.caller.token, START, {
    i: { conversationId: pair.conversationId, media: 'AUDIO', clientCallId: randomUUID(), deviceId: pair.callerDev.id },
  }).then((r) => {
    P1.startHttp.add(performance.now() - rec.t0);
    const id = r.data?.startCall?.id as string | undefined;
    if (!id) {
      p1Error('start', errText(r));
      return finishSetup(rec);
    }
    rec.id ??= id;
    P1.ids.push(id);
    if (rec.id !== id) P1.unexpectedEvents++;
    if (rec.endWhenStarted) endSetup(rec);
  });
}

function endSetup(rec: SetupRec) {
  if (rec.ending || rec.done) return;
  if (!rec.id) {
    rec.endWhenStarted = true;
    return;
  }
  rec.ending = true;
  const t = performance.now();
  void post(P1.portA, rec.pair.caller.token, END, { id: rec.id }).then((r) => {
    P1.endHttp.add(performance.now() - t);
    if (!r.data?.endCall) p1Error('end', errText(r));
    finishSetup(rec);
  });
}

function finishSetup(rec: SetupRec) {
  if (rec.done) return;
  rec.done = true;
  P1.finished++;
  P1.inflight.delete(rec);
  if (rec.pair.cur === rec) rec.pair.cur = undefined;
  P1.free.push(rec.pair);
}

function onSetupEvent(dev: Dev, ev: CallEvent, now: number) {
  const pair = dev.pair;
  if (!pair) return;
  const rec = pair.cur;
  if (dev.role === 'callee' && ev.__typename === 'IncomingCall' && ev.call) {
    const id = ev.call.id;
    if (P1.incomingSeen.has(id)) return void P1.duplicateIncoming++;
    P1.incomingSeen.add(id);
    if (!rec || rec.tIncoming !== undefined || (rec.id && rec.id !== id)) return void P1.unexpectedEvents++;
    if (rec.ending || rec.endWhenStarted) return; // abandoned: being hung up
    rec.id ??= id;
    rec.tIncoming = now;
    P1.hop1.add(now - rec.t0);
    rec.tAccept = performance.now();
    void dev.mutate(ACCEPT, { id, d: dev.id }).then((r) => {
      P1.acceptRtt.add(performance.now() - (rec.tAccept as number));
      if (r.data?.acceptCall?.state !== 'ACCEPTED') {
        p1Error('accept', errText(r));
        endSetup(rec);
      }
    });
  } else if (dev.role === 'caller' && ev.__typename === 'CallStateChanged' && ev.to === 'ACCEPTED' && ev.call) {
    if (!rec || rec.tAccept === undefined || rec.tAccepted !== undefined || rec.id !== ev.call.id) return void P1.unexpectedEvents++;
    rec.tAccepted = now;
    P1.hop2.add(now - rec.tAccept);
    P1.total.add(now - rec.t0);
    P1.accepted++;
    endSetup(rec);
  }
}

async function phaseSetup(pairs: Pair[], portA: number) {
  P1.portA = portA;
  P1.free = [...pairs];
  phase = 'setup';
  const planned = Math.round(RATE * SECONDS);
  const start = performance.now();
  const hardStop = start + SECONDS * 1000 * 2 + 5_000;
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const rec of P1.inflight) {
      if (rec.ending || rec.endWhenStarted || now - rec.t0 < STALL_MS) continue;
      p1Error(
        rec.tIncoming === undefined ? 'stalledBeforeIncoming' : 'stalledBeforeAccepted',
        `call ${rec.id ?? '?'} after ${STALL_MS} ms`,
      );
      endSetup(rec);
    }
  }, 250);
  while (P1.launched < planned && performance.now() < hardStop) {
    const due = Math.min(planned, Math.floor(((performance.now() - start) / 1000) * RATE) + 1);
    while (P1.launched < due) {
      const pair = P1.free.shift();
      if (!pair) {
        P1.noFreePair++;
        break;
      }
      launchSetup(pair);
    }
    await sleep(2);
  }
  const launchEnd = performance.now();
  const drainStart = performance.now();
  while (P1.inflight.size > 0 && performance.now() - drainStart < STALL_MS + 2_000) await sleep(20);
  clearInterval(sweeper);
  const stillInFlight = P1.inflight.size;
  // abandon the rest: hung up as soon as their startCall answers (in the background)
  for (const rec of [...P1.inflight]) endSetup(rec);
  phase = 'idle';
  const window = (launchEnd - start) / 1000;
  return {
    targetRate: RATE,
    targetSeconds: SECONDS,
    planned,
    launched: P1.launched,
    achievedRate: P1.launched / window,
    acceptedPerSec: P1.accepted / window,
    accepted: P1.accepted,
    stillInFlight,
    errors: P1.errors,
    firstError: P1.firstError,
    noFreePairTicks: P1.noFreePair,
    duplicateIncoming: P1.duplicateIncoming,
    unexpectedEvents: P1.unexpectedEvents,
    hop1: P1.hop1.summary(),
    hop2: P1.hop2.summary(),
    total: P1.total.summary(),
    startHttp: P1.startHttp.summary(),
    acceptRtt: P1.acceptRtt.summary(),
    endHttp: P1.endHttp.summary(),
  };
}

// ---- phase 2: signal relay -----------------------------------------------------------------------

interface Sender {
  dev: Dev;
  port: number;
  token: string;
  toUserId: string;
  /** The only device that may receive this sender's signals. */
  toDev: Dev;
  callId: string;
  /** Every seq of this sender seen on any socket (setup OFFER/ANSWER included). */
  seqs: number[];
  /** The ICE signals it sent (k). */
  sent: number[];
  lastArrivedSeq: number;
}

const P2 = {
  senders: [] as Sender[],
  byDeviceCall: new Map<string, number>(),
  max: 0,
  sendT: new Float64Array(0),
  ackT: new Float64Array(0),
  /** 0 unsent, 1 in flight, 2 acked true, 3 failed. */
  status: new Uint8Array(0),
  recvN: new Uint8Array(0),
  senderOf: new Int32Array(0),
  seqOf: new Int32Array(0),
  latency: new Histogram(),
  ack: new Histogram(),
  sent: 0,
  acked: 0,
  received: 0,
  failed: 0,
  rateLimited: 0,
  firstError: undefined as string | undefined,
  duplicates: 0,
  misrouted: 0,
  misroutedToIdle: 0,
  unknown: 0,
  outOfOrderArrivals: 0,
  receiptsOutsidePhase: 0,
  inflight: 0,
};

const CANDIDATE = /^candidate:(\d+) /;

function onSignal(dev: Dev, ev: CallEvent, now: number) {
  if (phase !== 'signal') P2.receiptsOutsidePhase++;
  const idle = dev.role === 'callerAlt' || dev.role === 'calleeAlt';
  if (idle || ev.toDeviceId !== dev.id) {
    P2.misrouted++;
    if (idle) P2.misroutedToIdle++;
  }
  const s = P2.byDeviceCall.get(`${ev.callId}|${ev.fromDeviceId}`);
  const sender = s === undefined ? undefined : P2.senders[s];
  if (!sender) return void P2.unknown++;
  if (sender.toDev !== dev) {
    if (!idle && ev.toDeviceId === dev.id) P2.misrouted++;
    return;
  }
  const seq = Number(ev.seq);
  sender.seqs.push(seq);
  if (seq <= sender.lastArrivedSeq) P2.outOfOrderArrivals++;
  else sender.lastArrivedSeq = seq;
  const cand = ev.payload?.candidate;
  const m = typeof cand === 'string' ? CANDIDATE.exec(cand) : null;
  if (!m) return; // the setup OFFER / ANSWER
  const k = Number(m[1]);
  if (k >= P2.max || P2.senderOf[k] !== s) return void P2.unknown++;
  P2.recvN[k] = (P2.recvN[k] ?? 0) + 1;
  if ((P2.recvN[k] as number) > 1) return void P2.duplicates++;
  P2.received++;
  P2.seqOf[k] = seq;
  P2.latency.add(now - (P2.sendT[k] as number));
}

function sendSignal(k: number, s: number) {
  const snd = P2.senders[s] as Sender;
  P2.senderOf[k] = s;
  snd.sent.push(k);
  const vars = {
    i: {
      callId: snd.callId,
      toUserId: snd.toUserId,
      kind: 'ICE_CANDIDATE',
      payload: {
        candidate: `candidate:${k} 1 udp 2122260223 10.0.${(k >> 8) & 255}.${k & 255} 50000 typ host`,
        sdpMid: '0',
        sdpMLineIndex: 0,
      },
    },
  };
  P2.status[k] = 1;
  P2.sent++;
  P2.inflight++;
  const t0 = performance.now();
  P2.sendT[k] = t0;
  const p = SIG_VIA === 'http' ? post(snd.port, snd.token, SIGNAL, vars) : snd.dev.mutate(SIGNAL, vars);
  void p.then((r) => {
    const t1 = performance.now();
    P2.inflight--;
    P2.ackT[k] = t1;
    P2.ack.add(t1 - t0);
    if (r.data?.sendCallSignal === true) {
      P2.status[k] = 2;
      P2.acked++;
    } else {
      P2.status[k] = 3;
      P2.failed++;
      if (r.errors?.[0]?.extensions?.code === 'RATE_LIMITED') P2.rateLimited++;
      P2.firstError ??= errText(r);
    }
  });
}

/** Per sender: seqs distinct and without gaps; a signal sent after another was acked has the larger seq. */
function checkSeq() {
  let dupSeqs = 0;
  let gaps = 0;
  let causalViolations = 0;
  let unnumbered = 0;
  for (const snd of P2.senders) {
    const seqs = [...snd.seqs].sort((a, b) => a - b);
    for (let i = 1; i < seqs.length; i++) if (seqs[i] === seqs[i - 1]) dupSeqs++;
    const distinct = new Set(seqs).size;
    const maxSeq = seqs.at(-1) ?? 0;
    gaps += maxSeq - distinct;
    const got = snd.sent.filter((k) => P2.status[k] === 2 && (P2.recvN[k] ?? 0) > 0);
    unnumbered += got.filter((k) => !(Number(P2.seqOf[k]) > 0)).length;
    const bySend = [...got].sort((a, b) => (P2.sendT[a] as number) - (P2.sendT[b] as number));
    const byAck = [...got].sort((a, b) => (P2.ackT[a] as number) - (P2.ackT[b] as number));
    let j = 0;
    let maxAckedSeq = 0;
    for (const b of bySend) {
      while (j < byAck.length && (P2.ackT[byAck[j] as number] as number) < (P2.sendT[b] as number)) {
        maxAckedSeq = Math.max(maxAckedSeq, P2.seqOf[byAck[j] as number] as number);
        j++;
      }
      if ((P2.seqOf[b] as number) <= maxAckedSeq) causalViolations++;
    }
  }
  return { dupSeqs, gaps, causalViolations, unnumbered };
}

async function phaseSignal(pairs: Pair[], portA: number, portB: number, waitSubs: (n: number) => Promise<number>, expectSubs: number) {
  const sigPairs = pairs.slice(0, SIG_CALLS);
  // an idle second device per party, on the other instance than its answering device
  for (const p of sigPairs) {
    p.callerAlt = new Dev(portB, p.caller.token, `c${p.i}-b`, 'callerAlt', p);
    p.calleeAlt = new Dev(portA, p.callee.token, `p${p.i}-a`, 'calleeAlt', p);
  }
  const alts = sigPairs.flatMap((p) => [p.callerAlt as Dev, p.calleeAlt as Dev]);
  await pool(alts, 50, (d) => d.connect().catch(() => void connectFailures++));
  const live = await waitSubs(expectSubs + alts.length);
  phase = 'signal';

  // the calls: started on A by the caller's device, accepted over the callee's socket on B,
  // OFFER → ANSWER exchanged (IN_PROGRESS, so the connect timeout never applies)
  let setupErrors = 0;
  let firstSetupError: string | undefined;
  const setupStart = performance.now();
  const callIds: string[] = [];
  let skipped = 0;
  const setupUntil = Math.min(Date.now() + 20_000, budgetEnd - SIG_SECONDS * 1000 - 12_000);
  await pool(sigPairs, 32, async (p) => {
    if (Date.now() > setupUntil) return void skipped++;
    const fail = (what: string, r: GqlResult) => {
      setupErrors++;
      firstSetupError ??= `${what}: ${errText(r)}`;
    };
    const s = await post(portA, p.caller.token, START, {
      i: { conversationId: p.conversationId, media: 'VIDEO', clientCallId: randomUUID(), deviceId: p.callerDev.id },
    });
    const id = s.data?.startCall?.id as string | undefined;
    if (!id) return fail('startCall', s);
    callIds.push(id);
    const a = await p.calleeDev.mutate(ACCEPT, { id, d: p.calleeDev.id });
    if (a.data?.acceptCall?.state !== 'ACCEPTED') return fail('acceptCall', a);
    const base = P2.senders.length;
    P2.senders.push(
      {
        dev: p.callerDev,
        port: portA,
        token: p.caller.token,
        toUserId: p.callee.id,
        toDev: p.calleeDev,
        callId: id,
        seqs: [],
        sent: [],
        lastArrivedSeq: 0,
      },
      {
        dev: p.calleeDev,
        port: portB,
        token: p.callee.token,
        toUserId: p.caller.id,
        toDev: p.callerDev,
        callId: id,
        seqs: [],
        sent: [],
        lastArrivedSeq: 0,
      },
    );
    P2.byDeviceCall.set(`${id}|${p.callerDev.id}`, base);
    P2.byDeviceCall.set(`${id}|${p.calleeDev.id}`, base + 1);
    const o = await p.callerDev.mutate(SIGNAL, {
      i: { callId: id, toUserId: p.callee.id, kind: 'OFFER', payload: { type: 'offer', sdp: 'v=0\r\n' } },
    });
    if (o.data?.sendCallSignal !== true) return fail('OFFER', o);
    const an = await p.calleeDev.mutate(SIGNAL, {
      i: { callId: id, toUserId: p.caller.id, kind: 'ANSWER', payload: { type: 'answer', sdp: 'v=0\r\n' } },
    });
    if (an.data?.sendCallSignal !== true) return fail('ANSWER', an);
  });
  const setupMs = performance.now() - setupStart;
  await sleep(300); // the OFFER/ANSWER arrive; IN_PROGRESS committed

  const planned = Math.round(SIG_RATE * SIG_SECONDS);
  P2.max = planned;
  P2.sendT = new Float64Array(planned);
  P2.ackT = new Float64Array(planned);
  P2.status = new Uint8Array(planned);
  P2.recvN = new Uint8Array(planned);
  P2.senderOf = new Int32Array(planned).fill(-1);
  P2.seqOf = new Int32Array(planned);
  const nSenders = P2.senders.length;
  const sys0 = sampleSystem();
  const start = performance.now();
  const hardStop = start + SIG_SECONDS * 2000 + 5_000;
  const maxInflight = 500;
  let k = 0;
  let inflightCapped = 0;
  while (k < planned && nSenders > 0 && performance.now() < hardStop) {
    const due = Math.min(planned, Math.floor(((performance.now() - start) / 1000) * SIG_RATE) + 1);
    while (k < due) {
      if (P2.inflight >= maxInflight) {
        inflightCapped++;
        break;
      }
      sendSignal(k, k % nSenders);
      k++;
    }
    await sleep(1);
  }
  const sendEnd = performance.now();
  // drain: every acked signal arrived, or 2 s without progress, or 10 s
  const drainStart = performance.now();
  let last = -1;
  let lastProgress = drainStart;
  while (P2.inflight > 0 || P2.received < P2.acked) {
    const now = performance.now();
    if (P2.received !== last) {
      last = P2.received;
      lastProgress = now;
    }
    if (now - drainStart > 10_000 || now - lastProgress > 2_000) break;
    await sleep(20);
  }
  await sleep(200); // late misroutes / duplicates
  const sys1 = sampleSystem();
  phase = 'idle';
  let lost = 0;
  for (let j = 0; j < P2.sent; j++) if (P2.status[j] === 2 && (P2.recvN[j] ?? 0) === 0) lost++;
  const seq = checkSeq();

  // hang up (at most 15 s: whatever is left is deleted with the bench org)
  let endErrors = 0;
  const hangUntil = Date.now() + 15_000;
  await pool(sigPairs, 32, async (p) => {
    if (Date.now() > hangUntil) return;
    const id = P2.senders.find((s) => s.dev === p.callerDev)?.callId;
    if (!id) return;
    const r = await post(portA, p.caller.token, END, { id });
    if (r.data?.endCall?.state !== 'ENDED') endErrors++;
  });
  for (const d of alts) d.close();
  return {
    via: SIG_VIA,
    calls: sigPairs.length,
    senders: nSenders,
    idleDevices: alts.length,
    subscriptionsLive: live,
    setupMs,
    setupErrors,
    setupSkipped: skipped,
    firstSetupError,
    targetRate: SIG_RATE,
    targetSeconds: SIG_SECONDS,
    sent: P2.sent,
    achievedRate: P2.sent / ((sendEnd - start) / 1000),
    inflightCapped,
    acked: P2.acked,
    failed: P2.failed,
    rateLimited: P2.rateLimited,
    firstError: P2.firstError,
    received: P2.received,
    lost,
    duplicates: P2.duplicates,
    misrouted: P2.misrouted,
    misroutedToIdleDevice: P2.misroutedToIdle,
    unknownSignals: P2.unknown,
    receiptsOutsidePhase: P2.receiptsOutsidePhase,
    outOfOrderArrivals: P2.outOfOrderArrivals,
    seq,
    latency: P2.latency.summary(),
    ack: P2.ack.summary(),
    drainMs: performance.now() - sendEnd,
    hangupErrors: endErrors,
    machine: systemCpu(sys0, sys1, cpus().length),
  };
}

// ---- phase 3: ring timeout accuracy --------------------------------------------------------------

interface RingRec {
  id: string;
  deadline: number;
  /** Date.now() when the caller's socket got CallStateChanged(MISSED), and that event's `at`. */
  arrived?: number;
  at?: number;
  reason?: string | null;
  /** Whether the caller has a socket open (observed lateness is measured on those). */
  watched: boolean;
}

const P3 = {
  byId: new Map<string, RingRec>(),
  early: new Map<string, { arrived: number; at: number; reason: string | null }>(),
  callerMissed: 0,
  calleeMissed: 0,
  duplicates: 0,
  otherFinal: 0,
};

function onRingEvent(dev: Dev, ev: CallEvent) {
  if (ev.__typename !== 'CallStateChanged' || !ev.call) return;
  if (ev.to !== 'MISSED') {
    if (ev.to !== 'RINGING') P3.otherFinal++;
    return;
  }
  if (dev.role === 'callee') return void P3.calleeMissed++;
  if (dev.role !== 'caller') return;
  P3.callerMissed++;
  const arrived = Date.now();
  const at = Date.parse(ev.at ?? '');
  const rec = P3.byId.get(ev.call.id);
  if (!rec) return void P3.early.set(ev.call.id, { arrived, at, reason: ev.reason ?? null });
  if (rec.arrived !== undefined) return void P3.duplicates++;
  rec.arrived = arrived;
  rec.at = at;
  rec.reason = ev.reason ?? null;
}

async function phaseRing(pairs: Pair[], calls: CoreContainer['services']['calls'], sql: postgres.Sql, orgId: string) {
  const ringPairs = pairs.slice(0, RING_CALLS);
  phase = 'ring';
  const sys0 = sampleSystem();
  let startErrors = 0;
  let firstError: string | undefined;
  const t0 = Date.now();
  const startLatency = new Histogram();
  let skipped = 0;
  const startUntil = Math.min(t0 + 20_000, budgetEnd - RING_TIMEOUT_MS - 15_000);
  await pool(ringPairs, 64, async (p) => {
    if (Date.now() > startUntil) return void skipped++;
    const t = performance.now();
    const viewer = { userId: p.caller.id, orgId, role: 'provider' as const, name: `Caller ${p.i}` };
    const c = await calls
      .startCall(viewer, { conversationId: p.conversationId, media: 'audio', clientCallId: randomUUID(), deviceId: p.callerDev.id })
      .catch((err: unknown) => {
        firstError ??= err instanceof Error ? err.message : String(err);
        return undefined;
      });
    startLatency.add(performance.now() - t);
    if (!c?.ringDeadline) {
      startErrors++;
      firstError ??= `no ringDeadline (state ${c?.state})`;
      return;
    }
    const watched = p.callerDev.ws?.readyState === WebSocket.OPEN;
    const rec: RingRec = { id: c.id, deadline: Date.parse(c.ringDeadline), watched };
    const early = P3.early.get(c.id);
    if (early) Object.assign(rec, { arrived: early.arrived, at: early.at, reason: early.reason });
    P3.byId.set(c.id, rec);
  });
  const startWindowMs = Date.now() - t0;
  const recs = [...P3.byId.values()];
  const ids = recs.map((r) => r.id);
  const lastDeadline = Math.max(0, ...recs.map((r) => r.deadline));
  // until no call rings any more and every watched caller saw its MISSED, or 15 s past the last deadline
  let ringing = ids.length;
  while (Date.now() < Math.min(lastDeadline + 15_000, budgetEnd)) {
    await sleep(250);
    if (Date.now() < lastDeadline) continue;
    const [row] = await sql<
      Array<{ n: number }>
    >`select count(*)::int as n from calls where org_id = ${orgId} and id = any(${ids}::uuid[]) and state = 'ringing'`;
    ringing = row?.n ?? 0;
    if (ringing === 0 && recs.every((r) => !r.watched || r.arrived !== undefined)) break;
  }
  await sleep(500); // stragglers: duplicates, late events
  const sys1 = sampleSystem();
  phase = 'idle';

  const rows = ids.length
    ? await sql<Array<{ id: string; state: string; reason: string | null; created_at: Date; ended_at: Date | null }>>`
        select id, state, reason, created_at, ended_at from calls where org_id = ${orgId} and id = any(${ids}::uuid[])`
    : [];
  const notes = await sql<Array<{ call_id: string; n: number; state: string | null }>>`
    select n.data->>'callId' as call_id, count(*)::int as n, min(c.state) as state
    from notifications n left join calls c on c.org_id = n.org_id and c.id::text = n.data->>'callId'
    where n.org_id = ${orgId} and n.kind = 'missed_call' group by 1`;
  const noteOf = new Map(notes.map((n) => [n.call_id, n.n]));
  const ringIds = new Set(ids);
  const byState: Record<string, number> = {};
  const committed = new Histogram();
  const committedWatched = new Histogram();
  const observed = new Histogram();
  const fromAt = new Histogram();
  let early = 0;
  let exactlyOne = 0;
  let none = 0;
  let several = 0;
  let minEnded = Number.POSITIVE_INFINITY;
  for (const row of rows) {
    const key = `${row.state}/${row.reason ?? '-'}`;
    byState[key] = (byState[key] ?? 0) + 1;
    const rec = P3.byId.get(row.id) as RingRec;
    if (row.ended_at) {
      const late = row.ended_at.getTime() - rec.deadline;
      if (late < 0) early++;
      committed.add(late);
      if (rec.watched) committedWatched.add(late);
      minEnded = Math.min(minEnded, row.ended_at.getTime());
    }
    const n = noteOf.get(row.id) ?? 0;
    if (n === 1) exactlyOne++;
    else if (n === 0) none++;
    else several++;
  }
  for (const r of recs) {
    if (r.arrived !== undefined) observed.add(r.arrived - r.deadline);
    if (r.at !== undefined && Number.isFinite(r.at)) fromAt.add(r.at - r.deadline);
  }
  const ringingAtOnce = rows.filter((r) => r.created_at.getTime() < minEnded).length;
  const others = notes.filter((n) => !ringIds.has(n.call_id));
  /** Phases 1-2 calls that really timed out (only under overload) vs. notifications for calls that were not missed. */
  const otherMissed = others.filter((n) => n.state === 'missed').reduce((s, n) => s + n.n, 0);
  const falseMissed = others.filter((n) => n.state !== 'missed').reduce((s, n) => s + n.n, 0);
  const missed = rows.filter((r) => r.state === 'missed').length;
  return {
    calls: ringPairs.length,
    started: recs.length,
    startSkipped: skipped,
    startErrors,
    firstError,
    ringTimeoutMs: RING_TIMEOUT_MS,
    startWindowMs,
    startLatency: startLatency.summary(),
    ringingAtOnce,
    stillRingingAtEnd: ringing,
    watched: recs.filter((r) => r.watched).length,
    byState,
    missed,
    missedEventsOnCallerSockets: P3.callerMissed,
    missedEventsOnCalleeSockets: P3.calleeMissed,
    duplicateMissedEvents: P3.duplicates,
    missedEventsForOtherCalls: [...P3.early.keys()].filter((id) => !P3.byId.has(id)).length,
    otherTransitions: P3.otherFinal,
    notifications: { exactlyOne, none, several, forMissedCallsOfPhases12: otherMissed, forCallsNotMissed: falseMissed },
    endedBeforeDeadline: early,
    /** endedAt − ringDeadline (the transition's timestamp, written in its transaction). */
    committedLateness: committed.summary(),
    /** The same for the calls whose caller has a socket (compare with observedLateness). */
    committedLatenessWatched: committedWatched.summary(),
    /** MISSED event arrival on the caller's socket − ringDeadline. */
    observedLateness: observed.summary(),
    /** The MISSED event's `at` − ringDeadline. */
    eventAtLateness: fromAt.summary(),
    machine: systemCpu(sys0, sys1, cpus().length),
  };
}

// ---- driver ------------------------------------------------------------------------------------

const pg = (database?: string) => pgClient(DATABASE_URL, database);

async function prepareDatabase() {
  await ensureDatabase(DATABASE_URL);
  const { openDatabase } = await import('../../src/db/client.js');
  const db = await openDatabase(DATABASE_URL, '');
  await db.migrate();
  await db.close();
}

async function subscriptionsLive(ports: number[]): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const text = await (await fetch(`http://${HOST}:${port}/metrics`)).text();
    total += Number(/^wardline_ws_subscriptions (\d+)/m.exec(text)?.[1] ?? 0);
  }
  return total;
}

async function cleanup(sql: postgres.Sql, orgId: string, prefix: string) {
  if (env.BENCH_KEEP_DATA === '1') return;
  for (const table of [
    'call_participants',
    'calls',
    'notifications',
    'messages',
    'conversation_members',
    'conversations',
    'stream_events',
    'stream_heads',
    'users',
  ])
    await sql`delete from ${sql(table)} where org_id = ${orgId}`;
  await sql`delete from orgs where id = ${orgId}`;
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [c, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = c;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
}

/** A metric's value from Prometheus text (sum over label sets matching `labels`). */
function metricValue(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || !line.includes(labels)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return sum;
}

const ms = (v: number) => (Number.isFinite(v) ? `${v < 10 ? v.toFixed(1) : Math.round(v)} ms` : '-');
const lat = (s: LatencySummary) => `p50 ${ms(s.p50)}  p99 ${ms(s.p99)}  max ${ms(s.max)}  (n=${s.count})`;
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

async function driver() {
  const started = Date.now();
  const children: ChildProcess[] = [];
  const prefix = `bench-calls-${randomUUID().slice(0, 8)}`;
  const orgId = `bench-calls-${randomUUID()}`;
  const devices: Dev[] = [];
  budgetEnd = started + MAX_MS - 20_000;
  const load0 = loadavg();
  const report: Record<string, unknown> = { bench: 'calls', startedAt: new Date(started).toISOString(), loadAvgStart: load0 };
  const save = () => {
    const file = join(dirname(self), '..', '..', 'bench-results', `calls-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    console.log(JSON.stringify(report));
  };
  const hardStop = setTimeout(() => {
    console.error(`calls bench: exceeded BENCH_MAX_MS=${MAX_MS}; stopping (partial report follows)`);
    Object.assign(report, { aborted: true, wallMs: Date.now() - started });
    save();
    for (const c of children) c.kill('SIGKILL');
    // the bench org's rows and keys go anyway (at most 10 s more)
    const gone = setTimeout(() => process.exit(1), 10_000);
    void cleanup(pg(), orgId, prefix)
      .catch(() => {})
      .finally(() => {
        clearTimeout(gone);
        process.exit(1);
      });
  }, MAX_MS);
  hardStop.unref();
  const runEnv: Record<string, string> = {
    NODE_ENV: 'production',
    ...limitsEnv(process.env.BENCH_LIMITS),
    DATABASE_URL,
    REDIS_URL,
    REDIS_PREFIX: prefix,
    JWT_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    WS_KEEPALIVE_MS: '0',
    ...(env.CALLS_API_RING_TIMEOUT_MS ? { CALL_RING_TIMEOUT_MS: env.CALLS_API_RING_TIMEOUT_MS } : {}),
    CALL_SIGNAL_RATE: '10000',
    CALL_START_RATE_PER_MIN: '10000',
    ...(env.CALLS_RECONCILE_MS ? { CALL_RECONCILE_MS: env.CALLS_RECONCILE_MS } : {}),
  };
  console.log(
    `calls bench: ${cpus().length} cores, load average ${load0.map((l) => l.toFixed(2)).join(' ')} at start; phases ${[...PHASES].join(',')}`,
  );
  const sql = pg();
  let container: CoreContainer | undefined;
  /** Correctness: nothing lost, misrouted, doubled, misnumbered or wrongly missed. */
  let ok = true;
  /** Requests that failed or setups abandoned (under overload), and phases skipped for time. */
  let errors = 0;
  try {
    await prepareDatabase();
    const a = child('server', runEnv);
    const b = child('server', runEnv);
    const w = child('worker', runEnv);
    children.push(a, b, w);
    const [ra, rb] = await Promise.all([ask(a, 'ready', 90_000), ask(b, 'ready', 90_000), ask(w, 'ready', 90_000)]);
    const portA = ra.port as number;
    const portB = rb.port as number;

    // caller i (provider) and callee i (patient) share DIRECT conversation i: bulk rows (what
    // createConversation writes, minus its MembersChanged events, which calls never read)
    const tSeed = Date.now();
    const { loadConfig } = await import('../../src/config.js');
    const { createContainer } = await import('../../src/container.js');
    const { mintToken } = await import('../../src/http/auth.js');
    // the driver's own container: seeding, and the phase-3 calls (with the short ring timeout)
    const driverEnv = { ...env, ...runEnv, LOG_LEVEL: 'silent', CALL_RING_TIMEOUT_MS: String(RING_TIMEOUT_MS) };
    container = await createContainer(loadConfig(driverEnv), { migrate: false, role: 'worker' });
    await container.services.identity.createOrg(orgId, 'Calls bench');
    const { users } = await import('../../src/modules/identity/tables.js');
    const { conversations, conversationMembers } = await import('../../src/modules/messaging/tables.js');
    const db = container.database.db;
    // tokens only for the pairs with sockets (phase 3 starts its calls through the service)
    const token = async (id: string, role: 'provider' | 'patient', name: string, i: number): Promise<User> => ({
      id,
      token: i < SOCKET_PAIRS ? `Bearer ${await mintToken(SECRET, { sub: id, org: orgId, role, name }, 3600)}` : '',
    });
    const pairs: Pair[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const caller = await token(`${orgId}:caller-${i}`, 'provider', `Caller ${i}`, i);
      const callee = await token(`${orgId}:callee-${i}`, 'patient', `Callee ${i}`, i);
      const pair = { i, caller, callee, conversationId: randomUUID() } as Pair;
      pair.callerDev = new Dev(portA, caller.token, `c${i}`, 'caller', pair);
      pair.calleeDev = new Dev(portB, callee.token, `p${i}`, 'callee', pair);
      if (i < SOCKET_PAIRS) devices.push(pair.callerDev, pair.calleeDev);
      pairs.push(pair);
    }
    for (let i = 0; i < PAIRS; i += 500) {
      const chunk = pairs.slice(i, i + 500);
      await db.insert(users).values(
        chunk.flatMap((p) => [
          { id: p.caller.id, orgId, role: 'provider' as const, name: `Caller ${p.i}` },
          { id: p.callee.id, orgId, role: 'patient' as const, name: `Callee ${p.i}` },
        ]),
      );
      await db
        .insert(conversations)
        .values(chunk.map((p) => ({ id: p.conversationId, orgId, kind: 'direct' as const, createdBy: p.caller.id })));
      await db.insert(conversationMembers).values(
        chunk.flatMap((p) => [
          { conversationId: p.conversationId, userId: p.caller.id, orgId },
          { conversationId: p.conversationId, userId: p.callee.id, orgId },
        ]),
      );
    }
    const seedMs = Date.now() - tSeed;

    // the devices' sockets: callers on A, callees on B
    const tConnect = Date.now();
    await pool(devices, 50, (d) => d.connect().catch(() => void connectFailures++));
    const waitSubs = async (n: number) => {
      let live = 0;
      for (let i = 0; i < 300 && live < n; i++) {
        live = await subscriptionsLive([portA, portB]);
        if (live < n) await sleep(100);
      }
      return live;
    };
    const live = await waitSubs(devices.length);
    const connectMs = Date.now() - tConnect;
    console.log(
      `  setup              ${PAIRS} caller/callee pairs with a DIRECT conversation each (seeded in ${seedMs} ms); ${devices.length} sockets (the first ${SOCKET_PAIRS} pairs), ${live} subscriptions live in ${connectMs} ms${connectFailures ? `, ${connectFailures} failed to connect` : ''}`,
    );
    Object.assign(report, {
      pairs: PAIRS,
      sockets: devices.length,
      connectFailures,
      subscriptionsLive: live,
      seedMs,
      connectMs,
      ringTimeoutMs: RING_TIMEOUT_MS,
    });

    const cpuOf = async () => {
      const r = await Promise.all(children.map((c) => ask(c, 'cpu', 10_000, { t: 'cpu' })));
      return { children: r, driver: process.cpuUsage(), wall: Date.now() };
    };
    const cpuSince = (x: Awaited<ReturnType<typeof cpuOf>>, y: Awaited<ReturnType<typeof cpuOf>>) => {
      const pct = (p: NodeJS.CpuUsage, q: NodeJS.CpuUsage, wall: number) =>
        Math.round(((q.user + q.system - p.user - p.system) / 1000 / wall) * 100);
      const wall = y.wall - x.wall;
      const [ca, cb, cw] = x.children.map((c, i) => pct(c.cpu, (y.children[i] as typeof c).cpu, wall));
      return { apiA: ca, apiB: cb, worker: cw, driver: pct(x.driver, y.driver, wall) };
    };
    const cpuLine = (c: ReturnType<typeof cpuSince>, m: { machine: number; postgres: number; redis: number }) =>
      `  cpu (% of a core)  API A ${c.apiA}, API B ${c.apiB}, worker ${c.worker}, driver ${c.driver}; postgres ${Math.round(m.postgres)}, redis ${Math.round(m.redis)}; machine ${Math.round(m.machine)} of ${cpus().length * 100}`;

    const skip = (name: string, need: number) => {
      if (budgetLeft() >= need) return false;
      console.log(`${name}: SKIPPED, ${Math.round(budgetLeft() / 1000)} s left of BENCH_MAX_MS (needs ~${Math.round(need / 1000)} s)`);
      report[`${name}Skipped`] = true;
      errors++;
      return true;
    };

    if (PHASES.has('ring') && !skip('ring', RING_TIMEOUT_MS + 25_000)) {
      const c0 = await cpuOf();
      const metrics0 = (await ask(w, 'metrics', 10_000, { t: 'metrics' })).text;
      const r = await phaseRing(pairs, container.services.calls, sql, orgId);
      const cpu = cpuSince(c0, await cpuOf());
      const metrics1 = (await ask(w, 'metrics', 10_000, { t: 'metrics' })).text;
      const delta = (name: string, labels = '') => metricValue(metrics1, name, labels) - metricValue(metrics0, name, labels);
      const worker = {
        missedByWorker: delta('wardline_calls_ended_total', 'state="missed",reason="timeout"'),
        reconcilerRepairs: delta('wardline_call_reconciler_repairs_total', 'kind="ring"'),
        ringJobFailures: delta('wardline_job_failures_total', 'name="call-ring-timeout"'),
        ringLagMeanMs:
          (delta('wardline_call_ring_timeout_lag_seconds_sum') / Math.max(1, delta('wardline_call_ring_timeout_lag_seconds_count'))) * 1000,
      };
      const counts = await container.queues.counts();
      const queue = (counts as Record<string, Record<string, number>>).calls;
      const met = r.committedLateness.p99 < 1_000;
      errors += r.startErrors;
      ok &&=
        r.missed === r.started &&
        r.notifications.exactlyOne === r.started &&
        r.notifications.several === 0 &&
        r.notifications.forCallsNotMissed === 0 &&
        r.duplicateMissedEvents === 0;
      console.log(
        [
          `phase 3, ring timeout: ${r.calls} unanswered calls, CALL_RING_TIMEOUT_MS ${RING_TIMEOUT_MS}, one worker process`,
          `  start              ${r.started} started in ${r.startWindowMs} ms through the calls service in this process, 64 at a time (${r.startErrors} errors${r.firstError ? `: ${r.firstError}` : ''}, ${r.startSkipped} not started: out of time); startCall ${lat(r.startLatency)}; ${r.ringingAtOnce} ringing at once (started before the first MISSED)`,
          `  outcome            ${JSON.stringify(r.byState)}; MISSED events: ${r.missedEventsOnCallerSockets} on caller sockets, ${r.missedEventsOnCalleeSockets} on callee sockets, ${r.duplicateMissedEvents} duplicates, ${r.missedEventsForOtherCalls} for other calls; other transitions ${r.otherTransitions}`,
          `  notifications      exactly one MISSED_CALL: ${r.notifications.exactlyOne} of ${r.started}; none ${r.notifications.none}; several ${r.notifications.several}; for calls that were not missed ${r.notifications.forCallsNotMissed} (for phase 1-2 calls that timed out ${r.notifications.forMissedCallsOfPhases12})`,
          `  committed late     ${lat(r.committedLateness)}   endedAt − ringDeadline (${r.endedBeforeDeadline} before the deadline)`,
          `  seen late          ${lat(r.observedLateness)}   MISSED on caller socket − ringDeadline (the ${r.watched} callers with a socket; their committed lateness: ${lat(r.committedLatenessWatched)})`,
          `  worker             ${worker.missedByWorker} MISSED by timeout, ${worker.reconcilerRepairs} fired by the reconciler, ${worker.ringJobFailures} ring-job attempts failed (retried), mean lag ${Math.round(worker.ringLagMeanMs)} ms; calls queue ${JSON.stringify(queue)}`,
          cpuLine(cpu, r.machine),
          `  target p99 committed within deadline + 1 s: ${verdict(met)}`,
        ].join('\n'),
      );
      report.ring = { ...r, worker, queue, cpu, targetMet: met };
    }

    if (PHASES.has('setup') && !skip('setup', SECONDS * 1000 + 25_000)) {
      const c0 = await cpuOf();
      const s0 = sampleSystem();
      const r = await phaseSetup(pairs.slice(0, SETUP_PAIRS), portA);
      const cpu = cpuSince(c0, await cpuOf());
      const machine = systemCpu(s0, sampleSystem(), cpus().length);
      const rows = P1.ids.length
        ? await sql<
            Array<{ state: string; n: number }>
          >`select state, count(*)::int as n from calls where org_id = ${orgId} and id = any(${P1.ids}::uuid[]) group by 1`
        : [];
      const states = Object.fromEntries(rows.map((x) => [x.state, x.n]));
      const errs = Object.values(r.errors).reduce((s, n) => s + n, 0);
      const met = r.hop1.p99 < 50 && r.hop2.p99 < 50;
      errors += errs + r.stillInFlight;
      ok &&= r.duplicateIncoming === 0;
      console.log(
        [
          `phase 1, call setup: startCall on A → IncomingCall on B → acceptCall (socket, B) → CallStateChanged(ACCEPTED) on A; endCall after each`,
          `  load               target ${RATE}/s for ${SECONDS} s (${r.planned}); launched ${r.launched} at ${round(r.achievedRate)}/s, ${r.accepted} accepted (${round(r.acceptedPerSec)}/s); behind schedule with all ${SETUP_PAIRS} pairs busy on ${r.noFreePairTicks} ticks`,
          `  hop 1              ${lat(r.hop1)}   startCall sent → IncomingCall on callee socket`,
          `  hop 2              ${lat(r.hop2)}   acceptCall sent → ACCEPTED on caller socket`,
          `  start → ACCEPTED   ${lat(r.total)}`,
          `  requests           startCall ${lat(r.startHttp)}; acceptCall ${lat(r.acceptRtt)}; endCall ${lat(r.endHttp)}`,
          `  errors             ${errs} (${Object.entries(r.errors)
            .map(([k, v]) => `${k} ${v}`)
            .join(
              ', ',
            )})${r.firstError ? `; first: ${r.firstError}` : ''}; duplicate IncomingCall ${r.duplicateIncoming}, unexpected events ${r.unexpectedEvents}, still in flight ${r.stillInFlight}`,
          `  calls in db        ${JSON.stringify(states)}`,
          cpuLine(cpu, machine),
          `  target p99 < 50 ms per hop: ${verdict(met)}`,
        ].join('\n'),
      );
      report.setup = { ...r, callStates: states, cpu, machine, targetMet: met };
    }

    if (PHASES.has('signal') && !skip('signal', SIG_SECONDS * 1000 + 17_000)) {
      const c0 = await cpuOf();
      const r = await phaseSignal(pairs, portA, portB, waitSubs, devices.length);
      const cpu = cpuSince(c0, await cpuOf());
      const met = r.latency.p99 < 20 && r.lost === 0 && r.misrouted === 0;
      ok &&=
        r.lost === 0 && r.misrouted === 0 && r.duplicates === 0 && r.seq.dupSeqs === 0 && r.seq.gaps === 0 && r.seq.causalViolations === 0;
      errors += r.setupErrors + r.failed + r.hangupErrors;
      console.log(
        [
          `phase 2, signal relay: ICE_CANDIDATE over ${r.calls} accepted calls (answering devices on A and B, an idle second device per party on the other instance), sent ${r.via === 'http' ? 'over HTTP' : "over the sender's socket"}`,
          `  load               target ${SIG_RATE}/s for ${SIG_SECONDS} s over ${r.senders} senders; sent ${r.sent} at ${round(r.achievedRate)}/s (in-flight cap hit ${r.inflightCapped} ticks); call setup ${Math.round(r.setupMs)} ms, ${r.setupErrors} errors, ${r.setupSkipped} skipped (out of time)${r.firstSetupError ? ` (${r.firstSetupError})` : ''}`,
          `  relay              ${lat(r.latency)}   mutation sent → addressed socket`,
          `  mutation ack       ${lat(r.ack)}`,
          `  delivery           acked ${r.acked}, failed ${r.failed} (rate limited ${r.rateLimited})${r.firstError ? ` first: ${r.firstError}` : ''}; received ${r.received}; lost ${r.lost}; duplicates ${r.duplicates}; misrouted ${r.misrouted} (to an idle device ${r.misroutedToIdleDevice}); unknown ${r.unknownSignals}; endCall errors after ${r.hangupErrors}`,
          `  seq per sender     duplicate seqs ${r.seq.dupSeqs}, gaps ${r.seq.gaps}, sent-after-ack but not larger ${r.seq.causalViolations}, unnumbered ${r.seq.unnumbered}; arrivals out of seq order ${r.outOfOrderArrivals} (allowed: clients order by seq)`,
          cpuLine(cpu, r.machine),
          `  target p99 < 20 ms, 0 lost, 0 misrouted: ${verdict(met)}`,
        ].join('\n'),
      );
      report.signal = { ...r, cpu, targetMet: met };
    }

    // no missed-call notification for a call that was not missed (answered, declined, hung up while connected)
    const [fm] = await sql<Array<{ n: number }>>`
      select count(*)::int as n from notifications n join calls c on c.org_id = n.org_id and c.id::text = n.data->>'callId'
      where n.org_id = ${orgId} and n.kind = 'missed_call' and c.state <> 'missed'`;
    const falseMissed = fm?.n ?? 0;
    ok &&= falseMissed === 0;
    report.falseMissedNotifications = falseMissed;
    console.log(`all phases: missed-call notifications for calls that were not missed: ${falseMissed}`);

    const load1 = loadavg();
    Object.assign(report, {
      loadAvgEnd: load1,
      wallMs: Date.now() - started,
      correct: ok,
      errors,
      frameErrors,
      firstFrameError,
      socketCloses,
    });
    console.log(
      `calls bench: ${ok ? 'no lost, misrouted, doubled, misnumbered or wrong outcomes' : 'CORRECTNESS CHECKS FAILED (see above)'}; ${errors} errors (failed or abandoned requests, skipped phases)${frameErrors ? `, ${frameErrors} error frames` : ''}; load average ${load1.map((l) => l.toFixed(2)).join(' ')} at end; ${Math.round((Date.now() - started) / 1000)} s`,
    );
    save();
    process.exitCode = ok && errors === 0 ? 0 : 1;
  } finally {
    phase = 'idle';
    for (const d of devices) d.close();
    for (const a of agents.values()) a.destroy();
    await container?.close().catch(() => {});
    for (const c of children) c.connected ? c.send({ t: 'stop' }) : c.kill();
    await Promise.race([
      Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(0) : c.once('exit', r))))),
      sleep(10_000),
    ]);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await cleanup(sql, orgId, prefix).catch((err) =>
      console.warn('calls bench: cleanup failed:', err instanceof Error ? err.message : err),
    );
    await sql.end();
    clearTimeout(hardStop);
  }
}

const role = process.argv[2] ?? 'driver';
const run = role === 'server' ? server : role === 'worker' ? worker : driver;
run().catch((err) => {
  console.error(`calls bench (${role}) failed:`, err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
