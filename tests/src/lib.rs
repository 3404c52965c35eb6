//! End-to-end harness: a real `rallypoint` process on `127.0.0.1:0`, and clients that
//! talk to it over real sockets.
//!
//! [`ServerBuilder`] starts the binary with a fresh HS256 secret (or in dev mode), JSON
//! logs and the repository's `assets/`, learns its ports from the `listening` log line,
//! and keeps every log line for assertions. [`Client`] wraps a `rallypoint-client`
//! session that speaks either subprotocol, and HTTP requests go through the same library;
//! [`raw`] speaks HTTP and WebSocket by hand, for tests that must send what no client
//! library would; [`cdp`] drives a headless browser, [`external`] runs tests that need a
//! program from outside Rust, ignoring them (with the reason) when it is missing, and
//! [`redis`] runs a private `redis-server` for one test.
//! Everything is bounded in time: a test that hangs fails instead.

pub mod cdp;
pub mod external;
pub mod redis;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rallypoint_client::frame::Opcode;
use rallypoint_client::{ConnectError, Endpoint, Received, Request, Session, TokenIn};
use rallypoint_protocol::message::{ClientMessage, ServerMessage};
use rallypoint_protocol::{Encoding, Subprotocol};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub mod raw;

/// How long any single wait in a test may take before the test fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The repository's `assets/` directory.
pub fn repo_assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// A fixture file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory under the system temp dir.
    pub fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rallypoint-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM files (removed
/// on drop), for `wss://` tests.
#[derive(Debug)]
pub struct TestCert {
    /// The certificate, PEM (also what a client trusts as its CA).
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// The certificate, DER.
    pub der: Vec<u8>,
    _dir: TempDir,
}

impl TestCert {
    /// Generates one.
    pub fn generate() -> TestCert {
        let dir = TempDir::new("cert");
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("certificate");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).expect("write cert.pem");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key.pem");
        TestCert {
            cert,
            key,
            der: ck.cert.der().to_vec(),
            _dir: dir,
        }
    }
}

/// Copies a directory tree (for tests that edit assets).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// Configures and starts a server process.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dev_mode: bool,
    assets: PathBuf,
    listen: Option<SocketAddr>,
}

impl ServerBuilder {
    /// A builder for the binary at `bin` (pass `env!("CARGO_BIN_EXE_rallypoint-test-server")`).
    pub fn new(bin: impl Into<PathBuf>) -> ServerBuilder {
        ServerBuilder {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
            dev_mode: false,
            assets: repo_assets(),
            listen: None,
        }
    }

    /// Adds command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// No key configured: dev mode with a generated secret.
    pub fn dev_mode(mut self) -> Self {
        self.dev_mode = true;
        self
    }

    /// Serve `wss://` with this certificate (`--tls-cert`, `--tls-key`).
    pub fn tls(self, cert: &TestCert) -> Self {
        self.args([
            "--tls-cert".to_owned(),
            cert.cert.display().to_string(),
            "--tls-key".to_owned(),
            cert.key.display().to_string(),
        ])
    }

    /// Listen for players at this address (a restarted node taking its old port back)
    /// instead of a free port.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Serve assets from this directory.
    pub fn assets(mut self, dir: impl Into<PathBuf>) -> Self {
        self.assets = dir.into();
        self
    }

    /// Starts the process and waits until it listens.
    pub fn start(self) -> TestServer {
        let dir = TempDir::new("server");
        let secret: Vec<u8> = (0..48)
            .map(|i| {
                b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + std::process::id() as usize) % 36]
            })
            .collect();
        let listen = self
            .listen
            .map_or_else(|| "127.0.0.1:0".to_owned(), |a| a.to_string());
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .args([
                "--listen",
                &listen,
                "--admin-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .arg("--assets")
            .arg(&self.assets);
        if !self.dev_mode {
            let path = dir.join("secret");
            std::fs::write(&path, &secret).expect("write secret");
            cmd.arg("--jwt-secret-file").arg(path);
        }
        cmd.args(&self.args)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin.display()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"] == "listening"
                {
                    let _ = tx.send((
                        v["fields"]["game"].as_str().map(str::to_owned),
                        v["fields"]["admin"].as_str().map(str::to_owned),
                    ));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (game, admin) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((Some(g), Some(a))) => (
                g.parse().expect("game addr"),
                a.parse().expect("admin addr"),
            ),
            _ => {
                let _ = child.kill();
                panic!(
                    "server did not start; output:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        TestServer {
            child,
            game,
            admin,
            secret,
            logs,
            dev_mode: self.dev_mode,
            _dir: dir,
        }
    }
}

/// A running server; killed on drop.
#[derive(Debug)]
pub struct TestServer {
    child: Child,
    /// Game port.
    pub game: SocketAddr,
    /// Admin port.
    pub admin: SocketAddr,
    /// The HS256 secret it trusts (unused in dev mode).
    pub secret: Vec<u8>,
    logs: Arc<Mutex<Vec<String>>>,
    dev_mode: bool,
    _dir: TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Claims for a test token; `serde_json` so tests can break any of them.
pub fn claims(sub: &str) -> Value {
    let now = now();
    serde_json::json!({ "sub": sub, "aud": "rallypoint", "iat": now, "exp": now + 3600 })
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs claims with HS256.
pub fn sign_hs256(secret: &[u8], claims: &Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

impl TestServer {
    /// `ws://` URL of `/play`.
    pub fn play_url(&self) -> String {
        format!("ws://{}/play", self.game)
    }

    /// A valid token for `sub`.
    pub fn token(&self, sub: &str) -> String {
        sign_hs256(&self.secret, &claims(sub))
    }

    /// A token with the given claims, signed with this server's secret.
    pub fn token_with(&self, claims: &Value) -> String {
        sign_hs256(&self.secret, claims)
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Whether a log line matching `line` shows up within [`STEP_TIMEOUT`] (lines reach
    /// the test through a reader thread, a moment after the server writes them).
    pub async fn logged(&self, line: impl Fn(&str) -> bool) -> bool {
        let deadline = std::time::Instant::now() + STEP_TIMEOUT;
        loop {
            if self.logs.lock().unwrap().iter().any(|l| line(l)) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the server runs in dev mode.
    pub fn is_dev(&self) -> bool {
        self.dev_mode
    }

    /// The admin port, for HTTP requests.
    pub fn admin_endpoint(&self) -> Endpoint {
        Endpoint::plain(self.admin).with_timeout(STEP_TIMEOUT)
    }

    /// One HTTP GET on the admin port (any status).
    pub async fn admin_get(&self, path: &str) -> HttpResponse {
        self.admin_endpoint()
            .request("GET", path)
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the admin port: {e}"))
    }

    /// One HTTP POST on the admin port (any status).
    pub async fn admin_post(&self, path: &str) -> HttpResponse {
        self.admin_endpoint()
            .request("POST", path)
            .await
            .unwrap_or_else(|e| panic!("POST {path} on the admin port: {e}"))
    }

    /// One HTTP GET on the game port (any status).
    pub async fn game_get(&self, path: &str) -> HttpResponse {
        Endpoint::plain(self.game)
            .with_timeout(STEP_TIMEOUT)
            .request("GET", path)
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the game port: {e}"))
    }

    /// A metric's value from `/metrics` (sum over the series whose labels contain
    /// `label_filter`, e.g. `outcome="accepted"`).
    pub async fn metric(&self, name: &str, label_filter: &str) -> f64 {
        let body = self.admin_get("/metrics").await.text();
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(label_filter))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Tries to open a MessagePack session for `sub` (token in the header), without
    /// reading anything.
    pub async fn connect(&self, sub: &str) -> Result<Client, Rejected> {
        Connect::new(self)
            .protocol(Subprotocol::V1MsgPack.name())
            .header_token(&self.token(sub))
            .connect()
            .await
    }

    /// Opens a session with a valid token in the `Authorization` header.
    pub async fn join(&self, sub: &str, protocol: Subprotocol) -> Client {
        let mut c = Connect::new(self)
            .protocol(protocol.name())
            .header_token(&self.token(sub))
            .connect()
            .await
            .expect("connect");
        c.expect_welcome().await;
        c
    }
}

/// An HTTP response (the client library's).
pub use rallypoint_client::http::Response as HttpResponse;
pub use raw::{http, parse_http};

/// A WebSocket connection under construction: a [`rallypoint_client::Request`] spelled
/// the way tests probe the server (raw subprotocol entries, raw query parts, any header).
#[derive(Debug, Clone)]
pub struct Connect {
    addr: SocketAddr,
    request: Request,
}

/// A test client's session: over plain TCP, TLS, or a socket the test set up.
pub type ClientWs = Session<Box<dyn ClientIo>>;

/// Any stream a test client can use.
pub trait ClientIo:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug> ClientIo
    for T
{
}

/// A failed handshake, as the client saw it.
#[derive(Debug)]
pub struct Rejected {
    /// Status.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body as JSON (`Null` if none or not JSON).
    pub body: Value,
}

impl Connect {
    /// `/play` on this server.
    pub fn new(server: &TestServer) -> Connect {
        Connect::to(server.game)
    }

    /// `/play` at an address.
    pub fn to(addr: SocketAddr) -> Connect {
        Connect {
            addr,
            request: Request::default(),
        }
    }

    /// Offers a subprotocol entry (in call order), as it is.
    pub fn protocol(mut self, p: &str) -> Self {
        self.request = self.request.offer(p);
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn header_token(mut self, token: &str) -> Self {
        self.request = self.request.token(token, TokenIn::Header);
        self
    }

    /// Any header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    /// Appends a query string (`k=v&...`).
    pub fn query(mut self, q: &str) -> Self {
        self.request = self.request.query(q);
        self
    }

    /// Connects over plain TCP.
    pub async fn connect(self) -> Result<Client, Rejected> {
        let tcp = TcpStream::connect(self.addr).await.expect("tcp connect");
        self.connect_over(Box::new(tcp)).await
    }

    /// Connects over an established stream (TLS in tests that need it).
    pub async fn connect_over(self, stream: Box<dyn ClientIo>) -> Result<Client, Rejected> {
        let endpoint = Endpoint::plain(self.addr).with_timeout(STEP_TIMEOUT);
        let upgrade = endpoint.upgrade(stream, &self.request);
        match tokio::time::timeout(STEP_TIMEOUT, upgrade)
            .await
            .expect("handshake in time")
        {
            Ok(session) => Ok(Client {
                encoding: session.encoding(),
                protocol: Some(session.protocol().name().to_owned()),
                session,
            }),
            Err(ConnectError::Rejected(r)) => Err(Rejected {
                status: r.status,
                body: r.response.json(),
                headers: r.response.headers,
            }),
            Err(e) => panic!("handshake failed without an HTTP answer: {e}"),
        }
    }
}

/// How a session ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Close code (1006 when the connection dropped without a close frame).
    pub code: u16,
    /// `code` of the last `{"t":"error"}` message received, if any.
    pub error: Option<String>,
}

/// A connected test client.
#[derive(Debug)]
pub struct Client {
    /// The session.
    pub session: ClientWs,
    /// Encoding of the negotiated subprotocol.
    pub encoding: Encoding,
    /// The `Sec-WebSocket-Protocol` the server echoed.
    pub protocol: Option<String>,
}

impl Client {
    /// Next server message, or `None` if the connection ended.
    pub async fn recv(&mut self) -> Option<ServerMessage> {
        let received = tokio::time::timeout(STEP_TIMEOUT, self.session.recv())
            .await
            .expect("message in time");
        match received.ok()? {
            Received::Message(m) => Some(m.decode().expect("server message decodes")),
            Received::Closed(_) => None,
        }
    }

    /// Receives until `pick` returns something, within `timeout`.
    pub async fn recv_until<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> T {
        tokio::time::timeout(timeout, async {
            loop {
                let m = self.recv().await.expect("connection still open");
                if let Some(t) = pick(&m) {
                    return t;
                }
            }
        })
        .await
        .expect("expected message in time")
    }

    /// Expects `welcome` first and returns it.
    pub async fn expect_welcome(&mut self) -> rallypoint_protocol::message::Welcome {
        match self.recv().await {
            Some(ServerMessage::Welcome(w)) => w,
            other => panic!("expected welcome first, got {other:?}"),
        }
    }

    /// Sends a message in the negotiated encoding.
    pub async fn send(&mut self, msg: &ClientMessage) {
        self.session.send(msg).await.expect("send");
    }

    /// Sends an input with the next `seq`; returns the `seq`.
    pub async fn input(&mut self, mx: f32, my: f32, aim: f32, fire: bool) -> u32 {
        let input = rallypoint_protocol::message::Input {
            seq: 0,
            mx,
            my,
            aim,
            fire,
            view: None,
        };
        self.session.send_input(input).await.expect("send input")
    }

    /// Sends a raw WebSocket message (data, ping or pong; any payload).
    pub async fn send_raw(&mut self, m: Message) {
        let (opcode, payload): (Opcode, &[u8]) = match &m {
            Message::Binary(b) => (Opcode::Binary, b),
            Message::Text(t) => (Opcode::Text, t.as_bytes()),
            Message::Ping(b) => (Opcode::Ping, b),
            Message::Pong(b) => (Opcode::Pong, b),
            Message::Close(_) | Message::Frame(_) => panic!("send_raw takes data, ping or pong"),
        };
        let _ = self.session.send_raw(opcode, payload).await;
    }

    /// Reads until the server closes; returns the close code and the last `error` code.
    pub async fn closed(&mut self) -> Closed {
        let close = self.close().await;
        Closed {
            code: close.code,
            error: close.error.map(|e| e.code),
        }
    }

    /// Reads until the session ends and returns everything about its end: the close
    /// frame and the `error` message before it, text included.
    pub async fn close(&mut self) -> rallypoint_client::Close {
        tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                match self.session.recv().await {
                    Ok(Received::Message(_)) => {}
                    Ok(Received::Closed(c)) => return c,
                    // A failed session reports how it ended at the next call.
                    Err(_) => {}
                }
            }
        })
        .await
        .expect("close in time")
    }
}

/// Resident memory of a process in bytes (Linux `/proc`).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Snapshots a client received while listening for a while, with arrival times.
#[derive(Debug, Default)]
pub struct Cadence {
    /// Arrival instants.
    pub arrivals: Vec<std::time::Instant>,
    /// `(tick, ack)` of each snapshot.
    pub headers: Vec<(u32, u32)>,
    /// The last snapshot.
    pub last: Option<rallypoint_protocol::message::Snap>,
}

impl Cadence {
    /// The longest gap between two snapshots (or from the start).
    pub fn max_gap(&self) -> Duration {
        self.arrivals
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(Duration::MAX)
    }
}

impl Client {
    /// Reads for `duration`, recording snapshots; `None` if the connection ended.
    pub async fn listen(&mut self, duration: Duration) -> Option<Cadence> {
        let mut c = Cadence::default();
        let until = tokio::time::Instant::now() + duration;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Some(c);
            }
            match tokio::time::timeout(left, self.session.recv()).await {
                Err(_) => return Some(c),
                Ok(Err(_) | Ok(Received::Closed(_))) => return None,
                Ok(Ok(Received::Message(m))) => {
                    if let Ok(ServerMessage::Snap(s)) = m.decode() {
                        c.arrivals.push(std::time::Instant::now());
                        c.headers.push((s.tick, s.ack));
                        c.last = Some(s);
                    }
                }
            }
        }
    }

    /// The position of entity `id` in the newest snapshot received within `duration`.
    pub async fn position_of(&mut self, id: u32, duration: Duration) -> Option<(f32, f32, u8)> {
        let snap = self.listen(duration).await?.last?;
        snap.ents.iter().find_map(|e| match *e {
            rallypoint_protocol::entity::Entity::Player {
                id: i, x, y, flags, ..
            } if i == id => Some((x, y, flags)),
            _ => None,
        })
    }
}

/// A TCP connection with a tiny receive buffer, so a client that stops reading stalls
/// the server's writes quickly.
pub async fn tcp_small_rcvbuf(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("SO_RCVBUF");
    socket.connect(addr).await.expect("connect")
}
