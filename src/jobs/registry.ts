import type { JobImpl } from './define.js';

/**
 * Every job implementation, by module. Only worker.ts imports this file, so the API process
 * never loads job handlers. Modules add their `jobs.ts` exports here.
 */
export const JOB_IMPLS: JobImpl[] = [];
