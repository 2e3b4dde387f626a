import { existsSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';

/** Debian's chromium (or CHROMIUM_PATH); undefined when none is installed. */
export function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  return candidates.find((p): p is string => !!p && existsSync(p));
}

/**
 * Whether browser tests run here. In CI (CI=true) a missing browser is a failure, not a skip:
 * `.ci/run` installs Debian's chromium when it is missing.
 */
export function chromiumOrSkip(): { path?: string; reason?: string } {
  const path = findChromium();
  if (path) return { path };
  const reason = "no Chromium found (install Debian's `chromium` package or set CHROMIUM_PATH): browser tests skipped";
  if (process.env.CI) throw new Error(`CI=true but ${reason}`);
  process.stderr.write(`\n*** ${reason} ***\n\n`);
  return { reason };
}

/** Headless, and no background traffic: nothing leaves this machine but what a page asks for. */
export async function launch(path: string): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: path,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export const ARTIFACTS = join(process.cwd(), 'test-artifacts');

/** Saves a full-page screenshot under test-artifacts/ (gitignored; CI keeps it on failure). */
export async function screenshot(page: Page, name: string): Promise<string | undefined> {
  try {
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, `${name.replace(/[^\w.-]+/g, '-')}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  } catch {
    return undefined;
  }
}
