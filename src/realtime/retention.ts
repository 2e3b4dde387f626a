import type { Executor } from '../db/client.js';
import type { Logger } from '../shared/logger.js';
import { ledgerOrgs, trimOrg } from './ledger.js';

const BATCH = 1_000;
/** At most this many events per organisation and run: a run stays short; the next one goes on. */
const MAX_PER_ORG_RUN = 200_000;

/**
 * The ledger's retention, a worker's periodic duty: durable events older than `retentionDays` are
 * deleted in short batches (each one statement, skipping rows others hold, so no long lock), and
 * each stream remembers up to where it was trimmed, so a resume from an older cursor gets a typed
 * CURSOR_EXPIRED error instead of a history with a hole in it.
 */
export function ledgerRetention(deps: { db: Executor; logger: Logger; retentionDays: number; everyMs: number }) {
  return {
    name: 'ledger-retention',
    everyMs: deps.everyMs,
    async run(): Promise<void> {
      if (deps.retentionDays <= 0) return;
      await trimLedger(deps.db, new Date(Date.now() - deps.retentionDays * 86_400_000), deps.logger);
    },
  };
}

/** Deletes the events older than `before`, organisation by organisation. Returns how many. */
export async function trimLedger(db: Executor, before: Date, logger?: Logger): Promise<number> {
  let total = 0;
  // an organisation with nothing old costs one empty index range in trimOrg, the same as a probe would
  for (const org of await ledgerOrgs(db)) {
    for (let done = 0; done < MAX_PER_ORG_RUN; ) {
      const n = await trimOrg(db, org, before, BATCH);
      done += n;
      total += n;
      if (n < BATCH) break;
    }
  }
  if (total > 0) logger?.info({ events: total, before: before.toISOString() }, 'ledger retention deleted old events');
  return total;
}
