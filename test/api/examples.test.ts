import { parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_OPERATIONS } from '../../src/graphql/examples.js';
import { buildSchema } from '../../src/graphql/schema.js';

describe('GraphiQL example operations', () => {
  it('validate against the schema partners see', () => {
    const errors = validate(buildSchema(), parse(EXAMPLE_OPERATIONS)).map((e) => e.message);
    expect(errors).toEqual([]);
  });
});
