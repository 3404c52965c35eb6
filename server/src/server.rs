//! The game edge: the server's shared state, the accept loop, and the shutdown sequence.
//!
//! Each accepted connection is handed to [`crate::connection`], which runs its phases
//! (accept-time cap, TLS, request head, admission, token, placement, upgrade, session);
//! the admin port gets an [`AdminContext`] with only what it serves. The client address
//! trusts `X-Forwarded-For` only from configured proxies ([`client_ip`]).
//!
//! Shutdown: readiness drops, new handshakes get 503 `draining`, every session closes
//! with 1001, and [`serve`] returns once all connections are gone or the drain deadline
//! passes. In cluster mode the node first drains ([`ClusterNode::drain`]: every room is
//! handed to another node and its players are told where with `moved`), and leaves the
//! directory last, once its rooms have stopped.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::admin::{AdminAuth, AdminContext};
use crate::admission::Admission;
use crate::auth::Verifier;
use crate::config::Config;
use crate::http::Request;
use crate::metrics::Metrics;
use crate::node::ClusterNode;
use crate::reload::AssetControl;
use crate::room::cluster::RoomCluster;
use crate::room::{Directory, RoomContext, RoomOpener};
use crate::shutdown::Tracker;

/// Everything the game edge's connections share.
pub struct State {
    /// Configuration.
    pub config: Config,
    /// Token checks.
    pub verifier: Verifier,
    /// Dev mode secret (only in dev mode).
    pub dev_secret: Option<Vec<u8>>,
    /// `wss://` when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Connection caps and rates.
    pub admission: Arc<Admission>,
    /// Rooms.
    pub directory: Arc<Directory>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Assets in force.
    pub assets: Arc<dyn AssetControl>,
    /// Readiness (`/readyz`), shared with the admin port.
    pub ready: Arc<AtomicBool>,
    /// True once shutdown has begun.
    pub shutdown: watch::Receiver<bool>,
    /// This node in its cluster (`--redis-url`); `None` on a single node.
    pub cluster: Option<Arc<ClusterNode>>,
    /// The base URL clients reach this node at (`ws[s]://HOST:PORT`): `--public-url`, else
    /// the bound game address.
    pub public_url: String,
    /// The next session id (and a counter for generated dev-token accounts).
    pub(crate) next_session: AtomicU64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("listen", &self.config.listen)
            .field("tls", &self.tls.is_some())
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// Bound sockets, so callers (tests) can listen on port 0 and learn the address first.
#[derive(Debug)]
pub struct Listeners {
    /// Game port.
    pub game: TcpListener,
    /// Admin port.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both ports from the configuration. The game socket gets the configured
    /// kernel send buffer, which accepted connections inherit.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let socket = if config.listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if config.limits.tcp_send_buffer > 0 {
            socket.set_send_buffer_size(
                u32::try_from(config.limits.tcp_send_buffer).unwrap_or(u32::MAX),
            )?;
        }
        socket.bind(config.listen)?;
        let game = socket.listen(1024)?;
        Ok(Listeners {
            game,
            admin: TcpListener::bind(config.admin_listen).await?,
        })
    }
}

/// What a server is made of, prepared before it binds anything.
pub struct Setup {
    /// Configuration.
    pub config: Config,
    /// Assets in force.
    pub assets: Arc<dyn AssetControl>,
    /// How rooms of the game are opened (see [`crate::room::task::clustered_opener`]),
    /// with their cluster side in cluster mode: the game's type stops here, so the edge is
    /// the same for every game.
    pub rooms: Box<dyn FnOnce(RoomContext, Option<RoomCluster>) -> RoomOpener + Send>,
    /// Token checks.
    pub verifier: Verifier,
    /// Dev-mode secret, if in dev mode.
    pub dev_secret: Option<Vec<u8>>,
    /// TLS configuration for `wss://`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Who may use the admin port.
    pub admin: AdminAuth,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("config", &self.config)
            .field("assets", &self.assets)
            .finish_non_exhaustive()
    }
}

/// Runs the server until `shutdown_signal` completes, then drains and returns.
pub async fn serve(
    setup: Setup,
    listeners: Listeners,
    shutdown_signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Setup {
        config,
        assets,
        rooms,
        verifier,
        dev_secret,
        tls,
        metrics,
        admin,
    } = setup;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let game_addr = listeners.game.local_addr()?;
    let tls_on = tls.is_some();
    let ctx = RoomContext {
        limits: config.limits.clone(),
        metrics: Arc::clone(&metrics),
        shutdown: shutdown_rx.clone(),
    };
    let (public_url, cluster, directory) =
        this_node(&config, game_addr, tls_on, assets.as_ref(), ctx, rooms)?;
    // The node registers at once (the agent's first beat) and leaves the directory last.
    let (agent_stop, agent_stopped) = watch::channel(false);
    let agent = cluster.as_ref().map(|node| node.run_agent(agent_stopped));
    let admission = Admission::new(&config.limits, config.dev_mode(), &config.trusted_proxies);
    let ready = Arc::new(AtomicBool::new(true));
    let admin = AdminContext {
        metrics: Arc::clone(&metrics),
        assets: Arc::clone(&assets),
        directory: Arc::clone(&directory),
        ready: Arc::clone(&ready),
        auth: admin,
        cluster: cluster.clone(),
        drain_timeout: config.limits.drain_timeout,
    };
    let state = Arc::new(State {
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        verifier,
        dev_secret,
        admission,
        directory,
        metrics,
        assets: Arc::clone(&assets),
        ready,
        shutdown: shutdown_rx.clone(),
        cluster,
        public_url,
        next_session: AtomicU64::new(1),
        config,
    });
    let _watcher = if state.config.hot_reload {
        match crate::reload::watch_dir(Arc::clone(&assets), shutdown_rx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "cannot watch the assets directory; hot reload is off");
                None
            }
        }
    } else {
        None
    };
    let admin_addr = listeners.admin.local_addr()?;
    info!(
        game = %game_addr,
        admin = %admin_addr,
        tls = state.tls.is_some(),
        dev_mode = state.config.dev_mode(),
        assets = %assets.version(),
        "listening"
    );
    // Every connection task is tracked; the drain is complete when none is left.
    let connections = Arc::new(Tracker::default());
    let game = tokio::spawn(accept_loop(
        listeners.game,
        Arc::clone(&state),
        Arc::clone(&connections),
        stop_rx.clone(),
    ));
    let admin = tokio::spawn(crate::admin::serve(
        listeners.admin,
        Arc::new(admin),
        stop_rx,
    ));
    let maintenance = tokio::spawn(maintenance(Arc::clone(&state), shutdown_rx));

    shutdown_signal.await;
    drain(&state, &shutdown_tx, &connections).await;
    let _ = stop_tx.send(true);
    let _ = game.await;
    let _ = admin.await;
    maintenance.abort();
    if let (Some(node), Some(agent)) = (&state.cluster, agent) {
        leave_cluster(node, &state.directory, agent_stop, agent).await;
    }
    info!("stopped");
    Ok(())
}

/// The shutdown sequence until the listeners stop: in cluster mode the node's rooms are
/// handed over first; then readiness drops, sessions close with 1001, and this waits for
/// the last connection (or the drain deadline).
async fn drain(state: &State, shutdown: &watch::Sender<bool>, connections: &Tracker) {
    let limits = &state.config.limits;
    if let Some(node) = &state.cluster {
        node.drain(&state.directory, &state.ready, limits.drain_timeout)
            .await;
    }
    info!(
        open = state.metrics.connections_open.get(),
        "shutting down: draining connections"
    );
    state.ready.store(false, Ordering::Release);
    state.directory.start_draining();
    let _ = shutdown.send(true);
    let drained = tokio::time::timeout(limits.drain_timeout, connections.wait_idle())
        .await
        .is_ok();
    if !drained {
        warn!(
            open = state.metrics.connections_open.get(),
            "drain deadline passed; exiting with connections open"
        );
    }
}

/// Once the rooms have stopped (each writes its last checkpoint), the agent leaves the
/// directory, handing over whatever claim is still held. Bounded: a node whose Redis is
/// gone exits anyway, and its leases lapse.
async fn leave_cluster(
    node: &ClusterNode,
    directory: &Directory,
    stop: watch::Sender<bool>,
    agent: tokio::task::JoinHandle<()>,
) {
    let bound = node.call_timeout() * 4;
    let rooms_done = async {
        while !directory.is_idle() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(bound, rooms_done).await;
    let _ = stop.send(true);
    if tokio::time::timeout(bound, agent).await.is_err() {
        warn!("cluster: leaving the directory took too long; this node's leases lapse instead");
    }
}

/// This node's public base URL, its side of the cluster (cluster mode) and its room
/// directory, rooms opened with `rooms`.
fn this_node(
    config: &Config,
    game_addr: SocketAddr,
    tls: bool,
    assets: &dyn AssetControl,
    ctx: RoomContext,
    rooms: Box<dyn FnOnce(RoomContext, Option<RoomCluster>) -> RoomOpener + Send>,
) -> anyhow::Result<(String, Option<Arc<ClusterNode>>, Arc<Directory>)> {
    let max_rooms = config.limits.max_rooms;
    let Some(cluster) = &config.cluster else {
        let url = crate::config::default_public_url(game_addr, tls);
        return Ok((url, None, Directory::new(max_rooms, rooms(ctx, None))));
    };
    let url = cluster.public_url_for(game_addr, tls);
    let capacity = assets.engine().room_capacity;
    let node = ClusterNode::new(
        cluster,
        url.clone(),
        Arc::clone(&ctx.metrics),
        max_rooms,
        capacity,
    )?;
    let directory = Directory::clustered(max_rooms, rooms(ctx, Some(node.room_cluster())));
    Ok((url, Some(node), directory))
}

async fn maintenance(state: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            () = crate::shutdown::signalled(&mut shutdown) => return,
            _ = every.tick() => state.admission.forget_quiet_ips(),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    connections: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            () = crate::shutdown::signalled(&mut stop) => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(5);
                let state = Arc::clone(&state);
                let tracked = connections.track();
                tokio::spawn(async move {
                    crate::connection::handle(tcp, peer, &state).await;
                    drop(tracked);
                });
            }
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: SocketAddr, req: &Request, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer.ip()) {
        return peer.ip();
    }
    req.header_values("x-forwarded-for")
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_with_xff(xff: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/play".into(),
            query: None,
            minor_version: 1,
            headers: vec![("x-forwarded-for".into(), xff.into())],
        }
    }

    #[test]
    fn forwarded_addresses_are_trusted_only_from_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let req = req_with_xff("203.0.113.9, 198.51.100.7");
        let from_proxy = SocketAddr::new(proxy, 1234);
        assert_eq!(
            client_ip(from_proxy, &req, &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let direct = SocketAddr::new("192.0.2.5".parse().unwrap(), 1234);
        assert_eq!(client_ip(direct, &req, &[proxy]), direct.ip());
        // A chain of trusted proxies is skipped from the right.
        let req = req_with_xff("203.0.113.9, 10.0.0.1");
        assert_eq!(
            client_ip(from_proxy, &req, &[proxy]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Garbage falls back to the peer.
        let req = req_with_xff("not an address");
        assert_eq!(client_ip(from_proxy, &req, &[proxy]), proxy);
    }
}
