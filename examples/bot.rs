//! A bot that joins a call by link, sends the moving test pattern and a tone,
//! counts what it receives, and prints the call's figures once a second.
//!
//! Run with: `cargo run --example bot -- http://localhost:8000/r/<token> [seconds]`

use std::time::Duration;

use webcall_core::call::{self, CallEvent, CallOptions, sources};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let link = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: bot <link> [seconds]"))?;
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(60);

    let options = CallOptions {
        video: Some(Box::new(sources::TestPattern::default())),
        audio: Some(Box::new(sources::Tone::default())),
        ..CallOptions::default()
    };
    let (call, mut events) = call::join(&link, options).await?;
    println!("joined {link}; staying {seconds} s");

    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                call.hangup().await;
            }
            event = events.recv() => match event {
                Some(CallEvent::PeerJoined { peer, .. }) => println!("{peer} joined"),
                Some(CallEvent::PeerLeft { peer, reason }) => println!("{peer} left ({reason:?})"),
                Some(CallEvent::ConnectionState(state)) => println!("media: {state:?}"),
                Some(CallEvent::Stats(s)) => println!(
                    "sent {} video / {} audio frames, decoded {} video ({}x{}) / {} audio, rtt {:?} ms",
                    s.sent.video_frames,
                    s.sent.audio_frames,
                    s.received.video_frames_decoded,
                    s.received.video_width,
                    s.received.video_height,
                    s.received.audio_frames_decoded,
                    s.rtt_ms,
                ),
                Some(CallEvent::Ended { reason }) => {
                    println!("call ended: {reason:?}");
                    break;
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    println!("{}", serde_json::to_string_pretty(&call.stats().report())?);
    Ok(())
}
