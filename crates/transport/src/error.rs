//! What can go wrong on a connection. Owns the messages logged when a dial, a stream or a
//! snapshot fails; nothing here crosses the public API (the owner sees events, not errors).

use std::io;

use crate::wire::Refusal;

/// Everything that ends a dial, a raft stream or a snapshot exchange.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("{0}")]
    Io(#[from] io::Error),

    #[error("peer URL {url:?} is not http://host:port: {reason}")]
    PeerUrl { url: String, reason: &'static str },

    #[error("peer URL {url} resolves to no address")]
    NoAddress { url: String },

    #[error("the peer has no URLs")]
    NoUrls,

    #[error("no progress within {timeout_ms} ms")]
    Timeout { timeout_ms: u128 },

    /// The listener answered the handshake with a refusal; `text` is its explanation.
    #[error("refused by the peer: {text}")]
    Refused { refusal: Refusal, text: String },

    #[error("the peer closed the connection")]
    Closed,

    #[error("the peer sent bytes on a raft stream it should only read")]
    UnexpectedBytes,

    #[error("frame of {length_bytes} bytes is over the limit of {max_bytes} bytes")]
    FrameTooLarge {
        length_bytes: usize,
        max_bytes: usize,
    },

    #[error("bad raft message: {0}")]
    Decode(#[from] protobuf::ProtobufError),

    /// A message that decodes but has no business on this connection.
    #[error("unexpected message: {reason}")]
    UnexpectedMessage { reason: String },

    #[error(
        "snapshot chunk {chunk_index} of {length_bytes} bytes is over the limit of {max_bytes} bytes"
    )]
    ChunkTooLarge {
        chunk_index: u64,
        length_bytes: usize,
        max_bytes: usize,
    },

    #[error("snapshot chunk {chunk_index}: crc mismatch (got {got:08x} want {want:08x})")]
    ChunkCrc {
        chunk_index: u64,
        got: u32,
        want: u32,
    },

    #[error(
        "snapshot totals mismatch: sender says {sent_bytes} bytes crc {sent_crc:08x}, received {received_bytes} bytes crc {received_crc:08x}"
    )]
    SnapshotTotals {
        sent_bytes: u64,
        sent_crc: u32,
        received_bytes: u64,
        received_crc: u32,
    },

    #[error("the snapshot data reader stopped before the end of the data")]
    SourceStopped,

    #[error("the receiver could not store the snapshot")]
    SnapshotRejected,

    #[error("a blocking task failed: {0}")]
    Blocking(#[from] tokio::task::JoinError),
}
