// The page's test and diagnostics hooks: the last console lines, kept for
// diagnosing failures, and `window.webcall` = { stats(), hangup(),
// restartIce(), loseNext(type), state(), chat: { messages(), send(text),
// unread(), isOpen(), loseNext(), lostPending() }, screen: { start(), stop(),
// endCapture(), state() },
// verification(), quality(), summary(), prejoin(), devices: { list(),
// choose(kind, id), useCanvas(colour), switches(), senderTrack(kind),
// local() }, offers(), log } (the end-to-end tests and the browser_setup
// benchmark use them; the page's status is
// `document.body.dataset.status`).
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
    chat: {
      /**
       * Every chat message of the page, oldest first: `{ id, text, sentAt,
       * at, mine, pending }` (`at`: when this page added it, ms since the
       * epoch; `pending`: ours, still waiting for the channel).
       */
      messages: () => {
        const room = currentRoom();
        return room ? room.chat.snapshot() : [];
      },
      /**
       * Types `text` into the chat input and presses Enter there (a
       * keydown event on the input, the path a person's Enter takes).
       * Returns `{ id }` or `{ refused: 'empty' | 'too_long' | 'outbox_full' }`.
       */
      send: (text) => {
        const room = currentRoom();
        if (!room) return { refused: 'no_room' };
        const input = document.getElementById('chat-input');
        input.value = text;
        input.dispatchEvent(new Event('input', { bubbles: true }));
        room.chat.lastResult = null;
        input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', code: 'Enter', bubbles: true, cancelable: true }));
        return room.chat.lastResult;
      },
      /** The number on the unread badge (0 when it is hidden). */
      unread: () => {
        const room = currentRoom();
        return room ? room.chat.unread : 0;
      },
      /** True while the chat panel is open. */
      isOpen: () => {
        const room = currentRoom();
        return room ? room.chat.open : false;
      },
      /**
       * Loses the next chat message received: not shown and not confirmed,
       * as one in flight when a connection breaks. Returns false without a
       * room; `lostPending()` is true until one has been lost.
       */
      loseNext: () => {
        const room = currentRoom();
        if (room) room.call.loseNextChat = true;
        return !!room;
      },
      /** True while `loseNext()` still waits for a message to lose. */
      lostPending: () => {
        const room = currentRoom();
        return !!room && room.call.loseNextChat;
      },
    },
    screen: {
      /**
       * Shares the screen as the button does (getDisplayMedia, then the
       * screen transceiver); resolves to true when sharing.
       */
      start: () => {
        const room = currentRoom();
        return room ? room.screen.start() : Promise.resolve(false);
      },
      /** Stops sharing, as the button does. */
      stop: () => {
        const room = currentRoom();
        return room ? room.screen.stop() : Promise.resolve();
      },
      /**
       * Ends the capture as the browser's own "stop sharing" does: the
       * track stops and fires "ended". False when nothing is shared.
       */
      endCapture: () => {
        const room = currentRoom();
        const track = room && room.screen.track;
        if (!track) return false;
        track.stop();
        track.dispatchEvent(new Event('ended'));
        return true;
      },
      /**
       * `{ available, canShare, sharing, problem, remoteSharing,
       * remoteShown, remoteTrack, remoteFrames, remoteWidth, layout }`:
       * `remoteFrames` counts pictures the remote screen element showed;
       * `layout` is 'screen' while the other side's screen is shown large.
       */
      state: () => {
        const room = currentRoom();
        return room ? room.screen.snapshot() : null;
      },
    },
    /**
     * The verification code: `{ code, shown, local, remote }`: the code of
     * the last negotiation ("123 456", or null), the text the page shows
     * (empty while not connected), and the local and remote fingerprints it
     * was computed from.
     */
    verification: () => {
      const room = currentRoom();
      const shownEl = document.getElementById('verify');
      const shown = shownEl && !shownEl.hidden ? document.getElementById('verify-code').textContent : '';
      if (!room) return { code: null, shown, local: null, remote: null };
      return { code: room.call.verificationCode, shown, ...room.call.fingerprints };
    },
    /**
     * The call's quality now: `{ grade, details, open }` (grade 'good' |
     * 'poor' | 'bad' | null; details: { codec, width, height, bitrateIn,
     * bitrateOut, rttMs, loss, path: 'direct' | 'relayed' }; open: the
     * details panel is shown).
     */
    quality: () => {
      const room = currentRoom();
      return room ? room.quality.snapshot() : { grade: null, details: null, open: false };
    },
    /**
     * The call's summary: `{ durationMs, path, average, share, shares, text }`,
     * final once the call is over; null if it never connected.
     */
    summary: () => {
      const room = currentRoom();
      return room ? room.quality.summary() : null;
    },
    /**
     * The check before the call: `{ shown, level, levelChanges, who, whoKey,
     * joinEnabled, selfView }` (the microphone level 0-1 and how often it
     * changed; the text about who is here and its i18n key; whether "Join"
     * can be pressed; whether the self-view shows a picture).
     */
    prejoin: () => {
      const room = currentRoom();
      return room ? room.prejoin.snapshot() : { shown: false };
    },
    devices: {
      /** The devices the picker lists: `[{ kind, deviceId, label }]`. */
      list: () => {
        const room = currentRoom();
        return room ? room.devices.refresh().then(() => room.devices.devices) : [];
      },
      /**
       * Switches to a device (kind "videoinput" or "audioinput") as picking
       * it does, even when it is the one in use (a fresh track); resolves
       * when done.
       */
      choose: (kind, deviceId) => {
        const room = currentRoom();
        return room ? room.switchDevice(kind, deviceId) : null;
      },
      /**
       * Switches the camera to a picture drawn on a canvas, filled with
       * `colour` (a second "device" where the fake devices have one), as a
       * device switch does; resolves to the new track's id.
       */
      useCanvas: async (colour) => {
        const room = currentRoom();
        const old = room && room.localStream ? room.localStream.getVideoTracks()[0] : null;
        if (!old) return null;
        const canvas = document.createElement('canvas');
        canvas.width = 320;
        canvas.height = 240;
        const g = canvas.getContext('2d');
        const paint = () => {
          g.fillStyle = colour;
          g.fillRect(0, 0, canvas.width, canvas.height);
        };
        paint();
        // A captured canvas sends a frame when it is drawn on.
        setInterval(paint, 50);
        const track = canvas.captureStream(20).getVideoTracks()[0];
        await room.replaceLocalTrack(old, track);
        return track.id;
      },
      /** How many switches were done. */
      switches: () => {
        const room = currentRoom();
        return room ? room.switches : 0;
      },
      /** The id of the track the connection sends for `kind` ("audio", "video"), or null. */
      senderTrack: (kind) => {
        const room = currentRoom();
        const pc = room && room.call.pc;
        const sender = pc ? pc.getSenders().find((s) => s.track && s.track.kind === kind) : null;
        return sender ? sender.track.id : null;
      },
      /** The local stream's tracks: `[{ kind, id, enabled, readyState, label, width, height }]`. */
      local: () => {
        const room = currentRoom();
        const stream = room && room.localStream;
        return stream
          ? stream.getTracks().map((tr) => {
              const s = tr.getSettings ? tr.getSettings() : {};
              return { kind: tr.kind, id: tr.id, enabled: tr.enabled, readyState: tr.readyState, label: tr.label, width: s.width || 0, height: s.height || 0 };
            })
          : [];
      },
    },
    /** How many offers this page sent and received (negotiations, from its marks). */
    offers: () =>
      performance.getEntriesByName('webcall:offer-sent').length +
      performance.getEntriesByName('webcall:offer-received').length,
    /** The last console lines. */
    log: logLines,
  };
}
