import type { ObjectRef } from '@pothos/core';
import type { ItemResult } from '../shared/bulk.js';
import { builder } from './builder.js';

export const ItemError = builder.objectRef<{ code: string; message: string }>('ItemError').implement({
  description: 'Why one item of a bulk request failed.',
  fields: (t) => ({
    code: t.exposeString('code', { description: 'The error code, as in `extensions.code` (BAD_USER_INPUT, NOT_FOUND, CONFLICT...).' }),
    message: t.exposeString('message', { description: 'What was wrong with the item.' }),
  }),
});

/** The result type of a bulk mutation: `index`, the item's `<field>` (or null) and its `error` (or null). */
export function itemResult<T>(name: string, field: string, type: ObjectRef<any, T>, what: string) {
  return builder.objectRef<ItemResult<T>>(name).implement({
    description: `The outcome of one item, in input order.`,
    fields: (t) => ({
      index: t.exposeInt('index', { description: 'Position of the item in `inputs` (from 0).' }),
      [field]: t.field({ type, nullable: true, description: what, resolve: (r) => r.value as never }),
      error: t.field({
        type: ItemError,
        nullable: true,
        description: 'Why this item was refused; null when it went through.',
        resolve: (r) => r.error,
      }),
    }),
  });
}
