// The first thing a room page runs (an async module: it does not wait for
// the page's other modules). A page reloaded during a call holds its seat's
// resume secret: its signaling starts here, so the socket opens and the
// join travels while the rest of the client loads; room.js takes the session
// over (protocol.js, `startEarly` and `takeEarly`). Any other page does
// nothing here: nothing is sent before "Join".

import { startEarly } from './protocol.js';

const match = window.location.pathname.match(/^\/r\/([^/]*)\/?$/);
if (match) {
  try {
    startEarly(decodeURIComponent(match[1]));
  } catch (err) {
    console.warn('webcall: the early join failed; the page joins when loaded:', err);
  }
}
