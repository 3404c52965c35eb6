//! A small Chrome DevTools Protocol client, for tests that drive a real headless Chromium.
//!
//! [`Browser::launch`] starts Chromium with a fresh profile and `--remote-debugging-port=0`,
//! reads the `DevTools listening on ws://...` line from its stderr and connects to it.
//! [`Browser::new_page`] creates a page target and attaches to it with a flattened
//! session; a [`Page`] navigates, evaluates JavaScript, types, clicks and takes
//! screenshots. One task owns the DevTools socket: calls go to it through a bounded
//! channel and their answers come back by `id`; console lines and uncaught exceptions are
//! kept per page for failure messages.
//!
//! Every wait is bounded, and Chromium (its whole process group) is killed when the
//! [`Browser`] is dropped, so a failing test leaves nothing behind.
//!
//! Must not depend on the game: this is a generic driver.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::TempDir;

/// How long one DevTools call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long Chromium may take to start listening.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Console lines kept per page (the newest).
const CONSOLE_LINES: usize = 200;
/// Chromium stderr lines kept for error messages (the newest).
const STDERR_LINES: usize = 40;

/// Environment variable naming the Chromium binary, overriding the search of `PATH`.
pub const CHROMIUM_ENV: &str = "RALLYPOINT_CHROMIUM";

/// What went wrong talking to the browser.
#[derive(Debug)]
pub enum CdpError {
    /// Chromium could not be started or did not announce its DevTools socket.
    Launch(String),
    /// The DevTools socket failed or closed (usually: Chromium died).
    Closed(String),
    /// Chromium answered a call with an error.
    Protocol {
        /// The method called.
        method: String,
        /// Chromium's message.
        message: String,
    },
    /// A navigation failed (`net::ERR_...`).
    Navigation(String),
    /// Evaluated JavaScript threw.
    Js(String),
    /// A wait ran out of time.
    Timeout(String),
}

impl std::fmt::Display for CdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CdpError::Launch(m) => write!(f, "cannot launch Chromium: {m}"),
            CdpError::Closed(m) => write!(f, "DevTools connection closed: {m}"),
            CdpError::Protocol { method, message } => write!(f, "{method} failed: {message}"),
            CdpError::Navigation(m) => write!(f, "navigation failed: {m}"),
            CdpError::Js(m) => write!(f, "JavaScript threw: {m}"),
            CdpError::Timeout(m) => write!(f, "timed out: {m}"),
        }
    }
}

impl std::error::Error for CdpError {}

/// Finds a Chromium binary: `$RALLYPOINT_CHROMIUM`, else `chromium`, `chromium-browser`,
/// `google-chrome-stable` or `google-chrome` on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(CHROMIUM_ENV) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome-stable",
        "google-chrome",
    ];
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// How to start the browser.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Accept any TLS certificate (tests with self-signed certificates).
    pub ignore_certificate_errors: bool,
    /// Page viewport in CSS pixels.
    pub window: (u32, u32),
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            ignore_certificate_errors: false,
            window: (1280, 800),
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, CdpError>>>>>;
type ConsoleLog = Arc<Mutex<HashMap<String, VecDeque<String>>>>;

/// The DevTools connection, shared by the browser and its pages.
#[derive(Debug, Clone)]
struct Cdp {
    /// To the socket task; bounded, a caller waits when 64 calls are queued.
    out: mpsc::Sender<String>,
    /// Calls waiting for their answer, by id. The socket task fails them all when the
    /// connection ends, so no caller waits forever.
    pending: Pending,
    next_id: Arc<AtomicU64>,
    /// Console lines and exceptions, by session id.
    console: ConsoleLog,
}

impl Cdp {
    async fn call(
        &self,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Result<Value, CdpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        if self.out.send(msg.to_string()).await.is_err() {
            self.pending.lock().unwrap().remove(&id);
            return Err(CdpError::Closed("socket task ended".into()));
        }
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(result)) => result.map_err(|e| match e {
                CdpError::Protocol { message, .. } => CdpError::Protocol {
                    method: method.to_owned(),
                    message,
                },
                other => other,
            }),
            Ok(Err(_)) => Err(CdpError::Closed("answer dropped".into())),
            Err(_) => {
                self.pending.lock().unwrap().remove(&id);
                Err(CdpError::Timeout(format!(
                    "{method} after {CALL_TIMEOUT:?}"
                )))
            }
        }
    }
}

/// Owns the DevTools socket: writes queued calls, routes answers and records events.
async fn socket_task<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    mut out: mpsc::Receiver<String>,
    pending: Pending,
    console: ConsoleLog,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let why = loop {
        tokio::select! {
            call = out.recv() => match call {
                Some(text) => {
                    if let Err(e) = ws.send(Message::Text(text.into())).await {
                        break e.to_string();
                    }
                }
                None => break "browser dropped".to_owned(),
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&text) {
                        dispatch(v, &pending, &console);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "closed by Chromium".to_owned(),
            },
        }
    };
    for (_, tx) in pending.lock().unwrap().drain() {
        let _ = tx.send(Err(CdpError::Closed(why.clone())));
    }
}

fn dispatch(v: Value, pending: &Pending, console: &ConsoleLog) {
    if let Some(id) = v["id"].as_u64() {
        if let Some(tx) = pending.lock().unwrap().remove(&id) {
            let result = match v.get("error") {
                Some(e) => Err(CdpError::Protocol {
                    method: String::new(),
                    message: e["message"].as_str().unwrap_or("?").to_owned(),
                }),
                None => Ok(v["result"].clone()),
            };
            let _ = tx.send(result);
        }
        return;
    }
    let Some(session) = v["sessionId"].as_str() else {
        return;
    };
    let line = match v["method"].as_str() {
        Some("Runtime.consoleAPICalled") => {
            let args: Vec<String> = v["params"]["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match &a["value"] {
                    Value::String(s) => s.clone(),
                    Value::Null => a["description"].as_str().unwrap_or("?").to_owned(),
                    other => other.to_string(),
                })
                .collect();
            format!(
                "console.{}: {}",
                v["params"]["type"].as_str().unwrap_or("log"),
                args.join(" ")
            )
        }
        Some("Runtime.exceptionThrown") => {
            let d = &v["params"]["exceptionDetails"];
            format!(
                "uncaught: {}",
                d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("?")
            )
        }
        Some("Log.entryAdded") => format!(
            "log.{}: {}",
            v["params"]["entry"]["level"].as_str().unwrap_or("?"),
            v["params"]["entry"]["text"].as_str().unwrap_or("?")
        ),
        _ => return,
    };
    let mut all = console.lock().unwrap();
    let lines = all.entry(session.to_owned()).or_default();
    if lines.len() == CONSOLE_LINES {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// A running headless Chromium; killed (with every process it started) on drop.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    cdp: Cdp,
    task: tokio::task::JoinHandle<()>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    window: (u32, u32),
    // Dropped after the process is killed (fields drop after `Drop::drop`).
    _profile: TempDir,
}

impl Browser {
    /// Starts `exe` headless with a fresh profile and connects to its DevTools socket.
    pub async fn launch(exe: &Path, opts: LaunchOptions) -> Result<Browser, CdpError> {
        let profile = TempDir::new("chromium");
        let mut cmd = Command::new(exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-extensions",
            "--disable-default-apps",
            // Containers often have a small /dev/shm; Chromium then crashes tabs.
            "--disable-dev-shm-usage",
            // A page that is not in front must keep its timers: tests look at it anyway.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--hide-scrollbars",
            "--mute-audio",
            "--password-store=basic",
            "--use-mock-keychain",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--window-size={},{}", opts.window.0, opts.window.1))
        .arg(format!("--user-data-dir={}", profile.0.display()));
        if opts.ignore_certificate_errors {
            cmd.arg("--ignore-certificate-errors");
        }
        cmd.arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so drop can kill the renderers and helpers too.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| CdpError::Launch(format!("{}: {e}", exe.display())))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = oneshot::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut url_tx = Some(url_tx);
            // Keep reading to the end: a full pipe would block Chromium.
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("DevTools listening on ").nth(1)
                    && let Some(tx) = url_tx.take()
                {
                    let _ = tx.send(rest.trim().to_owned());
                }
                let mut t = tail.lock().unwrap();
                if t.len() == STDERR_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let tail = |stderr: &Arc<Mutex<VecDeque<String>>>| {
            stderr
                .lock()
                .unwrap()
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        };
        let url = match tokio::time::timeout(LAUNCH_TIMEOUT, url_rx).await {
            Ok(Ok(url)) => url,
            Ok(Err(_)) => {
                kill_group(&mut child);
                return Err(CdpError::Launch(format!(
                    "exited without a DevTools socket; stderr:\n{}",
                    tail(&stderr)
                )));
            }
            Err(_) => {
                kill_group(&mut child);
                return Err(CdpError::Launch(format!(
                    "no DevTools socket within {LAUNCH_TIMEOUT:?}; stderr:\n{}",
                    tail(&stderr)
                )));
            }
        };
        let connected =
            tokio::time::timeout(CALL_TIMEOUT, tokio_tungstenite::connect_async(url.as_str()))
                .await;
        let ws = match connected {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                kill_group(&mut child);
                return Err(CdpError::Launch(format!("connect to {url}: {e}")));
            }
            Err(_) => {
                kill_group(&mut child);
                return Err(CdpError::Launch(format!("connect to {url}: timed out")));
            }
        };
        let (out_tx, out_rx) = mpsc::channel(64);
        let pending: Pending = Arc::default();
        let console: ConsoleLog = Arc::default();
        let task = tokio::spawn(socket_task(
            ws,
            out_rx,
            Arc::clone(&pending),
            Arc::clone(&console),
        ));
        Ok(Browser {
            child,
            cdp: Cdp {
                out: out_tx,
                pending,
                next_id: Arc::new(AtomicU64::new(1)),
                console,
            },
            task,
            stderr,
            window: opts.window,
            _profile: profile,
        })
    }

    /// Opens a new page (tab) on `about:blank`, attached with a flattened session, with
    /// the page, runtime and log domains enabled.
    pub async fn new_page(&self) -> Result<Page, CdpError> {
        let (w, h) = self.window;
        let created = self
            .cdp
            .call("Target.createTarget", json!({ "url": "about:blank" }), None)
            .await?;
        let target = created["targetId"].as_str().unwrap_or_default().to_owned();
        let attached = self
            .cdp
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
                None,
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let page = Page {
            cdp: self.cdp.clone(),
            session,
            target,
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(domain, json!({})).await?;
        }
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": w, "height": h, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await?;
        Ok(page)
    }

    /// The last lines Chromium wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// SIGKILL to the process group (Chromium's helpers and renderers), then reap the child.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.task.abort();
        kill_group(&mut self.child);
    }
}

/// A key for [`Page::key_down`]: DOM `code`, DOM `key` and the Windows virtual key code
/// (Chromium needs all three to produce real `keydown`/`keyup` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// `KeyboardEvent.code`, e.g. `KeyD`.
    pub code: &'static str,
    /// `KeyboardEvent.key`, e.g. `d`.
    pub key: &'static str,
    /// `windowsVirtualKeyCode`, e.g. 68.
    pub key_code: u32,
}

impl Key {
    /// W.
    pub const W: Key = Key {
        code: "KeyW",
        key: "w",
        key_code: 87,
    };
    /// A.
    pub const A: Key = Key {
        code: "KeyA",
        key: "a",
        key_code: 65,
    };
    /// S.
    pub const S: Key = Key {
        code: "KeyS",
        key: "s",
        key_code: 83,
    };
    /// D.
    pub const D: Key = Key {
        code: "KeyD",
        key: "d",
        key_code: 68,
    };
    /// Space bar.
    pub const SPACE: Key = Key {
        code: "Space",
        key: " ",
        key_code: 32,
    };
}

/// One page (tab), through its flattened DevTools session.
#[derive(Debug, Clone)]
pub struct Page {
    cdp: Cdp,
    session: String,
    target: String,
}

impl Page {
    /// Any DevTools method on this page's session.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CdpError> {
        self.cdp.call(method, params, Some(&self.session)).await
    }

    /// The target id (for `Target.*` calls).
    pub fn target_id(&self) -> &str {
        &self.target
    }

    /// Navigates and waits until the new document has loaded (`readyState` complete).
    pub async fn navigate(&self, url: &str) -> Result<(), CdpError> {
        let r = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(e) = r["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(CdpError::Navigation(format!("{url}: {e}")));
        }
        self.wait_for("document.readyState === 'complete'", CALL_TIMEOUT)
            .await
            .map(drop)
    }

    /// Evaluates an expression in the page, awaiting a returned promise, and returns its
    /// value as JSON (`Null` for `undefined`).
    pub async fn eval(&self, expression: &str) -> Result<Value, CdpError> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "returnByValue": true,
                    "awaitPromise": true,
                    "userGesture": true,
                }),
            )
            .await?;
        if let Some(d) = r.get("exceptionDetails") {
            let text = d["exception"]["description"]
                .as_str()
                .or(d["text"].as_str())
                .unwrap_or("?");
            return Err(CdpError::Js(format!("{expression}: {text}")));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expression` every 50 ms until it is truthy and returns its value. An
    /// expression that throws counts as not yet (the page may still be loading). On
    /// timeout, the error carries the last value or exception and the page's console.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> Result<Value, CdpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match self.eval(expression).await {
                Ok(v) if truthy(&v) => return Ok(v),
                Ok(v) => format!("last value {v}"),
                Err(e @ CdpError::Closed(_)) => return Err(e),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(CdpError::Timeout(format!(
                    "`{expression}` not true within {timeout:?} ({last}); console:\n{}",
                    self.console().join("\n")
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn key(&self, kind: &str, key: Key) -> Result<(), CdpError> {
        self.call(
            "Input.dispatchKeyEvent",
            json!({
                "type": kind,
                "code": key.code,
                "key": key.key,
                "windowsVirtualKeyCode": key.key_code,
                "nativeVirtualKeyCode": key.key_code,
            }),
        )
        .await
        .map(drop)
    }

    /// Presses a key (without releasing it).
    pub async fn key_down(&self, key: Key) -> Result<(), CdpError> {
        self.key("keyDown", key).await
    }

    /// Releases a key.
    pub async fn key_up(&self, key: Key) -> Result<(), CdpError> {
        self.key("keyUp", key).await
    }

    /// Holds a key for `duration`, then releases it.
    pub async fn hold_key(&self, key: Key, duration: Duration) -> Result<(), CdpError> {
        self.key_down(key).await?;
        tokio::time::sleep(duration).await;
        self.key_up(key).await
    }

    async fn mouse(&self, kind: &str, x: f64, y: f64, buttons: u32) -> Result<(), CdpError> {
        let mut params = json!({ "type": kind, "x": x, "y": y, "buttons": buttons });
        if kind != "mouseMoved" {
            params["button"] = json!("left");
            params["clickCount"] = json!(1);
        }
        self.call("Input.dispatchMouseEvent", params)
            .await
            .map(drop)
    }

    /// Moves the mouse to viewport coordinates (CSS pixels).
    pub async fn mouse_move(&self, x: f64, y: f64) -> Result<(), CdpError> {
        self.mouse("mouseMoved", x, y, 0).await
    }

    /// Presses the left button at (x, y).
    pub async fn mouse_down(&self, x: f64, y: f64) -> Result<(), CdpError> {
        self.mouse("mousePressed", x, y, 1).await
    }

    /// Releases the left button at (x, y).
    pub async fn mouse_up(&self, x: f64, y: f64) -> Result<(), CdpError> {
        self.mouse("mouseReleased", x, y, 0).await
    }

    /// A PNG of the viewport.
    pub async fn screenshot_png(&self) -> Result<Vec<u8>, CdpError> {
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let data = r["data"].as_str().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| CdpError::Protocol {
                method: "Page.captureScreenshot".into(),
                message: format!("bad base64: {e}"),
            })
    }

    /// Console lines, uncaught exceptions and browser log entries of this page so far.
    pub fn console(&self) -> Vec<String> {
        self.cdp
            .console
            .lock()
            .unwrap()
            .get(&self.session)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
