//! Owning the terminal: raw mode and the alternate screen while the call
//! screen is up, and the terminal given back on every way out: a normal
//! return, an error, a panic (a hook restores before the message prints,
//! and first removes terminal images the screen drew), and SIGTERM or
//! SIGHUP ([`terminated`]: the loop hangs up and returns).
//! Log lines are held meanwhile (see [`super::logs`]).

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEvent, KeyEventKind};
use tokio::sync::mpsc;

/// The terminal in call-screen mode. Dropping it restores the terminal.
#[derive(Debug)]
pub struct TerminalSession {
    terminal: DefaultTerminal,
    /// Written before the terminal is restored (removes terminal images).
    cleanup: Vec<u8>,
}

impl TerminalSession {
    /// Enters raw mode and the alternate screen, and installs a panic hook
    /// that restores the terminal before the panic message is printed.
    pub fn enter() -> io::Result<Self> {
        // try_init installs the restoring panic hook before touching the terminal.
        let terminal = ratatui::try_init()?;
        super::logs::hold();
        Ok(Self {
            terminal,
            cleanup: Vec::new(),
        })
    }

    /// Writes `bytes` on every way out before the terminal is restored:
    /// when the session is dropped, and from the panic hook (chained in
    /// front of the restoring one). For removing images the screen drew.
    pub fn clean_up_with(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let on_panic = bytes.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let mut out = io::stdout();
            let _ = out.write_all(&on_panic);
            let _ = out.flush();
            previous(info);
        }));
        self.cleanup = bytes;
    }

    /// The terminal to draw on.
    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The panic hook cleaned up and restored already; doing it
            // again would leave the alternate screen twice, and some
            // terminals (tmux) then move the cursor back over the message.
            super::logs::release();
            return;
        }
        if !self.cleanup.is_empty() {
            let mut out = io::stdout();
            let _ = out.write_all(&self.cleanup);
            let _ = out.flush();
        }
        let _ = self.terminal.show_cursor();
        ratatui::restore();
        super::logs::release();
    }
}

/// Resolves when the process is asked to end (SIGTERM) or its terminal
/// hangs up (SIGHUP): the screen then hangs up the call and gives the
/// terminal back, its images removed, as on `q`. Pending forever where
/// these signals cannot be watched.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            tokio::select! {
                _ = term.recv() => return,
                _ = hup.recv() => return,
            }
        }
    }
    std::future::pending::<()>().await
}

/// Something the user did at the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A key press.
    Key(KeyEvent),
    /// The terminal changed size.
    Resize,
}

/// A thread reading terminal events into a channel; stops when dropped.
#[derive(Debug)]
pub struct InputReader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl InputReader {
    /// Starts reading keys and resizes from the terminal into `tx`.
    pub fn spawn(tx: mpsc::UnboundedSender<Input>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("terminal-input".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match event::poll(Duration::from_millis(100)) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(_) => break,
                    }
                    let input = match event::read() {
                        Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Input::Key(k),
                        Ok(Event::Resize(..)) => Input::Resize,
                        Ok(_) => continue,
                        Err(_) => break,
                    };
                    if tx.send(input).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning a thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for InputReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
