#!/usr/bin/env node
// The one executable: parses argv and calls the composition root (src/runtime/boot.ts). No logic here.
import { parseArgs } from 'node:util';
import { ConfigError, type Config } from './config.js';
import { createLogger, type Logger } from './shared/logger.js';
import { ROLES, type Role } from './shared/viewer.js';
import {
  TokenError,
  createLifecycle,
  exitOnUnhandled,
  loadRuntimeConfig,
  migrateDatabase,
  mintDevToken,
  seedDatabase,
  startSandboxServer,
  startServer,
  stopOnSignals,
} from './runtime/boot.js';
import { DataDirLockedError, PortInUseError } from './runtime/data-lock.js';
import { DependencyError, describeCause } from './runtime/dependencies.js';
import { RedisUnavailableError } from './runtime/embedded-redis.js';
import { SandboxError } from './runtime/sandbox.js';

const USAGE = `Usage: wardline <command> [options]      (npm start = wardline all)

Commands:
  all        API server and the background workers in one process (the single-machine default)
  serve      API server only (run several behind a load balancer)
  worker     background workers only (reminders, alert escalation); run one or more
  migrate    apply the database migrations in drizzle/ and exit
  sandbox    like all, plus a synthetic stream into the demo organisation (messages, presence,
             alerts, notifications, reminders) so every subscription moves; SANDBOX_INTERVAL_MS
  seed       seed the demo organisation (idempotent) and print its tokens
  token      print a JWT: --sub ID --org ORG --role patient|provider|admin|service [--name NAME] [--ttl SECONDS]
  help       this text

Configuration comes from environment variables; see README.md or .env.example.`;

/** A wrong command line: printed with the usage, exit code 2. */
class UsageError extends Error {}

/** Resolves `running` when the process now lives until a signal, `done` when it should exit 0. */
type Command = (args: string[], config: Config, logger: Logger) => Promise<'running' | 'done'>;

const server =
  (api: boolean, workers: boolean): Command =>
  async (args, config, logger) => {
    if (args.length) throw new UsageError(`unexpected arguments: ${args.join(' ')}`);
    const lifecycle = createLifecycle(logger);
    exitOnUnhandled(logger, lifecycle);
    const started = startServer(config, logger, lifecycle, { api, workers });
    stopOnSignals(lifecycle, logger, started, config.shutdownGraceMs + config.faults.drainMs);
    await started.catch(async (err: unknown) => {
      await lifecycle.stop();
      throw err;
    });
    return 'running';
  };

const COMMANDS: Record<string, Command> = {
  all: server(true, true),

  async sandbox(args, config, logger) {
    if (args.length) throw new UsageError(`unexpected arguments: ${args.join(' ')}`);
    const interval = Number(process.env.SANDBOX_INTERVAL_MS ?? 3_000);
    if (!Number.isInteger(interval) || interval < 100)
      throw new UsageError('SANDBOX_INTERVAL_MS: expected a whole number of milliseconds, at least 100');
    const lifecycle = createLifecycle(logger);
    exitOnUnhandled(logger, lifecycle);
    const started = startSandboxServer(config, logger, lifecycle, interval);
    stopOnSignals(lifecycle, logger, started, config.shutdownGraceMs + config.faults.drainMs);
    await started.catch(async (err: unknown) => {
      await lifecycle.stop();
      throw err;
    });
    return 'running';
  },

  serve: server(true, false),
  worker: server(false, true),

  async migrate(args, config, logger) {
    if (args.length) throw new UsageError(`unexpected arguments: ${args.join(' ')}`);
    await migrateDatabase(config, logger);
    return 'done';
  },

  async seed(args, config, logger) {
    if (args.length) throw new UsageError(`unexpected arguments: ${args.join(' ')}`);
    const lifecycle = createLifecycle(logger);
    try {
      await seedDatabase(config, logger, lifecycle);
    } finally {
      await lifecycle.stop();
    }
    return 'done';
  },

  async token(args, config) {
    const { sub, org, role, name, ttl } = parseTokenArgs(args);
    process.stdout.write(`${await mintDevToken(config, { sub, org, role, name }, ttl)}\n`);
    return 'done';
  },
};

function parseTokenArgs(args: string[]) {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        sub: { type: 'string' },
        org: { type: 'string' },
        role: { type: 'string' },
        name: { type: 'string' },
        ttl: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const str = (k: string) => (typeof values[k] === 'string' && values[k] !== '' ? (values[k] as string) : undefined);
  const problems: string[] = [];
  const sub = str('sub');
  const org = str('org');
  const role = str('role');
  const ttlText = str('ttl') ?? String(24 * 3600);
  if (!sub) problems.push('--sub: the user id is required');
  if (!org) problems.push('--org: the organisation id is required');
  if (!role || !(ROLES as readonly string[]).includes(role)) problems.push(`--role: expected one of ${ROLES.join(', ')}`);
  const ttl = Number(ttlText);
  if (!/^\d+$/.test(ttlText) || ttl < 1) problems.push('--ttl: expected a positive whole number of seconds');
  if (problems.length) throw new UsageError(problems.join('\n'));
  return { sub: sub as string, org: org as string, role: role as Role, name: str('name'), ttl };
}

async function main(argv: string[]): Promise<'running' | 'done'> {
  const [name = 'help', ...args] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return 'done';
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command: ${name}`);
  const config = loadRuntimeConfig(process.env);
  return command(args, config, createLogger(config.logLevel));
}

main(process.argv.slice(2)).then(
  // a one-shot command is finished even if a library left a timer behind; servers run until a signal
  (state) => (state === 'done' ? process.exit(0) : undefined),
  (err: unknown) => {
    if (
      err instanceof ConfigError ||
      err instanceof DependencyError ||
      err instanceof RedisUnavailableError ||
      err instanceof TokenError ||
      err instanceof DataDirLockedError ||
      err instanceof PortInUseError ||
      err instanceof SandboxError
    ) {
      process.stderr.write(`${err.message}\n`);
    } else if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      process.exit(2);
    } else {
      const e = err instanceof Error ? err : new Error(String(err));
      const verbose = process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace';
      // the first line of the message, and the innermost cause (a driver's own error), without secrets
      const cause = e.cause !== undefined ? describeCause(e) : undefined;
      process.stderr.write(`wardline: ${e.message.split('\n')[0]}${cause ? `: ${cause}` : ''}\n${verbose ? `${e.stack}\n` : ''}`);
    }
    process.exit(1);
  },
);
