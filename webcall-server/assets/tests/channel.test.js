// The data channel's messages and the verification code (channel.js),
// checked against PROTOCOL.md itself. Run with `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  MAX_MESSAGE_BYTES,
  MAX_TEXT_CHARS,
  OUTBOX_LIMIT,
  SEEN_LIMIT,
  SeenIds,
  UNCONFIRMED_LIMIT,
  Unconfirmed,
  charCount,
  chatTextProblem,
  codeOfFingerprints,
  encodeChat,
  encodeReceipt,
  encodeScreen,
  fingerprintOf,
  formatCode,
  newMessageId,
  parseMessage,
  parseReceipt,
  parseScreenMessage,
  verificationCode,
  videoSectionIndex,
} from '../channel.js';

const protocol = readFileSync(new URL('../../../PROTOCOL.md', import.meta.url), 'utf8');
const section = protocol.slice(protocol.indexOf('## In the call: the data channel'), protocol.indexOf('## Liveness'));

test('the chat example of PROTOCOL.md parses', () => {
  const example = section.match(/```json\n(\{"type":"chat".*\})\n```/);
  assert.ok(example, 'no chat example in PROTOCOL.md');
  assert.deepEqual(parseMessage(example[1]), {
    type: 'chat',
    id: '5f0c8a1e2b3d4c6f',
    text: 'Привет! Can you hear me?',
    sentAt: 1796292000123,
  });
});

test('the limits are those of PROTOCOL.md', () => {
  assert.ok(section.includes('**4,000**') && MAX_TEXT_CHARS === 4000);
  assert.ok(section.includes('**64 KiB**') && MAX_MESSAGE_BYTES === 65536);
  assert.ok(section.includes('at most 64 characters'));
  assert.ok(section.includes('caps it at\n100 messages') || section.includes('caps it at 100 messages'));
  assert.equal(OUTBOX_LIMIT, 100);
});

test('the verification code test vector of PROTOCOL.md gives its code', async () => {
  const vector = section.match(/Test vector:\n`([^`]+)`\nand\n`([^`]+)`\ngive `(\d{3} \d{3})`/);
  assert.ok(vector, 'no test vector in PROTOCOL.md');
  const [, a, b, code] = vector;
  assert.equal(code, '125 392');
  assert.equal(await codeOfFingerprints(a, b), code);
  // Order does not matter: each side has its own local and remote.
  assert.equal(await codeOfFingerprints(b, a), code);
  const sdp = (fp) => `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=fingerprint:${fp}  \r\na=fingerprint:sha-1 00:11\r\n`;
  assert.equal(await verificationCode(sdp(a), sdp(b)), code);
  assert.equal(await verificationCode(sdp(b), sdp(a)), code);
});

test('one changed fingerprint changes the code; a missing one gives none', async () => {
  const a = 'sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08';
  const b = 'sha-256 C7:96:5A:21:7D:92:3F:12:90:0E:B3:4A:61:AD:0C:3E:FF:18:42:8B:7E:55:9C:01:D4:A2:6F:33:B8:E7:90:1C';
  const forged = b.replace('C7', 'C8');
  assert.notEqual(await codeOfFingerprints(a, forged), await codeOfFingerprints(a, b));
  assert.equal(await verificationCode('v=0\r\n', `a=fingerprint:${a}\r\n`), null);
  assert.equal(fingerprintOf(null), null);
  assert.equal(fingerprintOf(`v=0\na=fingerprint:${a}\n`), a);
});

test('codes are six digits in two groups', () => {
  assert.equal(formatCode(125392), '125 392');
  assert.equal(formatCode(42), '000 042');
  assert.equal(formatCode(0), '000 000');
});

test('a chat message goes out as PROTOCOL.md spells it and comes back the same', () => {
  const wire = encodeChat({ id: 'abc', text: 'hi <b>there</b>', sentAt: 1796292000123.7 });
  assert.deepEqual(JSON.parse(wire), { type: 'chat', id: 'abc', text: 'hi <b>there</b>', sent_at: 1796292000123 });
  assert.deepEqual(parseMessage(wire), { type: 'chat', id: 'abc', text: 'hi <b>there</b>', sentAt: 1796292000123 });
});

test('texts are counted in code points: 4,000 emoji pass, 4,001 do not', () => {
  const emoji = '😀'.repeat(MAX_TEXT_CHARS);
  assert.equal(emoji.length, 8000);
  assert.equal(charCount(emoji), 4000);
  assert.equal(chatTextProblem(emoji), null);
  const wire = encodeChat({ id: 'x', text: emoji, sentAt: 1 });
  assert.equal(parseMessage(wire).text, emoji);
  assert.equal(chatTextProblem(`${emoji}a`), 'too_long');
  assert.throws(() => encodeChat({ id: 'x', text: `${emoji}a`, sentAt: 1 }), RangeError);
  assert.equal(parseMessage(JSON.stringify({ type: 'chat', id: 'x', text: `${emoji}a`, sent_at: 1 })), null);
});

test('empty and blank texts are not sent; an empty one received is ignored', () => {
  assert.equal(chatTextProblem(''), 'empty');
  assert.equal(chatTextProblem('  \n '), 'empty');
  assert.throws(() => encodeChat({ id: 'x', text: '', sentAt: 1 }), RangeError);
  assert.equal(parseMessage('{"type":"chat","id":"x","text":"","sent_at":1}'), null);
});

test('everything a receiver ignores gives null', () => {
  const ok = { type: 'chat', id: 'x', text: 't', sent_at: 1 };
  const bad = [
    'not json',
    '',
    'null',
    '42',
    '"chat"',
    '[]',
    '{}',
    '{"type":7}',
    '{"type":"typing"}',
    JSON.stringify({ ...ok, type: 'Chat' }),
    JSON.stringify({ ...ok, id: 5 }),
    JSON.stringify({ ...ok, id: 'i'.repeat(65) }),
    JSON.stringify({ ...ok, text: 5 }),
    JSON.stringify({ ...ok, sent_at: '1' }),
    JSON.stringify({ ...ok, sent_at: 1.5 }),
    JSON.stringify({ ...ok, sent_at: undefined }),
  ];
  for (const data of bad) assert.equal(parseMessage(data), null, data);
  assert.equal(parseMessage(new ArrayBuffer(4)), null);
  assert.notEqual(parseMessage(JSON.stringify({ ...ok, id: 'i'.repeat(64), extra: { a: 1 } })), null);
});

test('a message over 64 KiB is ignored, even when it would parse', () => {
  // Padding in an unknown field: the text itself stays within its limit.
  const big = JSON.stringify({ type: 'chat', id: 'x', text: 'ok', sent_at: 1, pad: 'я'.repeat(33000) });
  assert.ok(big.length < MAX_MESSAGE_BYTES && new TextEncoder().encode(big).length > MAX_MESSAGE_BYTES);
  assert.equal(parseMessage(big), null);
  const fits = JSON.stringify({ type: 'chat', id: 'x', text: 'ok', sent_at: 1, pad: 'я'.repeat(32000) });
  assert.notEqual(parseMessage(fits), null);
});

test('the longest chat, even of escaped control characters, fits in a message', () => {
  for (const ch of ['\u0001', '😀', 'я', '"']) {
    const wire = encodeChat({ id: 'i'.repeat(64), text: ch.repeat(MAX_TEXT_CHARS), sentAt: Date.now() });
    assert.ok(new TextEncoder().encode(wire).length <= MAX_MESSAGE_BYTES, JSON.stringify(ch));
    assert.notEqual(parseMessage(wire), null);
  }
});

test('message ids are 16 hex digits and differ', () => {
  const ids = new Set(Array.from({ length: 100 }, newMessageId));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
});

test('screen messages round-trip and anything else is not one', () => {
  assert.deepEqual(parseScreenMessage(encodeScreen(true)), { sharing: true });
  assert.deepEqual(parseScreenMessage('{"type":"screen","sharing":false,"extra":1}'), { sharing: false });
  for (const data of ['{"type":"screen"}', '{"type":"screen","sharing":"yes"}', '{"type":"chat","sharing":true}', 'x', null]) {
    assert.equal(parseScreenMessage(data), null, String(data));
  }
  // A chat parser ignores screen messages (what an older page does).
  assert.equal(parseMessage(encodeScreen(true)), null);
});

test('the second video section is the screen', () => {
  const sdp = 'v=0\r\nm=audio 9 X 111\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\nm=application 9 X webrtc-datachannel\r\na=mid:2\r\nm=video 9 X 96\r\na=mid:3\r\n';
  assert.equal(videoSectionIndex(sdp, '1'), 0);
  assert.equal(videoSectionIndex(sdp, '3'), 1);
  assert.equal(videoSectionIndex(sdp, '0'), -1);
  assert.equal(videoSectionIndex(sdp, '2'), -1);
  assert.equal(videoSectionIndex(sdp, null), -1);
  assert.equal(videoSectionIndex(null, '1'), -1);
});

test('the receipt example of PROTOCOL.md parses, and receipts are checked', () => {
  const example = section.match(/```json\n(\{"type":"chat_received".*\})\n```/);
  assert.ok(example, 'no receipt example in PROTOCOL.md');
  assert.equal(parseReceipt(example[1]), '5f0c8a1e2b3d4c6f');
  assert.equal(encodeReceipt('5f0c8a1e2b3d4c6f'), example[1]);
  assert.equal(parseReceipt('{"type":"chat_received"}'), null);
  assert.equal(parseReceipt('{"type":"chat_received","id":""}'), null);
  assert.equal(parseReceipt(JSON.stringify({ type: 'chat_received', id: 'i'.repeat(65) })), null);
  assert.equal(parseReceipt(encodeChat({ id: 'a', text: 'x', sentAt: 1 })), null, 'a chat is not a receipt');
  assert.equal(parseMessage(encodeReceipt('a')), null, 'a receipt is not a chat');
  assert.ok(section.includes('at most 100 of them') && UNCONFIRMED_LIMIT === 100);
  assert.ok(section.includes('the last 1,000 chats') && SEEN_LIMIT === 1000);
});

test('unconfirmed messages go again in order until confirmed, at most 100', () => {
  const waiting = new Unconfirmed();
  const m = (text) => ({ id: newMessageId(), text, sentAt: 1 });
  const [a, b, c] = [m('a'), m('b'), m('c')];
  for (const x of [a, b, c]) assert.equal(waiting.sent(x), null);
  assert.equal(waiting.sent(b), null, 'sending one again keeps one copy');
  assert.ok(waiting.confirmed(b.id));
  assert.ok(!waiting.confirmed(b.id), 'a second receipt finds nothing');
  assert.deepEqual(waiting.toSendAgain(), [a, c]);
  for (let i = 2; i < UNCONFIRMED_LIMIT; i++) waiting.sent(m(String(i)));
  assert.equal(waiting.toSendAgain().length, UNCONFIRMED_LIMIT);
  assert.equal(waiting.sent(m('one more')), a, 'the oldest is forgotten');
  assert.equal(waiting.toSendAgain()[0], c);
});

test('a message sent again is seen once within the last 1,000', () => {
  const seen = new SeenIds();
  assert.ok(seen.firstTime('a'));
  assert.ok(!seen.firstTime('a'));
  for (let i = 0; i < SEEN_LIMIT - 1; i++) assert.ok(seen.firstTime(String(i)));
  assert.ok(!seen.firstTime('a'), 'a is among the last 1,000');
  assert.ok(seen.firstTime('one more'));
  assert.ok(seen.firstTime('a'), 'a has been forgotten');
  assert.equal(seen.ids.size, SEEN_LIMIT);
});
