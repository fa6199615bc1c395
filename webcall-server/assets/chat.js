// The room's chat panel: the toggle button with its unread badge, the
// message list and the input (Enter sends, Shift+Enter starts a new line).
// Messages go out and come in through the call (call.js: `sendChat`, the
// "chat" and "chatsent" events); nothing here touches the data channel.
//
// Every text is put on the page with textContent, never as HTML: a message
// that looks like markup or a link shows as the characters it holds.

import { t } from './i18n.js';
import { MAX_TEXT_CHARS, OUTBOX_LIMIT, charCount } from './channel.js';
import { $, show } from './dom.js';

/** The badge shows at most this number, then "99+". */
const BADGE_MAX = 99;

/** A time of day as the page's language writes it, hours and minutes (one formatter for all). */
let clockFormat = null;
const clock = (ms) => {
  if (!clockFormat) {
    clockFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, { hour: '2-digit', minute: '2-digit' });
  }
  return clockFormat.format(new Date(ms));
};

export class ChatPanel {
  /** @param {import('./call.js').Call} call */
  constructor(call) {
    this.call = call;
    /** Every message of this page's life: `{ id, text, sentAt, at, mine, pending }`, oldest first. */
    this.messages = [];
    this.unread = 0;
    this.open = false;
    /** Our messages still in the outbox, by id: their list items. */
    this.waiting = new Map();
    /** What the last attempt to send gave: `{ id }` or `{ refused }`. */
    this.lastResult = null;
    /** True while the list is scrolled to its end: new messages keep it there. */
    this.atEnd = true;
    this.scrollFrame = 0;
  }

  /** Wires the panel's controls and the call's chat events. */
  bind() {
    $('chat-toggle').onclick = () => this.setOpen(!this.open);
    $('chat-close').onclick = () => this.setOpen(false);
    $('chat-form').onsubmit = (e) => {
      e.preventDefault();
      this.submit();
    };
    const input = $('chat-input');
    input.onkeydown = (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      } else if (e.key === 'Escape') {
        this.setOpen(false);
        $('chat-toggle').focus();
      }
    };
    input.oninput = () => this.checkLength();
    const scroll = $('chat-scroll');
    scroll.onscroll = () => {
      this.atEnd = scroll.scrollHeight - scroll.scrollTop - scroll.clientHeight < 40;
    };
    this.call.addEventListener('chat', (e) => this.add({ ...e.detail.message, mine: false, pending: false }));
    this.call.addEventListener('chatsent', (e) => this.sent(e.detail.id));
    this.renderBadge();
  }

  /** Opens or closes the panel; opening reads every message. */
  setOpen(open) {
    this.open = open;
    show($('chat'), open);
    $('room').classList.toggle('chat-open', open);
    const toggle = $('chat-toggle');
    toggle.setAttribute('aria-expanded', String(open));
    toggle.classList.toggle('active', open);
    if (open) {
      this.unread = 0;
      this.scrollToEnd();
      $('chat-input').focus({ preventScroll: true });
    }
    this.renderBadge();
  }

  /** Sends what the input holds (Enter, the send button). */
  submit() {
    const input = $('chat-input');
    const result = this.call.sendChat(input.value);
    if (result.refused) {
      this.lastResult = { refused: result.refused };
      if (result.refused === 'too_long') {
        this.notice(t('chat_too_long', { count: charCount(input.value), max: MAX_TEXT_CHARS }));
      } else if (result.refused === 'outbox_full') {
        this.notice(t('chat_outbox_full', { max: OUTBOX_LIMIT }));
      }
      return this.lastResult;
    }
    const { message } = result;
    input.value = '';
    this.notice(null);
    const pending = this.call.outbox.some((m) => m.id === message.id);
    this.add({ ...message, mine: true, pending });
    this.lastResult = { id: message.id };
    return this.lastResult;
  }

  /** Says, under the list, why a message was not sent (null clears it). */
  notice(text) {
    const el = $('chat-notice');
    el.textContent = text || '';
    show(el, !!text);
  }

  /** Warns as soon as the input holds too much. */
  checkLength() {
    const count = charCount($('chat-input').value);
    if (count > MAX_TEXT_CHARS) {
      this.notice(t('chat_too_long', { count, max: MAX_TEXT_CHARS }));
    } else if ($('chat-notice').textContent && this.lastResult && this.lastResult.refused === 'too_long') {
      this.notice(null);
    }
  }

  /** Adds one message to the list (ours or theirs). */
  add(message) {
    const entry = { ...message, at: Date.now() };
    this.messages.push(entry);

    const item = document.createElement('li');
    item.className = `chat-msg ${entry.mine ? 'mine' : 'theirs'}`;
    item.dataset.id = entry.id;
    const who = document.createElement('span');
    who.className = 'chat-who';
    who.textContent = entry.mine ? t('you') : t('chat_peer');
    const text = document.createElement('p');
    text.className = 'chat-text';
    text.textContent = entry.text;
    const time = document.createElement('time');
    time.className = 'chat-time';
    time.dateTime = new Date(entry.at).toISOString();
    time.textContent = clock(entry.at);
    item.append(who, text, time);
    if (entry.pending) {
      item.classList.add('pending');
      item.title = t('chat_waiting');
      this.waiting.set(entry.id, { item, entry });
    }
    $('chat-list').append(item);
    show($('chat-empty'), false);

    if (!entry.mine && !this.open) {
      this.unread += 1;
      this.renderBadge();
    }
    if (this.open && (entry.mine || this.atEnd)) this.scrollToEnd();
  }

  /** One of ours left the outbox. */
  sent(id) {
    const waiting = this.waiting.get(id);
    if (!waiting) return;
    this.waiting.delete(id);
    waiting.entry.pending = false;
    waiting.item.classList.remove('pending');
    waiting.item.removeAttribute('title');
  }

  /** Scrolls the list to its end at the next frame (once for any number of messages). */
  scrollToEnd() {
    if (this.scrollFrame) return;
    this.scrollFrame = requestAnimationFrame(() => {
      this.scrollFrame = 0;
      const scroll = $('chat-scroll');
      scroll.scrollTop = scroll.scrollHeight;
      this.atEnd = true;
    });
  }

  renderBadge() {
    const badge = $('chat-badge');
    const toggle = $('chat-toggle');
    show(badge, this.unread > 0);
    badge.textContent = this.unread > BADGE_MAX ? `${BADGE_MAX}+` : String(this.unread);
    const label = this.open ? t('chat_close') : t('chat_open');
    const full = this.unread > 0 ? `${label}. ${t('chat_unread', { count: this.unread })}` : label;
    toggle.setAttribute('aria-label', full);
    toggle.title = full;
  }

  /** The messages as the test hooks give them (copies). */
  snapshot() {
    return this.messages.map((m) => ({ ...m }));
  }
}
