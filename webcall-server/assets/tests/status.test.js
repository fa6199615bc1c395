// The room page's status, derived from plain facts (status.js): each
// status the page can show, the order in which facts win over each other,
// and what each status shows. Run with `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { roomStatus, statusView } from '../status.js';
import { ErrorCode } from '../protocol.js';

/** Facts of a page in a call with the other person, connected. */
const inCall = {
  signaling: 'joined',
  joined: true,
  peer: 'p2',
  connection: 'connected',
};

test('a new page is connecting until it has joined', () => {
  assert.equal(roomStatus(), 'connecting');
  assert.equal(roomStatus({ signaling: 'connecting' }), 'connecting');
  assert.equal(roomStatus({ signaling: 'joined', joined: false }), 'connecting');
});

test('joined alone, the page waits; after the other left, it says so', () => {
  assert.equal(roomStatus({ signaling: 'joined', joined: true }), 'waiting');
  assert.equal(roomStatus({ signaling: 'joined', joined: true, peerLeft: true }), 'peer_left');
});

test('with the other person, the status follows the peer connection', () => {
  const at = (connection) => roomStatus({ ...inCall, connection });
  assert.equal(at('new'), 'connecting');
  assert.equal(at('connecting'), 'connecting');
  assert.equal(at('connected'), 'connected');
  assert.equal(at('disconnected'), 'reconnecting');
  assert.equal(at('failed'), 'reconnecting');
  assert.equal(at('closed'), 'connecting');
});

test('a held seat shows the other person reconnecting, whatever the connection', () => {
  for (const connection of ['new', 'connected', 'disconnected', 'failed']) {
    assert.equal(roomStatus({ ...inCall, connection, peerReconnecting: true }), 'peer_reconnecting');
  }
});

test('our own signaling reconnecting wins over the call', () => {
  assert.equal(roomStatus({ ...inCall, signaling: 'reconnecting' }), 'reconnecting');
  assert.equal(roomStatus({ signaling: 'reconnecting', joined: true }), 'reconnecting');
});

test('a failed negotiation shows until the connection is up', () => {
  for (const connection of ['new', 'connecting', 'disconnected', 'failed']) {
    assert.equal(roomStatus({ ...inCall, connection, negotiationFailed: true }), 'negotiation_failed', connection);
  }
  assert.equal(roomStatus({ ...inCall, negotiationFailed: true }), 'connected');
  // Without the other person there is nothing to negotiate.
  assert.equal(roomStatus({ signaling: 'joined', joined: true, negotiationFailed: true }), 'waiting');
});

test('fatal errors map to their statuses, others to "error"', () => {
  const fatal = (fatalCode) => roomStatus({ ...inCall, fatalCode });
  assert.equal(fatal(ErrorCode.ROOM_FULL), 'room_full');
  assert.equal(fatal(ErrorCode.ROOM_NOT_FOUND), 'not_found');
  assert.equal(fatal(ErrorCode.ROOM_EXPIRED), 'not_found');
  for (const code of [ErrorCode.REPLACED, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.TIMEOUT, ErrorCode.UNAVAILABLE]) {
    assert.equal(fatal(code), 'error', code);
  }
});

test('precedence: ended, then fatal, then media, then signaling', () => {
  const all = {
    ...inCall,
    ended: true,
    fatalCode: ErrorCode.ROOM_FULL,
    mediaDenied: true,
    signaling: 'reconnecting',
  };
  assert.equal(roomStatus(all), 'ended');
  assert.equal(roomStatus({ ...all, ended: false }), 'room_full');
  assert.equal(roomStatus({ ...all, ended: false, fatalCode: null }), 'media_denied');
  assert.equal(roomStatus({ ...all, ended: false, fatalCode: null, mediaDenied: false }), 'reconnecting');
});

test('each status names its own text, error texts follow the code', () => {
  assert.equal(statusView('connected').text, 'status_connected');
  assert.equal(statusView('negotiation_failed').text, 'status_negotiation_failed');
  assert.equal(statusView('error', { fatalCode: ErrorCode.REPLACED }).text, 'status_replaced');
  assert.equal(statusView('error', { fatalCode: ErrorCode.UNSUPPORTED_VERSION }).text, 'status_unsupported');
  assert.equal(statusView('error', { fatalCode: ErrorCode.TIMEOUT }).text, 'status_error');
  assert.equal(statusView('media_denied', { mediaProblem: 'NotAllowedError' }).text, 'status_media_denied');
  assert.equal(statusView('media_denied', { mediaProblem: 'insecure' }).text, 'status_insecure');
});

test('the panel: who gets it, with which title, hint and choices', () => {
  const waiting = statusView('waiting');
  assert.deepEqual(
    [waiting.panel, waiting.title, waiting.hint, waiting.share, waiting.endChoices],
    [true, 'share_title', 'share_text', true, false],
  );
  const failed = statusView('negotiation_failed');
  assert.deepEqual(
    [failed.panel, failed.title, failed.hint, failed.share, failed.over],
    [true, 'status_negotiation_failed', 'negotiation_failed_hint', false, false],
  );
  for (const status of ['not_found', 'room_full', 'error']) {
    const view = statusView(status);
    assert.ok(view.panel && view.endChoices && view.over, status);
  }
  for (const status of ['connecting', 'connected', 'reconnecting', 'peer_reconnecting']) {
    assert.equal(statusView(status).panel, false, status);
  }
  assert.equal(statusView('media_denied').mediaChoices, true);
  assert.equal(statusView('media_denied', { mediaProblem: 'insecure' }).retryMedia, false);
  assert.equal(statusView('media_denied', { mediaProblem: 'NotFoundError' }).retryMedia, true);
});

test('the remote picture shows while connected or while the other side reconnects', () => {
  assert.equal(statusView('connected').showsRemote, true);
  assert.equal(statusView('peer_reconnecting').showsRemote, true);
  assert.equal(statusView('reconnecting').showsRemote, false);
});
