// Every string the room's statuses name exists in English and Russian
// (i18n.js, status.js). Run with `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { STRINGS, chooseLanguage } from '../i18n.js';
import { statusView } from '../status.js';
import { ErrorCode } from '../protocol.js';

const STATUSES = [
  'connecting',
  'waiting',
  'connected',
  'reconnecting',
  'peer_left',
  'peer_reconnecting',
  'negotiation_failed',
  'media_denied',
  'not_found',
  'room_full',
  'error',
  'ended',
];

test('both languages have the same keys', () => {
  assert.deepEqual(Object.keys(STRINGS.ru).sort(), Object.keys(STRINGS.en).sort());
});

test('every status shows text that both languages have', () => {
  const views = STATUSES.map((status) => statusView(status));
  views.push(statusView('error', { fatalCode: ErrorCode.REPLACED }));
  views.push(statusView('error', { fatalCode: ErrorCode.UNSUPPORTED_VERSION }));
  views.push(statusView('media_denied', { mediaProblem: 'insecure' }));
  for (const view of views) {
    for (const key of [view.text, view.title, view.hint].filter(Boolean)) {
      for (const lang of ['en', 'ru']) {
        assert.equal(typeof STRINGS[lang][key], 'string', `${lang}.${key}`);
        assert.ok(STRINGS[lang][key].length > 0, `${lang}.${key}`);
      }
    }
  }
});

test('Russian first wins Russian; anything else is English', () => {
  assert.equal(chooseLanguage(['ru-RU', 'en']), 'ru');
  assert.equal(chooseLanguage(['en-GB', 'ru']), 'en');
  assert.equal(chooseLanguage(['de', 'ru']), 'ru');
  assert.equal(chooseLanguage([]), 'en');
});
