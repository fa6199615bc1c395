// Screen sharing on the room page (PROTOCOL.md, "Screen sharing"): the
// share button, the browser's own "stop sharing", and the layout while the
// other side shares (its screen large, its camera small in a corner).
// The wire side (the screen transceiver, the `screen` message) is in
// call.js; this module owns what the user sees and does.
//
// The button is shown only where the browser can capture a screen
// (getDisplayMedia: not on phones) and while the connection has a place
// for it. Test hooks: `window.webcall.screen` (debug.js) calls `start()`,
// `stop()` and `snapshot()` here.

import { t } from './i18n.js';
import { $, show } from './dom.js';

/** True where this browser can capture a screen or a window. */
export const canCaptureScreen = () =>
  !!(navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === 'function');

export class ScreenShare {
  /** @param {import('./call.js').Call} call */
  constructor(call) {
    this.call = call;
    /** The local capture, while sharing. */
    this.track = null;
    /** Pictures the remote screen element has shown (requestVideoFrameCallback). */
    this.remoteFrames = 0;
    this.frameLoop = null;
    /** The last getDisplayMedia failure (`name`), or null. */
    this.problem = null;
  }

  bind() {
    const button = $('toggle-screen');
    button.onclick = () => (this.track ? this.stop() : this.start());
    this.call.addEventListener('remotescreen', (e) => this.setRemoteTrack(e.detail.track));
    this.call.addEventListener('screen', () => this.render());
    this.call.addEventListener('state', () => this.render());
    this.render();
  }

  /** Asks the browser for a screen or window and shares it. Returns true when sharing. */
  async start() {
    if (this.track) return true;
    if (!canCaptureScreen()) return false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      // The person chose nothing (NotAllowedError), or capture is impossible.
      console.info(`webcall: no screen to share: ${err.name}: ${err.message}`);
      this.problem = err.name;
      this.render();
      return false;
    }
    const track = stream.getVideoTracks()[0];
    if (!track) return false;
    this.problem = null;
    this.track = track;
    track.contentHint = 'detail';
    // The browser's own "stop sharing" ends the track.
    track.addEventListener('ended', () => {
      if (this.track === track) this.stop();
    });
    console.info(`webcall: sharing the screen (${track.label})`);
    await this.call.setScreenTrack(track);
    this.render();
    return true;
  }

  /** Stops sharing (also when the capture ended by itself). */
  async stop() {
    const track = this.track;
    if (!track) return;
    this.track = null;
    track.stop();
    console.info('webcall: stopped sharing the screen');
    await this.call.setScreenTrack(null);
    this.render();
  }

  setRemoteTrack(track) {
    const video = $('remote-screen');
    video.srcObject = track ? new MediaStream([track]) : null;
    if (track) {
      video.play().catch(() => {});
      this.countFrames(video);
    }
    this.render();
  }

  /** Counts the pictures `video` shows, for the test hooks. */
  countFrames(video) {
    if (typeof video.requestVideoFrameCallback !== 'function' || this.frameLoop === video) return;
    this.frameLoop = video;
    const step = () => {
      this.remoteFrames += 1;
      video.requestVideoFrameCallback(step);
    };
    video.requestVideoFrameCallback(step);
  }

  /** True while the other side's screen is to be shown large. */
  get remoteShown() {
    return this.call.remoteSharing && !!$('remote-screen').srcObject;
  }

  render() {
    const button = $('toggle-screen');
    const sharing = !!this.track;
    show(button, canCaptureScreen());
    button.disabled = !sharing && !this.call.canShareScreen;
    button.classList.toggle('active', sharing);
    const key = sharing ? 'screen_stop' : 'screen_start';
    button.setAttribute('aria-label', t(key));
    button.title = t(key);
    button.setAttribute('aria-pressed', String(sharing));
    show($('sharing-note'), sharing);
    const room = $('room');
    room.classList.toggle('remote-sharing', this.remoteShown);
    show($('remote-screen-note'), this.remoteShown);
  }

  /** The state the test hooks report. */
  snapshot() {
    return {
      available: canCaptureScreen(),
      canShare: this.call.canShareScreen,
      sharing: !!this.track,
      problem: this.problem,
      remoteSharing: this.call.remoteSharing,
      remoteShown: this.remoteShown,
      remoteTrack: !!this.call.remoteScreenTrack,
      remoteFrames: this.remoteFrames,
      remoteWidth: $('remote-screen').videoWidth,
      layout: $('room').classList.contains('remote-sharing') ? 'screen' : 'camera',
    };
  }
}
