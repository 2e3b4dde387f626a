// Prints the sorted schema from code into schema.graphql (`npm run schema:print`).
import { writeFileSync } from 'node:fs';
import { printSchema } from 'graphql';
import { buildSchema } from '../src/graphql/schema.js';

writeFileSync(new URL('../schema.graphql', import.meta.url), `${printSchema(buildSchema())}\n`);
console.log('schema.graphql written');
