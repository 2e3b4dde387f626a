import { randomUUID } from 'node:crypto';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { Logger } from '../shared/logger.js';

/**
 * A synthetic stream into the demo organisation, produced through the public API exactly as
 * partners' own producers would (HTTP mutations with the demo tokens, WebSockets for presence):
 * messages in the care-team conversation, the patient's presence coming and going and the
 * provider's status, alerts near Sydney from the service account, notifications to the patient,
 * and a reminder for the patient each few minutes. Every subscription of the GraphiQL tour moves.
 */
export interface SandboxTokens {
  patient: string;
  provider: string;
  service: string;
}

export interface Sandbox {
  /** The demo conversation the messages go to. */
  conversationId: string;
  stop(): Promise<void>;
}

const MESSAGES = [
  ['patient', 'Morning! The new inhaler seems to help.'],
  ['provider', 'Great to hear. Any side effects?'],
  ['patient', 'A bit of a dry throat in the evening.'],
  ['provider', 'That is common; rinse your mouth after each use.'],
  ['patient', 'Will do, thanks.'],
  ['provider', 'Your lab results are in: all within range.'],
] as const;

export class SandboxError extends Error {}

async function post(url: string, token: string, query: string, variables?: Record<string, unknown>): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: any; errors?: Array<{ message: string }> };
  if (body.errors?.length) throw new SandboxError(body.errors.map((e) => e.message).join('; '));
  return body.data;
}

/** Starts producing into the demo org of the server at `url` (its `/graphql`), one step each `intervalMs`. */
export async function startSandbox(url: string, tokens: SandboxTokens, logger: Logger, intervalMs = 3_000): Promise<Sandbox> {
  const conversations = await post(url, tokens.provider, '{ conversations(first: 1) { edges { node { id } } } }').catch((err) => {
    throw new SandboxError(`the demo organisation is not usable (${(err as Error).message}): run \`npm run seed\` first`);
  });
  const conversationId = conversations?.conversations?.edges?.[0]?.node?.id as string | undefined;
  if (!conversationId) throw new SandboxError('the demo provider is in no conversation: run `npm run seed` first');

  const socket = (token: string): Client =>
    createClient({
      url: url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      lazy: false,
      retryAttempts: 5,
    });
  // the provider stays online (a socket is a device); the patient's device comes and goes
  const provider = socket(tokens.provider);
  let patient: Client | undefined;

  let step = 0;
  let busy = false;
  /** One step: every action runs even when another failed; failures are logged. */
  const run = async () => {
    const n = step++;
    const failures: string[] = [];
    const attempt = async (what: string, action: () => Promise<unknown>) => {
      try {
        await action();
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    };
    await attempt('message', () => message(n));
    if (n % 3 === 1) await attempt('presence', () => presence());
    if (n % 5 === 2) await attempt('alert', () => alert(n));
    if (n % 4 === 3) await attempt('notification', () => notification());
    if (n % 20 === 0) await attempt('reminder', () => reminder());
    if (failures.length) logger.warn({ failures }, 'sandbox step failed');
  };
  const message = async (n: number) => {
    const [who, body] = MESSAGES[n % MESSAGES.length] as (typeof MESSAGES)[number];
    await post(url, tokens[who], 'mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b }) { id } }', {
      c: conversationId,
      b: body,
    });
  };
  const presence = async () => {
    if (patient) {
      await patient.dispose();
      patient = undefined;
    } else patient = socket(tokens.patient);
    busy = !busy;
    await post(url, tokens.provider, 'mutation($s: PresenceStatus!) { setPresence(status: $s) { status } }', {
      s: busy ? 'BUSY' : 'ONLINE',
    });
  };
  const levels = ['MEDIUM', 'HIGH', 'CRITICAL'];
  const alert = (n: number) =>
    post(url, tokens.service, 'mutation($i: RaiseAlertInput!) { raiseAlert(input: $i) { id } }', {
      i: {
        level: levels[Math.floor(n / 5) % levels.length],
        type: 'outbreak',
        title: 'Sandbox: respiratory cases rising',
        regionCode: 'AU-NSW',
        location: { lat: -33.87 + (Math.random() - 0.5) / 10, lng: 151.21 + (Math.random() - 0.5) / 10 },
        riskScore: Math.round(Math.random() * 100) / 100,
        clientKey: `sandbox-${randomUUID()}`,
      },
    });
  const notification = () =>
    post(url, tokens.service, 'mutation($i: SendNotificationInput!) { sendNotification(input: $i) { id } }', {
      i: { userId: 'demo-patient', kind: 'SYSTEM', title: 'Sandbox: your care plan was updated', clientKey: `sandbox-${randomUUID()}` },
    });
  const reminder = () =>
    post(url, tokens.provider, 'mutation($i: CreateReminderInput!) { createReminder(input: $i) { id } }', {
      i: {
        userId: 'demo-patient',
        kind: 'MEDICATION',
        title: 'Sandbox: take your inhaler',
        at: new Date(Date.now() + 70_000).toISOString(),
        clientKey: `sandbox-${randomUUID()}`,
      },
    });

  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(run);
  }, intervalMs);
  logger.info({ conversationId, intervalMs }, 'sandbox producing');

  return {
    conversationId,
    async stop() {
      clearInterval(timer);
      await running;
      await patient?.dispose();
      await provider.dispose();
    },
  };
}
