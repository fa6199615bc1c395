//! The microphone's level on the status line: a small meter of what the
//! call sends (after echo cancellation and noise suppression), or nothing
//! while the microphone is muted (the status line then says so).
//!
//! [`MeteredSource`] wraps the audio source and records each frame's level
//! in a [`MicLevel`] shared with the screen; the level rises at once and
//! falls by [`FALL_DB_PER_FRAME`] a frame, so speech reads as a steady bar
//! rather than a flicker. The screen's loop calls [`refresh`] on each tick
//! and redraws only when the number of bars shown changed; [`status_spans`]
//! draws them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ratatui::style::{Color, Style};
use ratatui::text::Span;
use webcall_core::media::{AudioFrame, AudioSource};

use super::i18n::Lang;
use super::state::ScreenState;

/// Bars in the meter.
pub const BARS: u8 = 8;
/// The level of an empty meter, dBFS: quieter is shown as nothing.
pub const FLOOR_DBFS: f32 = -60.0;
/// The level of a full meter, dBFS: louder is close to clipping.
pub const FULL_DBFS: f32 = -6.0;
/// How fast the shown level falls, dB per 20 ms frame (75 dB a second).
pub const FALL_DB_PER_FRAME: f32 = 1.5;

/// The level of the audio being sent, in dBFS: written by the audio
/// thread, read by the screen. Clones share it.
#[derive(Debug, Clone)]
pub struct MicLevel(Arc<AtomicU32>);

impl Default for MicLevel {
    fn default() -> Self {
        Self(Arc::new(AtomicU32::new(f32::NEG_INFINITY.to_bits())))
    }
}

impl MicLevel {
    /// A level of silence.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one frame sent: its RMS level if louder than the level
    /// shown, else the shown level less [`FALL_DB_PER_FRAME`].
    pub fn record(&self, frame: &AudioFrame) {
        let rms = frame.rms();
        let now = if rms > 0.0 {
            20.0 * rms.log10()
        } else {
            f32::NEG_INFINITY
        };
        let fallen = self.dbfs() - FALL_DB_PER_FRAME;
        self.set_dbfs(now.max(fallen));
    }

    /// Sets the level, dBFS.
    pub fn set_dbfs(&self, dbfs: f32) {
        self.0.store(dbfs.to_bits(), Ordering::Relaxed);
    }

    /// The level, dBFS (minus infinity: silence).
    pub fn dbfs(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Bars lit for the level: none at [`FLOOR_DBFS`] or below, all
    /// [`BARS`] at [`FULL_DBFS`] or above.
    pub fn bars(&self) -> u8 {
        let x = (self.dbfs() - FLOOR_DBFS) / (FULL_DBFS - FLOOR_DBFS);
        if x.is_nan() || x <= 0.0 {
            0
        } else {
            (x * f32::from(BARS)).ceil().min(f32::from(BARS)) as u8
        }
    }
}

/// The meter as the screen state holds it: the shared level and the bars
/// drawn last (so a redraw is needed only when they change).
#[derive(Debug, Clone, Default)]
pub struct MeterView {
    level: MicLevel,
    bars: u8,
}

impl MeterView {
    /// A meter of `level`, showing no bars yet.
    pub fn new(level: MicLevel) -> Self {
        Self { level, bars: 0 }
    }

    /// The bars drawn.
    pub fn bars(&self) -> u8 {
        self.bars
    }
}

/// Reads the level into the state's meter; true when the bars to show
/// changed (the screen should be redrawn).
pub fn refresh(state: &mut ScreenState) -> bool {
    let Some(view) = &mut state.mic_level else {
        return false;
    };
    let bars = view.level.bars();
    let changed = bars != view.bars;
    view.bars = bars;
    changed && !state.mic_muted
}

/// The meter's label.
pub fn label(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "mic",
        Lang::Ru => "микр.",
    }
}

/// The meter's spans for the status line (the label, the bars): none
/// while muted or when no audio is sent. The status line places them
/// ([`super::status`], priority [`METER`](super::status::priority::METER)).
pub fn status_spans(state: &ScreenState) -> Vec<Span<'static>> {
    let Some(view) = &state.mic_level else {
        return Vec::new();
    };
    if state.mic_muted {
        return Vec::new();
    }
    let lit = usize::from(view.bars);
    let unlit = usize::from(BARS) - lit;
    // The top bar is drawn red: the level is close to clipping.
    let loud = usize::from(view.bars == BARS);
    vec![
        Span::raw(format!("{} ", label(state.lang))),
        Span::styled("▮".repeat(lit - loud), Style::default().fg(Color::Green)),
        Span::styled("▮".repeat(loud), Style::default().fg(Color::Red)),
        Span::styled("▯".repeat(unlit), Style::default().fg(Color::DarkGray)),
    ]
}

/// An [`AudioSource`] wrapper that records the level of every frame it
/// passes on in a [`MicLevel`].
pub struct MeteredSource {
    inner: Box<dyn AudioSource>,
    level: MicLevel,
}

impl std::fmt::Debug for MeteredSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredSource")
            .field("inner", &self.inner.describe())
            .field("level", &self.level)
            .finish()
    }
}

impl MeteredSource {
    /// Wraps `inner`; each frame it yields is measured into `level`.
    pub fn new(inner: Box<dyn AudioSource>, level: MicLevel) -> Self {
        Self { inner, level }
    }
}

impl AudioSource for MeteredSource {
    fn next_frame(&mut self) -> webcall_core::Result<Option<AudioFrame>> {
        let frame = self.inner.next_frame()?;
        match &frame {
            Some(f) => self.level.record(f),
            None => self.level.set_dbfs(f32::NEG_INFINITY),
        }
        Ok(frame)
    }

    /// The wrapped source's name: device switching goes by it.
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use webcall_core::media::AUDIO_FRAME_SAMPLES;

    fn frame(amplitude: i16) -> AudioFrame {
        // A square wave: its RMS is its amplitude.
        let samples = (0..AUDIO_FRAME_SAMPLES)
            .map(|i| if i % 2 == 0 { amplitude } else { -amplitude })
            .collect();
        AudioFrame {
            samples,
            timestamp: Duration::ZERO,
        }
    }

    fn text(spans: &[Span<'_>]) -> String {
        spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn the_level_rises_at_once_and_falls_slowly() {
        let level = MicLevel::new();
        assert_eq!(level.bars(), 0, "silence");
        level.record(&frame(16_384)); // -6 dBFS
        assert_eq!(level.bars(), BARS);
        level.record(&frame(0));
        assert!((level.dbfs() - (-6.02 - FALL_DB_PER_FRAME)).abs() < 0.1);
        for _ in 0..100 {
            level.record(&frame(0));
        }
        assert_eq!(level.bars(), 0, "two seconds of silence empty the meter");
        level.record(&frame(328)); // -40 dBFS
        assert_eq!(level.bars(), 3);
    }

    #[test]
    fn the_meter_shows_bars_in_both_languages_and_nothing_when_muted() {
        let mut state = ScreenState::new(crate::screen::ColorMode::TrueColor, Lang::En);
        assert!(status_spans(&state).is_empty(), "no audio sent: no meter");
        let level = MicLevel::new();
        state.mic_level = Some(MeterView::new(level.clone()));
        level.set_dbfs(-33.0);
        assert!(refresh(&mut state), "the bars changed");
        assert!(!refresh(&mut state), "and then did not");
        assert_eq!(text(&status_spans(&state)), "mic ▮▮▮▮▯▯▯▯");
        state.lang = Lang::Ru;
        assert_eq!(text(&status_spans(&state)), "микр. ▮▮▮▮▯▯▯▯");
        level.set_dbfs(0.0);
        refresh(&mut state);
        let spans = status_spans(&state);
        assert_eq!(text(&spans), "микр. ▮▮▮▮▮▮▮▮");
        assert_eq!(spans[2].style.fg, Some(Color::Red), "the top bar warns");
        state.mic_muted = true;
        assert!(status_spans(&state).is_empty(), "muted: the status says so");
    }

    #[test]
    fn the_metered_source_measures_what_it_passes_on() {
        struct Two(u8);
        impl AudioSource for Two {
            fn next_frame(&mut self) -> webcall_core::Result<Option<AudioFrame>> {
                self.0 += 1;
                Ok((self.0 <= 2).then(|| frame(3_277)))
            }
            fn describe(&self) -> String {
                "two frames".into()
            }
        }
        let level = MicLevel::new();
        let mut source = MeteredSource::new(Box::new(Two(0)), level.clone());
        assert_eq!(source.describe(), "two frames");
        let f = source.next_frame().unwrap().unwrap();
        assert_eq!(f, frame(3_277), "passed on unchanged");
        assert!((level.dbfs() - (-20.0)).abs() < 0.1, "{}", level.dbfs());
        source.next_frame().unwrap();
        assert!(source.next_frame().unwrap().is_none());
        assert_eq!(level.bars(), 0, "an ended source reads as silence");
    }
}
