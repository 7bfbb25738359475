//! The cluster info query (handshake kind 3): a member joining a running cluster asks a member
//! it knows from its flags for the cluster's ID and members before it starts raft (etcd's
//! `GET <peerURL>/members`). Owns both sides of the query after the handshake: the listener's
//! answer from the [`ClusterInfoSource`](crate::ClusterInfoSource), and
//! [`fetch_cluster_info`]. Does not own what the member list is (the server encodes and decodes
//! it; opaque bytes here), or the handshake (`peer` dials, `listener` accepts).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::FRAME_BYTES_MAX_DEFAULT;
use crate::error::TransportError;
use crate::peer;
use crate::transport::Shared;
use crate::wire::{self, Hello, StreamKind};

/// What a member answered a joining member: the cluster's ID and its members, encoded by the
/// server's [`ClusterInfoSource`](crate::ClusterInfoSource).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster_id: u64,
    pub members: Vec<u8>,
}

/// Why [`fetch_cluster_info`] got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("cannot fetch cluster info: no peer URLs to ask")]
    NoUrls,

    /// Every URL failed; one failure per URL, in the order tried.
    #[error(
        "cannot fetch cluster info from any of [{}]: {}",
        urls(failures),
        reasons(failures)
    )]
    AllFailed { failures: Vec<UrlFailure> },
}

/// Why one peer URL gave no cluster info. Displays as `{url}: {reason}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlFailure {
    pub url: String,
    /// What failed, for logs: "Connection refused (os error 111)", "no answer within 1000 ms",
    /// a refusal's text...
    pub reason: String,
}

impl fmt::Display for UrlFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.reason)
    }
}

/// The URLs of `failures`: `http://a, http://b`.
fn urls(failures: &[UrlFailure]) -> String {
    let urls: Vec<&str> = failures
        .iter()
        .map(|failure| failure.url.as_str())
        .collect();
    urls.join(", ")
}

/// Each of `failures` with its URL: `http://a: why; http://b: why`.
fn reasons(failures: &[UrlFailure]) -> String {
    let reasons: Vec<String> = failures.iter().map(UrlFailure::to_string).collect();
    reasons.join("; ")
}

/// Asks the members at `peer_urls` (tried in order, each bounded by `timeout`) for the cluster's
/// ID and members, as a joining member does before it starts. Returns the first answer.
///
/// URLs are `http://host:port` as for [`Transport::set_peers`](crate::Transport::set_peers);
/// every address a URL resolves to is tried within its `timeout`. Members over 64 MiB (the
/// default [`TransportConfig::frame_bytes_max`](crate::TransportConfig::frame_bytes_max)) are
/// refused.
pub async fn fetch_cluster_info(
    peer_urls: &[String],
    timeout: Duration,
) -> Result<ClusterInfo, FetchError> {
    if peer_urls.is_empty() {
        return Err(FetchError::NoUrls);
    }
    let mut failures = Vec::with_capacity(peer_urls.len());
    for url in peer_urls {
        let reason = match tokio::time::timeout(timeout, fetch_from(url, timeout)).await {
            Ok(Ok(info)) => {
                debug!(
                    "fetched cluster info from {url}: cluster {:x}, {} bytes of members",
                    info.cluster_id,
                    info.members.len()
                );
                return Ok(info);
            }
            // The bounds inside the query are `timeout` too: whichever fires first, the same.
            Ok(Err(TransportError::Timeout { .. })) | Err(_) => {
                format!("no answer within {} ms", timeout.as_millis())
            }
            Ok(Err(error)) => error.to_string(),
        };
        debug!("cannot fetch cluster info from {url}: {reason}");
        failures.push(UrlFailure {
            url: url.clone(),
            reason,
        });
    }
    Err(FetchError::AllFailed { failures })
}

/// One query: handshake (no IDs: the asker knows none yet), then the answer.
async fn fetch_from(url: &str, timeout: Duration) -> Result<ClusterInfo, TransportError> {
    let hello = Hello {
        kind: StreamKind::ClusterInfo,
        cluster_id: 0,
        from: 0,
        to: 0,
    };
    let mut stream = peer::connect(url, &hello, timeout).await?;
    let (cluster_id, members) =
        wire::read_cluster_info(&mut stream, FRAME_BYTES_MAX_DEFAULT).await?;
    Ok(ClusterInfo {
        cluster_id,
        members,
    })
}

/// Answers a cluster info query on `stream`, whose handshake was accepted, and closes it.
/// Members over [`TransportConfig::frame_bytes_max`](crate::TransportConfig::frame_bytes_max)
/// are not sent: the connection just closes.
pub(crate) async fn answer(shared: Arc<Shared>, mut stream: TcpStream, address: SocketAddr) {
    let source = shared.info.clone();
    let members = match tokio::task::spawn_blocking(move || source.cluster_info()).await {
        Ok(members) => members,
        Err(error) => {
            warn!("cannot answer the cluster info query from {address}: {error}");
            return;
        }
    };
    let config = &shared.config;
    let mut reply = Vec::new();
    if let Err(error) = wire::encode_cluster_info(
        config.cluster_id,
        &members,
        &mut reply,
        config.frame_bytes_max,
    ) {
        warn!("cannot answer the cluster info query from {address}: it is too large: {error}");
        return;
    }
    let timeout = config.handshake_timeout;
    match wire::write_all(&mut stream, &reply, timeout).await {
        Ok(()) => {
            let _ = tokio::time::timeout(timeout, stream.shutdown()).await;
            debug!(
                "answered the cluster info query from {address} ({} bytes of members)",
                members.len()
            );
        }
        Err(error) => debug!("cannot answer the cluster info query from {address}: {error}"),
    }
}
