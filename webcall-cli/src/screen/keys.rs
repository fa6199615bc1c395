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
    /// Open the line to type a chat message.
    OpenChat,
    /// Show or hide the quality details.
    ToggleDetails,
    /// Switch to the next camera.
    NextCamera,
    /// Switch to the next microphone.
    NextMicrophone,
    /// Show or hide the self-view.
    ToggleSelfView,
    /// Open or close the help overlay listing every key.
    ToggleHelp,
}

/// What a key does while a chat message is being typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typing {
    /// Add this character.
    Insert(char),
    /// Remove the last character.
    Backspace,
    /// Send the message and close the line.
    Send,
    /// Close the line without sending.
    Cancel,
    /// Leave the call (Ctrl-C).
    HangUp,
}

/// The action for a key press, if any: `m` mutes, `v` toggles the camera,
/// `d` switches to the next camera and `a` to the next microphone, `c` or
/// Enter opens the chat line, `i` shows or hides the quality details, `s`
/// the self-view, `?` (or F1) opens the help, `q`, `Esc` or Ctrl-C hang
/// up. The same keys on a Russian layout (`ь`, `м`, `в`, `ф`, `с`, `ш`,
/// `ы`, `,` where `?` is, `й`) work too. Key releases and repeats of
/// hang-up are ignored.
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
        KeyCode::Char('d' | 'D' | 'в' | 'В') => Some(Action::NextCamera),
        KeyCode::Char('a' | 'A' | 'ф' | 'Ф') => Some(Action::NextMicrophone),
        KeyCode::Char('c' | 'C' | 'с' | 'С') | KeyCode::Enter => Some(Action::OpenChat),
        KeyCode::Char('i' | 'I' | 'ш' | 'Ш') => Some(Action::ToggleDetails),
        KeyCode::Char('s' | 'S' | 'ы' | 'Ы') => Some(Action::ToggleSelfView),
        KeyCode::Char('?' | ',') | KeyCode::F(1) => Some(Action::ToggleHelp),
        KeyCode::Char('q' | 'Q' | 'й' | 'Й') | KeyCode::Esc => Some(Action::HangUp),
        _ => None,
    }
}

/// What a key does on the open chat line: characters are typed, Enter
/// sends, Esc cancels, Backspace deletes, Ctrl-C still hangs up.
pub fn handle_typing_key(key: KeyEvent) -> Option<Typing> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c' | 'C' | 'с' | 'С') if ctrl => Some(Typing::HangUp),
        _ if ctrl => None,
        KeyCode::Char(c) => Some(Typing::Insert(c)),
        KeyCode::Backspace => Some(Typing::Backspace),
        KeyCode::Enter => Some(Typing::Send),
        KeyCode::Esc => Some(Typing::Cancel),
        _ => None,
    }
}

/// What a key does while the help overlay is open: Ctrl-C still hangs up;
/// any other key press closes the help (`?`, `,` and Esc among them) and
/// does nothing else, so Esc or `q` pressed to leave the help never ends
/// the call.
pub fn handle_help_key(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c' | 'C' | 'с' | 'С') if ctrl => Some(Action::HangUp),
        KeyCode::Modifier(_) => None,
        _ => Some(Action::ToggleHelp),
    }
}
