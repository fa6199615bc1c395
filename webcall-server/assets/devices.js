// Cameras, microphones and speakers: the lists to choose from (the three
// <select>s of the device picker), the choice remembered on this device
// (localStorage, by deviceId), the constraints that ask for it, and the
// speaker of the remote video (HTMLMediaElement.setSinkId, where the
// browser has it; elsewhere the speaker choice stays hidden).
//
// A remembered device is asked for as `ideal`, so a device that is gone
// (unplugged, another browser profile) falls back to the default instead of
// failing. Switching a track in a running call is room.js's (`switchDevice`):
// it replaces the sender's track (RTCRtpSender.replaceTrack), which needs no
// renegotiation.

import { t } from './i18n.js';
import { $, show } from './dom.js';

/** The device kinds of the picker, as enumerateDevices names them. */
export const KINDS = ['videoinput', 'audioinput', 'audiooutput'];

/** The <select> of each kind. */
const SELECT_ID = { videoinput: 'pick-camera', audioinput: 'pick-mic', audiooutput: 'pick-speaker' };

/** The name of an unlabelled device of each kind ("Camera 2"). */
const FALLBACK_NAME = { videoinput: 'camera', audioinput: 'microphone', audiooutput: 'speaker' };

const storageKey = (kind) => `webcall.device.${kind}`;

/** The deviceId remembered for `kind`, or null. */
export function remembered(kind) {
  try {
    return window.localStorage.getItem(storageKey(kind)) || null;
  } catch {
    return null; // storage disabled: nothing is remembered
  }
}

/** Remembers `deviceId` for `kind` on this device (null forgets). */
export function remember(kind, deviceId) {
  try {
    if (deviceId) window.localStorage.setItem(storageKey(kind), deviceId);
    else window.localStorage.removeItem(storageKey(kind));
  } catch {
    // Storage can be disabled (private mode): the choice lasts this page only.
  }
}

/** True where the remote video's speaker can be chosen. */
export function speakerSupported() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/**
 * `constraints` (a getUserMedia track constraint object, or `true`) with
 * the remembered device of `kind` asked for as `ideal`: a device that is
 * gone is replaced by the default.
 */
export function withRemembered(constraints, kind) {
  const id = remembered(kind);
  const base = constraints === true ? {} : { ...constraints };
  if (!id) return constraints;
  // A chosen camera wins over "the one facing the user".
  delete base.facingMode;
  return { ...base, deviceId: { ideal: id } };
}

/**
 * The device picker: fills the selects from enumerateDevices, marks the
 * devices in use, and calls `onChoose(kind, deviceId)` when the user picks
 * another one.
 */
export class DevicePicker {
  /** @param {(kind: string, deviceId: string) => void} onChoose */
  constructor(onChoose) {
    this.onChoose = onChoose;
    /** The devices of the last listing: `{ kind, deviceId, label }`. */
    this.devices = [];
    /** The deviceId in use by kind (the tracks' settings, the speaker set). */
    this.current = { videoinput: null, audioinput: null, audiooutput: remembered('audiooutput') };
    this.bound = false;
  }

  bind() {
    if (this.bound) return;
    this.bound = true;
    for (const kind of KINDS) {
      const select = $(SELECT_ID[kind]);
      select.addEventListener('change', () => this.onChoose(kind, select.value));
    }
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener('devicechange', () => this.refresh());
    }
  }

  /** Notes the devices `stream`'s tracks come from, and lists the devices again. */
  useStream(stream) {
    for (const track of stream ? stream.getTracks() : []) {
      const kind = track.kind === 'video' ? 'videoinput' : 'audioinput';
      const settings = track.getSettings ? track.getSettings() : {};
      if (settings.deviceId) this.current[kind] = settings.deviceId;
    }
    return this.refresh();
  }

  /** Lists the devices into the selects. */
  async refresh() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    let devices;
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch (err) {
      console.warn('webcall: cannot list the devices:', err);
      return;
    }
    // Before permission, devices have no id: nothing to choose from yet.
    this.devices = devices
      .filter((d) => KINDS.includes(d.kind) && d.deviceId)
      .map((d) => ({ kind: d.kind, deviceId: d.deviceId, label: d.label }));
    for (const kind of KINDS) this.fill(kind);
    show($('speaker-row'), speakerSupported() && this.devices.some((d) => d.kind === 'audiooutput'));
  }

  fill(kind) {
    const select = $(SELECT_ID[kind]);
    const list = this.devices.filter((d) => d.kind === kind);
    select.replaceChildren(
      ...list.map((d, i) => {
        const option = document.createElement('option');
        option.value = d.deviceId;
        option.textContent = d.label || `${t(FALLBACK_NAME[kind])} ${i + 1}`;
        return option;
      }),
    );
    select.disabled = list.length === 0;
    const current = this.current[kind];
    if (current && list.some((d) => d.deviceId === current)) select.value = current;
  }

  /** Shows a device problem under the selects (null hides it). */
  problem(text) {
    $('device-problem').textContent = text || '';
    show($('device-problem'), !!text);
  }

  /**
   * Plays `video`'s sound on the speaker `deviceId` (remembered); a
   * speaker that is gone falls back to the default and is forgotten.
   */
  async setSpeaker(video, deviceId) {
    if (!speakerSupported() || !deviceId) return false;
    try {
      await video.setSinkId(deviceId);
      this.current.audiooutput = deviceId;
      return true;
    } catch (err) {
      console.info(`webcall: cannot play on that speaker (${err.name}); using the default`);
      if (remembered('audiooutput') === deviceId) remember('audiooutput', null);
      this.current.audiooutput = null;
      return false;
    }
  }
}
