import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import type { Context } from './context.js';

/** The schema builder. It holds no types: each module adds its own (Pothos app-layout guide). */
export const builder = new SchemaBuilder<{
  Context: Context;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: true;
}>({
  plugins: [RelayPlugin],
  defaultFieldNullability: false,
  defaultInputFieldRequiredness: true,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    pageInfoTypeOptions: { description: 'Where a page sits in a list, and the cursors to fetch the next or previous one.' },
    // the relay plugin's generated fields and arguments need descriptions too (schema.graphql is read in GraphiQL)
    pageInfoFieldOptions: { description: 'Where this page sits in the list.' },
    hasNextPageFieldOptions: { description: 'Whether items follow this page (fetch them with `after: endCursor`).' },
    hasPreviousPageFieldOptions: { description: 'Whether items precede this page (fetch them with `before: startCursor`).' },
    startCursorFieldOptions: { description: 'Cursor of the first item of this page; null when the page is empty.' },
    endCursorFieldOptions: { description: 'Cursor of the last item of this page; null when the page is empty.' },
    edgesFieldOptions: { description: 'The items of this page, each with its cursor.' },
    nodeFieldOptions: { description: 'The item.' },
    cursorFieldOptions: { description: 'Opaque position of this item, valid only for this list.' },
    firstArgOptions: { description: 'Page forward: at most this many items (capped at MAX_PAGE_SIZE).' },
    afterArgOptions: { description: 'Page forward from this cursor (exclusive).' },
    lastArgOptions: {
      description:
        'Page backward: at most this many items (capped at MAX_PAGE_SIZE). Only lists whose description says they page backward accept it; the others answer BAD_USER_INPUT.',
    },
    beforeArgOptions: {
      description:
        'Page backward from this cursor (exclusive). Only lists whose description says they page backward accept it; the others answer BAD_USER_INPUT.',
    },
  },
});
