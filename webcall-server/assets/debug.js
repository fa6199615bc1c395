// The page's test and diagnostics hooks: the last console lines, kept for
// diagnosing failures, and `window.webcall` = { stats(), hangup(),
// restartIce(), loseNext(type), state(), log } (the end-to-end tests and the browser_setup
// benchmark use them; the page's status is `document.body.dataset.status`).
// Imported first, so that the log holds everything the other modules say.

import { emptyStats } from './call.js';

/** The last console lines (tests read them through `window.webcall.log`). */
const logLines = [];
const LOG_LIMIT = 400;

function keepLog(level, args) {
  const text = args
    .map((a) => {
      if (a instanceof Error) return `${a.name}: ${a.message}`;
      if (typeof a === 'object') {
        try {
          return JSON.stringify(a);
        } catch {
          return String(a);
        }
      }
      return String(a);
    })
    .join(' ');
  logLines.push(`${new Date().toISOString().slice(11, 23)} ${level} ${text}`);
  if (logLines.length > LOG_LIMIT) logLines.splice(0, logLines.length - LOG_LIMIT);
}

for (const level of ['log', 'info', 'warn', 'error']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    keepLog(level, args);
    original(...args);
  };
}
window.addEventListener('error', (e) => keepLog('uncaught', [e.message, `${e.filename}:${e.lineno}`]));
window.addEventListener('unhandledrejection', (e) => keepLog('unhandled', [e.reason]));

/**
 * Installs `window.webcall`. `currentRoom()` gives the room page
 * (room.js's `RoomPage`) or null on the home page.
 */
export function installHooks(currentRoom) {
  window.webcall = {
    /** A getStats summary of the current call (zeros without one). */
    stats: () => {
      const room = currentRoom();
      return room ? room.call.stats() : Promise.resolve(emptyStats());
    },
    /** Hangs up like the button. */
    hangup: () => {
      const room = currentRoom();
      if (room) room.hangup();
    },
    /** Restarts ICE now, as the automatic restart does; false without a connection. */
    restartIce: () => {
      const room = currentRoom();
      return room ? room.call.restartIceNow() : false;
    },
    /**
     * Loses the next incoming signaling message of `type` (such as
     * 'answer'), as a server restart can: tests of the recovery use it.
     */
    loseNext: (type) => {
      const room = currentRoom();
      if (room) room.signaling.loseNext = type;
      return !!room;
    },
    /** Internal state, for diagnostics. */
    state: () => {
      const room = currentRoom();
      return room ? room.state() : { status: document.body.dataset.status };
    },
    /** The last console lines. */
    log: logLines,
  };
}
