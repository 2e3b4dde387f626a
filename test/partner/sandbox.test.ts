import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../src/runtime/sandbox.js';
import { demoTokens, seedDemo } from '../../src/runtime/seed.js';
import type { Logger } from '../../src/shared/logger.js';
import { collect, until, wsClient } from '../harness/clients.js';
import { type TestApp, startApp } from '../harness/start-app.js';

/** `npm run sandbox`'s producer moves every subscription of the tour in the demo organisation. */
describe('partner sandbox', () => {
  let app: TestApp;
  let sandbox: Sandbox | undefined;
  let tokens: Record<string, string>;
  beforeAll(async () => {
    // every presence change is sent (no coalescing): the sandbox's steps queue up on a loaded machine
    // and run back to back, so BUSY and the ONLINE three steps later could fall in one window and
    // be sent as nothing
    app = await startApp({ env: { PRESENCE_COALESCE_MS: '0' } });
    const seed = await seedDemo(app.container.services);
    tokens = Object.fromEntries(((await demoTokens(app.config, seed)) ?? []).map((t) => [t.role, t.token]));
  });
  afterAll(async () => {
    await sandbox?.stop();
    await app.stop();
  });

  it('streams messages, presence, alerts and notifications', async () => {
    const before = app.container.fanout.stats().subscriptions;
    const patient = wsClient(app, `Bearer ${tokens.patient}`);
    const provider = wsClient(app, `Bearer ${tokens.provider}`);
    const conv = await seedDemo(app.container.services);
    const messages = collect(patient, 'subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename } }', {
      c: conv.conversationId,
    });
    const inbox = collect(patient, 'subscription { notificationEvents { __typename } }');
    const alerts = collect(patient, 'subscription { alertRaised { __typename } }');
    const presence = collect(provider, 'subscription { presenceChanged(userIds: ["demo-patient", "demo-provider"]) { userId status } }');
    const warnings: unknown[] = [];
    const logger = { info: () => {}, warn: (o: unknown) => void warnings.push(o) } as unknown as Logger;
    // the four subscriptions are live (events the sandbox produces from now on must arrive) and the
    // current states were sent
    await until(() => app.container.fanout.stats().subscriptions >= before + 4, 20_000, 'the subscriptions to be live');
    await presence.waitFor(2, 20_000);
    sandbox = await startSandbox(
      app.url,
      { patient: tokens.patient as string, provider: tokens.provider as string, service: tokens.service as string },
      logger,
      150,
    );
    expect(sandbox.conversationId).toBeTruthy();
    await messages.waitFor(3, 20_000);
    await inbox.waitFor(1, 20_000);
    await alerts.waitFor(1, 20_000);
    // the current states (in the order asked), then changes — the provider switching to BUSY among
    // them. Which changes come before it (the patient's device coming or going, the test's own
    // sockets registering) and how many are coalesced depends on scheduling, so only BUSY is awaited.
    expect(presence.items.slice(0, 2).map((p) => p.presenceChanged.userId)).toEqual(['demo-patient', 'demo-provider']);
    const states = () => presence.items.map((p) => p.presenceChanged);
    await until(() => states().some((p) => p.userId === 'demo-provider' && p.status === 'BUSY'), 20_000, 'the provider to be BUSY').catch(
      (e: Error) => {
        throw new Error(`${e.message}; seen: ${JSON.stringify(states())}`);
      },
    );
    for (const c of [messages, inbox, alerts, presence]) expect(c.errors).toEqual([]);
    expect(warnings).toEqual([]); // every action of every step succeeded
    await sandbox.stop();
    sandbox = undefined;
    await patient.dispose();
    await provider.dispose();
  }, 60_000);
});
