// Where the share button may appear (screen.js): only where the browser can
// capture a screen. Run with `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { canCaptureScreen } from '../screen.js';

test('no getDisplayMedia, no share button', () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  const set = (value) => Object.defineProperty(globalThis, 'navigator', { value, configurable: true });
  try {
    set({ mediaDevices: { getUserMedia() {} } }); // a phone: camera, no screen capture
    assert.equal(canCaptureScreen(), false);
    set({}); // an insecure page: no mediaDevices at all
    assert.equal(canCaptureScreen(), false);
    set({ mediaDevices: { getUserMedia() {}, getDisplayMedia() {} } });
    assert.equal(canCaptureScreen(), true);
  } finally {
    if (saved) Object.defineProperty(globalThis, 'navigator', saved);
    else delete globalThis.navigator;
  }
});
