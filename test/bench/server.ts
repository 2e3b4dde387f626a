// One Wardline API instance for the benchmark (not a test), forked by run.ts with the instance's
// env. Prints {"port":N} on stdout and answers IPC commands from the orchestrator:
//   stats     → process.cpuUsage(), process.memoryUsage(), socket and subscription counts
//   gc        → a full GC (the child runs with --expose-gc) before a memory reading
//   profStart / profStop {file} → a CPU profile of just that window (node:inspector), as .cpuprofile
//   heapSnapshot {file} → a V8 heap snapshot (the idle scenario takes one before and after its sockets)
//   stop      → graceful close (api, then container) and exit(0), so --cpu-prof can write its file
// It adds nothing to src/: the instance is exactly loadConfig + createContainer + createApi.
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Session } from 'node:inspector/promises';
import { writeHeapSnapshot } from 'node:v8';
import type { Redis } from 'ioredis';
import { createApi } from '../../src/api.js';
import { loadConfig } from '../../src/config.js';
import { createContainer } from '../../src/container.js';
import { serveRpc, type ServerStats } from './common.js';

const config = loadConfig(process.env);
const container = await createContainer(config, { migrate: false });
// Redis commands this instance sends, on every connection (the storm's round trips per socket)
let redisCommands = 0;
// (typed as one server's connection: a cluster's has the same sendCommand)
for (const r of new Set(Object.values(container.redis) as Redis[])) {
  const send = r.sendCommand.bind(r);
  r.sendCommand = ((...a: Parameters<typeof send>) => {
    redisCommands++;
    return send(...a);
  }) as typeof r.sendCommand;
}
// the models load in the background from boot: wait for them, so that "RSS at start" is the idle state
await container.services.predictions.loading.catch(() => {});
const api = createApi(container);
const port = await api.listen(0, '127.0.0.1');
let session: Session | undefined;
let stopping = false;

const stop = async () => {
  if (stopping) return;
  stopping = true;
  const hard = setTimeout(() => process.exit(1), 15_000);
  hard.unref();
  try {
    await api.close();
    await container.close();
  } finally {
    clearTimeout(hard);
    setImmediate(() => process.exit(0));
  }
};

serveRpc(
  {
    stats: (): ServerStats => ({
      cpu: process.cpuUsage(),
      wallMs: performance.timeOrigin + performance.now(),
      mem: process.memoryUsage(),
      sockets: api.ws.socketCount(),
      fanout: container.fanout.stats(),
      redisCommands,
    }),
    gc: () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      return Boolean(gc);
    },
    heapSnapshot: (args: { file: string }) => {
      mkdirSync(dirname(args.file), { recursive: true });
      return writeHeapSnapshot(args.file);
    },
    profStart: async () => {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 1000 });
      await session.post('Profiler.start');
      return true;
    },
    profStop: async (args: { file: string }) => {
      if (!session) return false;
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      mkdirSync(dirname(args.file), { recursive: true });
      writeFileSync(args.file, JSON.stringify(profile));
      return args.file;
    },
    stop: () => {
      void stop();
      return true;
    },
  },
  () => void stop(),
);

process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
console.log(JSON.stringify({ port }));
process.send?.({ ready: true, port });
