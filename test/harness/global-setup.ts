import postgres from 'postgres';
import { openDatabase } from '../../src/db/client.js';
import { TEST_DATABASE_URL } from './env.js';

/** Creates the shared test database once and applies the migrations; tests isolate by org. */
export default async function setup() {
  const url = new URL(TEST_DATABASE_URL);
  const name = url.pathname.slice(1);
  const admin = postgres({ ...parse(url), database: 'postgres', max: 1, onnotice: () => {} });
  const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
  if (!exists) await admin.unsafe(`create database "${name}"`);
  await admin.end();
  const db = await openDatabase(TEST_DATABASE_URL, '');
  await db.migrate();
  await db.close();
}

function parse(url: URL) {
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    username: decodeURIComponent(url.username || 'postgres'),
    password: decodeURIComponent(url.password || ''),
  };
}
