// What the check before the call says about the room (prejoin.js), in both
// languages. Run with `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { whoIsHere } from '../prejoin.js';
import { STRINGS } from '../i18n.js';

test('an empty room can be joined and says nobody is here', () => {
  assert.deepEqual(whoIsHere({ participants: 0, capacity: 2 }), { text: 'prejoin_nobody', canJoin: true, gone: false });
});

test('one person waiting', () => {
  const who = whoIsHere({ participants: 1, capacity: 2 });
  assert.equal(who.text, 'prejoin_one');
  assert.equal(who.canJoin, true);
});

test('a full room cannot be joined', () => {
  const who = whoIsHere({ participants: 2, capacity: 2 });
  assert.equal(who.text, 'prejoin_full');
  assert.equal(who.canJoin, false);
});

test('an unknown or expired link is gone and offers no join', () => {
  assert.deepEqual(whoIsHere(null), { text: 'status_not_found', canJoin: false, gone: true });
});

test('a server that cannot be asked still lets the join try', () => {
  assert.deepEqual(whoIsHere(undefined), { text: null, canJoin: true, gone: false });
});

test('every pre-join text is in English and Russian', () => {
  for (const key of ['prejoin_nobody', 'prejoin_one', 'prejoin_many', 'prejoin_full', 'status_prejoin', 'join_now']) {
    for (const lang of ['en', 'ru']) assert.ok(STRINGS[lang][key], `${lang}.${key}`);
  }
});
