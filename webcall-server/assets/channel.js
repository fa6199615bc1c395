// What travels over the call's `webcall` data channel, and the
// verification code (PROTOCOL.md, "In the call: the data channel and the
// verification code"). Pure functions, no DOM and no peer connection: the
// node unit tests load this module as it is.

/** The data channel every peer connection carries: created by both sides before the first offer. */
export const CHANNEL_OPTIONS = Object.freeze({ negotiated: true, id: 0, ordered: true });
/** Its label. */
export const CHANNEL_LABEL = 'webcall';

/** A received message longer than this (UTF-8 bytes) is ignored unread. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** A chat text holds 1 to this many characters (Unicode code points). */
export const MAX_TEXT_CHARS = 4000;
/** A chat id holds at most this many characters. */
export const MAX_ID_CHARS = 64;
/** Messages typed while the channel is not open wait for it, at most this many. */
export const OUTBOX_LIMIT = 100;

/** The length of `text` in Unicode code points (as PROTOCOL.md counts). */
export const charCount = (text) => [...text].length;

/** Why `text` cannot be sent as a chat message: 'empty', 'too_long', or null when it can. */
export function chatTextProblem(text) {
  if (typeof text !== 'string' || text.trim() === '') return 'empty';
  if (charCount(text) > MAX_TEXT_CHARS) return 'too_long';
  return null;
}

/** A fresh message id: 16 hex digits from the platform's random source. */
export function newMessageId() {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The wire form of a chat message (one JSON text). Throws on a text that
 * {@link chatTextProblem} refuses, so nothing the far side would drop is sent.
 */
export function encodeChat({ id, text, sentAt }) {
  const problem = chatTextProblem(text);
  if (problem) throw new RangeError(`a chat text cannot be sent: ${problem}`);
  if (typeof id !== 'string' || charCount(id) > MAX_ID_CHARS) throw new RangeError('a chat id is a string of at most 64 characters');
  return JSON.stringify({ type: 'chat', id, text, sent_at: Math.trunc(sentAt) });
}

/** The UTF-8 length of `text`, counting no further than `limit + 1`. */
function utf8Length(text, limit) {
  if (text.length * 3 <= limit) return text.length; // cannot exceed: skip the count
  let bytes = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes > limit) break;
  }
  return bytes;
}

/**
 * A received data-channel message as `{ type: 'chat', id, text, sentAt }`,
 * or null for anything a receiver ignores: binary data, more than 64 KiB,
 * not JSON, not an object with a string `type`, an unknown type, or a chat
 * whose fields break the limits.
 */
export function parseMessage(data) {
  const value = parseObject(data);
  if (!value || value.type !== 'chat') return null;
  const { id, text, sent_at: sentAt } = value;
  if (typeof id !== 'string' || charCount(id) > MAX_ID_CHARS) return null;
  if (typeof text !== 'string' || text.length === 0 || charCount(text) > MAX_TEXT_CHARS) return null;
  if (!Number.isSafeInteger(sentAt)) return null;
  return { type: 'chat', id, text, sentAt };
}

/** Sent chat messages kept until the other side confirms them; past this the oldest is forgotten. */
export const UNCONFIRMED_LIMIT = 100;
/** Received chat ids remembered to spot a message sent again. */
export const SEEN_LIMIT = 1000;

/** The wire form of a receipt: the chat message `id` arrived (a copy sent again is confirmed again). */
export const encodeReceipt = (id) => JSON.stringify({ type: 'chat_received', id });

/** A received `chat_received` as its id, or null for anything else. */
export function parseReceipt(data) {
  const value = parseObject(data);
  if (!value || value.type !== 'chat_received') return null;
  if (typeof value.id !== 'string' || value.id === '' || charCount(value.id) > MAX_ID_CHARS) return null;
  return value.id;
}

/**
 * Our chat messages handed to a channel and not yet confirmed, oldest
 * first: sent again, in order, when a new peer connection's channel opens.
 */
export class Unconfirmed {
  constructor() {
    this.messages = [];
  }

  /** `message` was handed to a channel: kept until confirmed. Returns the one forgotten, or null. */
  sent(message) {
    if (this.messages.some((m) => m.id === message.id)) return null;
    this.messages.push(message);
    return this.messages.length > UNCONFIRMED_LIMIT ? this.messages.shift() : null;
  }

  /** The other side confirmed `id`: true when it was waiting here. */
  confirmed(id) {
    const i = this.messages.findIndex((m) => m.id === id);
    if (i < 0) return false;
    this.messages.splice(i, 1);
    return true;
  }

  /** What to send again on a new channel, oldest first. */
  toSendAgain() {
    return [...this.messages];
  }
}

/** The ids of the last SEEN_LIMIT chat messages received. */
export class SeenIds {
  constructor() {
    this.ids = new Set();
    this.order = [];
  }

  /** True the first time `id` arrives (show it); false for a copy sent again. */
  firstTime(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    this.order.push(id);
    if (this.order.length > SEEN_LIMIT) this.ids.delete(this.order.shift());
    return true;
  }
}

/** The wire form of a `screen` message: a screen share started (true) or stopped (false). */
export const encodeScreen = (sharing) => JSON.stringify({ type: 'screen', sharing: !!sharing });

/**
 * A received `screen` message as `{ sharing }`, or null for anything else
 * (other types, not JSON, more than 64 KiB, no boolean `sharing`).
 */
export function parseScreenMessage(data) {
  const value = parseObject(data);
  if (!value || value.type !== 'screen' || typeof value.sharing !== 'boolean') return null;
  return { sharing: value.sharing };
}

/**
 * A data-channel message as an object with a string `type`, or null for
 * binary data, more than 64 KiB, text that is not JSON, or JSON that is
 * not such an object.
 */
function parseObject(data) {
  if (typeof data !== 'string' || utf8Length(data, MAX_MESSAGE_BYTES) > MAX_MESSAGE_BYTES) return null;
  let value;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value) || typeof value.type !== 'string') return null;
  return value;
}

/**
 * Of the video sections of `sdp`, in order, the index of the one with
 * `a=mid:{mid}` (0: the camera, 1: the shared screen, PROTOCOL.md "Screen
 * sharing"), or -1 when no video section has it.
 */
export function videoSectionIndex(sdp, mid) {
  if (typeof sdp !== 'string' || mid === null || mid === undefined) return -1;
  let index = -1;
  let inVideo = false;
  for (const raw of sdp.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('m=')) {
      inVideo = line.startsWith('m=video ');
      if (inVideo) index += 1;
    } else if (inVideo && line === `a=mid:${mid}`) {
      return index;
    }
  }
  return -1;
}

/** The value of the first `a=fingerprint:` line of `sdp` (trailing whitespace removed), or null. */
export function fingerprintOf(sdp) {
  if (typeof sdp !== 'string') return null;
  for (const line of sdp.split('\n')) {
    if (line.startsWith('a=fingerprint:')) return line.slice('a=fingerprint:'.length).trimEnd();
  }
  return null;
}

/** Six digits as two groups of three: 125392 -> "125 392", 42 -> "000 042". */
export function formatCode(n) {
  const digits = String(n).padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

/**
 * The verification code of two fingerprints (as `fingerprintOf` gives them):
 * sorted, joined with "\n", SHA-256, the first 4 bytes big-endian modulo
 * 1,000,000, formatted "123 456".
 */
export async function codeOfFingerprints(a, b) {
  // Byte order of the UTF-8: fingerprints are ASCII, so code-unit order is the same.
  const joined = [a, b].sort().join('\n');
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(joined));
  const first = new DataView(digest).getUint32(0, false);
  return formatCode(first % 1_000_000);
}

/**
 * The verification code of a negotiation, from its local and remote
 * session descriptions (SDP text); null when either has no fingerprint.
 */
export async function verificationCode(localSdp, remoteSdp) {
  const local = fingerprintOf(localSdp);
  const remote = fingerprintOf(remoteSdp);
  if (!local || !remote) return null;
  return codeOfFingerprints(local, remote);
}
