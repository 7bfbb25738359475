//! The `stead` server binary: etcd's command line in, a serving member out.
//!
//! It parses the configuration (flags, `ETCD_*` variables, config file), sets up logging, binds
//! the client and peer listeners (so a port in use fails at once), starts the member, serves
//! the etcd v3 gRPC services once the member has published itself ("ready to serve client
//! requests"), and on SIGTERM or SIGINT stops accepting, finishes in-flight work, commits the
//! backend, syncs the WAL and exits 0.

use std::ffi::OsString;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Mutex;

use prost::Message as _;
use std::time::Duration;
use stead_backend::BackendOptions;
use stead_lease::Checkpointing;
use stead_node::{MemberDirs, WalLog, WalLogOptions};
use stead_proto::etcdserverpb::{
    Member, MemberListResponse, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use stead_server::config::{self, ClusterState, Invocation, LogLevel, ServerConfig};
use stead_server::grpc_compat::EtcdCompatible;
use stead_server::membership::{InitialCluster, Url, format_id, parse_initial_cluster};
use stead_server::require_leader::RequireLeader;
use stead_server::{BootstrapCluster, EtcdServer, GRPC_OVERHEAD_BYTES, ServerOptions};
use stead_transport::fetch_cluster_info;
use stead_wal::WalOptions;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{error, info, warn};

/// How often the leader checkpoints a lease's remaining TTL when checkpoints are on (etcd's
/// default; etcd has no flag for it).
const LEASE_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// mimalloc: glibc's malloc spent 15% of a put-heavy profile in locking and bin management
/// across threads (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks for them on its arenas
/// (`MADV_HUGEPAGE`), so each page it returns to the kernel and touches again costs the kernel
/// zeroing 2 MiB: on three members under 1,000 clients that was 6% of the CPU
/// (`clear_page_erms`) and 20% of each member's peak RSS (docs/benchmarks.md, run 10). The
/// kernel checks the flag at each page fault, so memory mapped before this call is covered too.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and touches no memory of ours.
    let refused = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0;
    if refused {
        // Only a kernel older than 3.15 lacks it; stead runs the same with huge pages.
        tracing::debug!("PR_SET_THP_DISABLE refused; transparent huge pages stay on");
    }
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    match config::parse(&args, &env) {
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(1))
        }
        Ok(Invocation::Help(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            println!("stead Version: {}", env!("CARGO_PKG_VERSION"));
            println!("etcd API Version: {}", stead_server::ETCD_VERSION);
            println!(
                "OS/Arch: {}/{}",
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run(config)) => run(*config),
    }
}

fn run(config: ServerConfig) -> ExitCode {
    if let Err(err) = init_logging(&config) {
        eprintln!("stead: {err}");
        return ExitCode::from(1);
    }
    for warning in &config.warnings {
        warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("stead")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!("cannot start the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err}");
            // Also plainly on stderr: the message names what to fix.
            let _ = writeln!(std::io::stderr(), "stead: {err}");
            ExitCode::from(1)
        }
    }
}

async fn serve(config: ServerConfig) -> Result<(), String> {
    let mut options = server_options(&config)?;
    let dirs = MemberDirs::new(&config.data_dir, config.wal_dir.as_deref());
    if config.initial_cluster_state == ClusterState::Existing && !WalLog::exists(&dirs.wal) {
        options.bootstrap = join_existing(&config).await?;
    }
    let client_listeners = bind_all(&config.listen_client_urls, "client").await?;
    let peer_listeners = bind_all(&config.listen_peer_urls, "peer").await?;

    let runtime = tokio::runtime::Handle::current();
    let server =
        tokio::task::spawn_blocking(move || EtcdServer::start(options, peer_listeners, &runtime))
            .await
            .map_err(|e| format!("start-up failed: {e}"))?
            .map_err(|e| e.to_string())?;

    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::select! {
        ready = server.ready() => {
            if !ready {
                let _ = server.stop().await;
                return Err("the member stopped before it was ready".into());
            }
        }
        // Removed from the cluster, or failed, before it could publish itself.
        _ = server.failed() => {
            let _ = server.stop().await;
            return Err("the member stopped before it was ready".into());
        }
        _ = terminate.recv() => return stop(&server, "SIGTERM").await,
        _ = interrupt.recv() => return stop(&server, "SIGINT").await,
    }

    let request_bytes_max = usize::try_from(config.max_request_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(GRPC_OVERHEAD_BYTES);
    let (shutdown, shutdown_requested) = tokio::sync::watch::channel(false);
    let mut serving = tokio::task::JoinSet::new();
    for listener in client_listeners {
        let address = listener
            .local_addr()
            .map_err(|e| format!("client listener: {e}"))?;
        let incoming = TcpListenerStream::new(listener).map(|stream| {
            if let Ok(stream) = &stream {
                // Small requests and answers: do not wait to fill a packet.
                let _ = stream.set_nodelay(true);
            }
            stream
        });
        let router = tonic::transport::Server::builder()
            .add_service(EtcdCompatible(RequireLeader::new(
                KvServer::new(server.clone()).max_decoding_message_size(request_bytes_max),
                &server,
            )))
            .add_service(EtcdCompatible(RequireLeader::new(
                MaintenanceServer::new(server.clone()).max_decoding_message_size(request_bytes_max),
                &server,
            )))
            .add_service(EtcdCompatible(RequireLeader::new(
                ClusterServer::new(server.clone()).max_decoding_message_size(request_bytes_max),
                &server,
            )))
            .add_service(EtcdCompatible(RequireLeader::new(
                WatchServer::new(server.clone()).max_decoding_message_size(request_bytes_max),
                &server,
            )))
            .add_service(EtcdCompatible(RequireLeader::new(
                LeaseServer::new(server.clone()).max_decoding_message_size(request_bytes_max),
                &server,
            )));
        let mut requested = shutdown_requested.clone();
        serving.spawn(router.serve_with_incoming_shutdown(incoming, async move {
            let _ = requested.wait_for(|requested| *requested).await;
        }));
        info!(%address, "serving insecure client requests on {address}, this is strongly discouraged!");
    }
    info!("ready to serve client requests");

    let reason = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = server.failed() => "a failure",
    };
    info!("stopping on {reason}: no new requests");
    server.close_streams();
    let _ = shutdown.send(true);
    while let Some(result) = serving.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!("client listener ended with an error: {err}"),
            Err(err) => warn!("client listener task failed: {err}"),
        }
    }
    if reason == "a failure" {
        let stopped = server.stop().await;
        return Err(match stopped {
            Err(why) => format!("the member failed: {why}"),
            Ok(()) => "the member failed".into(),
        });
    }
    stop(&server, reason).await
}

async fn stop(server: &EtcdServer, reason: &str) -> Result<(), String> {
    info!("stopping on {reason}");
    server.stop().await
}

/// How long asking a running member for the cluster may take, per member asked.
const JOIN_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A new member of a running cluster (`--initial-cluster-state=existing`, after `member add`):
/// asks the other members in `--initial-cluster` for the cluster's ID and members (etcd's
/// `GetClusterFromRemotePeers`) and finds itself among them by its peer URLs.
async fn join_existing(config: &ServerConfig) -> Result<BootstrapCluster, String> {
    let own_urls: Vec<String> = config
        .initial_advertise_peer_urls
        .iter()
        .map(Url::to_string)
        .collect();
    let others: Vec<String> = parse_initial_cluster(&config.initial_cluster)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(name, _)| *name != config.name)
        .flat_map(|(_, urls)| urls.into_iter().map(|url| url.to_string()))
        .collect();
    let info = fetch_cluster_info(&others, JOIN_FETCH_TIMEOUT)
        .await
        .map_err(|e| format!("cannot join the existing cluster: {e}"))?;
    let members = MemberListResponse::decode(info.members.as_slice())
        .map_err(|e| format!("cannot join the existing cluster: bad member list: {e}"))?
        .members;
    let mut wanted = own_urls.clone();
    wanted.sort();
    let local = members.iter().find(|member| {
        let mut urls = member.peer_ur_ls.clone();
        urls.sort();
        urls == wanted
    });
    let Some(local) = local else {
        return Err(format!(
            "error validating peerURLs: no member of cluster {} has the peer URLs {own_urls:?} \
             of this member (add it with `member add` first)",
            format_id(info.cluster_id)
        ));
    };
    info!(member_id = %format_id(local.id), cluster_id = %format_id(info.cluster_id),
        "joining an existing cluster");
    Ok(BootstrapCluster {
        member_id: local.id,
        cluster_id: info.cluster_id,
        members,
        existing: true,
    })
}

/// The member's options from the configuration.
fn server_options(config: &ServerConfig) -> Result<ServerOptions, String> {
    let initial = InitialCluster::from_config(config).map_err(|e| e.to_string())?;
    let bootstrap = BootstrapCluster {
        member_id: initial.local_member_id,
        cluster_id: initial.cluster_id,
        members: initial
            .members
            .iter()
            .map(|member| Member {
                id: member.id,
                name: member.name.clone(),
                peer_ur_ls: member.peer_urls.clone(),
                client_ur_ls: member.client_urls.clone(),
                is_learner: member.is_learner,
            })
            .collect(),
        existing: false,
    };
    let mut backend = BackendOptions::default();
    if let Some(interval) = config.backend_batch_interval {
        backend.batch_interval = interval;
    }
    if let Some(limit) = config.backend_batch_limit {
        backend.batch_limit = usize::try_from(limit).unwrap_or(usize::MAX);
    }
    Ok(ServerOptions {
        name: config.name.clone(),
        data_dir: config.data_dir.clone(),
        wal_dir: config.wal_dir.clone(),
        advertise_client_urls: config
            .advertise_client_urls
            .iter()
            .map(Url::to_string)
            .collect(),
        bootstrap,
        heartbeat_interval: config.heartbeat_interval,
        election_timeout: config.election_timeout,
        snapshot_count: config.snapshot_count,
        quota_backend_bytes: config.quota_backend_bytes_effective().unwrap_or(u64::MAX),
        max_request_bytes: usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX),
        max_txn_ops: usize::try_from(config.max_txn_ops).unwrap_or(usize::MAX),
        watch_progress_notify_interval: config.watch_progress_notify_interval,
        strict_reconfig_check: config.strict_reconfig_check,
        force_new_cluster: config.force_new_cluster,
        lease_checkpointing: config.enable_lease_checkpoint.then_some(Checkpointing {
            interval: LEASE_CHECKPOINT_INTERVAL,
            persist: config.enable_lease_checkpoint_persist,
        }),
        backend,
        wal: WalLogOptions {
            wal: WalOptions::default(),
            snapshots_max: match config.max_snapshots {
                0 => usize::MAX,
                count => usize::try_from(count).unwrap_or(usize::MAX),
            },
        },
    })
}

/// Binds every URL's host and port (every address a host name resolves to).
async fn bind_all(urls: &[Url], what: &str) -> Result<Vec<TcpListener>, String> {
    let mut listeners = Vec::new();
    for url in urls {
        if url.scheme() != "http" {
            return Err(format!(
                "stead: {what} URL {url}: only http:// is supported yet (no TLS, no unix sockets)"
            ));
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host(url.host())
            .await
            .map_err(|e| format!("cannot resolve {what} URL {url}: {e}"))?
            .collect();
        let mut bound_any = false;
        let mut last_error = None;
        for address in addresses {
            match TcpListener::bind(address).await {
                Ok(listener) => {
                    listeners.push(listener);
                    bound_any = true;
                }
                Err(e) => last_error = Some(format!("listen tcp {address}: {e}")),
            }
        }
        if !bound_any {
            return Err(format!(
                "cannot listen on {what} URL {url}: {}",
                last_error.unwrap_or_else(|| "no address".into())
            ));
        }
    }
    Ok(listeners)
}

fn init_logging(config: &ServerConfig) -> Result<(), String> {
    let level = match config.log_level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error | LogLevel::Panic | LogLevel::Fatal => "error",
    };
    // Our crates and raft at the chosen level; the network stack only when it has something
    // to warn about.
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,stead={level},stead_server={level},stead_node={level},stead_wal={level},stead_backend={level},stead_mvcc={level},raft={level}"
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let outputs: Vec<&str> = config.log_outputs.iter().map(String::as_str).collect();
    match outputs.as_slice() {
        [] | ["default"] | ["stderr"] => builder.with_writer(std::io::stderr).init(),
        ["stdout"] => builder.with_writer(std::io::stdout).init(),
        ["systemd/journal"] => {
            return Err("--log-outputs systemd/journal is not supported yet".into());
        }
        [path] => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log output {path}: {e}"))?;
            builder.with_writer(Mutex::new(file)).init();
        }
        other => {
            return Err(format!(
                "--log-outputs {}: only one of default, stderr, stdout or a file path is \
                 supported yet",
                other.join(",")
            ));
        }
    }
    Ok(())
}
