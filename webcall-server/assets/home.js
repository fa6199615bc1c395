// The home page ("/"): creates a call link and shows it with its QR code;
// after a hang-up, says the call ended and offers to rejoin.

import { t, lang } from './i18n.js';
import { ErrorCode, createRoom } from './protocol.js';
import { $, show, setStatus, copyFrom } from './dom.js';

/** The message for a failed room creation, by error code. */
const CREATE_ERRORS = {
  [ErrorCode.RATE_LIMITED]: 'create_rate_limited',
  [ErrorCode.TOO_MANY_ROOMS]: 'create_too_many',
};

function formatTime(rfc3339) {
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return rfc3339;
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

/**
 * Shows the home page; `ended` (with the room's `token`) after leaving a
 * call, with a link back into it.
 */
export function showHome({ ended = false, token = null } = {}) {
  show($('room'), false);
  show($('home'), true);
  document.body.classList.remove('in-room');
  show($('home-notice'), ended);
  if (ended && token) $('rejoin').href = `/r/${token}`;
  setStatus(ended ? 'ended' : 'idle');

  const button = $('create');
  button.onclick = async () => {
    button.disabled = true;
    button.textContent = t('creating');
    show($('create-error'), false);
    try {
      const room = await createRoom();
      $('link').value = room.url;
      $('qr').src = `/api/rooms/${encodeURIComponent(room.token)}/qr.svg`;
      $('join').href = `/r/${encodeURIComponent(room.token)}`;
      $('expires').textContent = t('link_expires', { time: formatTime(room.expires_at) });
      $('copy-status').textContent = '';
      show($('created'), true);
      show($('home-notice'), false);
      setStatus('idle');
      $('copy').focus();
    } catch (err) {
      console.warn('webcall: creating a room failed:', err);
      $('create-error').textContent = t(CREATE_ERRORS[err.code] || 'create_failed');
      show($('create-error'), true);
    } finally {
      button.disabled = false;
      button.textContent = t('create_link');
    }
  };
  $('copy').onclick = () => copyFrom($('link'), $('copy-text'), $('copy-status'));
  $('link').onfocus = () => $('link').select();
}
