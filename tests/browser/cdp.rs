//! A small synchronous Chrome DevTools Protocol client for the real-browser tests.
//!
//! It starts Debian's `chromium` headless with a fresh profile, connects to the browser's
//! websocket, opens tabs (flattened target sessions), and drives them: navigation, script
//! evaluation, clicks, screenshots, a virtual WebAuthn authenticator, and the browser console.
//! Every call is bounded by a per-call timeout and by one overall deadline, and the browser is
//! killed when the [`Browser`] is dropped, also when a test fails.

use std::collections::VecDeque;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Errors of the CDP client are plain sentences: they end up in a test's failure message.
pub(crate) type CdpResult<T> = Result<T, String>;

/// The longest a single CDP call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the browser may take to print its DevTools websocket address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How many lines of the browser's stderr are kept for failure messages.
const STDERR_LINES: usize = 400;
/// How many of them a failure message shows.
const STDERR_SHOWN: usize = 40;

/// Finds the browser: `PASSLOCK_CHROMIUM` if set, else `chromium` or `chromium-browser` in `PATH`.
pub(crate) fn find_chromium() -> CdpResult<PathBuf> {
    if let Some(path) = std::env::var_os("PASSLOCK_CHROMIUM") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "PASSLOCK_CHROMIUM={} is not a file",
                path.display()
            ))
        };
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&dirs) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(
        "chromium is not installed (no `chromium` in PATH): the real-browser test needs it; \
         install it with `apt-get install -y chromium` (.ci/run does this)"
            .to_owned(),
    )
}

/// One CDP event, as received.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// The flattened session the event belongs to (`None` for browser-level events).
    pub(crate) session: Option<String>,
    /// The event's method, e.g. `Runtime.consoleAPICalled`.
    pub(crate) method: String,
    /// The event's parameters.
    pub(crate) params: Value,
}

/// The websocket connection to the browser target, with request ids and collected events.
struct Connection {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    events: Vec<Event>,
    deadline: Instant,
    overall: Duration,
}

impl Connection {
    fn connect(url: &str, deadline: Instant, overall: Duration) -> CdpResult<Self> {
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| format!("unexpected DevTools address {url}"))?;
        let stream = TcpStream::connect(authority)
            .map_err(|e| format!("cannot connect to DevTools at {authority}: {e}"))?;
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(CALL_TIMEOUT)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| format!("cannot configure the DevTools socket: {e}"))?;
        let (ws, _response) = tungstenite::client(url, stream)
            .map_err(|e| format!("DevTools websocket handshake failed: {e}"))?;
        Ok(Self {
            ws,
            next_id: 1,
            events: Vec::new(),
            deadline,
            overall,
        })
    }

    /// Sends one command and waits for the response with the same id, collecting events meanwhile.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> CdpResult<Value> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(format!(
                "the overall browser test timeout of {} s is exceeded (before {method})",
                self.overall.as_secs()
            ));
        }
        let call_deadline = (now + CALL_TIMEOUT).min(self.deadline);
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            request["sessionId"] = Value::String(session.to_owned());
        }
        self.ws
            .send(Message::text(request.to_string()))
            .map_err(|e| format!("cannot send {method}: {e}"))?;
        loop {
            let remaining = call_deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(format!(
                    "no answer to {method} within {} s",
                    (call_deadline - now).as_secs()
                ));
            }
            self.ws
                .get_ref()
                .set_read_timeout(Some(remaining))
                .map_err(|e| format!("cannot set the socket timeout: {e}"))?;
            let message = match self.ws.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("DevTools connection failed during {method}: {e}")),
            };
            let text = match message {
                Message::Text(text) => text.to_string(),
                Message::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Message::Close(_) => {
                    return Err(format!("the browser closed DevTools during {method}"));
                }
                _ => continue,
            };
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| format!("DevTools sent invalid JSON during {method}: {e}"))?;
            if value.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(error) = value.get("error") {
                    return Err(format!("{method} failed: {error}"));
                }
                return Ok(value.get("result").cloned().unwrap_or(Value::Null));
            }
            if let Some(event) = value.get("method").and_then(Value::as_str) {
                let event = Event {
                    session: value
                        .get("sessionId")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    method: event.to_owned(),
                    params: value.get("params").cloned().unwrap_or(Value::Null),
                };
                if event.method == "Page.javascriptDialogOpening" {
                    // A confirm() or alert() blocks the page and every later evaluation:
                    // accept it at once, as a person clicking OK would.
                    self.accept_dialog(event.session.as_deref())?;
                }
                self.events.push(event);
            }
        }
    }
}

impl Connection {
    /// Sends `Page.handleJavaScriptDialog` without waiting; its answer is skipped like any other.
    fn accept_dialog(&mut self, session: Option<&str>) -> CdpResult<()> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({
            "id": id,
            "method": "Page.handleJavaScriptDialog",
            "params": { "accept": true },
        });
        if let Some(session) = session {
            request["sessionId"] = Value::String(session.to_owned());
        }
        self.ws
            .send(Message::text(request.to_string()))
            .map_err(|e| format!("cannot accept a JavaScript dialog: {e}"))
    }
}

/// A headless chromium with a fresh profile, killed and cleaned up on drop.
#[derive(Debug)]
pub(crate) struct Browser {
    child: Child,
    profile: PathBuf,
    stderr: Arc<Mutex<VecDeque<String>>>,
    connection: Option<ConnectionBox>,
}

/// Keeps `Debug` on [`Browser`] without printing the websocket.
struct ConnectionBox(Connection);

impl std::fmt::Debug for ConnectionBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl Browser {
    /// Starts chromium headless; every later call fails once `overall` has passed since now.
    pub(crate) fn launch(overall: Duration) -> CdpResult<Self> {
        let deadline = Instant::now() + overall;
        let executable = find_chromium()?;
        let profile = unique_temp_dir("passlock-chromium")?;
        let mut child = Command::new(&executable)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1024,768",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&profile);
                format!("cannot start {}: {e}", executable.display())
            })?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = mpsc::channel::<String>();
        if let Some(pipe) = child.stderr.take() {
            let lines = Arc::clone(&stderr);
            std::thread::spawn(move || {
                // Keeps draining stderr for the browser's whole life so it never blocks on a full pipe.
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        let _ = url_tx.send(url.trim().to_owned());
                    }
                    if let Ok(mut lines) = lines.lock() {
                        if lines.len() == STDERR_LINES {
                            lines.pop_front();
                        }
                        lines.push_back(line);
                    }
                }
            });
        }
        let mut browser = Self {
            child,
            profile,
            stderr,
            connection: None,
        };
        let url = match url_rx.recv_timeout(LAUNCH_TIMEOUT.min(overall)) {
            Ok(url) => url,
            Err(_) => {
                let status = match browser.child.try_wait() {
                    Ok(Some(status)) => format!("it exited with {status}"),
                    _ => "it is still running".to_owned(),
                };
                return Err(format!(
                    "{} printed no `DevTools listening on ws://...` line within {} s ({status}); stderr:\n{}",
                    executable.display(),
                    LAUNCH_TIMEOUT.as_secs(),
                    browser.stderr_tail()
                ));
            }
        };
        browser.connection = Some(ConnectionBox(Connection::connect(&url, deadline, overall)?));
        Ok(browser)
    }

    fn connection(&mut self) -> CdpResult<&mut Connection> {
        self.connection
            .as_mut()
            .map(|c| &mut c.0)
            .ok_or_else(|| "the browser is not connected".to_owned())
    }

    /// A browser-level command (no session).
    pub(crate) fn call(&mut self, method: &str, params: Value) -> CdpResult<Value> {
        self.connection()?.call(None, method, params)
    }

    /// Opens a new tab and attaches to it (flattened session) with Page, Runtime and Log enabled.
    pub(crate) fn new_page(&mut self) -> CdpResult<Page<'_>> {
        let target = self.call("Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or("Target.createTarget returned no targetId")?
            .to_owned();
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("Target.attachToTarget returned no sessionId")?
            .to_owned();
        let mut page = Page {
            browser: self,
            session,
        };
        page.call("Page.enable", json!({}))?;
        page.call("Runtime.enable", json!({}))?;
        page.call("Log.enable", json!({}))?;
        // Headless tabs are not focused; WebAuthn refuses unfocused documents.
        page.call(
            "Emulation.setFocusEmulationEnabled",
            json!({ "enabled": true }),
        )?;
        page.call("Page.bringToFront", json!({}))?;
        Ok(page)
    }

    /// The last lines the browser wrote to stderr, without the D-Bus noise of a container.
    pub(crate) fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .map(|lines| {
                let useful: Vec<&str> = lines
                    .iter()
                    .map(String::as_str)
                    .filter(|line| !line.contains("dbus/") && !line.trim().is_empty())
                    .collect();
                useful[useful.len().saturating_sub(STDERR_SHOWN)..].join("\n")
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask politely first so the browser takes its helper processes down, then make sure.
        if let Some(mut connection) = self.connection.take() {
            connection.0.deadline = Instant::now() + Duration::from_secs(2);
            let _ = connection.0.call(None, "Browser.close", json!({}));
        }
        let waited = Instant::now();
        while waited.elapsed() < Duration::from_secs(3) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One tab of the browser, driven through its flattened session.
#[derive(Debug)]
pub(crate) struct Page<'b> {
    browser: &'b mut Browser,
    session: String,
}

/// Options of the virtual authenticator that a passkey test wants: a platform authenticator
/// with resident keys and user verification that answers without a person.
pub(crate) fn platform_authenticator() -> Value {
    json!({
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserVerified": true,
        "automaticPresenceSimulation": true,
    })
}

impl Page<'_> {
    /// A command in this tab's session.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> CdpResult<Value> {
        let session = self.session.clone();
        self.browser
            .connection()?
            .call(Some(&session), method, params)
    }

    /// Enables WebAuthn emulation and adds a virtual authenticator to this tab; returns its id.
    /// Call it before navigating: the authenticator belongs to this tab only.
    pub(crate) fn add_virtual_authenticator(&mut self, options: Value) -> CdpResult<String> {
        self.call("WebAuthn.enable", json!({ "enableUI": false }))?;
        let added = self.call(
            "WebAuthn.addVirtualAuthenticator",
            json!({ "options": options }),
        )?;
        added["authenticatorId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                "WebAuthn.addVirtualAuthenticator returned no authenticatorId".to_owned()
            })
    }

    /// Removes a virtual authenticator from this tab (its credentials go with it).
    pub(crate) fn remove_virtual_authenticator(&mut self, authenticator: &str) -> CdpResult<()> {
        self.call(
            "WebAuthn.removeVirtualAuthenticator",
            json!({ "authenticatorId": authenticator }),
        )
        .map(|_| ())
    }

    /// Puts a credential (as returned by [`Page::authenticator_credentials`]) into an authenticator.
    pub(crate) fn add_credential(
        &mut self,
        authenticator: &str,
        credential: &Value,
    ) -> CdpResult<()> {
        self.call(
            "WebAuthn.addCredential",
            json!({ "authenticatorId": authenticator, "credential": credential }),
        )
        .map(|_| ())
    }

    /// The credentials the virtual authenticator holds.
    pub(crate) fn authenticator_credentials(
        &mut self,
        authenticator: &str,
    ) -> CdpResult<Vec<Value>> {
        let result = self.call(
            "WebAuthn.getCredentials",
            json!({ "authenticatorId": authenticator }),
        )?;
        Ok(result["credentials"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Runs `source` in every document this tab loads from now on, before the page's own
    /// scripts (`Page.addScriptToEvaluateOnNewDocument`): to record or remove browser APIs.
    pub(crate) fn add_init_script(&mut self, source: &str) -> CdpResult<()> {
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
        )
        .map(|_| ())
    }

    /// Sets the tab's viewport to `width` x `height` CSS pixels (scale 1), for screenshots.
    pub(crate) fn set_viewport(&mut self, width: u32, height: u32) -> CdpResult<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .map(|_| ())
    }

    /// Navigates and waits until the document at `url` has loaded.
    pub(crate) fn navigate(&mut self, url: &str, timeout: Duration) -> CdpResult<()> {
        let result = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = result.get("errorText").and_then(Value::as_str) {
            return Err(format!("navigation to {url} failed: {error}"));
        }
        let expected = serde_json::to_string(url).map_err(|e| e.to_string())?;
        self.wait_until(
            &format!("{url} to load"),
            &format!("document.readyState === 'complete' && location.href.startsWith({expected})"),
            timeout,
        )
    }

    /// Evaluates `expression` in the page (promises awaited, as a user gesture) and returns its value.
    pub(crate) fn eval(&mut self, expression: &str) -> CdpResult<Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({
                "expression": expression,
                "returnByValue": true,
                "awaitPromise": true,
                "userGesture": true,
            }),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            let description = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("unknown exception");
            return Err(format!("script `{expression}` threw: {description}"));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Clicks the element matching `selector`.
    pub(crate) fn click(&mut self, selector: &str) -> CdpResult<()> {
        let selector_js = js_string(selector)?;
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({selector_js}); \
             if (!el) throw new Error('no element matches ' + {selector_js}); \
             el.click(); return true; }})()"
        ))
        .map(|_| ())
    }

    /// Types `value` into the input matching `selector` (sets it and fires `input` and `change`).
    pub(crate) fn fill(&mut self, selector: &str, value: &str) -> CdpResult<()> {
        let selector_js = js_string(selector)?;
        let value_js = js_string(value)?;
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({selector_js}); \
             if (!el) throw new Error('no element matches ' + {selector_js}); \
             el.focus(); el.value = {value_js}; \
             el.dispatchEvent(new Event('input', {{ bubbles: true }})); \
             el.dispatchEvent(new Event('change', {{ bubbles: true }})); return true; }})()"
        ))
        .map(|_| ())
    }

    /// The trimmed text of the element matching `selector`, `None` if there is none.
    pub(crate) fn text(&mut self, selector: &str) -> CdpResult<Option<String>> {
        let selector_js = js_string(selector)?;
        let value = self.eval(&format!(
            "(() => {{ const el = document.querySelector({selector_js}); \
             return el ? el.textContent.trim() : null; }})()"
        ))?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Polls the boolean JS `condition` every 100 ms until it holds or `timeout` passes.
    pub(crate) fn wait_until(
        &mut self,
        what: &str,
        condition: &str,
        timeout: Duration,
    ) -> CdpResult<()> {
        let started = Instant::now();
        loop {
            let last = self.eval(&format!("(() => {{ return !!({condition}); }})()"));
            if let Ok(Value::Bool(true)) = last {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                let detail = match last {
                    Err(e) => format!(" (last check failed: {e})"),
                    Ok(_) => String::new(),
                };
                return Err(format!(
                    "timed out after {} ms waiting for {what}{detail}",
                    timeout.as_millis()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot of the tab to `path`, creating its directory.
    pub(crate) fn screenshot(&mut self, path: &Path) -> CdpResult<()> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let data = shot["data"]
            .as_str()
            .ok_or("Page.captureScreenshot returned no data")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The console messages, log entries and uncaught exceptions of this tab, oldest first.
    pub(crate) fn console(&mut self) -> Vec<String> {
        let Ok(connection) = self.browser.connection() else {
            return Vec::new();
        };
        connection
            .events
            .iter()
            .filter(|event| event.session.as_deref() == Some(self.session.as_str()))
            .filter_map(format_console_event)
            .collect()
    }

    /// Gives this browser at least `extra` more time past now, whatever the overall deadline:
    /// for collecting a failure's screenshot and page state after a timeout.
    pub(crate) fn extend_deadline(&mut self, extra: Duration) {
        if let Ok(connection) = self.browser.connection() {
            connection.deadline = connection.deadline.max(Instant::now() + extra);
        }
    }

    /// The last lines the browser wrote to stderr.
    pub(crate) fn browser_stderr(&self) -> String {
        self.browser.stderr_tail()
    }
}

/// One console-like event as a line, or `None` for other events.
fn format_console_event(event: &Event) -> Option<String> {
    match event.method.as_str() {
        "Runtime.consoleAPICalled" => {
            let args = event.params["args"]
                .as_array()
                .map(|args| {
                    args.iter()
                        .map(|arg| match &arg["value"] {
                            Value::String(s) => s.clone(),
                            Value::Null => arg["description"]
                                .as_str()
                                .unwrap_or_else(|| arg["type"].as_str().unwrap_or("?"))
                                .to_owned(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let kind = event.params["type"].as_str().unwrap_or("log");
            Some(format!("console.{kind}: {args}"))
        }
        "Log.entryAdded" => {
            let entry = &event.params["entry"];
            Some(format!(
                "log {} ({}): {} {}",
                entry["level"].as_str().unwrap_or("?"),
                entry["source"].as_str().unwrap_or("?"),
                entry["text"].as_str().unwrap_or(""),
                entry["url"].as_str().unwrap_or("")
            ))
        }
        "Page.javascriptDialogOpening" => Some(format!(
            "dialog {} (accepted): {}",
            event.params["type"].as_str().unwrap_or("?"),
            event.params["message"].as_str().unwrap_or("")
        )),
        "Runtime.exceptionThrown" => {
            let details = &event.params["exceptionDetails"];
            Some(format!(
                "uncaught: {}",
                details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or("?")
            ))
        }
        _ => None,
    }
}

/// `value` as a JavaScript string literal.
fn js_string(value: &str) -> CdpResult<String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

/// A new, empty directory under the system temp dir.
fn unique_temp_dir(prefix: &str) -> CdpResult<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded randomly per process: a cheap unique suffix without a clock.
    let nonce = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{nonce:016x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The directory for screenshots: `target/browser-screenshots/<name>/`, next to the test binary.
pub(crate) fn screenshot_dir(name: &str) -> PathBuf {
    // The test binary is target/<profile>/deps/<name>-<hash>; target/ is three levels up.
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|dir| dir.file_name().is_some())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("browser-screenshots").join(name)
}
