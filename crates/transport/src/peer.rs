//! One peer's outbound raft stream: dial (first working URL, with backoff), handshake, then
//! write the peer's queued messages until the connection breaks, and again. Owns dialing and
//! the handshake from the dialer's side (snapshots dial through [`dial`] too, cluster info
//! queries through [`connect`]), the backoff, and the connected/lost logs. Does not own the
//! queue's admission policy (`transport`), or anything the peer sends us (that arrives on the
//! peer's own stream, in `listener`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use raft::eraftpb::Message;
use tokio::io::{AsyncReadExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::TransportEvent;
use crate::error::TransportError;
use crate::transport::{PeerLink, Shared};
use crate::wire::{self, Hello, Refusal, StreamKind};

/// Bytes buffered before a raft stream writes to the socket without waiting for the flush.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Runs the raft stream to `link`'s peer until the transport aborts it, the queue closes, or the
/// peer says this member was removed.
pub(crate) async fn run(
    shared: Arc<Shared>,
    link: Arc<PeerLink>,
    mut queue: mpsc::Receiver<Message>,
) {
    let id = link.id;
    let backoff_min = shared.config.backoff_min.max(Duration::from_millis(1));
    let backoff_max = shared.config.backoff_max.max(backoff_min);
    let mut backoff = backoff_min;
    // Whether the peer being down was logged at info since it was last up: the first failed
    // dial is worth a line, the retries are not.
    let mut down_logged = false;
    // The refusal last logged, so a peer that keeps refusing is logged once, not every retry.
    let mut refusal_logged: Option<(Refusal, String)> = None;
    loop {
        match dial(&shared, &link, StreamKind::Raft).await {
            Ok(stream) => {
                give_up_unacknowledged_after(&stream, shared.config.stream_read_timeout);
                backoff = backoff_min;
                refusal_logged = None;
                link.connected_since_ms
                    .store(shared.now_ms(), Ordering::Release);
                info!("peer {id:x} connected");
                let ended = write_stream(&shared, &link, stream, &mut queue).await;
                link.connected_since_ms.store(0, Ordering::Release);
                down_logged = true;
                match ended {
                    None => {
                        debug!("stopped the raft stream to peer {id:x}");
                        return;
                    }
                    Some(error) => info!("lost peer {id:x}: {error}"),
                }
            }
            Err(TransportError::Refused {
                refusal: Refusal::Removed,
                text,
            }) => {
                warn!("peer {id:x} refused this member: {text}");
                // Not dialing again: the queue's receiver goes with this task, so `send` reports
                // what is addressed to this peer unreachable from now on.
                let _ = shared.events.send(TransportEvent::Removed).await;
                return;
            }
            Err(TransportError::Refused { refusal, text }) => {
                let this = Some((refusal, text));
                if refusal_logged != this {
                    if let Some((_, text)) = &this {
                        warn!("peer {id:x} refused the connection: {text}");
                    }
                    refusal_logged = this;
                }
                down_logged = true;
            }
            Err(error) => {
                if !down_logged {
                    info!("cannot reach peer {id:x}: {error}");
                    down_logged = true;
                } else {
                    debug!("cannot reach peer {id:x}: {error}");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(backoff_max);
    }
}

/// Writes queued messages to the peer until the connection fails (`Some(error)`) or the queue
/// closes (`None`). Everything queued at the moment is written, then flushed once.
async fn write_stream(
    shared: &Shared,
    link: &PeerLink,
    mut stream: TcpStream,
    queue: &mut mpsc::Receiver<Message>,
) -> Option<TransportError> {
    let write_timeout = shared.config.stream_write_timeout;
    let frame_bytes_max = shared.config.frame_bytes_max;
    let heartbeat_interval = shared.config.stream_read_timeout / 3;
    let (mut read_half, write_half) = stream.split();
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write_half);
    let mut frame = Vec::new();
    // The listener never writes after its answer; a read returns only when the peer closes.
    let mut probe = [0u8; 1];
    loop {
        let first = tokio::select! {
            message = queue.recv() => message?,
            read = read_half.read(&mut probe) => {
                return Some(match read {
                    Ok(0) => TransportError::Closed,
                    Ok(_) => TransportError::UnexpectedBytes,
                    Err(error) => error.into(),
                });
            }
            () = tokio::time::sleep(heartbeat_interval) => {
                // Nothing to send for a while: tell the peer the link is alive.
                let beat = async {
                    wire::write_all(&mut writer, &wire::LINK_HEARTBEAT, write_timeout).await?;
                    wire::flush(&mut writer, write_timeout).await
                };
                if let Err(error) = beat.await {
                    return Some(error);
                }
                continue;
            }
        };
        let mut next = Some(first);
        let written: Result<(), TransportError> = async {
            while let Some(message) = next.take() {
                frame.clear();
                match wire::encode_frame(&message, &mut frame, frame_bytes_max) {
                    Ok(()) => wire::write_all(&mut writer, &frame, write_timeout).await?,
                    Err(error) => {
                        warn!(
                            "dropped {:?} to peer {:x}: {error}",
                            message.get_msg_type(),
                            link.id
                        );
                        shared.report_unreachable(link);
                    }
                }
                next = queue.try_recv().ok();
            }
            wire::flush(&mut writer, write_timeout).await
        }
        .await;
        if let Err(error) = written {
            // The messages of this batch may never arrive; raft should know.
            shared.report_unreachable(link);
            return Some(error);
        }
    }
}

/// Makes the kernel close `stream` when bytes written to it stay unacknowledged for `timeout`
/// (`TCP_USER_TIMEOUT`): a peer that vanished without closing the connection would otherwise
/// leave it open for as long as the kernel retransmits (15 minutes by default on Linux).
fn give_up_unacknowledged_after(stream: &TcpStream, timeout: Duration) {
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout)) {
        debug!("cannot set TCP_USER_TIMEOUT on a raft stream: {error}");
    }
}

/// Connects to the first of `link`'s URLs that works and completes the handshake for `kind`.
/// A refusal is returned at once: the next URL is the same member.
pub(crate) async fn dial(
    shared: &Shared,
    link: &PeerLink,
    kind: StreamKind,
) -> Result<TcpStream, TransportError> {
    let hello = Hello {
        kind,
        cluster_id: shared.config.cluster_id,
        from: shared.config.local_id,
        to: link.id,
    };
    let mut last_error = TransportError::NoUrls;
    for url in link.urls() {
        match connect(&url, &hello, shared.config.dial_timeout).await {
            Ok(stream) => return Ok(stream),
            Err(error @ TransportError::Refused { .. }) => return Err(error),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// Connects to the first address of the peer URL `url` that works and completes the handshake
/// `hello`. Resolving the URL and each address tried are bounded by `timeout`. A refusal is
/// returned at once: the next address is the same member.
pub(crate) async fn connect(
    url: &str,
    hello: &Hello,
    timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let timed_out = || TransportError::Timeout {
        timeout_ms: timeout.as_millis(),
    };
    let host_port = host_port(url)?;
    let addresses = match tokio::time::timeout(timeout, tokio::net::lookup_host(host_port)).await {
        Ok(Ok(addresses)) => addresses,
        Ok(Err(error)) => return Err(error.into()),
        Err(_) => return Err(timed_out()),
    };
    let mut last_error = TransportError::NoAddress {
        url: url.to_string(),
    };
    for address in addresses {
        let attempt = async {
            let mut stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            wire::write_all(&mut stream, &hello.encode(), timeout).await?;
            wire::read_answer(&mut stream).await?;
            Ok::<TcpStream, TransportError>(stream)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error @ TransportError::Refused { .. })) => return Err(error),
            Ok(Err(error)) => last_error = error,
            Err(_) => last_error = timed_out(),
        }
    }
    Err(last_error)
}

/// The `host:port` of a peer URL `http://host:port` (a trailing `/` or path is ignored).
fn host_port(url: &str) -> Result<&str, TransportError> {
    let refuse = |reason| TransportError::PeerUrl {
        url: url.to_string(),
        reason,
    };
    // The scheme is case-insensitive (as Go's url.Parse takes it); a member update stores
    // URLs as given.
    let rest = match url.split_at_checked("http://".len()) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http://") => rest,
        _ => return Err(refuse("only http:// is supported")),
    };
    let host_port = rest.split('/').next().unwrap_or(rest);
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return Err(refuse("no port"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(refuse("bad host or port"));
    }
    Ok(host_port)
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn peer_urls_are_http_host_port() {
        assert_eq!(
            host_port("http://127.0.0.1:2380").unwrap(),
            "127.0.0.1:2380"
        );
        assert_eq!(host_port("http://node-1:2380/").unwrap(), "node-1:2380");
        assert_eq!(host_port("http://[::1]:2380").unwrap(), "[::1]:2380");
        assert_eq!(host_port("HTTP://node-1:2380").unwrap(), "node-1:2380");
        assert!(host_port("https://127.0.0.1:2380").is_err());
        assert!(host_port(" http://127.0.0.1:2380").is_err());
        assert!(host_port("127.0.0.1:2380").is_err());
        assert!(host_port("http://127.0.0.1").is_err());
        assert!(host_port("http://:2380").is_err());
        assert!(host_port("http://host:99999").is_err());
    }
}
