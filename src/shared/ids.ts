import { randomUUID } from 'node:crypto';

/** A new random id (UUID v4). */
export const newId = (): string => randomUUID();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Whether `s` is a UUID; ids that are not cannot name a row, so callers answer NOT_FOUND. */
export const isUuid = (s: string): boolean => UUID.test(s);
