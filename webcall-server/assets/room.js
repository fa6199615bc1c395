// The room page ("/r/{token}"): asks for the camera and microphone, wires
// the signaling session (protocol.js) to the peer connection (call.js) and
// draws what happens, with the status from status.js, the chat panel
// (chat.js), once connected, the verification code, and the call's quality
// (quality-view.js: indicator, details, the summary after the call).
//
// It opens on the check before the call (prejoin.js, status "prejoin"):
// nothing is sent to the room until "Join". A page reloaded in a call (it
// holds a resume secret) goes straight back in. The camera, microphone and
// speaker can be chosen before and during the call (devices.js); a switch
// replaces the sender's track without renegotiating (`switchDevice`).
//
// The page marks each step of a join on the performance timeline
// (`webcall:app-start`, `join-ready` ("Join" can be pressed), `join`
// (signaling starts: "Join" pressed, or a reload resuming), `ws-connect`, `ws-open`, `joined`, `media`, `pc-created`,
// `offer-sent`/`offer-received`, `answer-sent`/`answer-received`,
// `ice-connected`, `connected`, `first-frame`), relative to the navigation;
// the browser_setup benchmark reads them.

import { t } from './i18n.js';
import { Signaling, TOKEN_PATTERN, ErrorCode, roomInfo, hasResume, takeEarly } from './protocol.js';
import { Call } from './call.js';
import { roomStatus, statusView } from './status.js';
import { $, show, setStatus, copyFrom } from './dom.js';
import { ChatPanel } from './chat.js';
import { ScreenShare } from './screen.js';
import { showHome } from './home.js';
import { QualityView } from './quality-view.js';
import { PreJoin } from './prejoin.js';
import { DevicePicker, remember, remembered, withRemembered } from './devices.js';

/**
 * The camera starts at 640x480, whose first key frame is small enough to
 * arrive at once at the bitrate a new connection starts with; once the
 * connection has settled it goes up to 1280x720 (see `upgradeVideo`).
 */
const START_VIDEO = { width: { ideal: 640 }, height: { ideal: 480 } };
const FULL_VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
/** How long after connecting the camera goes to full resolution. */
const UPGRADE_AFTER_MS = 1500;
/** How long a connected call may show no remote picture before "no camera". */
const NO_PICTURE_AFTER_MS = 1500;

/** Marks the first picture of `video` decoded and shown, once per stream. */
function markFirstFrame(video) {
  const mark = () => performance.mark('webcall:first-frame');
  if (typeof video.requestVideoFrameCallback === 'function') {
    video.requestVideoFrameCallback(mark);
  } else {
    video.addEventListener('loadeddata', mark, { once: true });
  }
}

/** One room's page: its signaling session, its call and what the user sees. */
export class RoomPage {
  constructor(token) {
    this.token = token;
    this.signaling = null;
    this.call = new Call((message) => (this.signaling ? this.signaling.send(message) : false));
    this.chat = new ChatPanel(this.call);
    this.screen = new ScreenShare(this.call);
    this.quality = new QualityView(this.call);
    this.joined = false;
    this.peer = null;
    this.peerLeft = false;
    this.peerReconnecting = false;
    this.fatalCode = null;
    this.ended = false;
    this.localStream = null;
    this.mediaPromise = null;
    this.mediaDenied = false;
    this.mediaProblem = null;
    this.upgraded = null;
    this.resolveChoice = null;
    this.chain = Promise.resolve();
    this.startSeq = 0;
    /** "prejoin" until the user joins (or a reload resumes), then "call". */
    this.phase = 'prejoin';
    this.prejoin = new PreJoin(token, {
      onJoin: () => this.enter(),
      onInfo: (info) => this.fillLink(info),
      onGone: () => this.fail(ErrorCode.ROOM_NOT_FOUND),
    });
    this.devices = new DevicePicker((kind, deviceId) => this.chooseDevice(kind, deviceId));
    /** Device switches done, for the test hook. */
    this.switches = 0;
    this.switching = Promise.resolve();
  }

  async start() {
    show($('home'), false);
    show($('room'), true);
    document.body.classList.add('in-room');
    this.bindControls();
    this.quality.start();
    this.updateControls();
    this.render();

    if (!TOKEN_PATTERN.test(this.token)) {
      this.phase = 'call';
      this.fail(ErrorCode.ROOM_NOT_FOUND);
      return;
    }
    this.devices.bind();
    this.applySpeaker();
    const early = takeEarly(this.token);
    if (early || hasResume(this.token)) {
      // Reloaded in a call: straight back into the seat (early.js has
      // usually sent the join already).
      console.info(`webcall: resuming the call this page was in${early ? ' (joined while loading)' : ''}`);
      this.enter(early);
      return;
    }
    // The camera and microphone start now: they are the self-view, and
    // joining is faster with them ready.
    this.prejoin.open();
    this.render();
    this.ensureMedia();
  }

  /**
   * Joins the room: opens signaling (after "Join", or at once on a reload,
   * taking over the `early` session early.js started, if any).
   */
  enter(early = null) {
    if (this.ended || this.fatalCode || this.signaling) return;
    this.phase = 'call';
    performance.mark('webcall:join');
    this.prejoin.close();
    $('settings-body').append($('device-picker'));
    this.render();
    // Nothing waits on anything it does not need: the camera starts while
    // the socket opens, and an unknown room is reported by the join itself.
    // The link to share comes from the server, like the QR code beside it,
    // so both name the same address (the public URL when one is set).
    const signaling = early || new Signaling(this.token);
    this.signaling = signaling;
    signaling.addEventListener('state', () => this.render());
    signaling.addEventListener('fatal', (e) => this.fail(e.detail.code, e.detail.message));
    for (const type of ['joined', 'peer_joined', 'peer_reconnecting', 'peer_left', 'offer', 'answer', 'candidate']) {
      signaling.addEventListener(type, (e) => this.enqueue(e.detail));
    }
    this.call.addEventListener('state', () => {
      if (this.call.connectionState === 'connected') this.upgradeVideo();
      this.render();
    });
    this.call.addEventListener('remotestream', (e) => this.setRemoteStream(e.detail.stream));
    this.call.addEventListener('verification', () => this.render());
    signaling.start();
    this.ensureMedia();
    this.showLink();
  }

  /** Fills the share panel with the room's link and its QR code. */
  async showLink() {
    if ($('room-link').value) return; // the pre-join filled it
    try {
      const info = await roomInfo(this.token);
      if (info === null) return; // the join reports the unknown room
      this.fillLink(info);
    } catch (err) {
      console.warn('webcall: room lookup failed:', err);
    }
  }

  fillLink(info) {
    if ($('room-link').value) return;
    $('room-link').value = info.url || `${window.location.origin}/r/${this.token}`;
    $('room-qr').src = `/api/rooms/${encodeURIComponent(this.token)}/qr.svg`;
  }

  /** Signaling messages are handled one at a time, in arrival order. */
  enqueue(message) {
    this.chain = this.chain
      .then(() => this.onMessage(message))
      .catch((err) => console.warn(`webcall: handling ${message.type} failed:`, err));
  }

  async onMessage(message) {
    if (this.ended || this.fatalCode) return;
    switch (message.type) {
      case 'joined':
        console.info(`webcall: joined as ${message.you}, peer ${message.peer}, initiator ${message.initiator}`);
        this.joined = true;
        this.call.configure(message);
        this.peer = message.peer;
        this.peerReconnecting = false;
        if (message.peer && message.resumed && this.call.negotiated) {
          // Back in our seat after a signaling hiccup: the media connection is
          // still ours. Keep it; restart ICE only if it is down.
          this.peerLeft = false;
          this.call.setRoles({ initiator: message.initiator, polite: message.polite });
          console.info(`webcall: seat resumed; keeping the connection (${this.call.connectionState})`);
          if (['disconnected', 'failed'].includes(this.call.connectionState)) this.call.restartIceNow();
        } else if (message.peer) {
          this.peerLeft = false;
          await this.startCall({ initiator: message.initiator, polite: message.polite });
        } else {
          this.call.close();
          this.render();
          this.ensureMedia();
        }
        break;
      case 'peer_joined':
        console.info(`webcall: peer ${message.peer} joined (resumed ${message.resumed})`);
        this.peer = message.peer;
        this.peerLeft = false;
        this.peerReconnecting = false;
        if (message.resumed && this.call.negotiated) {
          // They took their seat back. Keep the connection: if they kept
          // theirs, media goes on; if they reloaded, their offer names a new
          // connection and replaces ours (call.js).
          this.call.setRoles({ initiator: false, polite: true });
          break;
        }
        await this.startCall({ initiator: false, polite: true });
        break;
      case 'peer_reconnecting':
        // Their seat is held for them: keep the connection and its media,
        // unless their page went away (closed or reloading) and took its
        // connection along; then ours goes now, not when they are back.
        console.info(`webcall: peer ${message.peer} is reconnecting (leaving ${!!message.leaving})`);
        this.peerReconnecting = true;
        if (message.leaving) this.call.close();
        break;
      case 'peer_left':
        console.info(`webcall: peer ${message.peer} left (${message.reason})`);
        this.peer = null;
        this.peerLeft = true;
        this.peerReconnecting = false;
        this.quality.end();
        this.call.close();
        break;
      default:
        await this.call.handle(message);
    }
    this.render();
  }

  /**
   * Starts a connection now, with the camera and microphone if they are
   * ready; if not, they join it when they are (see `useStream`).
   */
  async startCall(roles) {
    this.call.close();
    this.render();
    if (this.ended || this.fatalCode) return;
    this.ensureMedia();
    console.info(`webcall: starting a connection (initiator ${roles.initiator}, polite ${roles.polite})`);
    this.call.start(roles);
  }

  // -------------------------------------------------------------- media

  /** Raises the camera to full resolution, once, soon after connecting. */
  upgradeVideo() {
    const track = this.localStream && this.localStream.getVideoTracks()[0];
    if (!track || this.upgraded === track) return;
    this.upgraded = track;
    setTimeout(() => {
      if (track.readyState !== 'live') return;
      track
        .applyConstraints(FULL_VIDEO)
        .catch((err) => console.info(`webcall: the camera stays at its start size: ${err.message}`));
    }, UPGRADE_AFTER_MS);
  }

  ensureMedia() {
    if (!this.mediaPromise) this.mediaPromise = this.askMedia();
    return this.mediaPromise;
  }

  async askMedia() {
    const stream = await this.tryMedia('full');
    performance.mark('webcall:media');
    if (stream) return stream;
    this.mediaDenied = true;
    this.prejoin.setMediaProblem(this.mediaProblem === 'insecure' ? 'status_insecure' : 'status_media_denied');
    this.devices.refresh();
    this.render();
    return new Promise((resolve) => {
      this.resolveChoice = resolve;
    });
  }

  async tryMedia(mode) {
    if (mode === 'none') return this.useStream(new MediaStream());
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.mediaProblem = 'insecure';
      return null;
    }
    const constraints =
      mode === 'audio'
        ? { audio: withRemembered(true, 'audioinput'), video: false }
        : {
            audio: withRemembered(AUDIO, 'audioinput'),
            video: withRemembered({ ...START_VIDEO, facingMode: 'user' }, 'videoinput'),
          };
    try {
      return this.useStream(await navigator.mediaDevices.getUserMedia(constraints));
    } catch (err) {
      console.warn(`webcall: getUserMedia (${mode}) failed: ${err.name}: ${err.message}`);
      this.mediaProblem = err.name;
      return null;
    }
  }

  useStream(stream) {
    this.localStream = stream;
    this.call.setLocalStream(stream);
    const video = $('local-video');
    video.srcObject = stream;
    video.play().catch(() => {});
    this.mediaDenied = false;
    this.mediaProblem = null;
    this.prejoin.setStream(stream);
    this.prejoin.setMediaProblem(null);
    this.devices.useStream(stream);
    this.updateControls();
    this.render();
    return stream;
  }

  // -------------------------------------------------------------- devices

  /** The user picked a device in the picker. */
  chooseDevice(kind, deviceId) {
    if (kind === 'audiooutput') {
      remember(kind, deviceId);
      this.applySpeaker();
      return;
    }
    this.switchDevice(kind, deviceId).catch(() => {});
  }

  /** Plays the other side on the remembered speaker, where that can be chosen. */
  applySpeaker() {
    const id = remembered('audiooutput');
    if (id) this.devices.setSpeaker($('remote-video'), id);
  }

  /**
   * Switches the camera ("videoinput") or microphone ("audioinput") to
   * `deviceId`, remembering the choice: the new track takes the old one's
   * place in the local stream and, in a call, in its sender
   * (RTCRtpSender.replaceTrack, no renegotiation). The on/off state goes
   * over to the new track; a camera switched in a connected call is raised
   * to full size like the first one (`upgradeVideo`). One switch at a time.
   */
  switchDevice(kind, deviceId) {
    const run = () => this.switchNow(kind, deviceId);
    this.switching = this.switching.then(run, run);
    return this.switching;
  }

  async switchNow(kind, deviceId) {
    const media = kind === 'videoinput' ? 'video' : 'audio';
    remember(kind, deviceId);
    const stream = this.localStream;
    const old = stream ? stream.getTracks().find((tr) => tr.kind === media) : null;
    if (!old || this.ended) {
      // No such track to replace (refused, or joined without it): the
      // choice is used the next time the page asks for media.
      return;
    }
    const exact = deviceId ? { deviceId: { exact: deviceId } } : {};
    const constraints =
      media === 'video' ? { video: { ...START_VIDEO, ...exact } } : { audio: { ...AUDIO, ...exact } };
    let track;
    try {
      try {
        track = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
      } catch (err) {
        // Phones open one camera at a time: let go of the old one first.
        if (err.name !== 'NotReadableError' && err.name !== 'AbortError') throw err;
        old.stop();
        track = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
      }
    } catch (err) {
      console.warn(`webcall: cannot switch the ${media} to ${deviceId}: ${err.name}: ${err.message}`);
      this.devices.problem(t(media === 'video' ? 'camera_failed' : 'microphone_failed'));
      if (old.readyState === 'ended') this.dropTrack(stream, old);
      this.devices.refresh();
      return;
    }
    this.devices.problem(null);
    await this.replaceLocalTrack(old, track);
  }

  /**
   * Puts `track` in `old`'s place: in the local stream and in the sender
   * that sends it (replaceTrack, no renegotiation), with `old`'s on/off
   * state; then stops `old`.
   */
  async replaceLocalTrack(old, track) {
    const stream = this.localStream;
    track.enabled = old.enabled;
    const pc = this.call.pc;
    const sender = pc ? pc.getSenders().find((s) => s.track === old) : null;
    stream.removeTrack(old);
    stream.addTrack(track);
    if (sender) {
      await sender.replaceTrack(track);
    } else if (pc) {
      // The sender was still empty (media came after the offer): fill it.
      this.call.setLocalStream(stream);
    }
    old.stop();
    this.switches += 1;
    console.info(`webcall: ${track.kind} switched to ${track.label || track.id} (${sender ? 'track replaced' : 'no sender yet'})`);
    this.showLocal(stream);
    this.devices.useStream(stream);
    this.updateControls();
    if (track.kind === 'video' && this.call.connectionState === 'connected') this.upgradeVideo();
  }

  /** Takes an ended track out of the local stream (and its sender). */
  dropTrack(stream, track) {
    stream.removeTrack(track);
    const pc = this.call.pc;
    const sender = pc ? pc.getSenders().find((s) => s.track === track) : null;
    if (sender) sender.replaceTrack(null).catch(() => {});
    this.showLocal(stream);
    this.updateControls();
  }

  /** Shows the local stream again after one of its tracks changed. */
  showLocal(stream) {
    const video = $('local-video');
    video.srcObject = null;
    video.srcObject = stream;
    video.play().catch(() => {});
    if (this.phase === 'prejoin') this.prejoin.setStream(stream);
  }

  async choose(mode) {
    const buttons = $('media-choices').querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    const stream = await this.tryMedia(mode);
    for (const b of buttons) b.disabled = false;
    if (stream && this.resolveChoice) {
      const resolve = this.resolveChoice;
      this.resolveChoice = null;
      resolve(stream);
    }
    this.render();
  }

  stopMedia() {
    if (this.localStream) for (const track of this.localStream.getTracks()) track.stop();
    this.localStream = null;
    $('local-video').srcObject = null;
  }

  // -------------------------------------------------------------- remote media

  setRemoteStream(stream) {
    const video = $('remote-video');
    if (!stream) {
      video.srcObject = null;
      show($('unmute'), false);
      this.render();
      return;
    }
    if (video.srcObject !== stream) {
      video.srcObject = stream;
      markFirstFrame(video);
    }
    // A remote video track is muted until pictures arrive: redraw when
    // that changes, for the "no camera" placeholder.
    for (const track of stream.getVideoTracks()) {
      track.onmute = () => this.render();
      track.onunmute = () => this.render();
      track.onended = () => this.render();
    }
    this.playRemote();
    this.render();
  }

  async playRemote() {
    const video = $('remote-video');
    video.muted = false;
    try {
      await video.play();
      show($('unmute'), false);
    } catch (err) {
      if (err.name !== 'NotAllowedError') return; // e.g. AbortError when the source changed
      // Autoplay with sound is blocked (iOS Safari, no user gesture yet):
      // play muted and offer a button that turns the sound on.
      console.info('webcall: autoplay with sound blocked; playing muted');
      video.muted = true;
      video.play().catch(() => {});
      show($('unmute'), true);
    }
  }

  /** True while pictures come from the other side (a live, unmuted video track). */
  remoteVideoArrives() {
    const stream = $('remote-video').srcObject;
    if (!stream) return false;
    return stream.getVideoTracks().some((tr) => tr.readyState === 'live' && !tr.muted);
  }

  // -------------------------------------------------------------- controls

  bindControls() {
    $('toggle-mic').onclick = () => this.toggle('audio');
    $('toggle-cam').onclick = () => this.toggle('video');
    $('hangup').onclick = () => this.hangup();
    $('unmute').onclick = () => {
      const video = $('remote-video');
      video.muted = false;
      video.play().catch(() => {});
      show($('unmute'), false);
    };
    $('room-copy').onclick = () => copyFrom($('room-link'), $('room-copy-text'), null);
    $('room-link').onfocus = () => $('room-link').select();
    $('media-retry').onclick = () => this.choose('full');
    $('media-audio').onclick = () => this.choose('audio');
    $('media-none').onclick = () => this.choose('none');
    $('verify-toggle').onclick = () => {
      const hint = $('verify-hint');
      show(hint, hint.hidden);
      $('verify-toggle').setAttribute('aria-expanded', String(!hint.hidden));
    };
    $('verify-toggle').title = t('verification_hint');
    $('prejoin-mic').onclick = () => this.toggle('audio');
    $('prejoin-cam').onclick = () => this.toggle('video');
    $('settings-toggle').onclick = () => this.showSettings($('settings').hidden);
    $('settings-close').onclick = () => this.showSettings(false);
    this.chat.bind();
    this.screen.bind();
  }

  /** Opens or closes the device settings over the call. */
  showSettings(open) {
    show($('settings'), open);
    $('settings-toggle').setAttribute('aria-expanded', String(open));
    if (open) this.devices.refresh();
  }

  toggle(kind) {
    if (!this.localStream) return;
    const tracks = this.localStream.getTracks().filter((tr) => tr.kind === kind);
    if (tracks.length === 0) return;
    const enabled = !tracks[0].enabled;
    this.call.setEnabled(kind, enabled);
    this.updateControls();
  }

  updateControls() {
    const stream = this.localStream;
    for (const [kind, id, onKey, offKey] of [
      ['audio', 'toggle-mic', 'mic_off', 'mic_on'],
      ['video', 'toggle-cam', 'cam_off', 'cam_on'],
      ['audio', 'prejoin-mic', 'mic_off', 'mic_on'],
      ['video', 'prejoin-cam', 'cam_off', 'cam_on'],
    ]) {
      const button = $(id);
      const tracks = stream ? stream.getTracks().filter((tr) => tr.kind === kind) : [];
      const available = tracks.length > 0;
      const enabled = available && tracks[0].enabled;
      button.disabled = !available;
      button.classList.toggle('off', !enabled);
      const key = enabled ? onKey : offKey;
      button.setAttribute('aria-label', t(key));
      button.title = t(key);
      button.setAttribute('aria-pressed', String(!enabled));
    }
    const hasVideo = !!stream && stream.getVideoTracks().some((tr) => tr.enabled);
    show($('local-off'), !hasVideo);
    $('local-tile').classList.toggle('no-video', !hasVideo);
    // While the camera starts there is nothing to say yet.
    show($('prejoin-off'), !!stream && !hasVideo);
    $('prejoin').classList.toggle('no-video', !hasVideo);
  }

  hangup() {
    if (this.ended) return;
    console.info('webcall: hanging up');
    this.ended = true;
    this.prejoin.close();
    if (this.signaling) this.signaling.bye();
    this.quality.stop();
    this.call.close();
    this.screen.stop();
    this.stopMedia();
    if (this.resolveChoice) this.resolveChoice(new MediaStream());
    window.history.replaceState(null, '', '/');
    showHome({ ended: true, token: this.token });
    this.quality.showSummary($('home-summary'));
  }

  fail(code, message) {
    if (this.ended) return;
    console.warn(`webcall: the call cannot go on: ${code}${message ? `: ${message}` : ''}`);
    this.fatalCode = code;
    this.quality.stop();
    this.call.close();
    this.screen.stop();
    this.stopMedia();
    this.prejoin.stopMedia();
    this.render();
  }

  // -------------------------------------------------------------- status

  /** The facts `roomStatus` derives the status from. */
  facts() {
    return {
      ended: this.ended,
      fatalCode: this.fatalCode,
      mediaDenied: this.mediaDenied,
      signaling: this.signaling ? this.signaling.state : 'connecting',
      joined: this.joined,
      peer: this.peer,
      peerLeft: this.peerLeft,
      peerReconnecting: this.peerReconnecting,
      connection: this.call.connectionState,
      negotiationFailed: !!this.call.negotiationError,
    };
  }

  render() {
    if (this.ended) return;
    const prejoin = this.phase === 'prejoin';
    $('room').classList.toggle('prejoin', prejoin);
    const status = prejoin && !this.fatalCode ? 'prejoin' : roomStatus(this.facts());
    setStatus(status);
    const view = statusView(status, { fatalCode: this.fatalCode, mediaProblem: this.mediaProblem });

    const text = t(view.text);
    $('status').textContent = text;
    $('status').className = `status-pill status-${status}`;

    show($('panel'), view.panel);
    $('panel-title').textContent = t(view.title);
    $('panel-hint').textContent = view.hint ? t(view.hint) : '';
    show($('share'), view.share);
    show($('media-choices'), view.mediaChoices);
    show($('end-choices'), view.endChoices);
    if (status === 'peer_left') this.quality.showSummary($('room-summary'));
    else show($('room-summary'), false);
    this.quality.render();
    show($('media-audio'), view.retryMedia);
    show($('media-retry'), view.retryMedia);

    const room = $('room');
    room.classList.toggle('has-remote', !!$('remote-video').srcObject && view.showsRemote);
    room.classList.toggle('call-over', view.over);
    show($('remote-off'), this.noRemotePicture(status));

    // The code proves something only about a connection that is up.
    const code = status === 'connected' ? this.call.verificationCode : null;
    show($('verify'), !!code);
    $('verify-code').textContent = code || '';
  }

  /**
   * True when the call is up but no picture has come for a moment: the
   * other side has no camera or turned it off. The first pictures of a new
   * connection follow "connected" by a little; that gap shows nothing.
   */
  noRemotePicture(status) {
    if (status !== 'connected' || this.remoteVideoArrives()) {
      clearTimeout(this.pictureTimer);
      this.pictureTimer = null;
      this.pictureWaitOver = false;
      return false;
    }
    if (!this.pictureTimer && !this.pictureWaitOver) {
      this.pictureTimer = setTimeout(() => {
        this.pictureTimer = null;
        this.pictureWaitOver = true;
        this.render();
      }, NO_PICTURE_AFTER_MS);
    }
    return this.pictureWaitOver;
  }

  state() {
    const pc = this.call.pc;
    return {
      status: document.body.dataset.status,
      signaling: this.signaling ? this.signaling.state : null,
      peer: this.peer,
      initiator: this.call.initiator,
      polite: this.call.polite,
      connectionState: pc ? pc.connectionState : null,
      iceConnectionState: pc ? pc.iceConnectionState : null,
      signalingState: pc ? pc.signalingState : null,
      directions: pc ? pc.getTransceivers().map((tr) => tr.currentDirection) : [],
      localTracks: this.localStream ? this.localStream.getTracks().map((tr) => `${tr.kind}:${tr.readyState}`) : [],
      localEnabled: this.localStream
        ? Object.fromEntries(this.localStream.getTracks().map((tr) => [tr.kind, tr.enabled]))
        : {},
      ufrags: this.call.iceUfrags(),
      fatal: this.fatalCode,
      negotiationError: this.call.negotiationError,
      channel: this.call.channel ? this.call.channel.readyState : null,
      outbox: this.call.outbox.length,
      verificationCode: this.call.verificationCode,
      fingerprints: this.call.fingerprints,
      phase: this.phase,
    };
  }
}
