// The page's entry: routes by location.pathname to the home page ("/",
// home.js) or a room ("/r/{token}", room.js), after installing the test
// and diagnostics hooks (debug.js). Every module it loads is named in
// index.html's modulepreload links, so all load at once.

import { installHooks } from './debug.js';
import { translatePage } from './i18n.js';
import { showHome } from './home.js';
import { RoomPage } from './room.js';

performance.mark('webcall:app-start');

let room = null;
installHooks(() => room);

function main() {
  translatePage();
  const match = window.location.pathname.match(/^\/r\/([^/]*)\/?$/);
  if (match) {
    room = new RoomPage(decodeURIComponent(match[1]));
    room.start();
  } else {
    showHome();
  }
}

main();
