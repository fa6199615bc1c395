//! `webcall test`: checks before a call, each said as works / does not
//! work / not checked, with what to do. The server (`/readyz`, creating
//! and joining a room, which also hands out its STUN and TURN servers),
//! every STUN and TURN URL it hands out (gathered with the call engine
//! itself: [`webcall_core::call::probe`]), and the local camera,
//! microphone (its level) and speaker (a tone).
//!
//! The exit code is 0 only when everything checked works.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use webcall_core::call::probe::{self, ProbeOutcome};
use webcall_core::call::sources::Tone;
use webcall_core::client::{self, Link, SignalEvent, Signaling};
use webcall_core::media::{AudioSink, AudioSource, VideoSource};

use crate::cli::TestArgs;
use webcall_cli::devices::{CameraChoice, CameraSource, MicSource, SpeakerSink};

/// How long one STUN or TURN server may take to answer.
const ICE_WAIT: Duration = Duration::from_secs(8);
/// How long the microphone is listened to.
const MIC_LISTEN: Duration = Duration::from_secs(2);
/// How long the speaker plays its tone.
const TONE: Duration = Duration::from_secs(1);

/// One check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Works,
    Fails,
    NotChecked,
}

#[derive(Debug, serde::Serialize)]
struct Check {
    name: String,
    verdict: Verdict,
    detail: String,
}

/// Collects checks and prints each as it is made (unless printing JSON).
struct Report {
    checks: Vec<Check>,
    json: bool,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, verdict: Verdict, detail: impl Into<String>) {
        let check = Check {
            name: name.into(),
            verdict,
            detail: detail.into(),
        };
        if !self.json {
            let mark = match verdict {
                Verdict::Works => "works  ",
                Verdict::Fails => "FAILS  ",
                Verdict::NotChecked => "skipped",
            };
            println!("  {mark}  {:<11} {}", check.name, check.detail);
            let _ = std::io::stdout().flush();
        }
        self.checks.push(check);
    }

    fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fails)
            .count()
    }
}

/// Runs `webcall test`.
pub async fn run(args: &TestArgs) -> Result<()> {
    let mut report = Report {
        checks: Vec::new(),
        json: args.json,
    };
    if !args.json {
        println!("webcall test: {}", args.server);
    }
    let servers = check_server(args, &mut report).await;
    check_ice(args, &servers, &mut report).await;
    if args.no_devices {
        report.add("devices", Verdict::NotChecked, "--no-devices");
    } else {
        let checks = tokio::task::spawn_blocking(check_devices).await?;
        for (name, verdict, detail) in checks {
            report.add(name, verdict, detail);
        }
    }
    let failures = report.failures();
    if args.json {
        let v = serde_json::json!({
            "server": args.server,
            "ok": failures == 0,
            "checks": report.checks,
        });
        println!("{v}");
    } else if failures == 0 {
        println!("everything checked works");
    }
    if failures > 0 {
        anyhow::bail!(
            "{failures} of {} checks failed (see above)",
            report.checks.len()
        );
    }
    Ok(())
}

/// The server: ready, and a room that can be created and joined. Returns
/// the ICE servers the join handed out.
async fn check_server(
    args: &TestArgs,
    report: &mut Report,
) -> Vec<webcall_core::protocol::IceServer> {
    match client::readiness(&args.server).await {
        Ok(r) if r.ready => report.add("server", Verdict::Works, "answers and takes new calls"),
        Ok(r) => {
            let why = r.reason.unwrap_or_else(|| "no reason given".into());
            report.add(
                "server",
                Verdict::Fails,
                format!("answers but takes no new calls now: {why}"),
            );
            return Vec::new();
        }
        Err(e) => {
            report.add("server", Verdict::Fails, format!("{e:#}"));
            return Vec::new();
        }
    }
    let started = Instant::now();
    let room = match client::create_room(&args.server).await {
        Ok(room) => room,
        Err(e) => {
            report.add(
                "room",
                Verdict::Fails,
                format!("cannot create a room: {e:#}"),
            );
            return Vec::new();
        }
    };
    let joined = async {
        let link = Link::parse(&room.url)?;
        let (signaling, mut events) = Signaling::connect(&link).await?;
        let first = events.recv().await;
        let _ = signaling.hangup().await;
        match first {
            Some(SignalEvent::Joined(joined)) => Ok(joined),
            other => Err(anyhow::anyhow!("no seat in the room: {other:?}")),
        }
    };
    match joined.await {
        Ok(joined) => {
            let urls: usize = joined.ice_servers.iter().map(|s| s.urls.len()).sum();
            report.add(
                "room",
                Verdict::Works,
                format!(
                    "created and joined in {} ms; {urls} STUN/TURN URLs handed out{}",
                    started.elapsed().as_millis(),
                    match joined.ice_transport_policy {
                        webcall_core::protocol::IceTransportPolicy::Relay => ", relay only",
                        _ => "",
                    }
                ),
            );
            joined.ice_servers
        }
        Err(e) => {
            report.add("room", Verdict::Fails, format!("created, but {e:#}"));
            Vec::new()
        }
    }
}

/// Every STUN and TURN URL the server handed out.
async fn check_ice(
    args: &TestArgs,
    servers: &[webcall_core::protocol::IceServer],
    report: &mut Report,
) {
    if servers.is_empty() {
        report.add(
            "stun/turn",
            Verdict::NotChecked,
            "the server hands out none: calls connect only where both sides reach each other directly",
        );
        return;
    }
    for p in probe::probe_ice_servers(servers, &args.ice_addrs, ICE_WAIT).await {
        let (verdict, detail) = match &p.outcome {
            ProbeOutcome::Reached {
                candidate_type,
                address,
                after,
            } => (
                Verdict::Works,
                format!(
                    "{}: {address} in {} ms",
                    if candidate_type == "relay" {
                        "relays from"
                    } else {
                        "sees us at"
                    },
                    after.as_millis()
                ),
            ),
            ProbeOutcome::NoAnswer => (
                Verdict::Fails,
                format!(
                    "no answer within {} s (blocked, down, or the credential was refused)",
                    ICE_WAIT.as_secs()
                ),
            ),
            ProbeOutcome::NotUsable => (
                Verdict::NotChecked,
                "webcall join relays over UDP only; browsers use this one".to_owned(),
            ),
            ProbeOutcome::Failed(e) => (Verdict::Fails, e.clone()),
            other => (Verdict::Fails, format!("{other:?}")),
        };
        report.add(p.url.clone(), verdict, detail);
    }
}

/// Camera (one picture), microphone (its level) and speaker (a tone).
fn check_devices() -> Vec<(&'static str, Verdict, String)> {
    let mut out = Vec::new();
    out.push(match CameraSource::open(&CameraChoice::Default) {
        Err(e) => ("camera", Verdict::Fails, e.to_string()),
        Ok(mut camera) => match camera.next_frame() {
            Ok(Some(frame)) => (
                "camera",
                Verdict::Works,
                format!(
                    "{}: a {}x{} picture",
                    camera.describe(),
                    frame.width(),
                    frame.height()
                ),
            ),
            Ok(None) => ("camera", Verdict::Fails, "gave no picture".into()),
            Err(e) => ("camera", Verdict::Fails, e.to_string()),
        },
    });
    out.push(match MicSource::open(None) {
        Err(e) => ("microphone", Verdict::Fails, e.to_string()),
        Ok(mut mic) => {
            let started = Instant::now();
            let mut peak = 0i32;
            let mut result = Ok(());
            while started.elapsed() < MIC_LISTEN {
                match mic.next_frame() {
                    Ok(Some(frame)) => {
                        let loudest = frame.samples.iter().map(|s| i32::from(*s).abs()).max();
                        peak = peak.max(loudest.unwrap_or(0));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            match result {
                Err(e) => ("microphone", Verdict::Fails, e.to_string()),
                Ok(()) => (
                    "microphone",
                    Verdict::Works,
                    format!(
                        "{}: loudest over {} s {}",
                        mic.describe(),
                        MIC_LISTEN.as_secs(),
                        level(peak)
                    ),
                ),
            }
        }
    });
    out.push(match SpeakerSink::open(None) {
        Err(e) => ("speaker", Verdict::Fails, e.to_string()),
        Ok(mut speaker) => {
            let mut tone = Tone::default();
            let frames = TONE.as_millis() / 20;
            let mut result = Ok(());
            for _ in 0..frames {
                match tone.next_frame() {
                    Ok(Some(frame)) => {
                        if let Err(e) = speaker.write_frame(&frame) {
                            result = Err(e);
                            break;
                        }
                    }
                    _ => break,
                }
            }
            let _ = speaker.finish();
            match result {
                Err(e) => ("speaker", Verdict::Fails, e.to_string()),
                Ok(()) => (
                    "speaker",
                    Verdict::Works,
                    format!(
                        "{}: played a 440 Hz tone for {} s (did you hear it?)",
                        speaker.describe(),
                        TONE.as_secs()
                    ),
                ),
            }
        }
    });
    out
}

/// A sample peak as dBFS with a small meter: `-18 dBFS [######    ]`.
fn level(peak: i32) -> String {
    if peak == 0 {
        return "silence (is it muted?)".to_owned();
    }
    let db = 20.0 * (f64::from(peak) / 32768.0).log10();
    // -60 dBFS and below is an empty meter, 0 dBFS a full one.
    let filled = (((db + 60.0) / 6.0).round().clamp(0.0, 10.0)) as usize;
    format!(
        "{} dBFS [{}{}]",
        db.round() as i32,
        "#".repeat(filled),
        " ".repeat(10 - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_as_dbfs_with_a_meter() {
        assert_eq!(level(0), "silence (is it muted?)");
        assert_eq!(level(32767), "0 dBFS [##########]");
        assert_eq!(level(4096), "-18 dBFS [#######   ]");
        assert_eq!(level(10), "-70 dBFS [          ]");
    }
}
