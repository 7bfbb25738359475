//! Inbound connections: accept, check the dialer's handshake (cluster, addressee, removed
//! members), then read a peer's raft stream into the events channel, or hand a snapshot
//! connection to `snapshot` and a cluster info query to `cluster_info`. Owns the listener side
//! of the handshake and the refusal texts. Does not own the listeners' sockets (the caller binds
//! them) or what the messages mean.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use raft::eraftpb::MessageType;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::TransportEvent;
use crate::error::TransportError;
use crate::transport::Shared;
use crate::wire::{self, HELLO_BYTES, Hello, Refusal, StreamKind};
use crate::{cluster_info, snapshot};

/// Inbound connections served at once per listener; more are closed as soon as accepted.
const INBOUND_CONNECTIONS_MAX: usize = 1024;
/// The wait after `accept` fails (say, out of file descriptors) before accepting again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Bytes read from a raft stream's socket at a time.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// A frame buffer grown past this is released after its frame, not kept for the next one.
const FRAME_BUFFER_KEPT_BYTES_MAX: usize = 1024 * 1024;

/// Accepts connections on `listener` until the transport aborts this task; aborting it aborts
/// every connection it serves (they live in its `JoinSet`).
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, address)) if connections.len() < INBOUND_CONNECTIONS_MAX => {
                    connections.spawn(serve_connection(shared.clone(), stream, address));
                }
                Ok((_, address)) => {
                    warn!(
                        "closed a connection from {address}: {INBOUND_CONNECTIONS_MAX} peer \
                         connections are open"
                    );
                }
                Err(error) => {
                    warn!("cannot accept peer connections: {error}");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Runs one inbound connection: handshake, then its stream.
async fn serve_connection(shared: Arc<Shared>, mut stream: TcpStream, address: SocketAddr) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!("cannot set TCP_NODELAY on the connection from {address}: {error}");
    }
    let handshake_timeout = shared.config.handshake_timeout;
    let mut bytes = [0u8; HELLO_BYTES];
    match tokio::time::timeout(
        handshake_timeout,
        wire::read_exact(&mut stream, &mut bytes, None),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            debug!("connection from {address} failed before its handshake: {error}");
            return;
        }
        Err(_) => {
            debug!(
                "no handshake from {address} within {} ms",
                handshake_timeout.as_millis()
            );
            return;
        }
    }
    let hello = match Hello::decode(&bytes) {
        Ok(hello) => hello,
        Err(text) => {
            refuse(
                &mut stream,
                Refusal::BadMagic,
                &text,
                address,
                handshake_timeout,
            )
            .await;
            return;
        }
    };
    if let Some((refusal, text)) = check(&shared, &hello) {
        refuse(&mut stream, refusal, &text, address, handshake_timeout).await;
        return;
    }
    let answer = wire::encode_answer(wire::ANSWER_OK, "");
    if let Err(error) = wire::write_all(&mut stream, &answer, handshake_timeout).await {
        debug!(
            "connection from peer {:x} failed during its handshake: {error}",
            hello.from
        );
        return;
    }
    match hello.kind {
        StreamKind::Raft => serve_raft_stream(shared, stream, hello.from).await,
        StreamKind::Snapshot => snapshot::receive(shared, stream, hello.from).await,
        StreamKind::ClusterInfo => cluster_info::answer(shared, stream, address).await,
    }
}

/// Why `hello` must be refused, if it must: the code and the text the dialer logs.
fn check(shared: &Shared, hello: &Hello) -> Option<(Refusal, String)> {
    if hello.kind == StreamKind::ClusterInfo {
        // Asked by a member that is joining: it knows neither the cluster ID nor any member ID
        // yet (it sends 0s), and it learns only what any member would tell it.
        return None;
    }
    let config = &shared.config;
    if hello.cluster_id != config.cluster_id {
        return Some((
            Refusal::ClusterIdMismatch,
            format!(
                "request cluster ID mismatch (got {:x} want {:x})",
                hello.cluster_id, config.cluster_id
            ),
        ));
    }
    if hello.to != config.local_id {
        return Some((
            Refusal::WrongMember,
            format!(
                "request sent to member {:x}, but this is member {:x}",
                hello.to, config.local_id
            ),
        ));
    }
    if shared.is_removed(hello.from) {
        return Some((Refusal::Removed, wire::REMOVED_TEXT.to_string()));
    }
    None
}

/// Answers `stream` with a refusal and closes it.
async fn refuse(
    stream: &mut TcpStream,
    refusal: Refusal,
    text: &str,
    address: SocketAddr,
    timeout: Duration,
) {
    debug!("refused a connection from {address}: {text}");
    let answer = wire::encode_answer(refusal.code(), text);
    if wire::write_all(stream, &answer, timeout).await.is_ok() {
        let _ = tokio::time::timeout(timeout, stream.shutdown()).await;
    }
}

/// How an inbound raft stream ended.
enum StreamEnd {
    Read(Result<(), TransportError>),
    Removed,
}

/// Reads `from`'s raft stream into the events channel until it closes, fails, or `from` is
/// marked removed.
async fn serve_raft_stream(shared: Arc<Shared>, stream: TcpStream, from: u64) {
    debug!("raft stream from peer {from:x} opened");
    // Subscribed before the first check, so a removal in between is not missed.
    let mut removals = shared.removed_changes();
    let end = tokio::select! {
        read = read_raft_stream(&shared, stream, from) => StreamEnd::Read(read),
        () = wait_removed(&shared, &mut removals, from) => StreamEnd::Removed,
    };
    match end {
        StreamEnd::Read(Ok(())) => debug!("raft stream from peer {from:x} closed"),
        StreamEnd::Read(Err(
            error @ (TransportError::FrameTooLarge { .. }
            | TransportError::Decode(_)
            | TransportError::UnexpectedMessage { .. }),
        )) => warn!("closed the raft stream from peer {from:x}: {error}"),
        StreamEnd::Read(Err(TransportError::Timeout { timeout_ms })) => {
            info!("closed the raft stream from peer {from:x}: nothing arrived for {timeout_ms} ms")
        }
        StreamEnd::Read(Err(error)) => debug!("raft stream from peer {from:x} failed: {error}"),
        StreamEnd::Removed => info!("closed the raft stream from removed member {from:x}"),
    }
}

/// Decodes frames from `stream` and emits them, waiting when the events channel is full.
async fn read_raft_stream(
    shared: &Shared,
    stream: TcpStream,
    from: u64,
) -> Result<(), TransportError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let mut body = Vec::new();
    let frame_bytes_max = shared.config.frame_bytes_max;
    let silence_max = Some(shared.config.stream_read_timeout);
    while wire::read_frame(&mut reader, frame_bytes_max, &mut body, silence_max).await? {
        if body.is_empty() {
            // A link heartbeat: the peer is there.
            continue;
        }
        let message = wire::decode_message(&body)?;
        if body.capacity() > FRAME_BUFFER_KEPT_BYTES_MAX {
            body = Vec::new();
        }
        if message.get_msg_type() == MessageType::MsgSnapshot {
            return Err(TransportError::UnexpectedMessage {
                reason: "a MsgSnapshot on a raft stream".to_string(),
            });
        }
        if message.get_from() != from || message.get_to() != shared.config.local_id {
            return Err(TransportError::UnexpectedMessage {
                reason: format!(
                    "a message from {:x} to {:x} on the stream from {from:x}",
                    message.get_from(),
                    message.get_to()
                ),
            });
        }
        if shared
            .events
            .send(TransportEvent::Message(message))
            .await
            .is_err()
        {
            // The owner is gone; nobody wants the rest.
            return Ok(());
        }
    }
    Ok(())
}

/// Returns once `from` is marked removed.
async fn wait_removed(shared: &Shared, removals: &mut watch::Receiver<u64>, from: u64) {
    loop {
        if shared.is_removed(from) {
            return;
        }
        if removals.changed().await.is_err() {
            // The sender lives as long as `shared`: this does not happen.
            std::future::pending::<()>().await;
        }
    }
}
