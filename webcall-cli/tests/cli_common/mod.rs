//! Helpers shared by the `webcall` command tests: run the binary with a
//! time bound, talk to a running one ([`Live`]), read a WAV file's level;
//! a fingerprint-reading signaling relay ([`relay`]).

#![allow(dead_code)]

pub mod relay;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished `webcall` run left behind.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A `webcall` command with quiet logs.
pub fn webcall(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_webcall"));
    c.args(args)
        .env("RUST_LOG", "warn")
        .env_remove("WEBCALL_SERVER");
    c
}

/// `webcall join <url>` as the call tests run it: test pattern and tone,
/// loopback candidates only, `secs` seconds long, figures written to
/// `stats`, then the `extra` flags.
pub fn join_synthetic(url: &str, secs: &str, stats: &Path, extra: &[&str]) -> Command {
    let mut c = webcall(&[]);
    c.args(join_synthetic_args(url, "127.0.0.1", secs, stats, extra));
    c
}

/// The arguments of [`join_synthetic`], gathering candidates on `ice_addr`.
pub fn join_synthetic_args<'a>(
    url: &'a str,
    ice_addr: &'a str,
    secs: &'a str,
    stats: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let stats = stats.to_str().expect("a UTF-8 scratch path");
    let mut args = vec![
        "join",
        url,
        "--no-tui",
        "--video",
        "test",
        "--audio",
        "tone",
        "--ice-addr",
        ice_addr,
        "--duration",
        secs,
        "--stats-json",
        stats,
    ];
    args.extend_from_slice(extra);
    args
}

/// `webcall join --no-tui` for a chat test: no media (chat needs none),
/// loopback candidates only, figures written to `stats`.
pub fn join_for_chat(url: &str, stats: &Path) -> Command {
    webcall(&[
        "join",
        url,
        "--no-tui",
        "--video",
        "none",
        "--audio",
        "none",
        "--ice-addr",
        "127.0.0.1",
        "--duration",
        "300",
        "--stats-json",
        stats.to_str().unwrap(),
    ])
}

/// A 4,000-character text with letters of one, two and four bytes.
pub fn long_text(tag: char) -> String {
    let mut s = String::from(tag);
    s.extend("жx😀".chars().cycle().take(3999));
    assert_eq!(s.chars().count(), 4000);
    s
}

/// Starts a command with its output captured.
pub fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    cmd.spawn().expect("the webcall binary starts")
}

/// Waits for a started command, killing it after `limit`.
pub fn finish(mut child: Child, limit: Duration) -> Run {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let run = Run {
                code: None,
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            };
            panic!("webcall did not finish within {limit:?}: {run:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Runs a command to the end, at most `limit`.
pub fn run(cmd: Command, limit: Duration) -> Run {
    finish(spawn(cmd), limit)
}

/// A running `webcall` whose standard input the test writes and whose
/// output lines it reads while it runs.
#[derive(Debug)]
pub struct Live {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stdout: Option<std::thread::JoinHandle<()>>,
    errors: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    /// Starts `cmd` with its standard input and output piped.
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("the webcall binary starts");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn({
            let lines = lines.clone();
            move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = std::thread::spawn({
            let errors = errors.clone();
            move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    let mut e = errors.lock().unwrap();
                    e.push_str(&line);
                    e.push('\n');
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            errors,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// A writer for its standard input (to feed it from another thread).
    pub fn take_stdin(&mut self) -> std::process::ChildStdin {
        self.stdin.take().expect("standard input not taken yet")
    }

    /// The output lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.errors.lock().unwrap().clone()
    }

    /// The output lines so far that start with `prefix`, without it.
    pub fn lines_after(&self, prefix: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix(prefix).map(str::to_owned))
            .collect()
    }

    /// Ctrl-C: the call hangs up as a person would.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the end, killing it after `limit`.
    pub fn finish(mut self, limit: Duration) -> Run {
        drop(self.stdin.take());
        let deadline = Instant::now() + limit;
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = self.stdout.take().unwrap().join();
        let _ = self.stderr.take().unwrap().join();
        let run = Run {
            code,
            stdout: self.lines().join("\n"),
            stderr: self.stderr(),
        };
        assert!(
            code.is_some(),
            "webcall did not finish within {limit:?}: {run:#?}"
        );
        run
    }
}

/// Root-mean-square level of a WAV file's 16-bit samples, 0.0 to 1.0.
pub fn wav_rms(path: &Path) -> (f64, usize) {
    let reader = hound::WavReader::open(path).expect("a readable WAV file");
    let samples: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = if samples.is_empty() {
        0.0
    } else {
        (sum / samples.len() as f64).sqrt() / 32768.0
    };
    (rms, samples.len())
}

/// A fresh scratch directory under the target's temp dir.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("webcall-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads the stats JSON a `--stats-json` run wrote.
pub fn stats(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The other side of a screen test: `webcall join --no-tui` sending the
/// test pattern and `audio` ("tone" or "none"), loopback candidates only,
/// no speaker, for at most 300 s; its standard input stays open (no chat).
pub fn pattern_peer(url: &str, audio: &str) -> Killed {
    Killed(
        webcall(&[
            "join",
            url,
            "--no-tui",
            "--video",
            "test",
            "--audio",
            audio,
            "--speaker",
            "none",
            "--ice-addr",
            "127.0.0.1",
            "--duration",
            "300",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the peer starts"),
    )
}
