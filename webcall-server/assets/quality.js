// Call quality, without DOM: the grade (good, poor, bad) from round-trip
// time, packet loss and frame rate over a sliding window with hysteresis,
// the details (codec, resolution, bitrates, RTT, loss, direct or relayed)
// read from a getStats report, and the end-of-call summary.
//
// The rules are the same as webcall-core's `call::quality` (see
// ARCHITECTURE.md, "Call quality"): over the last WINDOW_MS, bad if
// rtt > 400 ms or loss > 10 % or, while video arrives, fps < 5; poor if
// rtt > 200 ms or loss > 3 % or fps < 15; good otherwise. A worse grade is
// shown once it has held for WORSEN_AFTER_MS, a better one after
// IMPROVE_AFTER_MS, except in the first WINDOW_MS of a connection, while
// the video ramps up: then a better grade is shown at once.
// quality-view.js draws what this module works out.

export const WINDOW_MS = 5000;
export const MIN_SPAN_MS = 1500;
export const WORSEN_AFTER_MS = 2000;
export const IMPROVE_AFTER_MS = 4000;
export const BAD_RTT_MS = 400;
export const POOR_RTT_MS = 200;
export const BAD_LOSS = 0.1;
export const POOR_LOSS = 0.03;
export const BAD_FPS = 5;
export const POOR_FPS = 15;
/** Incoming video at this bitrate or more counts as video being expected. */
export const VIDEO_EXPECTED_BPS = 30000;

export const GRADES = ['good', 'poor', 'bad'];
const RANK = { good: 0, poor: 1, bad: 2 };

/**
 * The grade of one set of figures, without hysteresis:
 * `{ rttMs (or null), loss (0..1), fps, videoExpected }`.
 */
export function grade({ rttMs = null, loss = 0, fps = 0, videoExpected = false } = {}) {
  const rtt = rttMs ?? 0;
  const slow = (limit) => videoExpected && fps < limit;
  if (rtt > BAD_RTT_MS || loss > BAD_LOSS || slow(BAD_FPS)) return 'bad';
  if (rtt > POOR_RTT_MS || loss > POOR_LOSS || slow(POOR_FPS)) return 'poor';
  return 'good';
}

/**
 * What a getStats report says, as plain numbers: totals since the
 * connection started (packets received and lost, video frames decoded,
 * bytes in and out), the round-trip time now (the larger of the selected
 * pair's and RTCP's),
 * the loss the other side reports for our packets, and the details:
 * codec, resolution, and whether the selected pair is relayed.
 * `report` is an RTCStatsReport (or any Map of stats by id).
 */
export function readReport(report) {
  const r = {
    rttMs: null,
    packetsReceived: 0,
    packetsLost: 0,
    remoteLoss: null,
    framesDecoded: 0,
    videoBytesReceived: 0,
    bytesReceived: 0,
    bytesSent: 0,
    codec: null,
    width: 0,
    height: 0,
    path: null,
  };
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  let rtcpRtt = null;
  report.forEach((s) => {
    const kind = s.kind || s.mediaType;
    if (s.type === 'inbound-rtp') {
      r.packetsReceived += s.packetsReceived || 0;
      r.packetsLost += Math.max(0, s.packetsLost || 0);
      r.bytesReceived += s.bytesReceived || 0;
      if (kind === 'video') {
        r.framesDecoded += s.framesDecoded || 0;
        r.videoBytesReceived += s.bytesReceived || 0;
        r.width = Math.max(r.width, s.frameWidth || 0);
        r.height = Math.max(r.height, s.frameHeight || 0);
        const codec = s.codecId && report.get(s.codecId);
        if (codec && codec.mimeType) r.codec = codec.mimeType.replace(/^video\//i, '');
      }
    } else if (s.type === 'outbound-rtp') {
      r.bytesSent += s.bytesSent || 0;
    } else if (s.type === 'remote-inbound-rtp') {
      if (typeof s.fractionLost === 'number') r.remoteLoss = Math.max(r.remoteLoss ?? 0, s.fractionLost);
      if (typeof s.roundTripTime === 'number') rtcpRtt = Math.max(rtcpRtt ?? 0, s.roundTripTime * 1000);
    }
  });
  // The pair's round trip comes from ICE checks, seconds apart; RTCP's
  // from every report: the larger of the two is the one to judge by.
  const pairRtt = pair && typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null;
  if (pairRtt !== null || rtcpRtt !== null) r.rttMs = Math.max(pairRtt ?? 0, rtcpRtt ?? 0);
  const local = pair && report.get(pair.localCandidateId);
  const remote = pair && report.get(pair.remoteCandidateId);
  if (local) {
    const relayed = local.candidateType === 'relay' || (remote && remote.candidateType === 'relay');
    r.path = relayed ? 'relayed' : 'direct';
  }
  return r;
}

/**
 * Follows one call: takes `readReport` results with the time they were
 * read (`sample(nowMs, reading)`, about once a second), keeps the grade
 * shown, the details (bitrates from the byte totals) and the time spent in
 * each grade, for the summary. No DOM, no clock: the caller says the time.
 */
export class QualityTracker {
  constructor() {
    this.window = [];
    this.shown = null;
    this.pending = null;
    this.measures = { rttMs: null, loss: 0, fps: 0, videoExpected: false };
    this.timeIn = { good: 0, poor: 0, bad: 0 };
    this.lastAt = null;
    this.last = null;
    this.bitrateIn = 0;
    this.bitrateOut = 0;
    this.details = null;
    this.path = null;
    this.relayedEver = false;
    this.startedAt = null;
    this.endedAt = null;
    this.since = null;
  }

  /** Takes one reading; returns the grade shown now (null before the first). */
  sample(nowMs, reading) {
    if (this.startedAt === null) this.startedAt = nowMs;
    if (this.lastAt !== null && this.shown) this.timeIn[this.shown] += Math.max(0, nowMs - this.lastAt);
    const prev = this.last;
    this.lastAt = nowMs;
    this.last = { at: nowMs, ...reading };
    if (prev) {
      const secs = Math.max(0.001, (nowMs - prev.at) / 1000);
      this.bitrateIn = Math.max(0, ((reading.bytesReceived - prev.bytesReceived) * 8) / secs);
      this.bitrateOut = Math.max(0, ((reading.bytesSent - prev.bytesSent) * 8) / secs);
    }
    if (reading.path) {
      this.path = reading.path;
      if (reading.path === 'relayed') this.relayedEver = true;
    }
    const back = this.window[this.window.length - 1];
    if (
      back &&
      (reading.packetsReceived < back.packetsReceived ||
        reading.framesDecoded < back.framesDecoded ||
        reading.videoBytesReceived < back.videoBytesReceived)
    ) {
      this.window = []; // a new connection: its totals start again
      this.since = null;
    }
    if (this.since === null) this.since = nowMs;
    this.window.push(this.last);
    while (this.window.length && nowMs - this.window[0].at > WINDOW_MS) this.window.shift();
    this.details = {
      codec: reading.codec,
      width: reading.width,
      height: reading.height,
      bitrateIn: Math.round(this.bitrateIn),
      bitrateOut: Math.round(this.bitrateOut),
      rttMs: reading.rttMs,
      loss: this.measures.loss,
      path: this.path,
    };
    const first = this.window[0];
    const span = nowMs - first.at;
    const packets = (s) => s.packetsReceived + s.packetsLost;
    const last = this.window[this.window.length - 1];
    // A connection whose media has not started is not graded (not "good").
    if (span < MIN_SPAN_MS || packets(last) === packets(first)) return this.shown;
    this.measures = measure(this.window, span);
    this.details.loss = this.measures.loss;
    if (this.measures.rttMs !== null) this.details.rttMs = this.measures.rttMs;
    const raw = grade(this.measures);
    if (this.shown === null || this.shown === raw) {
      this.shown = raw;
      this.pending = null;
      return this.shown;
    }
    if (!this.pending || this.pending.grade !== raw) this.pending = { grade: raw, since: nowMs };
    const settled = nowMs - this.since >= WINDOW_MS;
    const hold = RANK[raw] > RANK[this.shown] ? WORSEN_AFTER_MS : settled ? IMPROVE_AFTER_MS : 0;
    if (nowMs - this.pending.since >= hold) {
      this.shown = raw;
      this.pending = null;
    }
    return this.shown;
  }

  /** No connection to grade now: the time until the next reading counts to no grade. */
  pause() {
    this.lastAt = null;
  }

  /** The call is over (hang-up or the other side left) at `nowMs`. */
  end(nowMs) {
    if (this.endedAt !== null) return;
    if (this.lastAt !== null && this.shown) this.timeIn[this.shown] += Math.max(0, nowMs - this.lastAt);
    this.lastAt = null;
    this.endedAt = nowMs;
  }

  /** Share of the graded time in each grade, 0..1 each (all 0 before any). */
  shares() {
    const total = this.timeIn.good + this.timeIn.poor + this.timeIn.bad;
    if (total <= 0) return { good: 0, poor: 0, bad: 0 };
    return { good: this.timeIn.good / total, poor: this.timeIn.poor / total, bad: this.timeIn.bad / total };
  }

  /**
   * The end-of-call summary: `{ durationMs, path, average, share, shares }`
   * (`average`: the grade the call spent most time in, the better on a tie,
   * null if never graded; `share`: its share; `path`: 'relayed' if media
   * ever went through a relay, else 'direct', null if never connected).
   */
  summary(nowMs = this.endedAt ?? this.lastAt ?? 0) {
    const shares = this.shares();
    let average = null;
    for (const g of GRADES) if (shares[g] > 0 && (average === null || shares[g] > shares[average])) average = g;
    return {
      durationMs: this.startedAt === null ? 0 : Math.max(0, (this.endedAt ?? nowMs) - this.startedAt),
      path: this.relayedEver ? 'relayed' : this.path,
      average,
      share: average ? shares[average] : 0,
      shares,
    };
  }
}

function measure(window, spanMs) {
  const a = window[0];
  const b = window[window.length - 1];
  const secs = spanMs / 1000;
  const received = Math.max(0, b.packetsReceived - a.packetsReceived);
  const lost = Math.max(0, b.packetsLost - a.packetsLost);
  const incoming = received + lost > 0 ? lost / (received + lost) : 0;
  const remote = window.map((p) => p.remoteLoss).filter((v) => typeof v === 'number');
  const remoteLoss = remote.length ? remote.reduce((x, y) => x + y, 0) / remote.length : 0;
  const rtts = window.map((p) => p.rttMs).filter((v) => typeof v === 'number');
  const videoBps = (Math.max(0, b.videoBytesReceived - a.videoBytesReceived) * 8) / secs;
  return {
    rttMs: rtts.length ? rtts.reduce((x, y) => x + y, 0) / rtts.length : null,
    loss: Math.max(incoming, remoteLoss),
    fps: Math.max(0, b.framesDecoded - a.framesDecoded) / secs,
    videoExpected: videoBps >= VIDEO_EXPECTED_BPS,
  };
}

/** "1.5 Mbit/s", "300 kbit/s". */
export function formatBitrate(bps) {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  return `${Math.round(bps / 1000)} kbit/s`;
}

/** "2:05" or "1:02:05" for a duration in ms. */
export function formatDuration(ms) {
  const total = Math.round(ms / 1000);
  const s = total % 60;
  const m = Math.floor(total / 60) % 60;
  const h = Math.floor(total / 3600);
  const pad = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}
