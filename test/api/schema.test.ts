import { readFileSync } from 'node:fs';
import {
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputField,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isSpecifiedScalarType,
  printSchema,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildSchema } from '../../src/graphql/schema.js';

const schema = buildSchema();

describe('schema.graphql', () => {
  it('matches the schema printed from the code (run `npm run schema:print` after changing it)', () => {
    const onDisk = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
    expect(onDisk.trimEnd()).toBe(printSchema(schema).trimEnd());
  });

  it('describes every type, field, argument, enum value and input field', () => {
    const missing: string[] = [];
    const check = (what: string, description: string | null | undefined) => {
      if (!description?.trim()) missing.push(what);
    };
    const args = (owner: string, list: readonly GraphQLArgument[]) => {
      for (const a of list) check(`${owner}(${a.name}:)`, a.description);
    };
    for (const type of Object.values(schema.getTypeMap())) {
      if (isIntrospectionType(type) || isSpecifiedScalarType(type)) continue;
      check(type.name, type.description);
      if (isObjectType(type) || isInterfaceType(type)) {
        for (const f of Object.values(type.getFields()) as GraphQLField<unknown, unknown>[]) {
          check(`${type.name}.${f.name}`, f.description);
          args(`${type.name}.${f.name}`, f.args);
        }
      } else if (isInputObjectType(type)) {
        for (const f of Object.values(type.getFields()) as GraphQLInputField[]) check(`${type.name}.${f.name}`, f.description);
      } else if (isEnumType(type)) {
        for (const v of type.getValues()) check(`${type.name}.${v.name}`, v.description);
      }
    }
    for (const d of schema.getDirectives()) {
      if (['include', 'skip', 'deprecated', 'specifiedBy', 'oneOf'].includes(d.name)) continue;
      check(`@${d.name}`, d.description);
      args(`@${d.name}`, d.args);
    }
    expect(missing, `missing descriptions:\n  ${missing.join('\n  ')}`).toEqual([]);
  });

  it('keeps the API contract names', () => {
    const fields = (name: 'Query' | 'Mutation' | 'Subscription') =>
      Object.keys(
        (name === 'Query'
          ? schema.getQueryType()
          : name === 'Mutation'
            ? schema.getMutationType()
            : schema.getSubscriptionType()
        )?.getFields() ?? {},
      );
    expect(fields('Query')).toEqual(expect.arrayContaining(['me', 'conversation', 'conversations']));
    expect(fields('Mutation')).toEqual(
      expect.arrayContaining(['createConversation', 'sendMessage', 'editMessage', 'deleteMessage', 'markConversationRead', 'setTyping']),
    );
    expect(fields('Subscription')).toEqual(expect.arrayContaining(['conversationEvents']));
    const events = schema.getType('ConversationEvent');
    expect(events && 'getTypes' in events ? events.getTypes().map((t) => t.name) : []).toEqual(
      expect.arrayContaining(['MessageAdded', 'MessageEdited', 'MessageDeleted', 'ReadReceipt', 'TypingIndicator']),
    );
    const streamEvent = schema.getType('StreamEvent');
    expect(streamEvent && isInterfaceType(streamEvent) ? Object.keys(streamEvent.getFields()) : []).toEqual(['at', 'cursor']);
  });
});
