// Small DOM helpers the home page and the room page share: element lookup,
// showing and hiding, the page status, copying a link.

import { t } from './i18n.js';

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** Shows or hides an element. */
export function show(el, visible) {
  el.hidden = !visible;
}

/** Sets the page's status (`document.body.dataset.status`, a test hook), logging changes. */
export function setStatus(status) {
  if (document.body.dataset.status !== status) {
    document.body.dataset.status = status;
    console.info(`webcall: status ${status}`);
  }
}

/** Copies an input's value; falls back to selecting it for a manual copy. */
export async function copyFrom(input, label, statusEl) {
  const text = input.value;
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      copied = true;
    }
  } catch {
    copied = false;
  }
  if (!copied) {
    input.focus();
    input.select();
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
  }
  const message = copied ? t('copied') : t('copy_manual');
  if (label) {
    label.textContent = copied ? t('copied') : t('copy');
    setTimeout(() => {
      label.textContent = t('copy');
    }, 2000);
  }
  if (statusEl) {
    // When the button already says "Copied", the status line is for screen readers only.
    statusEl.textContent = message;
    statusEl.classList.toggle('visually-hidden', copied && !!label);
  }
  if (!copied) {
    input.focus();
    input.select();
  }
}
