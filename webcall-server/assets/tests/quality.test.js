// The call quality grade, its window and hysteresis, the figures read
// from a getStats report, and the end-of-call summary (quality.js). The
// same rules as webcall-core's call::quality. Run with `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { grade, readReport, QualityTracker, formatBitrate, formatDuration } from '../quality.js';
import { STRINGS } from '../i18n.js';

const m = (rttMs, loss, fps, videoExpected = true) => ({ rttMs, loss, fps, videoExpected });

test('each figure past its limit makes the grade poor or bad', () => {
  assert.equal(grade(m(50, 0, 30)), 'good');
  assert.equal(grade(m(200, 0.03, 15)), 'good', 'the limits themselves are good');
  assert.equal(grade(m(201, 0, 30)), 'poor');
  assert.equal(grade(m(50, 0.031, 30)), 'poor');
  assert.equal(grade(m(50, 0, 14)), 'poor');
  assert.equal(grade(m(401, 0, 30)), 'bad');
  assert.equal(grade(m(50, 0.11, 30)), 'bad');
  assert.equal(grade(m(50, 0, 4)), 'bad');
  assert.equal(grade(m(50, 0, 0, false)), 'good', 'without video the frame rate does not count');
  assert.equal(grade(m(null, 0, 30)), 'good', 'no rtt yet');
});

/** A steady call after `n` seconds: `lost` of 100 packets a second lost. */
const steady = (n, { rtt = 20, lost = 0, fps = 30, relay = false } = {}) => ({
  rttMs: rtt,
  packetsReceived: n * (100 - lost),
  packetsLost: n * lost,
  remoteLoss: null,
  framesDecoded: n * fps,
  videoBytesReceived: n * 62500,
  bytesReceived: n * 70000,
  bytesSent: n * 80000,
  codec: 'VP8',
  width: 640,
  height: 480,
  path: relay ? 'relayed' : 'direct',
});

test('a steady good call is graded once the window spans enough, with its details', () => {
  const q = new QualityTracker();
  assert.equal(q.sample(0, steady(0)), null);
  assert.equal(q.sample(1000, steady(1)), null);
  assert.equal(q.sample(2000, steady(2)), 'good');
  assert.deepEqual(q.details, {
    codec: 'VP8',
    width: 640,
    height: 480,
    bitrateIn: 560000,
    bitrateOut: 640000,
    rttMs: 20,
    loss: 0,
    path: 'direct',
  });
});

test('heavy loss turns the grade bad after a short hold; a blip does not', () => {
  const q = new QualityTracker();
  let s = steady(0);
  let t = 0;
  const step = (lost, rtt = 20) => {
    t += 1000;
    s = {
      ...s,
      rttMs: rtt,
      packetsReceived: s.packetsReceived + 100 - lost,
      packetsLost: s.packetsLost + lost,
      framesDecoded: s.framesDecoded + 30,
      videoBytesReceived: s.videoBytesReceived + 62500,
    };
    return q.sample(t, s);
  };
  for (let i = 0; i < 6; i++) step(0);
  assert.equal(q.shown, 'good');
  assert.equal(step(0, 1500), 'good', 'one slow second shows nothing yet');
  assert.equal(step(0), 'good');
  const seen = [];
  for (let i = 0; i < 6; i++) seen.push(step(20));
  assert.equal(seen.at(-1), 'bad');
  const firstBad = seen.indexOf('bad');
  assert.ok(firstBad >= 2 && firstBad <= 4, `bad after ${firstBad + 1} s`);
  // Clean again: better only after the longer hold.
  const back = [];
  for (let i = 0; i < 12; i++) back.push(step(0));
  assert.equal(back.at(-1), 'good');
  assert.ok(back.indexOf('good') >= 4, `good again after ${back.indexOf('good') + 1} s: too soon`);
});

test('a slow start is not held against the call', () => {
  const q = new QualityTracker();
  const shown = [];
  for (let i = 0; i < 6; i++) {
    const frames = i <= 2 ? i * 5 : 10 + (i - 2) * 30;
    shown.push(q.sample(i * 1000, { ...steady(i), framesDecoded: frames }));
  }
  assert.equal(shown[2], 'poor', shown.join());
  assert.equal(shown[4], 'good', `better at once while settling: ${shown.join()}`);
});

test('a frozen picture is bad; a call without video is not', () => {
  const frozen = new QualityTracker();
  for (let i = 0; i < 4; i++) frozen.sample(i * 1000, { ...steady(i), framesDecoded: i });
  assert.equal(frozen.shown, 'bad');
  const audio = new QualityTracker();
  for (let i = 0; i < 4; i++) audio.sample(i * 1000, { ...steady(i), framesDecoded: 0, videoBytesReceived: 0 });
  assert.equal(audio.shown, 'good');
});

test('the summary: duration, path (relayed if ever), the usual grade and its share', () => {
  const q = new QualityTracker();
  assert.equal(q.summary().average, null);
  for (let i = 0; i <= 10; i++) q.sample(10000 + i * 1000, steady(i));
  for (let i = 11; i <= 12; i++) q.sample(10000 + i * 1000, steady(i, { relay: true, rtt: 300 }));
  q.end(23000);
  const s = q.summary();
  assert.equal(s.durationMs, 13000);
  assert.equal(s.path, 'relayed');
  assert.equal(s.average, 'good');
  assert.ok(s.share > 0.9 && s.share <= 1, `share ${s.share}`);
  assert.ok(Math.abs(s.shares.good + s.shares.poor + s.shares.bad - 1) < 1e-9);
  q.end(99000);
  assert.equal(q.summary().durationMs, 13000, 'ending twice changes nothing');
});

test('time without a connection counts to no grade', () => {
  const q = new QualityTracker();
  for (let i = 0; i <= 4; i++) q.sample(i * 1000, steady(i));
  q.pause();
  q.sample(60000, { ...steady(5), rttMs: 900 });
  q.sample(61000, { ...steady(6), rttMs: 900 });
  q.end(62000);
  const s = q.summary();
  assert.equal(s.durationMs, 62000);
  assert.equal(s.average, 'good');
  assert.ok(Math.abs(s.shares.good - 1) < 1e-9, JSON.stringify(s));
  assert.equal(q.timeIn.good, 4000, 'graded from 2 s to 4 s, then 60 s to 62 s; not the minute between');
});

test('a new connection starts the window again', () => {
  const q = new QualityTracker();
  for (let i = 0; i < 4; i++) q.sample(i * 1000, steady(10 + i));
  assert.equal(q.shown, 'good');
  assert.equal(q.sample(4000, steady(0)), 'good');
  assert.equal(q.window.length, 1);
});

/** A getStats report as Chromium gives one, in a Map. */
function report(entries) {
  return new Map(entries.map((e) => [e.id, e]));
}

test('a getStats report gives rtt, loss, frames, codec, resolution and the path', () => {
  const base = [
    { id: 'T', type: 'transport', selectedCandidatePairId: 'CP' },
    { id: 'CP', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', currentRoundTripTime: 0.042 },
    { id: 'L', type: 'local-candidate', candidateType: 'host' },
    { id: 'R', type: 'remote-candidate', candidateType: 'prflx' },
    { id: 'C', type: 'codec', mimeType: 'video/H264' },
    { id: 'IV', type: 'inbound-rtp', kind: 'video', packetsReceived: 900, packetsLost: 10, framesDecoded: 300, bytesReceived: 500000, frameWidth: 1280, frameHeight: 720, codecId: 'C' },
    { id: 'IA', type: 'inbound-rtp', kind: 'audio', packetsReceived: 500, packetsLost: 2, bytesReceived: 40000 },
    { id: 'OV', type: 'outbound-rtp', kind: 'video', bytesSent: 600000 },
    { id: 'OA', type: 'outbound-rtp', kind: 'audio', bytesSent: 41000 },
    { id: 'RI', type: 'remote-inbound-rtp', kind: 'video', fractionLost: 0.02, roundTripTime: 0.03 },
  ];
  const r = readReport(report(base));
  assert.deepEqual(r, {
    rttMs: 42,
    packetsReceived: 1400,
    packetsLost: 12,
    remoteLoss: 0.02,
    framesDecoded: 300,
    videoBytesReceived: 500000,
    bytesReceived: 540000,
    bytesSent: 641000,
    codec: 'H264',
    width: 1280,
    height: 720,
    path: 'direct',
  });
  // Through TURN: the local candidate is a relay. Without a pair rtt, the
  // RTCP round trip stands in.
  const relayed = base.map((e) => {
    if (e.id === 'L') return { ...e, candidateType: 'relay' };
    if (e.id === 'CP') return { ...e, currentRoundTripTime: undefined };
    return e;
  });
  const rr = readReport(report(relayed));
  assert.equal(rr.path, 'relayed');
  assert.equal(rr.rttMs, 30);
  // Nothing selected yet: no path, no rtt.
  const none = readReport(report([{ id: 'IA', type: 'inbound-rtp', kind: 'audio', packetsReceived: 5 }]));
  assert.equal(none.path, null);
  assert.equal(none.rttMs, null);
});

test('figures are written readably, and every quality text exists in both languages', () => {
  assert.equal(formatBitrate(1500000), '1.5 Mbit/s');
  assert.equal(formatBitrate(300400), '300 kbit/s');
  assert.equal(formatDuration(125000), '2:05');
  assert.equal(formatDuration(3725000), '1:02:05');
  const keys = Object.keys(STRINGS.en).filter((k) => /^(quality_|path_|summary_)/.test(k));
  assert.ok(keys.length >= 15, keys.join());
  for (const k of keys) assert.ok(STRINGS.ru[k] && STRINGS.ru[k] !== STRINGS.en[k], k);
});

test('a connection whose media has not started is not graded, then loss shows at once as bad', () => {
  const q = new QualityTracker();
  const idle = { ...steady(0), packetsReceived: 0, packetsLost: 0, framesDecoded: 0, videoBytesReceived: 0 };
  for (let s = 0; s < 3; s += 1) assert.equal(q.sample(s * 1000, idle), null);
  const lossy = (n) => ({ ...steady(n, { lost: 25, fps: 0 }) });
  q.sample(3000, lossy(1));
  assert.equal(q.sample(5000, lossy(3)), 'bad');
});
