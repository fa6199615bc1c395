//! The microphone and speaker through real ALSA, on its null device.
//!
//! ALSA reads `~/.asoundrc`, so each check runs in a child process of this
//! test binary whose `HOME` is a temporary folder holding one that makes the
//! default device `null`. The null device opens and captures silence but is
//! not clocked, so these tests check opening and the frame format, not timing.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use webcall_cli::devices::{MicSource, NO_MICROPHONE, SpeakerSink};
use webcall_core::media::{AUDIO_FRAME_SAMPLES, AudioFrame, AudioSink, AudioSource};

const ASOUNDRC: &str = "pcm.!default { type plug; slave.pcm \"null\" }\n\
                        ctl.!default { type hw card 0 }\n";

/// Runs the ignored test `name` in a child with HOME at a fresh folder
/// holding `asoundrc` (or none), and returns its output.
fn run_child(name: &str, asoundrc: Option<&str>) -> String {
    let home = std::env::temp_dir().join(format!("webcall-alsa-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    if let Some(rc) = asoundrc {
        std::fs::write(home.join(".asoundrc"), rc).unwrap();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            name,
        ])
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("running the test binary");
    let _ = std::fs::remove_dir_all(PathBuf::from(&home));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {name} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "child {name} ran no test:\n{stdout}"
    );
    stdout
}

#[test]
fn microphone_on_the_null_device_yields_20ms_frames() {
    run_child("child_microphone_frames", Some(ASOUNDRC));
}

#[test]
fn speaker_on_the_null_device_plays_what_it_is_given() {
    run_child("child_speaker_plays", Some(ASOUNDRC));
}

#[test]
#[ignore = "run by microphone_on_the_null_device_yields_20ms_frames with its own HOME"]
fn child_microphone_frames() {
    let mut mic = MicSource::open(None).expect("the null device opens");
    assert!(
        mic.describe().starts_with("microphone"),
        "{}",
        mic.describe()
    );
    let mut last = None;
    for _ in 0..10 {
        let frame = mic.next_frame().unwrap().expect("a frame");
        assert_eq!(frame.samples.len(), AUDIO_FRAME_SAMPLES);
        assert_eq!(frame.rms(), 0.0, "the null device captures silence");
        if let Some(prev) = last {
            assert_eq!(frame.timestamp, prev + Duration::from_millis(20));
        }
        last = Some(frame.timestamp);
    }
    let err = MicSource::open(Some("no such microphone xyz"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no microphone named"), "{err}");
}

#[test]
#[ignore = "run by speaker_on_the_null_device_plays_what_it_is_given with its own HOME"]
fn child_speaker_plays() {
    let mut speaker = SpeakerSink::open(None).expect("the null device opens");
    let tone = AudioFrame {
        samples: (0..AUDIO_FRAME_SAMPLES)
            .map(|i| ((i % 48) as i16 - 24) * 500)
            .collect(),
        timestamp: Duration::ZERO,
    };
    // The output callback pulls samples; once the buffer has filled to its
    // target it plays them, and the null device takes them as fast as it can.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        speaker.write_frame(&tone).unwrap();
        let stats = speaker.jitter_stats();
        if stats.underruns > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the speaker never pulled audio: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    speaker.finish().unwrap();
}

#[test]
fn no_microphone_gives_the_clear_message_where_there_is_no_sound_card() {
    if std::path::Path::new("/proc/asound/cards").exists()
        && std::fs::read_to_string("/proc/asound/cards")
            .map(|s| !s.contains("no soundcards"))
            .unwrap_or(false)
    {
        // A machine with a sound card: the default microphone opens.
        run_child("child_default_microphone_opens", None);
        return;
    }
    run_child("child_no_microphone_message", None);
}

#[test]
#[ignore = "run by no_microphone_gives_the_clear_message_where_there_is_no_sound_card"]
fn child_no_microphone_message() {
    let err = MicSource::open(None).unwrap_err().to_string();
    assert_eq!(err, NO_MICROPHONE);
}

#[test]
#[ignore = "run by no_microphone_gives_the_clear_message_where_there_is_no_sound_card"]
fn child_default_microphone_opens() {
    let mut mic = MicSource::open(None).expect("the default microphone opens");
    assert_eq!(
        mic.next_frame().unwrap().unwrap().samples.len(),
        AUDIO_FRAME_SAMPLES
    );
}
