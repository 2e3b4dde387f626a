import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Container } from '../container.js';

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

/**
 * `/health/live` (the process answers), `/health/ready` (db and redis answer and the instance is
 * not draining; `degraded` but still 200 when a model failed to load and its fallback rule answers), `/metrics` (Prometheus text). Readiness fails first on shutdown so a load
 * balancer stops routing here before sockets are closed.
 */
export function createHealth(c: Container) {
  let draining = false;
  const extraChecks: Array<[string, () => Promise<unknown>]> = [];
  const ready = async (res: ServerResponse) => {
    const checks: Record<string, string> = {};
    let queues: Record<string, Record<string, number>> | undefined;
    const run = async (name: string, fn: () => Promise<unknown>) => {
      try {
        await withTimeout(fn(), 2_000);
        checks[name] = 'ok';
      } catch {
        checks[name] = 'down';
      }
    };
    await Promise.all([
      run('db', () => c.database.ping()),
      run('redis', () => c.redis.commands.ping()),
      run('queues', async () => {
        queues = await c.queues.counts();
      }),
      ...extraChecks.map(([n, fn]) => run(n, fn)),
    ]);
    const ok = !draining && Object.values(checks).every((v) => v === 'ok');
    // models are a soft check: a model that failed to load is answered by its fallback rule, so the
    // instance stays ready (200) and says it is degraded
    const models = await withTimeout(c.services.predictions.health(), 2_000).catch(() => undefined);
    checks.models = models?.status ?? 'loading';
    const status = draining ? 'draining' : ok && models?.status === 'ok' ? 'ok' : 'degraded';
    json(res, ok ? 200 : 503, { status, checks, queues, models });
  };
  return {
    /** Adds a readiness check (e.g. queues, from the worker). */
    addCheck(name: string, fn: () => Promise<unknown>) {
      extraChecks.push([name, fn]);
    },
    setDraining() {
      draining = true;
    },
    /** Handles the request if it is a health or metrics path. */
    handle(req: IncomingMessage, res: ServerResponse): boolean {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      if (path === '/health/live') {
        json(res, 200, { status: 'ok' });
        return true;
      }
      if (path === '/health/ready') {
        void ready(res);
        return true;
      }
      if (path === '/metrics') {
        void c.metrics.registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': c.metrics.registry.contentType });
          res.end(text);
        });
        return true;
      }
      return false;
    },
  };
}
