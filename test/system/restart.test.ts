// An instance is restarted while messages keep flowing through the other one: its clients see
// close code 1001 (which the stock client retries), reconnect to the new instance with their last
// cursor, and miss nothing and see nothing twice.
import { afterEach, describe, expect } from 'vitest';
import { startApp } from '../harness/start-app.js';
import {
  conversation,
  events,
  expectContiguous,
  history,
  messageIds,
  rawRecorder,
  send,
  waitForMessages,
  EVENTS,
  it,
} from '../harness/system.js';
import { connect, disposeAll, live, sleep, until } from '../harness/clients.js';

afterEach(disposeAll);

describe('an instance restarted mid-stream', () => {
  it('costs the client a reconnect, never an event', async ({ prefix, a, b, org }) => {
    const c = await conversation(b, org.provider, [org.patient]);
    const closes: number[] = [];
    const client = connect(a, org.patient, { on: { closed: (e) => closes.push((e as { code: number }).code) } });
    const before = await live(a, client, EVENTS, { c });
    // a raw socket on A too, to see the close frame itself
    const raw = await rawRecorder(a, org.patient.token);
    raw.subscribe('1', { c });
    await until(() => a.container.fanout.stats().subscriptions === 2, 5_000, 'the raw subscription');
    // and a stock client that retries by itself, behind a "load balancer" that routes new
    // connections to an instance that is up
    let target = a;
    const connectedTo: number[] = [];
    const retrying = connect(a, org.provider, {
      url: () => target.wsUrl,
      retryAttempts: 50,
      retryWait: async () => void (await sleep(100)),
      on: { connected: () => connectedTo.push(target.port) },
    });
    const retried = await live(a, retrying, EVENTS, { c });

    // a sender keeps going through B for the whole test
    const sent: string[] = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        sent.push(await send(b, org.provider, c, `m${i}`));
        await sleep(10);
      }
    })();
    await waitForMessages(before, 5);

    target = b; // A is being drained: the balancer sends new connections elsewhere
    await a.stop(); // graceful: sockets closed with 1001
    expect((await raw.closed).code).toBe(1001);
    await before.ended();
    expect(closes).toEqual([1001]);
    expect(before.errors).toHaveLength(1);
    expect((before.errors[0] as { code?: number }).code).toBe(1001);
    const seenBefore = messageIds(before);
    const last = events(before).at(-1)!.cursor!;
    // messages keep coming while no A exists
    const sentAtStop = sent.length;
    await until(() => sent.length >= sentAtStop + 3, 5_000, 'messages while A is down');

    const a2 = await startApp({ prefix });
    const sentAtStart = sent.length;
    const resumed = await live(a2, connect(a2, org.patient), EVENTS, { c, a: last });
    // keep sending for a while after the new instance is up, then stop
    await until(() => sent.length >= sentAtStart + 10, 10_000, 'more messages after the restart');
    sending = false;
    await sender;

    expect(sent.length - seenBefore.length).toBeGreaterThanOrEqual(13);
    await waitForMessages(resumed, sent.length - seenBefore.length);
    await sleep(200);
    expect([...seenBefore, ...messageIds(resumed)]).toEqual(sent);
    expectContiguous(b, c, [...events(before), ...events(resumed)]);
    expect(await history(a2, org.patient, c)).toEqual(sent);
    // 1001 is retried by the stock client: it reconnected on its own, to the instance that is up
    await until(() => connectedTo.length === 2, 5_000, 'the retrying client to reconnect');
    expect(connectedTo).toEqual([a.port, b.port]);
    expect(retried.errors).toEqual([]);
    raw.ws.terminate();
  });
});
