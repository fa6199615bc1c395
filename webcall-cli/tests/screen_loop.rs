//! The screen's loop on ratatui's test backend: call events change what is
//! drawn, pictures arrive through their slots, keys reach the call, and the
//! loop ends on hang-up or when the call ends. Time is virtual (paused), so
//! the 30-per-second redraw runs deterministically.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use webcall_cli::screen::run::Figures;
use webcall_cli::screen::video::HALF_BLOCK;
use webcall_cli::screen::{Connection, Input, Outcome, ScreenEvent, run};
use webcall_core::call::EndReason;
use webcall_core::media::VideoFrame;

mod screen_common;
use screen_common::{Recorder, Rig, rig, screen_text};

fn special(code: KeyCode) -> Input {
    Input::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn key(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

#[tokio::test(start_paused = true)]
async fn keys_reach_the_call_and_q_hangs_up() {
    let Rig {
        mut terminal,
        mut state,
        mut inputs,
        events,
        keys,
        remote,
    } = rig(100, 30);
    let call = Recorder::default();
    let driver = async {
        events.send(ScreenEvent::PeerPresent(true)).unwrap();
        events
            .send(ScreenEvent::Connection(Connection::Connected))
            .unwrap();
        events
            .send(ScreenEvent::Stats(Figures {
                rtt: Some(Duration::from_millis(7)),
                ..Figures::default()
            }))
            .unwrap();
        remote.put(VideoFrame::black(64, 48).unwrap());
        // Virtual time: the loop redraws at least once meanwhile.
        tokio::time::sleep(Duration::from_millis(200)).await;
        keys.send(key('m')).unwrap();
        keys.send(key('v')).unwrap();
        keys.send(key('x')).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        keys.send(key('q')).unwrap();
    };
    let (outcome, ()) = tokio::join!(run(&mut terminal, &mut state, &mut inputs, &call), driver);
    assert_eq!(outcome.unwrap(), Outcome::HungUp);
    assert_eq!(
        *call.0.lock().unwrap(),
        ["audio false", "video false", "hang up"],
        "the call got the keys' actions in order"
    );
    assert!(state.mic_muted && state.camera_off);
    assert_eq!(state.connection, Connection::Ended);
    assert!(
        state.remote.is_some(),
        "the picture was taken from its slot"
    );
    let text = screen_text(&terminal);
    assert!(text.contains("call ended"), "{text}");
    assert!(text.contains("rtt 7 ms"), "{text}");
    assert!(
        text.contains("mic off") && text.contains("camera off"),
        "{text}"
    );
    assert!(text.contains(HALF_BLOCK), "the picture is drawn:\n{text}");
}

#[tokio::test(start_paused = true)]
async fn the_loop_ends_when_the_call_ends_and_follows_the_peer() {
    let Rig {
        mut terminal,
        mut state,
        mut inputs,
        events,
        keys,
        ..
    } = rig(100, 30);
    let call = Recorder::default();
    let driver = async {
        events
            .send(ScreenEvent::Connection(Connection::Waiting))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        events.send(ScreenEvent::PeerPresent(true)).unwrap();
        events
            .send(ScreenEvent::Connection(Connection::PeerLeft))
            .unwrap();
        events
            .send(ScreenEvent::Notice("the other side hung up".into()))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        events.send(ScreenEvent::Ended(EndReason::HungUp)).unwrap();
        // Keep the key channel open until the loop has ended.
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(keys);
    };
    let outcome = tokio::select! {
        o = run(&mut terminal, &mut state, &mut inputs, &call) => o.unwrap(),
        () = driver => panic!("the loop did not end with the call"),
    };
    assert_eq!(outcome, Outcome::Ended(EndReason::HungUp));
    assert!(
        call.0.lock().unwrap().is_empty(),
        "the call was not touched"
    );
    assert!(!state.peer_present);
    assert_eq!(state.notice.as_deref(), Some("the other side hung up"));
    let text = screen_text(&terminal);
    assert!(text.contains("call ended"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn the_screen_hangs_up_when_the_time_is_up() {
    let Rig {
        mut terminal,
        mut state,
        mut inputs,
        events,
        keys,
        ..
    } = rig(100, 30);
    inputs.duration = Some(Duration::from_secs(3));
    let call = Recorder::default();
    let start = tokio::time::Instant::now();
    let outcome = run(&mut terminal, &mut state, &mut inputs, &call)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::TimeUp);
    assert!(start.elapsed() >= Duration::from_secs(3));
    assert_eq!(*call.0.lock().unwrap(), ["hang up"]);
    drop((events, keys));
}

#[tokio::test(start_paused = true)]
async fn a_chat_message_is_typed_sent_and_shown_with_the_ones_received() {
    let Rig {
        mut terminal,
        mut state,
        mut inputs,
        events,
        keys,
        ..
    } = rig(100, 30);
    let call = Recorder::default();
    let driver = async {
        events
            .send(ScreenEvent::Connection(Connection::Connected))
            .unwrap();
        events
            .send(ScreenEvent::VerificationCode("042 917".into()))
            .unwrap();
        events.send(ScreenEvent::Chat("Привет!".into())).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // `c` opens the line; `q` and `m` are text there, not actions.
        for k in "cqm x".chars() {
            keys.send(key(k)).unwrap();
        }
        keys.send(special(KeyCode::Backspace)).unwrap();
        keys.send(key('!')).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys.send(special(KeyCode::Enter)).unwrap();
        // Enter opens a new line; Esc drops what was typed.
        keys.send(special(KeyCode::Enter)).unwrap();
        keys.send(key('z')).unwrap();
        keys.send(special(KeyCode::Esc)).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys.send(key('q')).unwrap();
    };
    let (outcome, ()) = tokio::join!(run(&mut terminal, &mut state, &mut inputs, &call), driver);
    assert_eq!(outcome.unwrap(), Outcome::HungUp);
    assert_eq!(*call.0.lock().unwrap(), ["chat qm !", "hang up"]);
    assert_eq!(state.chat.len(), 2);
    assert!(!state.chat[0].mine && state.chat[1].mine);
    assert_eq!(state.chat_input, None);
    let text = screen_text(&terminal);
    assert!(text.contains("them: Привет!"), "{text}");
    assert!(text.contains("you: qm !"), "{text}");
    assert!(text.contains("code 042 917"), "{text}");
    assert!(!state.mic_muted, "m was typed, not an action");
}
