//! Replacing a call's video and audio source mid-call
//! (`Call::replace_video_source`, `Call::replace_audio_source`): two native
//! peers in one process, a real server on 127.0.0.1. The sender swaps its
//! test pattern for a solid red picture of another size, and its tone for
//! silence and back; the far side sees the new picture and hears the
//! change, frames keep rising, the connection stays up and nothing is
//! renegotiated (no new verification code, the same connection).
//!
//! On loopback only:
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --offline --workspace --test source_switch'`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use webcall_core::Error;
use webcall_core::call::sources::{TestPattern, Tone};
use webcall_core::call::{self, CallEvent, CallEvents, CallOptions, ConnectionState, pattern};
use webcall_core::media::{AudioFrame, AudioSource, VideoFrame, VideoSource, rgb_to_yuv};
use webcall_testkit::TestServer;

/// Bound for a call to come up or media to change (two cores, shared).
const LIMIT: Duration = Duration::from_secs(60);

/// A solid colour at the pace of a test pattern of the same size.
struct Solid {
    pacer: TestPattern,
    yuv: [u8; 3],
}

impl VideoSource for Solid {
    fn next_frame(&mut self) -> webcall_core::Result<Option<VideoFrame>> {
        let Some(mut frame) = self.pacer.next_frame()? else {
            return Ok(None);
        };
        let luma = (frame.width() * frame.height()) as usize;
        let (y, chroma) = frame.data_mut().split_at_mut(luma);
        y.fill(self.yuv[0]);
        let (u, v) = chroma.split_at_mut(luma / 4);
        u.fill(self.yuv[1]);
        v.fill(self.yuv[2]);
        Ok(Some(frame))
    }

    fn describe(&self) -> String {
        "solid colour".into()
    }
}

/// Silence at the pace of a tone.
struct Silent(Tone);

impl AudioSource for Silent {
    fn next_frame(&mut self) -> webcall_core::Result<Option<AudioFrame>> {
        Ok(self
            .0
            .next_frame()?
            .map(|f| AudioFrame::silence(f.timestamp)))
    }

    fn describe(&self) -> String {
        "silence".into()
    }
}

fn options() -> CallOptions {
    CallOptions {
        video: Some(Box::new(TestPattern::default())),
        audio: Some(Box::new(Tone::default())),
        ice_addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        remote_frame_events: Some(Duration::from_millis(50)),
        stats_interval: Duration::from_millis(200),
        ..CallOptions::default()
    }
}

/// What one side has seen of the call so far.
#[derive(Debug, Default)]
struct Seen {
    /// The last remote picture.
    last: Option<VideoFrame>,
    /// Verification codes announced (one per negotiation).
    codes: Vec<String>,
    /// Connection states after the first "connected".
    states_after_connected: Vec<ConnectionState>,
    connected: bool,
    ended: bool,
}

impl Seen {
    fn take(&mut self, event: CallEvent) {
        match event {
            CallEvent::RemoteVideoFrame(f) => self.last = Some(f),
            CallEvent::VerificationCode(c) => self.codes.push(c),
            CallEvent::ConnectionState(s) => {
                if self.connected {
                    self.states_after_connected.push(s);
                }
                if s == ConnectionState::Connected {
                    self.connected = true;
                }
            }
            CallEvent::Ended { .. } => self.ended = true,
            _ => {}
        }
    }
}

/// Reads both sides' events until `done` holds for what they saw, or panics
/// with `what` after LIMIT.
async fn until(
    events: &mut [(&mut CallEvents, &mut Seen); 2],
    what: &str,
    mut done: impl FnMut(&Seen, &Seen) -> bool,
) {
    let deadline = Instant::now() + LIMIT;
    loop {
        {
            let [(_, a), (_, b)] = &*events;
            if done(a, b) {
                return;
            }
            assert!(
                !a.ended && !b.ended,
                "a call ended while waiting for {what}"
            );
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for (rx, seen) in events.iter_mut() {
            while let Some(e) = rx.try_recv() {
                seen.take(e);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The colour in the middle of a picture.
fn centre(frame: &VideoFrame) -> [u8; 3] {
    frame.rgb_at(frame.width() / 2, frame.height() / 2)
}

fn reddish(rgb: [u8; 3]) -> bool {
    rgb[0] > 180 && rgb[1] < 80 && rgb[2] < 80
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_replaced_mid_call_reaches_the_other_side_without_renegotiating() {
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let (alice, mut alice_rx) = call::join(&room.url, options()).await.unwrap();
    let (bob, mut bob_rx) = call::join(&room.url, options()).await.unwrap();
    let (mut alice_seen, mut bob_seen) = (Seen::default(), Seen::default());
    let mut both = [
        (&mut alice_rx, &mut alice_seen),
        (&mut bob_rx, &mut bob_seen),
    ];
    until(&mut both, "the test pattern on bob's side", |a, b| {
        a.connected
            && !a.codes.is_empty()
            && b.last
                .as_ref()
                .is_some_and(|f| f.width() == 640 && pattern::read(f).is_some())
    })
    .await;
    let codes = {
        let [(_, a), (_, b)] = &both;
        (a.codes.len(), b.codes.len())
    };
    let sent_before = alice.stats().sent.video_frames;
    let decoded_before = bob.stats().received.video_frames_decoded;

    // Another "camera": solid red, 320x240.
    alice
        .replace_video_source(Box::new(Solid {
            pacer: TestPattern::new(320, 240, 30).unwrap(),
            yuv: rgb_to_yuv(230, 20, 20),
        }))
        .unwrap();
    until(&mut both, "the red picture on bob's side", |_, b| {
        b.last.as_ref().is_some_and(|f| {
            f.width() == 320
                && f.height() == 240
                && reddish(centre(f))
                && pattern::read(f).is_none()
        })
    })
    .await;
    let decoded_at_switch = bob.stats().received.video_frames_decoded;
    until(
        &mut both,
        "frames to keep coming after the switch",
        |_, _| bob.stats().received.video_frames_decoded > decoded_at_switch + 30,
    )
    .await;
    assert!(alice.stats().sent.video_frames > sent_before + 30);
    assert!(bob.stats().received.video_frames_decoded > decoded_before + 30);

    // The camera switch works on the new source: off sends black.
    alice.set_video_enabled(false);
    until(
        &mut both,
        "black from the switched-off new source",
        |_, b| {
            b.last.as_ref().is_some_and(|f| {
                let [r, g, bl] = centre(f);
                r < 40 && g < 40 && bl < 40
            })
        },
    )
    .await;
    alice.set_video_enabled(true);
    until(&mut both, "red again", |_, b| {
        b.last.as_ref().is_some_and(|f| reddish(centre(f)))
    })
    .await;

    // Another "microphone": silence, then the tone again.
    let loud = |c: &call::Call| c.stats().received.audio_frames_loud;
    let decoded = |c: &call::Call| c.stats().received.audio_frames_decoded;
    until(&mut both, "bob hearing the tone", |_, _| loud(&bob) > 25).await;
    alice
        .replace_audio_source(Box::new(Silent(Tone::default())))
        .unwrap();
    // Let what was on its way drain, then: frames arrive, none loud.
    let settle = decoded(&bob) + 25;
    until(&mut both, "the silence to arrive", |_, _| {
        decoded(&bob) > settle
    })
    .await;
    let (quiet_loud, quiet_decoded) = (loud(&bob), decoded(&bob));
    until(&mut both, "silent frames to keep coming", |_, _| {
        decoded(&bob) > quiet_decoded + 50
    })
    .await;
    assert!(
        loud(&bob) <= quiet_loud + 2,
        "bob still hears a tone after the switch to silence: {} loud frames more",
        loud(&bob) - quiet_loud
    );
    alice
        .replace_audio_source(Box::new(Tone::new(660.0)))
        .unwrap();
    until(&mut both, "the new tone on bob's side", |_, _| {
        loud(&bob) > quiet_loud + 25
    })
    .await;

    // Nothing was renegotiated and the connection never dropped.
    {
        let [(_, a), (_, b)] = &both;
        assert_eq!(
            (a.codes.len(), b.codes.len()),
            codes,
            "a negotiation happened"
        );
        assert!(
            a.states_after_connected.is_empty() && b.states_after_connected.is_empty(),
            "the connection changed state: {:?} / {:?}",
            a.states_after_connected,
            b.states_after_connected
        );
    }
    assert_eq!(alice.stats().connection, ConnectionState::Connected);
    assert_eq!(bob.stats().connection, ConnectionState::Connected);
    alice.hangup().await;
    bob.hangup().await;

    // After the call, and for a call without video, a replacement is refused.
    assert!(matches!(
        alice.replace_video_source(Box::new(TestPattern::default())),
        Err(Error::CallEnded)
    ));
    let other = server.create_room().await.unwrap();
    let (audio_only, _events) = call::join(
        &other.url,
        CallOptions {
            audio: Some(Box::new(Tone::default())),
            ice_addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            ..CallOptions::default()
        },
    )
    .await
    .unwrap();
    let refused = audio_only.replace_video_source(Box::new(TestPattern::default()));
    assert!(
        matches!(refused, Err(Error::NotSending { kind: "video" })),
        "{refused:?}"
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("join again with one")
    );
    audio_only
        .replace_audio_source(Box::new(Tone::new(500.0)))
        .unwrap();
    audio_only.hangup().await;
}
