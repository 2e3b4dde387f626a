// A Wardline instance in its own process, for tests that kill it with SIGKILL (no shutdown hook
// runs). Usage: PRESENCE_PREFIX=<redis prefix> INSTANCE_ENV='{"PRESENCE_TTL_MS":"3000"}'
//   node --import tsx test/presence/crash-instance.ts      → prints {"port":N} once listening
import { startApp } from '../harness/start-app.js';

const app = await startApp({
  prefix: process.env.PRESENCE_PREFIX,
  env: JSON.parse(process.env.INSTANCE_ENV ?? '{}') as Record<string, string>,
});
process.stdout.write(`${JSON.stringify({ port: app.port })}\n`);
// runs until killed; SIGTERM stops it gracefully, SIGKILL is the crash under test
process.once('SIGTERM', () => void app.stop().then(() => process.exit(0)));
