// The call quality on the room page: reads getStats once a second while
// connected (quality.js grades it), draws the indicator in the call view
// (bars coloured by grade, with a text label for screen readers and a
// tooltip), opens the details panel when it is clicked, and writes the
// end-of-call summary (duration, direct or relayed, average quality) where
// the page asks for it.

import { t } from './i18n.js';
import { $, show } from './dom.js';
import { QualityTracker, readReport, formatBitrate, formatDuration } from './quality.js';

/** How often getStats is read while connected. */
const POLL_MS = 1000;

export class QualityView {
  /** `call` is call.js's Call: its `pc` and `connectionState` are read. */
  constructor(call) {
    this.call = call;
    this.tracker = new QualityTracker();
    this.timer = null;
    this.reading = false;
    this.open = false;
  }

  /** Starts reading stats and binds the indicator's toggle. */
  start() {
    $('quality').onclick = () => {
      this.open = !this.open;
      this.render();
    };
    if (!this.timer) this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  async poll() {
    const pc = this.call.pc;
    if (this.reading || !pc || this.call.connectionState !== 'connected') {
      if (!this.reading) this.tracker.pause();
      this.render();
      return;
    }
    // A call that ended (the other side left) and connects again is a new
    // call: its grade and summary start afresh.
    if (this.tracker.endedAt !== null) this.tracker = new QualityTracker();
    this.reading = true;
    try {
      const report = await pc.getStats();
      this.tracker.sample(performance.now(), readReport(report));
    } catch (err) {
      console.info(`webcall: getStats failed: ${err.message}`);
    } finally {
      this.reading = false;
    }
    this.render();
  }

  /** The call is over (hang-up, or the other side left): the summary is final. */
  end() {
    this.tracker.end(performance.now());
    this.render();
  }

  /** Stops reading stats (the page leaves the room). */
  stop() {
    this.end();
    clearInterval(this.timer);
    this.timer = null;
  }

  /** `{ grade, details }` now: grade 'good' | 'poor' | 'bad' | null. */
  snapshot() {
    const live = this.tracker.endedAt === null;
    return { grade: live ? this.tracker.shown : null, details: this.tracker.details, open: this.open };
  }

  /**
   * The summary of the call so far (final after `end`), with the text the
   * page shows: `{ durationMs, path, average, share, shares, text }`; null
   * before the call was ever connected.
   */
  summary() {
    if (this.tracker.startedAt === null) return null;
    const s = this.tracker.summary(performance.now());
    return { ...s, text: summaryLines(s).join(' · ') };
  }

  /** Writes the summary into `el` (a container), or hides it without one. */
  showSummary(el) {
    const s = this.summary();
    show(el, !!s);
    if (!s) return;
    el.replaceChildren(
      ...summaryLines(s).map((line) => {
        const p = document.createElement('p');
        p.textContent = line;
        return p;
      }),
    );
    el.dataset.path = s.path || '';
    el.dataset.average = s.average || '';
  }

  render() {
    const button = $('quality');
    const { grade, details } = this.snapshot();
    const visible = !!grade && this.call.connectionState === 'connected';
    show(button, visible);
    show($('quality-details'), visible && this.open);
    button.setAttribute('aria-expanded', String(visible && this.open));
    if (!visible) return;
    const label = t('quality_label', { grade: t(`quality_${grade}`) });
    button.dataset.grade = grade;
    button.title = label;
    button.setAttribute('aria-label', label);
    $('quality-text').textContent = t(`quality_${grade}`);
    if (!this.open || !details) return;
    const dash = '–';
    const rows = {
      'quality-codec': details.codec || dash,
      'quality-resolution': details.width ? `${details.width}×${details.height}` : dash,
      'quality-bitrate': `${formatBitrate(details.bitrateIn)} / ${formatBitrate(details.bitrateOut)}`,
      'quality-rtt': typeof details.rttMs === 'number' ? `${Math.round(details.rttMs)} ms` : dash,
      'quality-loss': `${(details.loss * 100).toFixed(1)} %`,
      'quality-path': details.path ? t(`path_${details.path}`) : dash,
    };
    for (const [id, text] of Object.entries(rows)) $(id).textContent = text;
  }
}

/** The summary's lines in the page's language. */
function summaryLines(s) {
  const lines = [t('summary_duration', { time: formatDuration(s.durationMs) })];
  if (s.path) lines.push(t('summary_path', { path: t(`path_${s.path}`) }));
  if (s.average) {
    const grade = t(`quality_${s.average}`).toLowerCase();
    lines.push(t('summary_quality', { grade, percent: Math.round(s.share * 100) }));
  }
  return lines;
}
