// What the room page tells the user, derived from what it knows: pure
// functions of plain values, no DOM, no timers, no translations (they name
// i18n.js keys). The room page (room.js) calls them on every change;
// tests/status.test.js runs them under node.
//
// A status is one of: connecting, waiting, connected, reconnecting,
// peer_left, peer_reconnecting, negotiation_failed, media_denied, not_found,
// room_full, error, ended. It is also the page's test hook
// `document.body.dataset.status`.

import { ErrorCode } from './protocol.js';

/** The status each fatal error code shows; any other code shows "error". */
const FATAL_STATUS = {
  [ErrorCode.ROOM_FULL]: 'room_full',
  [ErrorCode.ROOM_NOT_FOUND]: 'not_found',
  [ErrorCode.ROOM_EXPIRED]: 'not_found',
};

/** The text of "error" for the fatal codes that have their own. */
const ERROR_TEXT = {
  [ErrorCode.REPLACED]: 'status_replaced',
  [ErrorCode.UNSUPPORTED_VERSION]: 'status_unsupported',
};

/** Statuses that show the panel over the stage. */
const PANEL = new Set([
  'waiting',
  'peer_left',
  'not_found',
  'room_full',
  'media_denied',
  'negotiation_failed',
  'error',
]);

/** Statuses after which this page has no call left to make. */
const OVER = new Set(['not_found', 'room_full', 'error']);

/** The panel's hint under its title, by status. */
const HINTS = {
  waiting: 'share_text',
  peer_left: 'peer_left_hint',
  not_found: 'not_found_hint',
  room_full: 'room_full_hint',
  media_denied: 'media_denied_hint',
  negotiation_failed: 'negotiation_failed_hint',
};

/**
 * The room's status.
 *
 * @param {object} facts
 * @param {boolean} [facts.ended] the user hung up
 * @param {string|null} [facts.fatalCode] the error code that ended the session
 * @param {boolean} [facts.mediaDenied] no camera or microphone, and no choice made yet
 * @param {string} [facts.signaling] the signaling state: connecting, joined, reconnecting, closed
 * @param {boolean} [facts.joined] a `joined` has arrived
 * @param {string|null} [facts.peer] the other participant's id, when there is one
 * @param {boolean} [facts.peerLeft] the other participant left (and nobody is there now)
 * @param {boolean} [facts.peerReconnecting] the other participant's seat is held for them
 * @param {string} [facts.connection] the peer connection's connectionState ("new" without one)
 * @param {boolean} [facts.negotiationFailed] the last step of negotiating the connection failed
 * @returns {string} the status
 */
export function roomStatus({
  ended = false,
  fatalCode = null,
  mediaDenied = false,
  signaling = 'connecting',
  joined = false,
  peer = null,
  peerLeft = false,
  peerReconnecting = false,
  connection = 'new',
  negotiationFailed = false,
} = {}) {
  if (ended) return 'ended';
  if (fatalCode) return FATAL_STATUS[fatalCode] || 'error';
  if (mediaDenied) return 'media_denied';
  if (signaling === 'reconnecting') return 'reconnecting';
  if (!joined) return 'connecting';
  if (!peer) return peerLeft ? 'peer_left' : 'waiting';
  if (peerReconnecting) return 'peer_reconnecting';
  // Media that flows wins over a failed renegotiation: the call goes on.
  if (connection === 'connected') return 'connected';
  if (negotiationFailed) return 'negotiation_failed';
  if (connection === 'disconnected' || connection === 'failed') return 'reconnecting';
  return 'connecting';
}

/**
 * What the page shows for a status, as i18n.js keys and switches.
 *
 * @param {string} status from `roomStatus`
 * @param {object} [context]
 * @param {string|null} [context.fatalCode] as given to `roomStatus`
 * @param {string|null} [context.mediaProblem] why there is no camera: a getUserMedia
 *   error name, or "insecure" when the page cannot ask at all
 * @returns {{ text: string, title: string, hint: string|null, panel: boolean, share: boolean,
 *   mediaChoices: boolean, retryMedia: boolean, endChoices: boolean, over: boolean,
 *   showsRemote: boolean }}
 */
export function statusView(status, { fatalCode = null, mediaProblem = null } = {}) {
  let text = `status_${status}`;
  if (status === 'error') text = ERROR_TEXT[fatalCode] || 'status_error';
  else if (status === 'media_denied' && mediaProblem === 'insecure') text = 'status_insecure';
  const insecure = mediaProblem === 'insecure';
  return {
    text,
    title: status === 'waiting' ? 'share_title' : text,
    hint: HINTS[status] || null,
    panel: PANEL.has(status),
    share: status === 'waiting' || status === 'peer_left',
    mediaChoices: status === 'media_denied',
    // Without a secure context, asking again or for audio alone cannot work.
    retryMedia: !insecure,
    endChoices: OVER.has(status),
    over: OVER.has(status),
    showsRemote: status === 'connected' || status === 'peer_reconnecting',
  };
}
