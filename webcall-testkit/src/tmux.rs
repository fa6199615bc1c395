//! A tmux server of a test's own, for running `webcall join` in a real
//! terminal: one pane (session `call`) of a chosen size, its text as the
//! terminal shows it, keys typed into it and, when asked, every byte the
//! program wrote to it. Killed, and its scratch directory removed, on drop.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How often [`Tmux::wait_for`] reads the pane.
const POLL: Duration = Duration::from_millis(150);

/// A tmux server on its own socket, with its own configuration.
#[derive(Debug)]
pub struct Tmux {
    socket: String,
    dir: PathBuf,
}

impl Tmux {
    /// A server named after `name` and this process, configured by `config`
    /// (tmux.conf lines; "" for tmux's defaults). It starts with the first
    /// session.
    pub fn new(name: &str, config: &str) -> Self {
        let socket = format!("webcall-test-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&socket);
        std::fs::create_dir_all(&dir).expect("a scratch directory for tmux");
        std::fs::write(dir.join("tmux.conf"), config).expect("tmux.conf written");
        Self { socket, dir }
    }

    /// The server's socket name (tmux's `-L`), for programs that ask tmux
    /// themselves.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// Runs one tmux command against this server.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(self.dir.join("tmux.conf"))
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("tmux runs (Debian package tmux)")
    }

    fn must(&self, args: &[&str]) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the shell `command` in the pane, `width` x `height` cells.
    pub fn start(&self, width: u16, height: u16, command: &str) {
        let (w, h) = (width.to_string(), height.to_string());
        self.must(&[
            "new-session",
            "-d",
            "-s",
            "call",
            "-x",
            &w,
            "-y",
            &h,
            command,
        ]);
    }

    /// [`Tmux::start`], with every byte the pane receives also kept for
    /// [`Tmux::raw`]: the command waits until the pipe is in place.
    pub fn start_recorded(&self, width: u16, height: u16, command: &str) {
        let go = self.dir.join("go");
        let script = format!(
            "i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; {command}",
            go = go.display()
        );
        self.start(width, height, &script);
        let pipe = format!("cat >> {}", self.raw_path().display());
        self.must(&["pipe-pane", "-o", "-t", "call", &pipe]);
        std::fs::write(&go, "").expect("the go file written");
    }

    fn raw_path(&self) -> PathBuf {
        self.dir.join("raw")
    }

    /// Every byte the program wrote to the pane so far (after
    /// [`Tmux::start_recorded`]).
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.raw_path()).unwrap_or_default()).into_owned()
    }

    /// The visible pane with its colour and style escapes.
    pub fn capture(&self) -> String {
        self.read(&["capture-pane", "-p", "-e", "-t", "call"])
    }

    /// The visible pane's text, lines the terminal wrapped joined again.
    pub fn visible(&self) -> String {
        self.read(&["capture-pane", "-p", "-J", "-t", "call"])
    }

    /// [`Tmux::visible`] with up to 100 lines that scrolled off its top
    /// (what a program printed after leaving the full screen).
    pub fn text(&self) -> String {
        self.read(&["capture-pane", "-p", "-J", "-S", "-100", "-t", "call"])
    }

    fn read(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run(args).stdout).into_owned()
    }

    /// Types `keys` into the pane (tmux key names: "q", "Enter", "Escape").
    pub fn keys(&self, keys: &str) {
        self.must(&["send-keys", "-t", "call", keys]);
    }

    /// The pid of the pane's shell.
    pub fn pane_pid(&self) -> u32 {
        self.read(&["list-panes", "-t", "call", "-F", "#{pane_pid}"])
            .trim()
            .parse()
            .expect("a pane pid")
    }

    /// The pid of the program the pane's shell runs, while it runs.
    pub fn child_pid(&self) -> Option<u32> {
        let shell = self.pane_pid();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// Reads [`Tmux::text`] until `ok` holds and returns it; panics with
    /// the last text after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let pane = self.text();
            if ok(&pane) {
                return pane;
            }
            assert!(
                start.elapsed() < timeout,
                "never saw {what} in {timeout:?}; last pane:\n{pane}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if std::env::var_os("WEBCALL_KEEP_TMUX").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
