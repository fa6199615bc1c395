// webcall signaling, client side (PROTOCOL.md, version 1).
//
// Owns the room's WebSocket: the join (with the resume secret kept in
// sessionStorage so that a reload takes back the same seat), reconnecting
// with backoff when the socket drops or the server says `unavailable`, and
// stopping for good on other fatal errors or after `bye`. No UI and no
// WebRTC here: callers listen for events.
//
// Events (all CustomEvent, the message in `detail`):
//   joined, peer_joined, peer_reconnecting, peer_left, offer, answer,
//   candidate    - server messages
//   servererror  - a non-fatal `error` message
//   fatal        - the session is over; detail = { code, message }
//   (a `reconnect` from the server is handled here: a planned reconnect)
//   state        - detail = { state } with state one of
//                  "connecting" (first attempt), "joined", "reconnecting", "closed"

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** Room tokens: 22 characters of unpadded URL-safe base64. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/**
 * The error codes of PROTOCOL.md ("Error codes"), the only place the page
 * spells them: in `error` messages and in HTTP error bodies.
 */
export const ErrorCode = Object.freeze({
  BAD_MESSAGE: 'bad_message',
  NOT_JOINED: 'not_joined',
  ALREADY_JOINED: 'already_joined',
  NO_PEER: 'no_peer',
  RATE_LIMITED: 'rate_limited',
  UNSUPPORTED_VERSION: 'unsupported_version',
  ROOM_NOT_FOUND: 'room_not_found',
  ROOM_FULL: 'room_full',
  ROOM_EXPIRED: 'room_expired',
  MESSAGE_TOO_LARGE: 'message_too_large',
  REPLACED: 'replaced',
  TIMEOUT: 'timeout',
  UNAVAILABLE: 'unavailable',
  TOO_MANY_ROOMS: 'too_many_rooms',
  TOO_SLOW: 'too_slow',
});

/** Codes after which the room is gone for this page: its resume secret is of no more use. */
const ROOM_GONE = new Set([ErrorCode.ROOM_NOT_FOUND, ErrorCode.ROOM_EXPIRED, ErrorCode.ROOM_FULL]);

/** Server messages this client understands; others are ignored. */
const KNOWN = new Set([
  'joined',
  'peer_joined',
  'peer_reconnecting',
  'peer_left',
  'offer',
  'answer',
  'candidate',
  'error',
  'reconnect',
]);

/** The longest wait a server's `reconnect` may ask for (PROTOCOL.md). */
const MAX_SERVER_RECONNECT_MS = 10000;

/** Backoff between reconnect attempts, in milliseconds. */
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];

const resumeKey = (token) => `webcall.resume.${token}`;

function storageGet(key) {
  try {
    return window.sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function storageSet(key, value) {
  try {
    if (value === null) window.sessionStorage.removeItem(key);
    else window.sessionStorage.setItem(key, value);
  } catch {
    // Storage can be disabled (private mode); resuming just will not work.
  }
}

/**
 * True when this tab holds a seat's resume secret for the room: it was in
 * the call and is reloading, so it goes straight back in.
 */
export function hasResume(token) {
  return !!storageGet(resumeKey(token));
}

/** The WebSocket URL for a room on the server that served this page. */
export function wsUrl(token) {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}/ws/rooms/${encodeURIComponent(token)}`;
}

/** The `code` of an HTTP error body (`{"error": {"code", "message"}}`), or null. */
async function errorCode(response) {
  try {
    const body = await response.json();
    return body && body.error && typeof body.error.code === 'string' ? body.error.code : null;
  } catch {
    return null;
  }
}

/**
 * Creates a room: `POST /api/rooms`. Resolves to `{ token, url, expires_at }`;
 * rejects with an Error whose `code` is the server's error code (an
 * `ErrorCode` value; `rate_limited` for any 429 without one), or `server`.
 */
export async function createRoom() {
  const response = await fetch('/api/rooms', { method: 'POST', headers: { Accept: 'application/json' } });
  if (!response.ok) {
    const code = (await errorCode(response)) || (response.status === 429 ? ErrorCode.RATE_LIMITED : 'server');
    const err = new Error(`server answered ${response.status} (${code})`);
    err.code = code;
    throw err;
  }
  return response.json();
}

/**
 * Looks a room up: `GET /api/rooms/{token}`. Resolves to the room's info, or
 * `null` when the link is unknown or expired.
 */
export async function roomInfo(token) {
  const response = await fetch(`/api/rooms/${encodeURIComponent(token)}`, { headers: { Accept: 'application/json' } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`server answered ${response.status}`);
  return response.json();
}

/** The session early.js started for a reloaded page, until the room takes it. */
let early = null;
/** True once the room asked for it: a later `startEarly` (a slow early.js) does nothing. */
let earlyTaken = false;

/**
 * Starts the signaling of a page reloaded in a call (it holds the room's
 * resume secret) before the rest of the page has loaded, so the socket and
 * the join are on their way while the modules load. What arrives is kept
 * until the room takes the session (`takeEarly`). Does nothing for a page
 * without the secret: nothing is sent before "Join".
 */
export function startEarly(token) {
  if (early || earlyTaken || !TOKEN_PATTERN.test(token) || !hasResume(token)) return;
  early = new Signaling(token);
  early.held = [];
  early.start();
}

/**
 * The session `startEarly` began for `token`, with every event it held
 * delivered at the caller's next `start()`; null when there is none.
 */
export function takeEarly(token) {
  const session = early && early.token === token ? early : null;
  early = null;
  earlyTaken = true;
  return session;
}

/** One participant's signaling session in one room. */
export class Signaling extends EventTarget {
  /** @param {string} token the room token */
  constructor(token) {
    super();
    this.token = token;
    /** A message type to lose once (a test hook, see debug.js). */
    this.loseNext = null;
    this.socket = null;
    this.state = 'idle';
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.joined = null;
    /** Events kept until the first listener's `start()` (an early session), or null. */
    this.held = null;
  }

  /**
   * Opens the socket and joins; reconnects by itself until `bye()` or a
   * fatal error. An early session (`startEarly`) is open already: this
   * delivers what it held, in order.
   */
  start() {
    if (this.held) {
      const held = this.held;
      this.held = null;
      for (const [type, detail] of held) this.emit(type, detail);
    }
    if (this.socket || this.stopped) return;
    if (!this.onPageHide) {
      // Closed or reloaded (a page cannot tell which): say so, and the
      // server holds the seat only briefly, long enough for a reload to
      // take it back with the resume secret.
      this.onPageHide = () => this.leaving();
      window.addEventListener('pagehide', this.onPageHide);
    }
    this.setState(this.joined ? 'reconnecting' : 'connecting');
    this.open();
  }

  /** Sends one message if the socket is joined; returns whether it was sent. */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN || !this.joined) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Leaves for good: sends `bye`, forgets the seat and closes. */
  bye() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: 'bye' }));
    }
    storageSet(resumeKey(this.token), null);
    this.stop();
  }

  /** Tells the server this page is going away; the socket closes with the page. */
  leaving() {
    if (this.stopped) return;
    this.send({ type: 'leaving' });
  }

  /** Stops without `bye` (the server notices the closed socket). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      // Give a queued `bye` a moment to leave before closing.
      setTimeout(() => socket.close(1000, 'bye'), 50);
    }
    this.setState('closed');
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', { state });
  }

  emit(type, detail) {
    if (this.held) {
      this.held.push([type, detail]);
      return;
    }
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  open() {
    let socket;
    try {
      performance.mark('webcall:ws-connect');
      socket = new WebSocket(wsUrl(this.token));
    } catch (err) {
      console.warn('webcall: cannot open the signaling socket', err);
      this.retry();
      return;
    }
    this.socket = socket;
    let gotJoined = false;

    socket.addEventListener('open', () => {
      performance.mark('webcall:ws-open');
      const join = { type: 'join', version: PROTOCOL_VERSION };
      const resume = storageGet(resumeKey(this.token));
      if (resume) join.resume = resume;
      socket.send(JSON.stringify(join));
    });

    socket.addEventListener('message', (event) => {
      if (socket !== this.socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn('webcall: ignoring a frame that is not JSON');
        return;
      }
      if (!message || typeof message.type !== 'string' || !KNOWN.has(message.type)) return;
      if (this.loseNext === message.type) {
        // A test hook (debug.js): this message is lost, as one can be.
        this.loseNext = null;
        console.info(`webcall: losing this ${message.type} (test hook)`);
        return;
      }
      if (message.type === 'joined') {
        performance.mark('webcall:joined');
        gotJoined = true;
        this.attempt = 0;
        this.joined = message;
        storageSet(resumeKey(this.token), message.resume);
        this.setState('joined');
        this.emit('joined', message);
      } else if (message.type === 'reconnect') {
        this.moved(socket, message.after_ms);
      } else if (message.type === 'error') {
        if (message.code === ErrorCode.UNAVAILABLE) {
          // The server is going away or lost its store for a moment ("try
          // again shortly"): come back with backoff, as after a dropped
          // socket. The seat is held, and the call's media goes on.
          console.info('webcall: the server is unavailable; reconnecting');
          this.socket = null;
          socket.close(1000, 'unavailable');
          this.retry();
        } else if (message.fatal) {
          this.fail(message.code, message.message);
        } else {
          console.warn(`webcall: server error ${message.code}: ${message.message}`);
          this.emit('servererror', message);
        }
      } else {
        this.emit(message.type, message);
      }
    });

    socket.addEventListener('close', (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (this.stopped) return;
      console.info(`webcall: signaling closed (code ${event.code}${gotJoined ? '' : ', before joining'})`);
      this.retry();
    });

    socket.addEventListener('error', () => {
      // A 'close' event always follows; the retry happens there.
    });
  }

  /**
   * The server is going away and the room outlives it: close this socket
   * and come back after the server's delay, with the resume secret, as a
   * planned reconnect (no backoff; the call's media goes on meanwhile).
   */
  moved(socket, afterMs) {
    console.info(`webcall: the server asked to reconnect in ${afterMs} ms`);
    this.socket = null;
    socket.close(1000, 'reconnect');
    this.attempt = 0;
    this.setState(this.joined ? 'reconnecting' : 'connecting');
    const delay = Math.min(Math.max(Number(afterMs) || 0, 0), MAX_SERVER_RECONNECT_MS);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconnect(), delay);
  }

  fail(code, message) {
    if (ROOM_GONE.has(code)) storageSet(resumeKey(this.token), null);
    this.stop();
    this.emit('fatal', { code, message });
  }

  retry() {
    if (this.stopped) return;
    this.setState(this.joined ? 'reconnecting' : 'connecting');
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = base + Math.floor(Math.random() * base * 0.3);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconnect(), delay);
  }

  async reconnect() {
    if (this.stopped) return;
    // A socket that keeps failing may mean the room is gone: ask the API,
    // which answers 404 for an unknown or expired link.
    if (this.attempt >= 2) {
      try {
        const info = await roomInfo(this.token);
        if (info === null) {
          this.fail(ErrorCode.ROOM_NOT_FOUND, 'this link is unknown or has expired');
          return;
        }
      } catch {
        // The server itself is unreachable: keep trying.
      }
    }
    if (this.stopped || this.socket) return;
    this.open();
  }
}
