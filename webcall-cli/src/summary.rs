//! The few lines printed when a call ends.

use webcall_cli::screen::Lang;
use webcall_cli::screen::end::quality_words;
use webcall_core::call::StatsReport;

use crate::join::Finish;

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "never".to_owned(), |v| format!("{v} ms"))
}

/// The end-of-call summary as lines of text.
pub fn lines(r: &StatsReport, finish: &Finish) -> Vec<String> {
    let why = match finish {
        Finish::Duration => "time was up".to_owned(),
        Finish::Interrupted => "you hung up".to_owned(),
        Finish::PeerLeft => "the other person hung up".to_owned(),
        Finish::Ended(reason) => format!("{reason:?}"),
    };
    let mut out = vec![
        format!(
            "call over after {:.1} s ({why})",
            r.duration_ms as f64 / 1000.0
        ),
        format!(
            "  connected after {}, first picture after {}",
            ms(r.connected_ms),
            ms(r.first_remote_video_ms)
        ),
        format!(
            "  sent {} video frames ({} kB), {} audio frames ({} kB)",
            r.sent.video_frames,
            r.sent.video_bytes / 1000,
            r.sent.audio_frames,
            r.sent.audio_bytes / 1000
        ),
        format!(
            "  received {} video frames at {}x{}, {} audio frames",
            r.received.video_frames_decoded,
            r.received.video_width,
            r.received.video_height,
            r.received.audio_frames_decoded
        ),
    ];
    if let Some(l) = &r.latency {
        out.push(format!(
            "  one-way video latency {:.0} ms (min {:.0}, max {:.0}, {} pictures)",
            l.mean_ms, l.min_ms, l.max_ms, l.samples
        ));
    }
    if let Some(rtt) = r.rtt_ms {
        out.push(format!(
            "  round trip {rtt:.1} ms, {} packets lost",
            r.packets_lost
        ));
    }
    if let Some(p) = &r.selected_pair {
        let how = if p.is_relayed() {
            "through a TURN relay"
        } else {
            "directly"
        };
        out.push(format!(
            "  media went {how} ({} to {}, {})",
            p.local_type, p.remote_type, p.protocol
        ));
    }
    out.extend(quality_line(r, Lang::from_env()));
    if r.sent.chat_messages + r.received.chat_messages > 0 {
        out.push(format!(
            "  chat: {} messages sent, {} received",
            r.sent.chat_messages, r.received.chat_messages
        ));
    }
    if r.received.screen_frames_decoded > 0 {
        out.push(format!(
            "  received {} shared-screen frames at {}x{}",
            r.received.screen_frames_decoded, r.received.screen_width, r.received.screen_height
        ));
    }
    if let Some(code) = &r.verification_code
        && code.len() == 6
    {
        out.push(format!("  verification code {} {}", &code[..3], &code[3..]));
    }
    out
}

/// The call's average quality and path in `lang`: `quality: good 92 % of
/// the time (poor 8 %, bad 0 %), path: direct`; `quality: not graded` for a
/// call too short to grade; nothing when it never connected.
pub fn quality_line(r: &StatsReport, lang: Lang) -> Option<String> {
    let (quality, path) = quality_words(r, lang)?;
    Some(match lang {
        Lang::En => format!("  quality: {quality}, path: {}", path.unwrap_or("unknown")),
        Lang::Ru => format!(
            "  качество: {quality}, путь: {}",
            path.unwrap_or("неизвестен")
        ),
    })
}

#[cfg(test)]
mod tests {
    use webcall_core::call::CallStats;
    use webcall_core::call::quality::{MediaPath, QualityReport, TimeInGrades};

    use super::*;

    #[test]
    fn the_quality_line_says_the_usual_grade_and_the_path() {
        let mut r = CallStats::default().report();
        assert_eq!(quality_line(&r, Lang::En), None, "never connected: no line");
        r.path = Some(MediaPath::Relayed);
        assert_eq!(
            quality_line(&r, Lang::En).unwrap(),
            "  quality: not graded, path: relayed (TURN)"
        );
        r.quality = QualityReport {
            time_in: TimeInGrades {
                good: 0.92,
                poor: 0.08,
                bad: 0.0,
            },
            ..QualityReport::default()
        };
        r.path = Some(MediaPath::Direct);
        assert_eq!(
            quality_line(&r, Lang::En).unwrap(),
            "  quality: good 92 % of the time (poor 8 %, bad 0 %), path: direct"
        );
        assert_eq!(
            quality_line(&r, Lang::Ru).unwrap(),
            "  качество: хорошее 92 % времени (слабое 8 %, плохое 0 %), путь: напрямую"
        );
    }
}
