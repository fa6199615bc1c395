//! [`Browser`]: one headless Chromium session, driven over WebDriver by its
//! own chromedriver process, with fake camera and microphone.
//!
//! Each browser gets a fresh profile directory and a chromedriver on a free
//! loopback port; dropping the [`Browser`] ends the session, stops both
//! processes and removes the profile.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::http;
use crate::nat::{Forward, netns_command};

/// Where Chromium is, unless `WEBCALL_CHROMIUM` says otherwise.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Where chromedriver is, unless `WEBCALL_CHROMEDRIVER` says otherwise.
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long chromedriver may take to answer `/status`.
const DRIVER_START_BOUND: Duration = Duration::from_secs(30);
/// How often [`Browser::wait_until`] evaluates its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

static PROFILE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A JavaScript condition for [`Browser::wait_until`]: the page shows
/// `status` (`document.body.dataset.status`, one of the states the browser
/// client sets: `waiting`, `connected`, `peer_left`, ...).
pub fn status_is(status: &str) -> String {
    format!("document.body.dataset.status === '{status}'")
}

/// A JavaScript condition for [`Browser::wait_until`]: both kinds of
/// remote media decoded (video frames of some size, audio bytes).
pub const MEDIA_FLOWING: &str = "await (async () => { const s = await window.webcall.stats(); \
     return s.videoFramesDecoded > 0 && s.videoWidth > 0 && s.audioBytesReceived > 0; })()";

/// Puts two open browsers in a call as two people join one: `first` joins
/// the room at `first_url` and waits alone ("waiting"), then `second` joins
/// at `second_url` (the same room, perhaps through another address or
/// instance). Returns once both pages say "connected" and decode each
/// other's video and audio, each step bounded by `timeout`.
pub async fn join_in_turn(
    (first, first_url): (&Browser, &str),
    (second, second_url): (&Browser, &str),
    timeout: Duration,
) -> Result<()> {
    first.join_room(first_url).await?;
    first
        .wait_until(
            &status_is("waiting"),
            timeout,
            "the first page alone in the room",
        )
        .await?;
    second.join_room(second_url).await?;
    for (who, page) in [("the first page", first), ("the second page", second)] {
        page.wait_until(
            &status_is("connected"),
            timeout,
            &format!("{who} connected"),
        )
        .await?;
        page.wait_media(who, timeout).await?;
    }
    Ok(())
}

/// How long [`Browser::join_room`] waits for the "Join" button (the room's
/// first answer to the page), on a loaded machine.
const JOIN_READY: Duration = Duration::from_secs(60);

/// How many times [`Browser::click_join`] presses a Join button that stays.
const JOIN_CLICKS: usize = 5;

/// How to start a [`Browser`].
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// The UI language and `Accept-Language`, such as `"ru"`; `None` keeps
    /// Chromium's default (English here).
    pub lang: Option<String>,
    /// The window size in CSS pixels.
    pub window_size: (u32, u32),
    /// When true, camera and microphone requests are refused, as when a
    /// person clicks "Block" (the fake devices stay in place).
    pub deny_media: bool,
    /// When true, any server certificate is accepted (a test server with
    /// a self-signed certificate), as a person clicking through the warning.
    pub ignore_certificate_errors: bool,
    /// More command-line flags for Chromium.
    pub extra_args: Vec<String>,
    /// Runs chromedriver and Chromium inside this network namespace (one
    /// of a [`crate::NatLab`]'s homes); the test drives them through a
    /// [`crate::nat::Forward`].
    pub netns: Option<String>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            lang: None,
            window_size: (1280, 800),
            deny_media: false,
            ignore_certificate_errors: false,
            extra_args: Vec::new(),
            netns: None,
        }
    }
}

/// One headless Chromium, with its chromedriver and profile directory.
pub struct Browser {
    client: Option<Client>,
    session_id: Option<String>,
    driver: Child,
    driver_addr: SocketAddr,
    profile: PathBuf,
    /// The bridge to a chromedriver inside another network namespace.
    forward: Option<Forward>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("session_id", &self.session_id)
            .field("driver_pid", &self.driver.id())
            .field("driver_addr", &self.driver_addr)
            .field("profile", &self.profile)
            .finish()
    }
}

impl Browser {
    /// Launches a browser with [`BrowserOptions::default`].
    pub async fn launch() -> Result<Self> {
        Self::launch_with(BrowserOptions::default()).await
    }

    /// Launches a browser: starts chromedriver on a free loopback port, waits
    /// until it is ready, and opens a session with the flags headless WebRTC
    /// tests need (fake devices, loopback candidates, autoplay allowed).
    pub async fn launch_with(options: BrowserOptions) -> Result<Self> {
        let chromium = binary("WEBCALL_CHROMIUM", DEFAULT_CHROMIUM)?;
        let chromedriver = binary("WEBCALL_CHROMEDRIVER", DEFAULT_CHROMEDRIVER)?;
        let profile = fresh_profile_dir()?;
        let (driver, port) = spawn_driver(&options, &chromedriver)?;
        // From here on, Drop cleans up the driver and the profile.
        let mut browser = Self {
            client: None,
            session_id: None,
            driver,
            driver_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            profile,
            forward: None,
        };
        // The port is free when picked but chromedriver binds it a moment
        // later; if a parallel test's socket took it meanwhile, chromedriver
        // exits at start and is started again on another port.
        let mut direct = browser.driver_addr;
        let mut starts = 1;
        let driver_addr = loop {
            browser.forward = None;
            browser.driver_addr = direct;
            if let Some(netns) = &options.netns {
                let forward = Forward::start(netns, direct).await?;
                browser.driver_addr = forward.addr();
                browser.forward = Some(forward);
            }
            match browser.wait_for_driver().await {
                Ok(()) => break browser.driver_addr,
                // The old driver has exited (and is reaped by try_wait).
                Err(e) if starts < 3 && browser.driver.try_wait()?.is_some() => {
                    eprintln!("testkit: {e:#}; starting chromedriver again on another port");
                    let (driver, port) = spawn_driver(&options, &chromedriver)?;
                    browser.driver = driver;
                    direct = SocketAddr::from(([127, 0, 0, 1], port));
                    starts += 1;
                }
                Err(e) => return Err(e),
            }
        };

        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", browser.profile.display()),
            "--use-fake-device-for-media-stream".to_owned(),
            "--allow-loopback-in-peer-connection".to_owned(),
            "--autoplay-policy=no-user-gesture-required".to_owned(),
            format!(
                "--window-size={},{}",
                options.window_size.0, options.window_size.1
            ),
        ];
        if options.deny_media {
            args.push("--deny-permission-prompts".to_owned());
        } else {
            args.push("--use-fake-ui-for-media-stream".to_owned());
        }
        let mut chrome_options = json!({ "binary": chromium.display().to_string() });
        if let Some(lang) = &options.lang {
            args.push(format!("--lang={lang}"));
            args.push(format!("--accept-lang={lang}"));
            chrome_options["prefs"] = json!({ "intl.accept_languages": lang });
        }
        if options.ignore_certificate_errors {
            args.push("--ignore-certificate-errors".to_owned());
        }
        args.extend(options.extra_args.iter().cloned());
        chrome_options["args"] = json!(args);

        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), chrome_options);
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        capabilities.insert(
            "timeouts".into(),
            json!({ "script": 90_000, "pageLoad": 60_000 }),
        );

        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{driver_addr}"))
            .await
            .with_context(|| {
                format!(
                    "chromedriver could not start {} (is the chromium package installed?)",
                    chromium.display()
                )
            })?;
        browser.session_id = client.session_id().await.ok().flatten();
        browser.client = Some(client);
        Ok(browser)
    }

    async fn wait_for_driver(&mut self) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.driver.try_wait()? {
                bail!(
                    "chromedriver exited at start with {status}; try running `chromedriver --port=9515` by hand"
                );
            }
            if let Ok(r) = http::request(self.driver_addr, "GET", "/status", None).await
                && r.status == 200
                && r.json().ok().and_then(|v| v["value"]["ready"].as_bool()) == Some(true)
            {
                return Ok(());
            }
            if start.elapsed() > DRIVER_START_BOUND {
                bail!(
                    "chromedriver did not answer on {} within {DRIVER_START_BOUND:?}",
                    self.driver_addr
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The WebDriver client, for anything the helpers here do not cover
    /// (finding and clicking elements, sending keys).
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until close()")
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client()
            .goto(url)
            .await
            .with_context(|| format!("cannot open {url}"))
    }

    /// Opens the room page at `url` and joins the call as a person does:
    /// waits for the check before the call to enable its "Join" button and
    /// clicks it. A page that goes straight into the call (it holds a
    /// resume secret) is left to do so.
    pub async fn join_room(&self, url: &str) -> Result<()> {
        self.goto(url).await?;
        self.click_join().await
    }

    /// Clicks "Join" on the check before the call once it can be pressed
    /// (see [`Browser::join_room`]).
    pub async fn click_join(&self) -> Result<()> {
        const READY: &str = "window.webcall && (window.webcall.prejoin().joinEnabled || window.webcall.state().phase === 'call')";
        // Waiting in the page first clicks as soon as the button can be
        // pressed (the browser_setup benchmark times it), not a poll
        // interval later; the poll below covers a page still loading.
        let quick = self
            .eval(&format!(
                "return await new Promise((resolve) => {{ const end = Date.now() + 5000; \
                 const check = () => {{ if ({READY}) resolve(true); \
                 else if (Date.now() > end) resolve(false); else setTimeout(check, 5); }}; check(); }});"
            ))
            .await
            .unwrap_or(Value::Bool(false));
        if quick != Value::Bool(true) {
            self.wait_until(READY, JOIN_READY, "the Join button to be enabled")
                .await?;
        }
        // A click can miss when the layout moves between WebDriver finding
        // the button and pressing it (the self-view and the device lists
        // arrive while the button is already enabled): a person would press
        // again, and so does this, a bounded number of times.
        const LEFT: &str = "!window.webcall.prejoin().shown";
        for press in 0..JOIN_CLICKS {
            if self.eval(&format!("return {LEFT};")).await? == Value::Bool(true) {
                return Ok(());
            }
            if press > 0 {
                eprintln!(
                    "testkit: Join pressed again (press {}): the last press missed",
                    press + 1
                );
            }
            self.click("#join-call").await?;
            let left = self
                .eval(&format!(
                    "return await new Promise((resolve) => {{ const end = Date.now() + 3000; \
                     const check = () => {{ if ({LEFT}) resolve(true); \
                     else if (Date.now() > end) resolve(false); else setTimeout(check, 20); }}; check(); }});"
                ))
                .await?;
            if left == Value::Bool(true) {
                return Ok(());
            }
        }
        bail!(
            "pressing Join {JOIN_CLICKS} times did not leave the check before the call\n{}",
            self.diagnostics().await
        )
    }

    /// Clicks the first element matching the CSS `selector`, as a user
    /// would (the element must be visible and enabled).
    pub async fn click(&self, selector: &str) -> Result<()> {
        let element = self
            .client()
            .find(fantoccini::Locator::Css(selector))
            .await
            .with_context(|| format!("no element matches {selector}"))?;
        element
            .click()
            .await
            .with_context(|| format!("cannot click {selector}"))?;
        Ok(())
    }

    /// Reloads the current page and waits for it to load.
    pub async fn reload(&self) -> Result<()> {
        self.client()
            .refresh()
            .await
            .context("reloading the page failed")
    }

    /// Runs `js` as the body of an async function in the page and returns
    /// what it `return`s (`null` for nothing). A thrown error or rejected
    /// promise becomes an `Err` carrying its message.
    pub async fn eval(&self, js: &str) -> Result<Value> {
        let script = format!(
            "const __done = arguments[arguments.length - 1];\n\
             (async () => {{\n{js}\n}})().then(\n\
               (value) => __done({{ ok: value === undefined ? null : value }}),\n\
               (error) => __done({{ err: String((error && error.stack) || error) }}));"
        );
        let result = self
            .client()
            .execute_async(&script, vec![])
            .await
            .with_context(|| format!("running script failed: {}", shorten(js)))?;
        if let Some(err) = result.get("err") {
            bail!(
                "script threw: {}\nscript: {}",
                err.as_str().unwrap_or_default(),
                shorten(js)
            );
        }
        Ok(result.get("ok").cloned().unwrap_or(Value::Null))
    }

    /// Waits until the page decodes the other side's video and audio
    /// ([`MEDIA_FLOWING`]); `who` names the browser in the error.
    pub async fn wait_media(&self, who: &str, timeout: Duration) -> Result<()> {
        self.wait_until(
            MEDIA_FLOWING,
            timeout,
            &format!("{who} to decode video and audio"),
        )
        .await
    }

    /// Polls the JavaScript expression `condition` until it is truthy, for
    /// at most `timeout`. `what` names the condition in the error, which also
    /// carries the page's status, state and recent console output.
    pub async fn wait_until(&self, condition: &str, timeout: Duration, what: &str) -> Result<()> {
        let js = format!("return !!({condition});");
        let what = format!("{what} ({condition})");
        // An evaluation error (the page navigating, say) is tried again.
        let polled = crate::poll::poll_until(&what, timeout, POLL_INTERVAL, || async {
            Ok(self.eval(&js).await? == Value::Bool(true))
        })
        .await;
        match polled {
            Ok(()) => Ok(()),
            Err(e) => bail!("{e:#}\n{}", self.diagnostics().await),
        }
    }

    /// `document.body.dataset.status` of the page (empty when unreadable).
    pub async fn status(&self) -> String {
        self.eval("return document.body ? (document.body.dataset.status || '') : '';")
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// `await window.webcall.stats()`: the page's getStats summary.
    pub async fn stats(&self) -> Result<Value> {
        self.eval("return await window.webcall.stats();").await
    }

    /// The browser's console log collected by chromedriver since the last
    /// call (CSP violations and load errors included), one line per entry.
    pub async fn console_log(&self) -> Result<Vec<String>> {
        let session = self
            .session_id
            .as_deref()
            .ok_or_else(|| anyhow!("no session id"))?;
        let response = http::request(
            self.driver_addr,
            "POST",
            &format!("/session/{session}/se/log"),
            Some(r#"{"type":"browser"}"#),
        )
        .await?;
        let value = response.json()?;
        let entries = value["value"].as_array().cloned().unwrap_or_default();
        Ok(entries
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["level"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect())
    }

    /// A readable report of the page for failure messages: URL, status,
    /// `window.webcall.state()`, the page's own log and the console log.
    pub async fn diagnostics(&self) -> String {
        let mut out = String::from("---- browser diagnostics ----\n");
        if let Ok(url) = self.client().current_url().await {
            out.push_str(&format!("url: {url}\n"));
        }
        match self
            .eval(
                "return { status: document.body && document.body.dataset.status, \
                 state: window.webcall && window.webcall.state ? window.webcall.state() : null, \
                 stats: window.webcall ? await window.webcall.stats() : null, \
                 log: window.webcall && window.webcall.log ? Array.from(window.webcall.log).slice(-60) : [] };",
            )
            .await
        {
            Ok(v) => {
                out.push_str(&format!("status: {}\n", v["status"]));
                out.push_str(&format!("state: {}\n", v["state"]));
                out.push_str(&format!("stats: {}\n", v["stats"]));
                out.push_str("page log:\n");
                for line in v["log"].as_array().into_iter().flatten() {
                    out.push_str(&format!("  {}\n", line.as_str().unwrap_or_default()));
                }
            }
            Err(e) => out.push_str(&format!("page state unreadable: {e:#}\n")),
        }
        match self.console_log().await {
            Ok(lines) => {
                out.push_str("console:\n");
                for line in lines.iter().rev().take(60).rev() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            Err(e) => out.push_str(&format!("console log unavailable: {e:#}\n")),
        }
        out.push_str("-----------------------------");
        out
    }

    /// Takes a PNG screenshot of the viewport and writes it to `path`.
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> Result<()> {
        let png = self
            .client()
            .screenshot()
            .await
            .context("taking a screenshot failed")?;
        std::fs::write(path.as_ref(), png)
            .with_context(|| format!("cannot write {}", path.as_ref().display()))
    }

    /// The process ids of this browser's Chromium (every descendant of its
    /// chromedriver: the browser, its renderers and utility processes).
    pub fn chromium_pids(&self) -> Vec<u32> {
        descendants_of(self.driver.id())
    }

    /// Freezes this browser's Chromium processes with `SIGSTOP`, as a
    /// machine that stops answering would: its peer connections, sockets and
    /// page scripts halt. Returns how many processes were stopped. Do not
    /// drive the page again before [`Browser::resume`].
    pub fn suspend(&self) -> Result<usize> {
        self.signal_chromium("-STOP")
    }

    /// Lets processes frozen by [`Browser::suspend`] run again (`SIGCONT`).
    pub fn resume(&self) -> Result<usize> {
        self.signal_chromium("-CONT")
    }

    fn signal_chromium(&self, signal: &str) -> Result<usize> {
        let pids = self.chromium_pids();
        if pids.is_empty() {
            bail!(
                "no Chromium process found under chromedriver {}",
                self.driver.id()
            );
        }
        let status = Command::new("kill")
            .arg(signal)
            .args(pids.iter().map(u32::to_string))
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill {signal} {pids:?} failed with {status}");
        }
        Ok(pids.len())
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) -> Result<()> {
        if let Some(client) = self.client.take() {
            client
                .close()
                .await
                .context("ending the WebDriver session failed")?;
            self.session_id = None;
        }
        Ok(())
        // Drop stops chromedriver and removes the profile.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Without an async context here, end the session with a blocking
        // request so that chromedriver makes Chromium quit.
        // (A driver in another namespace is reached through a task of this
        // runtime, which cannot run while this blocks: skip to the kill.)
        if let (Some(session), Some(_), None) =
            (self.session_id.take(), self.client.take(), &self.forward)
        {
            let _ =
                http::blocking_request(self.driver_addr, "DELETE", &format!("/session/{session}"));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        kill_processes_using(&self.profile);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn binary(env: &str, default: &str) -> Result<PathBuf> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if !path.exists() {
        bail!(
            "{} not found: install chromium and chromium-driver (`apt-get install chromium chromium-driver`) \
             or point {env} at the binary",
            path.display()
        );
    }
    Ok(path)
}

fn fresh_profile_dir() -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = PROFILE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "webcall-chromium-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Starts chromedriver on a free loopback port (inside `options.netns`
/// when set).
fn spawn_driver(options: &BrowserOptions, chromedriver: &Path) -> Result<(Child, u16)> {
    let port = free_port()?;
    let mut driver = match &options.netns {
        Some(netns) => netns_command(netns, chromedriver),
        None => Command::new(chromedriver),
    };
    let driver = driver
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", chromedriver.display()))?;
    Ok((driver, port))
}

fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Every process whose chain of parents leads to `root` (not `root` itself).
fn descendants_of(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parents = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// Kills any process still running with our profile directory on its
/// command line (Chromium's helpers, should the session end abnormally).
fn kill_processes_using(profile: &Path) {
    let marker = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

fn shorten(js: &str) -> String {
    let one_line = js.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 160 {
        format!("{}…", one_line.chars().take(160).collect::<String>())
    } else {
        one_line
    }
}
