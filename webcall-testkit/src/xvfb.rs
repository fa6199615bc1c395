//! An X display of a test's own (Xvfb, Debian package xvfb): the first
//! free display number from a chosen one, one screen of a chosen size,
//! waited for until its socket exists. Killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Xvfb may take to open its socket on a loaded machine.
const START: Duration = Duration::from_secs(90);

/// A running Xvfb.
#[derive(Debug)]
pub struct Xvfb {
    display: String,
    child: Child,
}

impl Xvfb {
    /// Whether Xvfb is installed.
    pub fn installed() -> bool {
        super::installed(None, "Xvfb").is_some()
    }

    /// Starts Xvfb on the first display number from `first` that has no
    /// lock file, with one screen of `size` ("800x600x24"), listening on
    /// its Unix socket only, and waits until the socket exists.
    pub fn start(first: u32, size: &str) -> Self {
        let number = (first..first + 100)
            .find(|n| !Path::new(&format!("/tmp/.X{n}-lock")).exists())
            .expect("a free X display number");
        let display = format!(":{number}");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", size, "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts (Debian package xvfb)");
        let xvfb = Self { display, child };
        let socket = format!("/tmp/.X11-unix/X{number}");
        let start = Instant::now();
        while !Path::new(&socket).exists() {
            assert!(start.elapsed() < START, "Xvfb never opened {socket}");
            std::thread::sleep(Duration::from_millis(100));
        }
        xvfb
    }

    /// Its display name, for `DISPLAY` or `-display` (":42").
    pub fn display(&self) -> &str {
        &self.display
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
