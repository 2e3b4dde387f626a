import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES, NEEDS_INPUT } from '../../src/graphql/examples.js';
import { demoTokens, seedDemo } from '../../src/runtime/seed.js';
import { type TestApp, startApp } from '../harness/start-app.js';
import { scoringWorker } from '../predictions/ops.js';
import { chromiumOrSkip, launch, screenshot } from './chromium.js';

/**
 * The README's GraphiQL tour in headless Chromium against a real listening server: the token goes
 * into the Headers tab, every example tab runs, and a message sent in one window arrives in a
 * subscription running in another. Screenshots of every open window go to test-artifacts/ on failure.
 */
const chromium = chromiumOrSkip();
const names = EXAMPLES.map((e) => e.name);
const subscriptions = [
  'ConversationEvents',
  'WatchPresence',
  'Inbox',
  'AlertsNearMe',
  'MyCalls',
  'BatchProgress',
  'PatientPredictions',
  'RiskAlerts',
];

let app: TestApp;
let browser: Browser;
let tokens: Record<string, string>;
const pages: Page[] = [];
const requests: string[] = [];

async function newContext(): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  ctx.on('request', (r) => void requests.push(r.url()));
  ctx.on('page', (p) => p.on('websocket', (ws) => void requests.push(ws.url())));
  return ctx;
}

async function open(ctx: BrowserContext): Promise<Page> {
  const page = await ctx.newPage();
  pages.push(page);
  await page.goto(app.url, { timeout: 90_000 }); // a loaded CI machine parses 5 MB of GraphiQL slowly
  await page
    .locator('.graphiql-tab')
    .nth(names.length - 1)
    .waitFor({ timeout: 60_000 });
  return page;
}

/** Switches to an example's tab and waits until its editors hold that example. */
async function tab(page: Page, name: string): Promise<void> {
  await page
    .locator('.graphiql-tab-button')
    .filter({ hasText: new RegExp(`^${name}$`) })
    // a click event without pointer moves: headless pointer moves start a tab drag (tabs are reorderable)
    .dispatchEvent('click');
  await page
    .locator('.graphiql-query-editor .view-lines')
    .filter({ hasText: new RegExp(`\\b${name}\\b`) })
    .waitFor();
  await page.waitForTimeout(300);
}

const response = async (page: Page) => ((await page.locator('.graphiql-response').textContent()) ?? '').replace(/\s+/g, ' ');

/** Waits until the response pane shows `text` (a string or a test), returns the pane's text. */
async function shows(page: Page, test: string | RegExp, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    last = await response(page);
    if (typeof test === 'string' ? last.includes(test) : test.test(last)) return last;
    await page.waitForTimeout(100);
  }
  throw new Error(`response pane never showed ${test}; it shows: ${last.slice(0, 500)}`);
}

async function run(page: Page, name: string): Promise<void> {
  await tab(page, name);
  await page.locator('.graphiql-execute-button').click();
}

/** Runs a query or mutation tab; resolves with the server's answer as it came over the network. */
const setVariables = (page: Page, json: string) => setHeaders(page, json, 'variables');

async function runHttp(page: Page, name: string): Promise<{ data?: any; errors?: unknown[] }> {
  await tab(page, name);
  const answer = page.waitForResponse(
    (r) => r.request().method() === 'POST' && r.url() === app.url && (r.request().postDataJSON() as any)?.operationName === name,
  );
  await page.locator('.graphiql-execute-button').click();
  const body = await (await answer).json();
  await shows(page, /"data"|"errors"/);
  return body;
}

/** Types into the Headers (or Variables) editor of the active tab, as a person would paste. */
async function setHeaders(page: Page, json: string, tool: 'headers' | 'variables' = 'headers'): Promise<void> {
  await page.locator(`.graphiql-editor-tools button[data-name="${tool}"]`).click();
  const editor = page.locator('.graphiql-editor-tool .graphiql-editor:visible .monaco-editor').first();
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(json);
  // the editor closes brackets and quotes by itself: drop what it added after the cursor
  await page.keyboard.press('Shift+ControlOrMeta+End');
  await page.keyboard.press('Delete');
  await page.waitForTimeout(700); // GraphiQL stores the tab's headers after a short debounce
}

describe.skipIf(!chromium.path)('GraphiQL in a real browser', () => {
  beforeAll(async () => {
    app = await startApp();
    const seed = await seedDemo(app.container.services);
    const list = (await demoTokens(app.config, seed)) ?? [];
    tokens = Object.fromEntries(list.map((t) => [t.role, `Bearer ${t.token}`]));
    browser = await launch(chromium.path as string);
  }, 120_000);

  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const [i, p] of pages.entries()) if (!p.isClosed()) await screenshot(p, `${ctx.task.name}-window-${i + 1}`);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.stop();
  });

  let ctx: BrowserContext;
  let first: Page;

  it('opens on one tab per example, with nothing fetched from outside this server', async () => {
    ctx = await newContext();
    first = await open(ctx);
    expect(await first.locator('.graphiql-tab-button').allInnerTexts()).toEqual(names);
    const origin = new URL(app.url).host;
    const outside = requests.filter((u) => !/^(data|blob):/.test(u) && new URL(u).host !== origin);
    expect(outside).toEqual([]);
    // every tab in sight at 1440×900
    for (const t of await first.locator('.graphiql-tab').all()) {
      const box = await t.boundingBox();
      expect(box && box.x >= 0 && box.x + box.width <= 1440 && box.y + box.height <= 900, (await t.textContent()) ?? '').toBe(true);
    }
  }, 180_000);

  it('explains what to do when a subscription runs without a token (no isTrusted, no long spinner)', async () => {
    const started = Date.now();
    await run(first, 'ConversationEvents');
    const text = await shows(first, 'Headers tab', 10_000);
    expect(text).not.toContain('isTrusted');
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);

  it('runs every query and mutation example with the token put in the Headers tab', async () => {
    await tab(first, 'Me');
    await setHeaders(first, JSON.stringify({ Authorization: tokens.provider }));
    expect((await runHttp(first, 'Me')).data?.me?.id).toBe('demo-provider');
    await shows(first, '"demo-provider"');

    // the other tabs still hold the placeholder: the token the page last ran with is used
    for (const name of names.filter((n) => n !== 'Me' && !subscriptions.includes(n) && !NEEDS_INPUT.includes(n))) {
      const r = await runHttp(first, name);
      expect(r.errors, name).toBeUndefined();
      expect(r.data, name).toBeTruthy();
    }
    // presence comes from this window's socket: BUSY, not OFFLINE
    expect((await runHttp(first, 'SetBusy')).data?.setPresence?.status).toBe('BUSY');
  }, 120_000);

  it('sends twice: two messages, not the first one returned again', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await runHttp(first, 'Send')).data?.sendMessage?.id);
    expect(ids[0]).toBeTruthy();
    expect(ids[1]).not.toBe(ids[0]);
  }, 60_000);

  it('shows a message sent in one window in a subscription running in another window', async () => {
    const second = await open(ctx); // same browser profile: the token comes along
    await run(second, 'ConversationEvents');
    await second.waitForTimeout(1_000);
    expect(await response(second)).not.toContain('"errors"');

    const sent = (await runHttp(first, 'Send')).data?.sendMessage?.id;
    expect(sent).toBeTruthy();
    expect(await shows(second, `"id": "${sent}"`)).toContain('Hello from GraphiQL');
  }, 120_000);

  it('runs the other subscriptions: presence, inbox, alerts near me', async () => {
    const second = pages[pages.length - 1] as Page;
    await run(second, 'WatchPresence');
    await shows(second, '"presenceChanged"');

    await run(second, 'AlertsNearMe');
    await second.waitForTimeout(1_000);
    const raised = (await runHttp(first, 'RaiseOutbreakAlert')).data?.raiseAlert?.id;
    expect(raised).toBeTruthy();
    expect(await shows(second, `"id": "${raised}"`)).toContain('AlertRaised');

    await run(second, 'Inbox');
    await second.waitForTimeout(1_000);
    expect(await response(second)).not.toContain('"errors"');

    // calls: the provider in the second window sees the call it starts in the first
    await run(second, 'MyCalls');
    await second.waitForTimeout(1_000);
    const call = (await runHttp(first, 'StartCall')).data?.startCall?.id;
    expect(call).toBeTruthy();
    expect(await shows(second, `"id": "${call}"`)).not.toContain('"errors"');
    // hang it up (the caller cancels), so the next call rings from the start
    await tab(first, 'HangUp');
    await setVariables(first, JSON.stringify({ id: call }));
    expect((await runHttp(first, 'HangUp')).data?.endCall?.state).toBe('MISSED');
  }, 120_000);

  it('predictions: a score shows in PatientPredictions, a crossing in RiskAlerts, a batch moves to SUCCEEDED in BatchProgress and its results page', async () => {
    const second = pages[pages.length - 1] as Page;
    const workers = scoringWorker(app, () => ['demo']); // the scoring worker `npm start` runs
    try {
      await run(second, 'PatientPredictions');
      await second.waitForTimeout(1_000);
      expect(await response(second)).not.toContain('"errors"');
      const scored = (await runHttp(first, 'ScoreRisk')).data?.score;
      expect(scored?.fallback).toBe(false);
      expect(await shows(second, `"id": "${scored.id}"`)).toContain('"modelVersion": "1.0.0"');

      // a new rule: its first score at or above 40 is a crossing (the example's subject scores about 47)
      const rule = (await runHttp(first, 'WatchHighRisk')).data?.createRiskRule?.id;
      expect(rule).toBeTruthy();
      await tab(second, 'RiskAlerts');
      await setVariables(second, JSON.stringify({ ruleId: rule }));
      await run(second, 'RiskAlerts');
      await second.waitForTimeout(1_000);
      expect(await response(second)).not.toContain('"errors"');
      const crossing = (await runHttp(first, 'ScoreRisk')).data?.score?.id;
      expect(await shows(second, `"id": "${crossing}"`)).toContain('"direction": "ENTERED"');

      const submitted = (await runHttp(first, 'SubmitBatch')).data?.submitScoringBatch;
      expect(submitted?.totalRows).toBe(2);
      await tab(second, 'BatchProgress');
      await setVariables(second, JSON.stringify({ batchId: submitted.id }));
      await run(second, 'BatchProgress');
      expect(await shows(second, '"status": "SUCCEEDED"', 30_000)).toContain('"processedRows": 2');

      await tab(first, 'BatchResults');
      await setVariables(first, JSON.stringify({ batchId: submitted.id }));
      const results = (await runHttp(first, 'BatchResults')).data?.scoringBatch?.results?.edges;
      expect(results?.map((e: { node: { subjectId: string } }) => e.node.subjectId)).toEqual(['patient-1', 'patient-2']);
    } finally {
      await workers.close();
    }
  }, 180_000);

  it('a call: the patient (another browser) sees it ring, answers it with the pasted id, and both sides see it end', async () => {
    const patient = await open(await newContext());
    await tab(patient, 'MyCalls');
    await setHeaders(patient, JSON.stringify({ Authorization: tokens.patient }));
    await run(patient, 'MyCalls');
    await patient.waitForTimeout(1_000);
    expect(await response(patient)).not.toContain('"errors"');

    const call = (await runHttp(first, 'StartCall')).data?.startCall;
    expect(call?.state).toBe('RINGING');
    expect(await shows(patient, `"id": "${call.id}"`)).toMatch(/"ringRemainingMs": [1-9]/);

    // a second patient window answers, with the id pasted into the variables
    const answer = await open(patient.context());
    await tab(answer, 'AnswerCall');
    await setVariables(answer, JSON.stringify({ id: call.id, deviceId: 'graphiql' }));
    const answered = await runHttp(answer, 'AnswerCall');
    expect(answered.data?.acceptCall?.state, JSON.stringify(answered.errors)).toBe('ACCEPTED');
    await shows(patient, '"answeredBy"');

    await tab(first, 'HangUp');
    await setVariables(first, JSON.stringify({ id: call.id }));
    expect((await runHttp(first, 'HangUp')).data?.endCall?.state).toBe('ENDED');
    await shows(patient, '"to": "ENDED"');
  }, 180_000);

  it('says why a refused token fails, within seconds', async () => {
    const other = await open(await newContext());
    await tab(other, 'WatchPresence');
    await setHeaders(other, JSON.stringify({ Authorization: 'Bearer not-a-token' }));
    await run(other, 'WatchPresence');
    const text = await shows(other, '4403', 10_000);
    expect(text).toContain('token was refused');
  }, 90_000);
});
