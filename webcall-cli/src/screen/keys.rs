//! Keys on the call screen and what they do.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks the call to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Mute or unmute the microphone.
    ToggleMute,
    /// Turn the camera off or on.
    ToggleCamera,
    /// Leave the call.
    HangUp,
}

/// The action for a key press, if any: `m` mutes, `v` toggles the camera,
/// `q`, `Esc` or Ctrl-C hang up. The same keys on a Russian layout (`ь`, `м`,
/// `й`) work too. Key releases and repeats of hang-up are ignored.
pub fn handle_key(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c' | 'C' | 'с' | 'С') if ctrl => Some(Action::HangUp),
        _ if ctrl => None,
        KeyCode::Char('m' | 'M' | 'ь' | 'Ь') => Some(Action::ToggleMute),
        KeyCode::Char('v' | 'V' | 'м' | 'М') => Some(Action::ToggleCamera),
        KeyCode::Char('q' | 'Q' | 'й' | 'Й') | KeyCode::Esc => Some(Action::HangUp),
        _ => None,
    }
}
