// The error codes the page knows (protocol.js) are exactly those of the
// protocol: the Rust `ErrorCode` enum, each one documented in PROTOCOL.md.
// Run with `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { ErrorCode } from '../protocol.js';

const root = new URL('../../../', import.meta.url);
const read = (path) => readFileSync(new URL(path, root), 'utf8');

const page = Object.values(ErrorCode).sort();

test('each constant spells its own name', () => {
  for (const [name, code] of Object.entries(ErrorCode)) assert.equal(code, name.toLowerCase());
});

test('the codes are those of PROTOCOL.md', () => {
  const doc = read('PROTOCOL.md');
  const section = doc.slice(doc.indexOf('### Error codes'));
  const table = section.slice(0, section.indexOf('\n### ', 1));
  const signaling = [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  assert.ok(signaling.length > 0, 'no error table in PROTOCOL.md');
  for (const code of signaling) assert.ok(page.includes(code), `${code} is missing from protocol.js`);
  // The others are HTTP-only (too_many_rooms): named in the HTTP section.
  for (const code of page) assert.ok(doc.includes(`\`${code}\``), `${code} is not in PROTOCOL.md`);
});

test('the codes are those of the Rust ErrorCode enum', () => {
  const source = read('webcall-core/src/protocol.rs');
  const start = source.indexOf('pub enum ErrorCode {');
  assert.ok(start >= 0, 'no ErrorCode enum in webcall-core/src/protocol.rs');
  const body = source.slice(start, source.indexOf('\n}', start));
  const variants = [...body.matchAll(/^ {4}([A-Z][A-Za-z]*),$/gm)].map((m) =>
    m[1].replace(/[A-Z]/g, (c, i) => (i ? '_' : '') + c.toLowerCase()),
  );
  assert.deepEqual(page, variants.sort());
});
