// The WebRTC side of a call: one RTCPeerConnection at a time.
//
// Owns perfect negotiation with the roles the server assigns (PROTOCOL.md,
// "Roles: who offers"), trickle ICE with early candidates buffered until a
// remote description is set, automatic ICE restarts, and a getStats summary.
// No UI here, and no WebSocket: messages go out through `send` and come in
// through `handle`.
//
// A step of negotiation that fails (setting a description, making an offer
// or an answer) is kept in `negotiationError` until a later step succeeds or
// the connection is replaced, so the page can show it.
//
// Each connection carries the negotiated `webcall` data channel, made before
// the first offer or answer (PROTOCOL.md, "In the call"): chat goes out
// through an outbox, in order, that waits while the channel is not open
// (at most OUTBOX_LIMIT messages) and survives a new connection. Each chat
// received is confirmed with a `chat_received`; ours stay unconfirmed until
// then and go again, in order, when a new connection's channel opens, and a
// copy received again is not shown twice. After every
// negotiation the verification code is computed again from the two
// descriptions' fingerprints (channel.js).
//
// Events (CustomEvent): "state" (detail = { connectionState }) when the
// connection's state or `negotiationError` changes, "remotestream"
// (detail = { stream } or { stream: null } when cleared), "chat" (detail =
// { message: { id, text, sentAt } }) for each chat message received,
// "chatsent" (detail = { id }) when a message of ours leaves the outbox,
// "channel" (detail = { open }) when the data channel opens or closes,
// "verification" (detail = { code }, null when there is none) when the
// verification code changes, "remotescreen" (detail = { track }, null when
// cleared) when the other side's screen track arrives or goes, "screen"
// (detail = { sharing }) when the other side says it starts or stops
// sharing.
//
// Screen sharing (PROTOCOL.md, "Screen sharing"): every connection has a
// second video section after the camera's, for a shared screen. The
// initiator adds its transceiver before the first offer; the answering side
// adopts the second video section of the offer. Sharing puts a track on
// that transceiver with replaceTrack (no new offer) and says so with a
// `screen` message on the data channel; stopping takes the track off.

import { CHANNEL_LABEL, CHANNEL_OPTIONS, OUTBOX_LIMIT, SeenIds, Unconfirmed, chatTextProblem, encodeChat, encodeReceipt, encodeScreen, fingerprintOf, newMessageId, parseMessage, parseReceipt, parseScreenMessage, verificationCode, videoSectionIndex } from './channel.js';

/** How long iceConnectionState may stay "disconnected" before a restart. */
const DISCONNECTED_RESTART_MS = 4000;
/** A restart that has not connected after this long is tried again. */
const RESTART_RETRY_MS = 8000;
/**
 * An offer that waits this long for its answer is made again, as an ICE
 * restart: signaling is at most once (PROTOCOL.md, "Delivery"), so a
 * message can be lost when a server restarts.
 */
const OFFER_STALL_MS = 8000;
/**
 * The outbox stops handing messages to the data channel while this much is
 * buffered in it (Chromium closes a channel whose buffer overflows), and
 * goes on when the buffer is down to SEND_BUFFER_LOW.
 */
const SEND_BUFFER_HIGH = 1024 * 1024;
const SEND_BUFFER_LOW = 256 * 1024;

/** The stats summary with every figure at 0, as for a call not yet connected. */
export const emptyStats = (connectionState = 'new') => ({
  videoFramesDecoded: 0,
  videoWidth: 0,
  videoHeight: 0,
  audioBytesReceived: 0,
  audioPacketsReceived: 0,
  videoBytesSent: 0,
  audioBytesSent: 0,
  videoFramesEncoded: 0,
  audioEnergyReceived: 0,
  audioLevelReceived: 0,
  connectionState,
  // The candidate pair media flows over, null before one is selected:
  // { localType, remoteType, protocol, relayProtocol }. Types as in
  // getStats (host, srflx, prflx, relay); protocol is how this side sends
  // (udp, tcp); relayProtocol, for a local relay candidate, how it reaches
  // its TURN server (udp, tcp, tls).
  selectedPair: null,
  // The types of the other side's candidates seen so far, each once.
  remoteCandidateTypes: [],
  // The other side's shared screen (the second video section), apart
  // from the camera figures above.
  screenFramesDecoded: 0,
  screenWidth: 0,
  screenHeight: 0,
  screenFramesEncoded: 0,
});

/** The selected candidate pair in a getStats report, or null. */
const selectedPair = (report) => {
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      pair = report.get(s.selectedCandidatePairId) || pair;
    }
  });
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  const local = pair && report.get(pair.localCandidateId);
  const remote = pair && report.get(pair.remoteCandidateId);
  if (!local || !remote) return null;
  return {
    localType: local.candidateType,
    remoteType: remote.candidateType,
    protocol: local.protocol,
    relayProtocol: local.relayProtocol || null,
  };
};

/** The DTLS fingerprint an SDP names: one per peer connection. */
const fingerprint = fingerprintOf;

export class Call extends EventTarget {
  /**
   * @param {(message: object) => boolean} send sends one signaling message
   */
  constructor(send) {
    super();
    this.send = send;
    this.pc = null;
    this.localStream = null;
    this.config = { iceServers: [], iceTransportPolicy: 'all' };
    this.polite = true;
    this.initiator = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.awaitingFirstOffer = false;
    this.pendingCandidates = [];
    this.queue = Promise.resolve();
    this.restartTimer = null;
    this.remoteStream = null;
    this.generation = 0;
    /** The last failed negotiation step, `{ step, message }`, or null. */
    this.negotiationError = null;
    /** The current connection's `webcall` data channel, or null. */
    this.channel = null;
    /** Chat messages `{ id, text, sentAt }` not yet handed to a channel, oldest first. */
    this.outbox = [];
    /** Ours handed to a channel, kept until their receipt comes; sent again on a new channel. */
    this.unconfirmed = new Unconfirmed();
    /** The ids of chat messages received, so a copy sent again shows once. */
    this.seen = new SeenIds();
    /** Test hook (debug.js): the next chat message received is lost, unread and unconfirmed. */
    this.loseNextChat = false;
    /** The verification code of the last negotiation ("123 456"), or null. */
    this.verificationCode = null;
    /** The fingerprints it was computed from: `{ local, remote }` (null when absent). */
    this.fingerprints = { local: null, remote: null };
    this.verificationSeq = 0;
    /** The transceiver of the second video section (our shared screen), or null. */
    this.screenTransceiver = null;
    /** The screen track we share, or null. */
    this.screenTrack = null;
    /** The other side's screen track, or null. */
    this.remoteScreenTrack = null;
    /** True while the other side says it shares its screen. */
    this.remoteSharing = false;
  }

  /** Takes ICE servers and transport policy from a `joined` message. */
  configure(joined) {
    this.config = {
      iceServers: Array.isArray(joined.ice_servers) ? joined.ice_servers : [],
      iceTransportPolicy: joined.ice_transport_policy === 'relay' ? 'relay' : 'all',
    };
  }

  /**
   * Sets the local media (a MediaStream, possibly without tracks). A
   * connection already running sends it at once: into the senders made
   * for it, without renegotiating, or by renegotiating where the
   * connection had no place for a kind of media.
   */
  setLocalStream(stream) {
    this.localStream = stream;
    const pc = this.pc;
    if (!pc || !stream) return;
    for (const kind of ['audio', 'video']) {
      const track = stream.getTracks().find((tr) => tr.kind === kind) || null;
      const transceiver = pc
        .getTransceivers()
        .find((tr) => !tr.stopped && tr !== this.screenTransceiver && tr.receiver.track.kind === kind && !tr.sender.track);
      if (track && transceiver) {
        if (transceiver.direction === 'recvonly' || transceiver.direction === 'inactive') {
          transceiver.direction = 'sendrecv';
        }
        transceiver.sender.replaceTrack(track).catch((err) => console.warn(`webcall: cannot send the ${kind}:`, err));
      } else if (track && !pc.getSenders().some((s) => s.track === track)) {
        pc.addTrack(track, stream);
      } else if (!track && transceiver && transceiver.direction === 'sendrecv') {
        // Nothing to send after all (the camera was refused): receive only.
        transceiver.direction = 'recvonly';
      }
    }
  }

  /** True when there is a connection that has been negotiated: one worth keeping. */
  get negotiated() {
    return !!this.pc && !!this.pc.remoteDescription && this.pc.connectionState !== 'closed';
  }

  /** Takes new roles for the same connection (after the other side came back). */
  setRoles({ initiator, polite }) {
    this.initiator = initiator;
    this.polite = polite;
  }

  /** The peer connection's state, or "new" when there is none. */
  get connectionState() {
    return this.pc ? this.pc.connectionState : 'new';
  }

  /**
   * Drops any connection and starts a fresh one.
   * The initiator offers at once; the other side waits for the offer.
   */
  start({ initiator, polite }) {
    this.close();
    this.generation += 1;
    this.initiator = initiator;
    this.polite = polite;
    this.awaitingFirstOffer = !initiator;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.pendingCandidates = [];
    const generation = this.generation;
    const pc = new RTCPeerConnection(this.config);
    this.pc = pc;
    performance.mark('webcall:pc-created');
    // Before any track or transceiver: the first offer or answer carries it.
    this.openChannel(pc);

    const stream = this.localStream;
    const kinds = new Set();
    if (stream) {
      for (const track of stream.getTracks()) {
        pc.addTrack(track, stream);
        kinds.add(track.kind);
      }
    }
    if (initiator) {
      // Always offer both kinds, so a receive-only side still gets media.
      // While the camera and microphone are still starting, the offer goes
      // out at once with senders that `setLocalStream` fills later.
      for (const kind of ['audio', 'video']) {
        if (!kinds.has(kind)) pc.addTransceiver(kind, { direction: stream ? 'recvonly' : 'sendrecv' });
      }
      // The second video section, for a shared screen: always offered.
      this.screenTransceiver = pc.addTransceiver('video', { direction: 'sendrecv' });
      this.attachScreen();
    }

    pc.addEventListener('negotiationneeded', () => this.negotiate(pc));
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (pc !== this.pc) return;
      console.info(`webcall: local candidate ${candidate ? candidate.candidate : 'end'}`);
      this.send({ type: 'candidate', candidate: candidate ? candidate.toJSON() : null });
    });
    pc.addEventListener('track', ({ track, streams, transceiver }) => {
      if (pc !== this.pc) return;
      if (track.kind === 'video' && this.isScreenSection(pc, transceiver)) {
        this.remoteScreenTrack = track;
        this.emit('remotescreen', { track });
        return;
      }
      if (!this.remoteStream) this.remoteStream = new MediaStream();
      const target = streams && streams[0] ? streams[0] : null;
      if (target && target !== this.remoteStream) {
        this.remoteStream = target;
      } else if (!this.remoteStream.getTracks().includes(track)) {
        this.remoteStream.addTrack(track);
      }
      this.emit('remotestream', { stream: this.remoteStream });
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'connected') performance.mark('webcall:connected');
      this.watchHealth(pc, generation);
      this.emit('state', { connectionState: pc.connectionState });
    });
    pc.addEventListener('iceconnectionstatechange', () => {
      if (pc !== this.pc) return;
      if (pc.iceConnectionState === 'connected') performance.mark('webcall:ice-connected');
      this.watchHealth(pc, generation);
    });
    this.emit('state', { connectionState: pc.connectionState });
  }

  /** Closes the connection, if any, and clears the remote media. */
  close() {
    clearTimeout(this.restartTimer);
    this.restartTimer = null;
    clearTimeout(this.offerTimer);
    this.negotiationError = null;
    this.setVerification(null, { local: null, remote: null });
    if (this.channel) {
      const channel = this.channel;
      this.channel = null;
      channel.close();
      this.emit('channel', { open: false });
    }
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      pc.close();
      this.emit('state', { connectionState: 'closed' });
    }
    if (this.remoteStream) {
      this.remoteStream = null;
      this.emit('remotestream', { stream: null });
    }
    this.screenTransceiver = null;
    if (this.remoteScreenTrack) {
      this.remoteScreenTrack = null;
      this.emit('remotescreen', { track: null });
    }
    this.setRemoteSharing(false);
    this.pendingCandidates = [];
  }

  /** Handles an `offer`, `answer` or `candidate` from the server, in arrival order. */
  handle(message) {
    this.queue = this.queue
      .then(() => this.handleNow(message))
      .catch((err) => console.warn(`webcall: handling ${message.type} failed:`, err));
    return this.queue;
  }

  async handleNow(message) {
    let pc = this.pc;
    if (
      pc &&
      message.type === 'offer' &&
      pc.remoteDescription &&
      fingerprint(pc.remoteDescription.sdp) !== fingerprint(message.sdp)
    ) {
      // An offer from a new connection (the other side reloaded and took its
      // seat back): ours belongs to the old one.
      console.info('webcall: the other side started a new connection; replacing ours');
      this.start({ initiator: false, polite: true });
      pc = this.pc;
    }
    if (!pc) {
      console.info(`webcall: ${message.type} arrived without a connection; ignored`);
      return;
    }
    if (message.type === 'candidate') {
      await this.addCandidate(pc, message.candidate);
      return;
    }
    if (message.type !== 'offer' && message.type !== 'answer') return;
    const description = { type: message.type, sdp: message.sdp };
    const collision = description.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) {
      console.info('webcall: ignoring a colliding offer (impolite side)');
      return;
    }
    if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') {
      console.info('webcall: ignoring an answer with no offer pending');
      return;
    }
    // On a collision the polite side rolls back its own offer implicitly.
    if (collision) console.info('webcall: colliding offer; rolling back our own (polite side)');
    performance.mark(`webcall:${description.type}-received`);
    try {
      await pc.setRemoteDescription(description);
      if (pc !== this.pc) return;
      await this.flushCandidates(pc);
      if (description.type === 'offer') {
        this.adoptScreenTransceiver(pc);
        await pc.setLocalDescription();
        if (pc !== this.pc) return;
        this.send({ type: 'answer', sdp: pc.localDescription.sdp });
        performance.mark('webcall:answer-sent');
        this.awaitingFirstOffer = false;
      }
    } catch (err) {
      this.negotiationFailed(pc, `handling ${message.type}`, err);
      return;
    }
    this.negotiationSucceeded(pc);
    await this.updateVerification(pc);
  }

  // ------------------------------------------------------------ data channel

  /** Makes the negotiated `webcall` channel of `pc` this call's channel. */
  openChannel(pc) {
    let channel;
    try {
      channel = pc.createDataChannel(CHANNEL_LABEL, { ...CHANNEL_OPTIONS });
    } catch (err) {
      console.warn('webcall: cannot create the data channel; no chat in this call:', err);
      return;
    }
    this.channel = channel;
    channel.bufferedAmountLowThreshold = SEND_BUFFER_LOW;
    channel.addEventListener('open', () => {
      if (channel !== this.channel) return;
      console.info(`webcall: data channel open (${this.outbox.length} waiting)`);
      this.emit('channel', { open: true });
      // A share that runs on goes on in a new connection: say so again.
      if (this.screenTrack) this.sendScreenState(true);
      this.sendUnconfirmed(channel);
      this.flushOutbox();
    });
    channel.addEventListener('close', () => {
      if (channel !== this.channel) return;
      console.info('webcall: data channel closed');
      this.emit('channel', { open: false });
    });
    channel.addEventListener('bufferedamountlow', () => {
      if (channel === this.channel) this.flushOutbox();
    });
    channel.addEventListener('message', ({ data }) => {
      if (channel !== this.channel) return;
      const screen = parseScreenMessage(data);
      if (screen) {
        this.setRemoteSharing(screen.sharing);
        return;
      }
      const receipt = parseReceipt(data);
      if (receipt) {
        this.unconfirmed.confirmed(receipt);
        return;
      }
      const message = parseMessage(data);
      if (!message) {
        const size = typeof data === 'string' ? `${data.length} characters` : 'binary';
        console.info(`webcall: ignored a data channel message (${size})`);
        return;
      }
      if (this.loseNextChat) {
        this.loseNextChat = false;
        console.info('webcall: lost a chat message on purpose (test hook)');
        return;
      }
      // Every copy is confirmed, so the sender stops keeping it.
      try {
        channel.send(encodeReceipt(message.id));
      } catch (err) {
        console.info('webcall: a chat receipt could not be sent:', err);
      }
      if (!this.seen.firstTime(message.id)) {
        console.info('webcall: a chat message came again; shown once');
        return;
      }
      this.emit('chat', { message: { id: message.id, text: message.text, sentAt: message.sentAt } });
    });
  }

  /** Sends again, in order, on a newly open `channel`, our messages whose receipt has not come. */
  sendUnconfirmed(channel) {
    const again = this.unconfirmed.toSendAgain();
    if (again.length === 0) return;
    console.info(`webcall: sending again ${again.length} chat messages not yet confirmed`);
    for (const message of again) {
      try {
        channel.send(encodeChat(message));
      } catch (err) {
        console.warn('webcall: a chat message could not be sent again; it waits for the next channel:', err);
        return;
      }
    }
  }

  /** True while chat goes out at once. */
  get channelOpen() {
    return !!this.channel && this.channel.readyState === 'open';
  }

  /**
   * Sends a chat message, or keeps it in the outbox until the channel is
   * open. Returns `{ message }` (`{ id, text, sentAt }`) or `{ refused }`:
   * 'empty', 'too_long', or 'outbox_full' (OUTBOX_LIMIT messages already
   * wait).
   */
  sendChat(text) {
    const problem = chatTextProblem(text);
    if (problem) return { refused: problem };
    if (this.outbox.length >= OUTBOX_LIMIT) return { refused: 'outbox_full' };
    const message = { id: newMessageId(), text, sentAt: Date.now() };
    this.outbox.push(message);
    this.flushOutbox();
    return { message };
  }

  /** Hands waiting messages to an open channel, in order, while its buffer has room. */
  flushOutbox() {
    const channel = this.channel;
    while (channel && channel === this.channel && channel.readyState === 'open' && this.outbox.length > 0) {
      if (channel.bufferedAmount > SEND_BUFFER_HIGH) return; // "bufferedamountlow" goes on
      const message = this.outbox[0];
      try {
        channel.send(encodeChat(message));
      } catch (err) {
        console.warn('webcall: a chat message could not be sent; it waits:', err);
        return;
      }
      this.outbox.shift();
      if (this.unconfirmed.sent(message)) console.info('webcall: too many chat messages unconfirmed; forgot the oldest');
      this.emit('chatsent', { id: message.id });
    }
  }

  // ------------------------------------------------------------ screen sharing

  /** True when `transceiver` belongs to the second video section of `pc`'s remote description. */
  isScreenSection(pc, transceiver) {
    if (!transceiver) return false;
    if (transceiver === this.screenTransceiver) return true;
    const remote = pc.remoteDescription;
    return !!remote && videoSectionIndex(remote.sdp, transceiver.mid) === 1;
  }

  /**
   * On the answering side: makes the transceiver of the offer's second
   * video section ours for sharing (it can send without a new offer).
   */
  adoptScreenTransceiver(pc) {
    if (this.screenTransceiver && !this.screenTransceiver.stopped) return;
    const remote = pc.remoteDescription;
    const transceiver = pc
      .getTransceivers()
      .find((tr) => !tr.stopped && tr.mid !== null && videoSectionIndex(remote && remote.sdp, tr.mid) === 1);
    if (!transceiver) return; // an older peer offers no screen section
    if (transceiver.direction !== 'sendrecv') transceiver.direction = 'sendrecv';
    this.screenTransceiver = transceiver;
    this.attachScreen();
  }

  /** True when this connection has a place to send a screen. */
  get canShareScreen() {
    return !!this.screenTransceiver;
  }

  /** Puts the shared screen track (or none) on the screen transceiver. */
  attachScreen() {
    const transceiver = this.screenTransceiver;
    if (!transceiver || transceiver.sender.track === this.screenTrack) return Promise.resolve();
    return transceiver.sender
      .replaceTrack(this.screenTrack)
      .catch((err) => console.warn('webcall: cannot send the screen:', err));
  }

  /**
   * Shares `track` (from getDisplayMedia) as the screen, or stops sharing
   * with null. Sends the `screen` message; a connection made later gets
   * the track and the message too.
   */
  async setScreenTrack(track) {
    const was = !!this.screenTrack;
    this.screenTrack = track;
    await this.attachScreen();
    if (was !== !!track) this.sendScreenState(!!track);
  }

  /** Tells the other side that a share started or stopped (dropped while the channel is closed). */
  sendScreenState(sharing) {
    const channel = this.channel;
    if (!channel || channel.readyState !== 'open') return;
    try {
      channel.send(encodeScreen(sharing));
    } catch (err) {
      console.warn('webcall: cannot send the screen message:', err);
    }
  }

  setRemoteSharing(sharing) {
    if (this.remoteSharing === sharing) return;
    this.remoteSharing = sharing;
    console.info(`webcall: the other side ${sharing ? 'shares its screen' : 'stopped sharing its screen'}`);
    this.emit('screen', { sharing });
  }

  // ------------------------------------------------------------ verification code

  /** Computes the verification code again from `pc`'s current descriptions. */
  async updateVerification(pc) {
    if (pc !== this.pc || pc.signalingState !== 'stable') return;
    const local = pc.currentLocalDescription ? pc.currentLocalDescription.sdp : null;
    const remote = pc.currentRemoteDescription ? pc.currentRemoteDescription.sdp : null;
    this.verificationSeq += 1;
    const seq = this.verificationSeq;
    let code = null;
    try {
      code = await verificationCode(local, remote);
    } catch (err) {
      // No crypto.subtle outside a secure context: no code, the call goes on.
      console.warn('webcall: cannot compute the verification code:', err);
    }
    if (pc !== this.pc || seq !== this.verificationSeq) return;
    this.setVerification(code, { local: fingerprintOf(local), remote: fingerprintOf(remote) });
  }

  setVerification(code, fingerprints) {
    this.fingerprints = fingerprints;
    if (code === this.verificationCode) return;
    this.verificationCode = code;
    if (code) console.info(`webcall: verification code ${code}`);
    this.emit('verification', { code });
  }

  // ------------------------------------------------------------ negotiation

  /** Keeps a failed step of negotiation on `pc`, unless `pc` is no longer this call's. */
  negotiationFailed(pc, step, err) {
    console.warn(`webcall: ${step} failed:`, err);
    if (pc !== this.pc || pc.signalingState === 'closed') return;
    this.negotiationError = { step, message: err && err.name ? `${err.name}: ${err.message}` : String(err) };
    this.emit('state', { connectionState: pc.connectionState });
  }

  /** Forgets an earlier failed step: negotiation on `pc` went on. */
  negotiationSucceeded(pc) {
    if (pc !== this.pc || !this.negotiationError) return;
    console.info(`webcall: negotiating works again (after ${this.negotiationError.step} failed)`);
    this.negotiationError = null;
    this.emit('state', { connectionState: pc.connectionState });
  }

  async addCandidate(pc, candidate) {
    if (!candidate || !candidate.candidate) return; // end of candidates: nothing to do
    if (!pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    try {
      await pc.addIceCandidate(candidate);
    } catch (err) {
      if (!this.ignoreOffer) console.info('webcall: a remote candidate was not usable:', err.message);
    }
  }

  async flushCandidates(pc) {
    const pending = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const candidate of pending) await this.addCandidate(pc, candidate);
  }

  async negotiate(pc) {
    if (pc !== this.pc || this.awaitingFirstOffer) return;
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      if (pc !== this.pc) return;
      this.send({ type: 'offer', sdp: pc.localDescription.sdp });
      performance.mark('webcall:offer-sent');
      this.watchOffer(pc);
      this.negotiationSucceeded(pc);
    } catch (err) {
      this.negotiationFailed(pc, 'creating an offer', err);
    } finally {
      this.makingOffer = false;
    }
  }

  /** Makes the offer just sent again if no answer comes (a lost message). */
  watchOffer(pc) {
    // A later offer replaces the timer of an earlier one.
    clearTimeout(this.offerTimer);
    this.offerTimer = setTimeout(() => this.offerStalled(pc), OFFER_STALL_MS);
  }

  async offerStalled(pc) {
    if (pc !== this.pc || pc.signalingState !== 'have-local-offer') return;
    console.info(`webcall: no answer to our offer for ${OFFER_STALL_MS} ms; offering again`);
    try {
      this.makingOffer = true;
      await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
      if (pc !== this.pc) return;
      this.send({ type: 'offer', sdp: pc.localDescription.sdp });
      this.watchOffer(pc);
    } catch (err) {
      this.negotiationFailed(pc, 'offering again', err);
    } finally {
      this.makingOffer = false;
    }
  }

  /** Restarts ICE when the connection failed or stayed disconnected (impolite side only). */
  watchHealth(pc, generation) {
    const ice = pc.iceConnectionState;
    const conn = pc.connectionState;
    if (conn === 'connected' || ice === 'connected' || ice === 'completed') {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
      return;
    }
    if (this.polite || this.restartTimer) return;
    if (conn === 'failed' || ice === 'failed') {
      this.restartIce(pc, generation);
    } else if (ice === 'disconnected') {
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        // Still down: disconnected, or failed meanwhile (that change found the timer set).
        const down = ['disconnected', 'failed'].includes(pc.iceConnectionState) || pc.connectionState === 'failed';
        if (pc === this.pc && generation === this.generation && down) {
          this.restartIce(pc, generation);
        }
      }, DISCONNECTED_RESTART_MS);
    }
  }

  restartIce(pc, generation) {
    if (pc !== this.pc || generation !== this.generation) return;
    console.info('webcall: restarting ICE');
    pc.restartIce();
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (pc === this.pc && pc.connectionState !== 'connected') this.watchHealth(pc, generation);
    }, RESTART_RETRY_MS);
  }

  /**
   * Restarts ICE now, by the same path as the automatic restart; works on
   * either side (the polite side's offer goes through perfect negotiation).
   * Returns whether there was a connection to restart.
   */
  restartIceNow() {
    if (!this.pc) return false;
    this.restartIce(this.pc, this.generation);
    return true;
  }

  /** The ICE usernames of the current local and remote descriptions (null when absent). */
  iceUfrags() {
    const ufrag = (description) => {
      const match = description && description.sdp ? description.sdp.match(/^a=ice-ufrag:(\S+)/m) : null;
      return match ? match[1] : null;
    };
    const pc = this.pc;
    return { local: ufrag(pc && pc.localDescription), remote: ufrag(pc && pc.remoteDescription) };
  }

  /** Enables or disables the local tracks of one kind (the connection keeps running). */
  setEnabled(kind, enabled) {
    if (!this.localStream) return;
    for (const track of this.localStream.getTracks()) {
      if (track.kind === kind) track.enabled = enabled;
    }
  }

  /**
   * A summary of getStats: decoded video, received audio (bytes, packets,
   * total energy, present level), bytes sent and video frames encoded,
   * the selected candidate pair and the other side's candidate types.
   * Numbers are 0 when absent.
   */
  async stats() {
    const summary = emptyStats(this.connectionState);
    const pc = this.pc;
    if (!pc) return summary;
    const report = await pc.getStats();
    const screenMid = this.screenTransceiver ? this.screenTransceiver.mid : null;
    report.forEach((s) => {
      const kind = s.kind || s.mediaType;
      const screen = kind === 'video' && screenMid !== null && s.mid === screenMid;
      if (screen && s.type === 'inbound-rtp') {
        summary.screenFramesDecoded += s.framesDecoded || 0;
        summary.screenWidth = Math.max(summary.screenWidth, s.frameWidth || 0);
        summary.screenHeight = Math.max(summary.screenHeight, s.frameHeight || 0);
      } else if (screen && s.type === 'outbound-rtp') {
        summary.screenFramesEncoded += s.framesEncoded || 0;
      } else if (s.type === 'inbound-rtp' && kind === 'video') {
        summary.videoFramesDecoded += s.framesDecoded || 0;
        summary.videoWidth = Math.max(summary.videoWidth, s.frameWidth || 0);
        summary.videoHeight = Math.max(summary.videoHeight, s.frameHeight || 0);
      } else if (s.type === 'inbound-rtp' && kind === 'audio') {
        summary.audioBytesReceived += s.bytesReceived || 0;
        summary.audioPacketsReceived += s.packetsReceived || 0;
        summary.audioEnergyReceived += s.totalAudioEnergy || 0;
        summary.audioLevelReceived = Math.max(summary.audioLevelReceived, s.audioLevel || 0);
      } else if (s.type === 'outbound-rtp' && kind === 'video') {
        summary.videoBytesSent += s.bytesSent || 0;
        summary.videoFramesEncoded += s.framesEncoded || 0;
      } else if (s.type === 'outbound-rtp' && kind === 'audio') {
        summary.audioBytesSent += s.bytesSent || 0;
      }
    });
    summary.selectedPair = selectedPair(report);
    const remoteTypes = new Set();
    report.forEach((s) => {
      if (s.type === 'remote-candidate' && s.candidateType) remoteTypes.add(s.candidateType);
    });
    summary.remoteCandidateTypes = [...remoteTypes].sort();
    return summary;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
