//! Log lines while the call screen is up.
//!
//! Log output written to the terminal under the full-screen view would
//! scroll and tear it. [`LogWriter`] is the writer the program's logger
//! uses: it passes lines to stderr, except while a [`super::TerminalSession`]
//! holds the terminal; then it keeps them (the last 64 KiB) and writes them
//! out once the terminal is restored.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::fmt::MakeWriter;

/// Bytes of log kept while the screen is up; older ones are dropped.
const HELD_MAX: usize = 64 * 1024;

static HOLDING: AtomicBool = AtomicBool::new(false);
static HELD: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// The logger's writer: stderr, or held while the screen is up.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

/// One write of a log line (see [`LogWriter`]).
#[derive(Debug)]
pub struct LogSink;

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogSink;

    fn make_writer(&'a self) -> Self::Writer {
        LogSink
    }
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if HOLDING.load(Ordering::Acquire) {
            let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
            held.extend_from_slice(buf);
            if held.len() > HELD_MAX {
                let excess = held.len() - HELD_MAX;
                held.drain(..excess);
            }
            Ok(buf.len())
        } else {
            io::stderr().write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Starts keeping log lines instead of writing them.
pub fn hold() {
    HOLDING.store(true, Ordering::Release);
}

/// Writes the kept log lines to stderr and goes back to writing directly.
pub fn release() {
    HOLDING.store(false, Ordering::Release);
    let held = std::mem::take(&mut *HELD.lock().unwrap_or_else(|e| e.into_inner()));
    if !held.is_empty() {
        let mut err = io::stderr();
        let _ = err.write_all(&held);
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_held_while_the_screen_is_up_and_kept_bounded() {
        hold();
        let mut sink = LogWriter.make_writer();
        sink.write_all(b"first line\n").unwrap();
        assert_eq!(&*HELD.lock().unwrap(), b"first line\n");
        sink.write_all(&vec![b'x'; HELD_MAX + 10]).unwrap();
        assert_eq!(HELD.lock().unwrap().len(), HELD_MAX);
        release();
        assert!(HELD.lock().unwrap().is_empty());
    }
}
