// The check before the call: the screen a room page opens on (unless a
// reload brings it back into a call it was in). It shows the self-view, a
// live microphone level (WebAudio AnalyserNode), the device picker and the
// camera and microphone switches, and who is already in the room, asked of
// `GET /api/rooms/{token}` every POLL_MS. Nothing goes to the room before
// "Join": no WebSocket, no join message; the room page (room.js) starts
// signaling from `onJoin`.
//
// The room's state as the pre-join shows it is a pure function
// (`whoIsHere`), tested under node.

import { t } from './i18n.js';
import { roomInfo } from './protocol.js';
import { $, show } from './dom.js';

/** How often the room is asked who is in it. */
const POLL_MS = 2000;
/** How often the microphone level is measured. */
const METER_MS = 80;
/** The quietest level the meter shows, in dBFS (it shows 0 below). */
const METER_FLOOR_DB = -60;

/**
 * What the pre-join says about the room: `{ text, canJoin, gone }`, with
 * `text` an i18n.js key. `info` is the answer of `GET /api/rooms/{token}`,
 * null for an unknown or expired link, undefined while not known (or the
 * server could not be asked: then joining is tried anyway).
 */
export function whoIsHere(info) {
  if (info === null) return { text: 'status_not_found', canJoin: false, gone: true };
  if (!info) return { text: null, canJoin: true, gone: false };
  const here = Number(info.participants) || 0;
  const capacity = Number(info.capacity) || 2;
  if (here >= capacity) return { text: 'prejoin_full', canJoin: false, gone: false };
  if (here === 1) return { text: 'prejoin_one', canJoin: true, gone: false };
  if (here > 1) return { text: 'prejoin_many', canJoin: true, gone: false, count: here };
  return { text: 'prejoin_nobody', canJoin: true, gone: false };
}

/** A microphone's level, 0 to 1, measured from a stream's audio track. */
export class LevelMeter {
  /** @param {(level: number) => void} draw */
  constructor(draw) {
    this.draw = draw;
    this.ctx = null;
    this.source = null;
    this.analyser = null;
    this.timer = null;
    this.trackId = null;
    /** The last level measured. */
    this.level = 0;
    /** How many measurements differed from the one before (a live meter moves). */
    this.changes = 0;
  }

  /** Measures `stream`'s audio track (again after a switch); none: shows 0. */
  attach(stream) {
    const track = stream ? stream.getAudioTracks()[0] : null;
    if (track && track.id === this.trackId) return;
    this.disconnect();
    this.trackId = track ? track.id : null;
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!track || !Context) {
      this.show(0);
      return;
    }
    try {
      if (!this.ctx) this.ctx = new Context();
      this.source = this.ctx.createMediaStreamSource(new MediaStream([track]));
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = 1024;
      this.source.connect(this.analyser);
    } catch (err) {
      console.warn('webcall: no microphone level:', err);
      return;
    }
    // A context made without a user gesture may start suspended: any
    // click on the page (a switch, a device) lets it run.
    this.ctx.resume().catch(() => {});
    const samples = new Float32Array(this.analyser.fftSize);
    this.timer = setInterval(() => {
      if (!this.analyser) return;
      this.analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      const db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
      this.show(Math.min(1, Math.max(0, (db - METER_FLOOR_DB) / -METER_FLOOR_DB)));
    }, METER_MS);
  }

  show(level) {
    if (level !== this.level) this.changes += 1;
    this.level = level;
    this.draw(level);
  }

  /** Lets a suspended context run (call from a user gesture). */
  wake() {
    if (this.ctx && this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  disconnect() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.source) this.source.disconnect();
    this.source = null;
    this.analyser = null;
  }

  /** Stops measuring and releases the audio context. */
  close() {
    this.disconnect();
    this.trackId = null;
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
    this.show(0);
  }
}

/** The pre-join screen of one room. */
export class PreJoin {
  /**
   * @param {string} token the room
   * @param {object} hooks
   * @param {() => void} hooks.onJoin the user pressed "Join"
   * @param {(info: object) => void} hooks.onInfo the room's info arrived
   * @param {() => void} hooks.onGone the link is unknown or expired
   */
  constructor(token, { onJoin, onInfo, onGone }) {
    this.token = token;
    this.onJoin = onJoin;
    this.onInfo = onInfo;
    this.onGone = onGone;
    this.active = false;
    this.timer = null;
    /** What the last answer said (`whoIsHere`), null before one. */
    this.who = null;
    this.meter = new LevelMeter((level) => {
      $('meter-bar').style.transform = `scaleX(${level.toFixed(3)})`;
      $('meter-bar').parentElement.setAttribute('aria-valuenow', String(Math.round(level * 100)));
    });
  }

  /** Shows the screen and starts asking who is in the room. */
  open() {
    this.active = true;
    show($('prejoin'), true);
    $('join-call').onclick = () => this.join();
    // The first user gesture lets the level meter run where autoplay rules hold it.
    $('prejoin').addEventListener('pointerdown', () => this.meter.wake());
    this.poll();
  }

  /** Shows `stream` as the self-view and measures its microphone. */
  setStream(stream) {
    const video = $('prejoin-video');
    if (video.srcObject !== stream) video.srcObject = stream;
    else {
      // The same stream with a track switched: show the new one.
      video.srcObject = null;
      video.srcObject = stream;
    }
    video.play().catch(() => {});
    if (this.active) this.meter.attach(stream);
  }

  /** Says why there is no camera or microphone (null: there is). */
  setMediaProblem(textKey) {
    $('prejoin-media').textContent = textKey ? t(textKey) : '';
    show($('prejoin-media'), !!textKey);
  }

  async poll() {
    if (!this.active) return;
    let info;
    try {
      info = await roomInfo(this.token);
    } catch (err) {
      console.warn('webcall: cannot ask who is in the room:', err);
      info = undefined;
    }
    if (!this.active) return;
    if (info) this.onInfo(info);
    this.showWho(whoIsHere(info));
    if (info === null) {
      this.onGone();
      return; // nothing more to ask
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  showWho(who) {
    this.who = who;
    $('prejoin-who').textContent = who.text ? t(who.text, { count: who.count }) : '';
    $('prejoin-who').classList.toggle('gone', who.gone);
    show($('prejoin-hint'), who.gone);
    $('prejoin-hint').textContent = who.gone ? t('not_found_hint') : '';
    show($('join-call'), !who.gone);
    show($('prejoin-home'), who.gone);
    $('join-call').disabled = !who.canJoin;
    if (who.canJoin && !this.readyMarked) {
      this.readyMarked = true;
      performance.mark('webcall:join-ready');
    }
  }

  /** Lets go of the self-view and the meter (the media was stopped). */
  stopMedia() {
    this.meter.close();
    $('prejoin-video').srcObject = null;
    $('prejoin').classList.add('no-media');
  }

  join() {
    if (!this.active || $('join-call').disabled) return;
    this.close();
    this.onJoin();
  }

  /** Hides the screen; stops polling and the meter. */
  close() {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = null;
    this.meter.close();
    show($('prejoin'), false);
    $('prejoin-video').srcObject = null;
  }

  /** The test hook's view (debug.js). */
  snapshot() {
    const video = $('prejoin-video');
    return {
      shown: this.active,
      level: this.meter.level,
      levelChanges: this.meter.changes,
      who: $('prejoin-who').textContent,
      whoKey: this.who ? this.who.text : null,
      joinEnabled: !$('join-call').hidden && !$('join-call').disabled,
      selfView: video.readyState >= 2 && video.videoWidth > 0,
    };
  }
}
