//! The bytes on the wire (see the crate docs for the layout): the handshake and its answer, raft
//! message frames, the cluster info answer, snapshot chunk framing, and reads and writes that
//! give up when no byte moves for a while. Owns encoding and decoding; does not own
//! connections, or what to do with a refusal or a bad frame (the `peer`, `listener`,
//! `cluster_info` and `snapshot` modules decide).

use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::TransportError;

/// The first bytes of every connection: the protocol and its version.
pub(crate) const MAGIC: [u8; 8] = *b"STEADPR1";
/// Size of the dialer's handshake: magic, kind, cluster ID, from, to.
pub(crate) const HELLO_BYTES: usize = 8 + 1 + 8 + 8 + 8;
/// The largest snapshot chunk, in bytes.
pub(crate) const CHUNK_BYTES_MAX: usize = 1024 * 1024;
/// The handshake answer that accepts the connection.
pub(crate) const ANSWER_OK: u8 = 0;
/// The snapshot receiver's last byte: the data is stored.
pub(crate) const SNAPSHOT_STORED: u8 = 0;
/// The snapshot receiver's last byte: the data was not stored.
pub(crate) const SNAPSHOT_FAILED: u8 = 1;

/// What a connection carries after its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// Raft messages from the dialer, for as long as the connection lives.
    Raft,
    /// One snapshot message and its data, then the receiver's verdict.
    Snapshot,
    /// The cluster's ID and members, from the listener to a member that is joining, then the
    /// end of the connection.
    ClusterInfo,
}

impl StreamKind {
    fn code(self) -> u8 {
        match self {
            StreamKind::Raft => 1,
            StreamKind::Snapshot => 2,
            StreamKind::ClusterInfo => 3,
        }
    }

    fn from_code(code: u8) -> Option<StreamKind> {
        match code {
            1 => Some(StreamKind::Raft),
            2 => Some(StreamKind::Snapshot),
            3 => Some(StreamKind::ClusterInfo),
            _ => None,
        }
    }
}

/// Why a listener refuses a dialer: the non-zero handshake answer codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The dialer belongs to another cluster.
    ClusterIdMismatch,
    /// The dialer meant to reach another member.
    WrongMember,
    /// The dialer was removed from the cluster; it should stop.
    Removed,
    /// Not our protocol, or another version of it.
    BadMagic,
    /// A code this version does not know.
    Other(u8),
}

impl Refusal {
    pub(crate) fn code(self) -> u8 {
        match self {
            Refusal::ClusterIdMismatch => 1,
            Refusal::WrongMember => 2,
            Refusal::Removed => 3,
            Refusal::BadMagic => 4,
            Refusal::Other(code) => code,
        }
    }

    fn from_code(code: u8) -> Refusal {
        match code {
            1 => Refusal::ClusterIdMismatch,
            2 => Refusal::WrongMember,
            3 => Refusal::Removed,
            4 => Refusal::BadMagic,
            other => Refusal::Other(other),
        }
    }
}

/// The text sent with [`Refusal::Removed`] (etcd's `ErrMemberRemoved`).
pub(crate) const REMOVED_TEXT: &str = "the member has been permanently removed from the cluster";

/// The dialer's handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) kind: StreamKind,
    pub(crate) cluster_id: u64,
    /// The dialer's member ID.
    pub(crate) from: u64,
    /// The member the dialer means to reach.
    pub(crate) to: u64,
}

impl Hello {
    pub(crate) fn encode(&self) -> [u8; HELLO_BYTES] {
        let mut bytes = [0u8; HELLO_BYTES];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8] = self.kind.code();
        bytes[9..17].copy_from_slice(&self.cluster_id.to_be_bytes());
        bytes[17..25].copy_from_slice(&self.from.to_be_bytes());
        bytes[25..33].copy_from_slice(&self.to.to_be_bytes());
        bytes
    }

    /// The handshake in `bytes`, or the text of a [`Refusal::BadMagic`] answer.
    pub(crate) fn decode(bytes: &[u8; HELLO_BYTES]) -> Result<Hello, String> {
        if bytes[0..8] != MAGIC {
            return Err("bad magic or protocol version (want STEADPR1)".to_string());
        }
        let Some(kind) = StreamKind::from_code(bytes[8]) else {
            return Err(format!("unknown stream kind {}", bytes[8]));
        };
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(word)
        };
        Ok(Hello {
            kind,
            cluster_id: u64_at(9),
            from: u64_at(17),
            to: u64_at(25),
        })
    }
}

/// The listener's answer to a handshake: `code u8 | length u16 | text`. Text past 64 KiB is cut
/// at a character boundary.
pub(crate) fn encode_answer(code: u8, text: &str) -> Vec<u8> {
    let mut end = text.len().min(usize::from(u16::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let mut bytes = Vec::with_capacity(3 + text.len());
    bytes.push(code);
    // `end` is at most u16::MAX, so the cast keeps every bit.
    bytes.extend_from_slice(&(text.len() as u16).to_be_bytes());
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Reads the listener's answer: `Ok` when it accepted, [`TransportError::Refused`] otherwise.
pub(crate) async fn read_answer<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<(), TransportError> {
    let mut head = [0u8; 3];
    read_exact(reader, &mut head, None).await?;
    let length_bytes = usize::from(u16::from_be_bytes([head[1], head[2]]));
    let mut text = vec![0u8; length_bytes];
    read_exact(reader, &mut text, None).await?;
    if head[0] == ANSWER_OK {
        return Ok(());
    }
    Err(TransportError::Refused {
        refusal: Refusal::from_code(head[0]),
        text: String::from_utf8_lossy(&text).into_owned(),
    })
}

/// Appends the frame of `message` (`length u32 | protobuf bytes`) to `buf`. A message whose
/// encoding is over `frame_bytes_max` leaves `buf` as it was.
pub(crate) fn encode_frame(
    message: &Message,
    buf: &mut Vec<u8>,
    frame_bytes_max: usize,
) -> Result<(), TransportError> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 4]);
    if let Err(error) = message.write_to_vec(buf) {
        buf.truncate(start);
        return Err(error.into());
    }
    let length = match frame_length(buf.len() - start - 4, frame_bytes_max) {
        Ok(length) => length,
        Err(error) => {
            buf.truncate(start);
            return Err(error);
        }
    };
    buf[start..start + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// The `length u32` of a frame of `length_bytes`, or [`TransportError::FrameTooLarge`] when it is
/// over `frame_bytes_max` (or does not fit in a u32).
fn frame_length(length_bytes: usize, frame_bytes_max: usize) -> Result<u32, TransportError> {
    let max_bytes = frame_bytes_max.min(u32::MAX as usize);
    if length_bytes > max_bytes {
        return Err(TransportError::FrameTooLarge {
            length_bytes,
            max_bytes,
        });
    }
    // At most `u32::MAX`: the cast keeps every bit.
    Ok(length_bytes as u32)
}

/// Appends the cluster info answer (`cluster_id u64 | length u32 | members`) to `buf`. Members
/// over `frame_bytes_max` bytes leave `buf` as it was.
pub(crate) fn encode_cluster_info(
    cluster_id: u64,
    members: &[u8],
    buf: &mut Vec<u8>,
    frame_bytes_max: usize,
) -> Result<(), TransportError> {
    let length = frame_length(members.len(), frame_bytes_max)?;
    buf.reserve(8 + 4 + members.len());
    buf.extend_from_slice(&cluster_id.to_be_bytes());
    buf.extend_from_slice(&length.to_be_bytes());
    buf.extend_from_slice(members);
    Ok(())
}

/// Reads the cluster info answer: the cluster ID and the members' bytes. A length over
/// `frame_bytes_max` is an error before any of the bytes are read.
pub(crate) async fn read_cluster_info<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame_bytes_max: usize,
) -> Result<(u64, Vec<u8>), TransportError> {
    let mut cluster_id = [0u8; 8];
    read_exact(reader, &mut cluster_id, None).await?;
    let mut members = Vec::new();
    if !read_frame(reader, frame_bytes_max, &mut members, None).await? {
        return Err(TransportError::Closed);
    }
    Ok((u64::from_be_bytes(cluster_id), members))
}

/// A raft stream frame of length 0: carries nothing, says the link is alive.
pub(crate) const LINK_HEARTBEAT: [u8; 4] = [0; 4];

/// Reads one frame's protobuf bytes into `body`. `Ok(false)`: the stream ended cleanly before
/// the frame. A length over `frame_bytes_max` is an error before any of the body is read.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame_bytes_max: usize,
    body: &mut Vec<u8>,
    idle: Option<Duration>,
) -> Result<bool, TransportError> {
    let mut length = [0u8; 4];
    if !read_exact_or_end(reader, &mut length, idle).await? {
        return Ok(false);
    }
    let length_bytes = u32::from_be_bytes(length) as usize;
    if length_bytes > frame_bytes_max {
        return Err(TransportError::FrameTooLarge {
            length_bytes,
            max_bytes: frame_bytes_max,
        });
    }
    body.clear();
    body.resize(length_bytes, 0);
    read_exact(reader, body, idle).await?;
    Ok(true)
}

/// Decodes a frame's protobuf bytes.
pub(crate) fn decode_message(body: &[u8]) -> Result<Message, TransportError> {
    Ok(Message::parse_from_bytes(body)?)
}

/// One `read`, bounded by `idle` when given.
async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    idle: Option<Duration>,
) -> Result<usize, TransportError> {
    match idle {
        None => Ok(reader.read(buf).await?),
        Some(idle) => match tokio::time::timeout(idle, reader.read(buf)).await {
            Ok(read) => Ok(read?),
            Err(_) => Err(TransportError::Timeout {
                timeout_ms: idle.as_millis(),
            }),
        },
    }
}

/// Fills `buf`; fails when the stream ends first or, given `idle`, when no byte arrives for
/// that long.
pub(crate) async fn read_exact<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    idle: Option<Duration>,
) -> Result<(), TransportError> {
    if read_exact_or_end(reader, buf, idle).await? || buf.is_empty() {
        Ok(())
    } else {
        Err(TransportError::Closed)
    }
}

/// Like [`read_exact`], but `Ok(false)` when the stream ends before the first byte.
pub(crate) async fn read_exact_or_end<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    idle: Option<Duration>,
) -> Result<bool, TransportError> {
    let mut filled = 0;
    while filled < buf.len() {
        let read = read_some(reader, &mut buf[filled..], idle).await?;
        if read == 0 {
            return if filled == 0 {
                Ok(false)
            } else {
                Err(TransportError::Closed)
            };
        }
        filled += read;
    }
    Ok(true)
}

/// Writes all of `buf`; fails when no byte can be written for `idle`.
pub(crate) async fn write_all<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &[u8],
    idle: Duration,
) -> Result<(), TransportError> {
    let mut written = 0;
    while written < buf.len() {
        let wrote = match tokio::time::timeout(idle, writer.write(&buf[written..])).await {
            Ok(wrote) => wrote?,
            Err(_) => {
                return Err(TransportError::Timeout {
                    timeout_ms: idle.as_millis(),
                });
            }
        };
        if wrote == 0 {
            return Err(TransportError::Closed);
        }
        written += wrote;
    }
    Ok(())
}

/// Flushes `writer`; fails when the flush takes longer than `idle`.
pub(crate) async fn flush<W: AsyncWrite + Unpin>(
    writer: &mut W,
    idle: Duration,
) -> Result<(), TransportError> {
    match tokio::time::timeout(idle, writer.flush()).await {
        Ok(flushed) => Ok(flushed?),
        Err(_) => Err(TransportError::Timeout {
            timeout_ms: idle.as_millis(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::MessageType;

    #[test]
    fn hello_round_trips() {
        let hello = Hello {
            kind: StreamKind::Snapshot,
            cluster_id: 0x1122_3344_5566_7788,
            from: 7,
            to: u64::MAX,
        };
        let bytes = hello.encode();
        assert_eq!(&bytes[..8], b"STEADPR1");
        assert_eq!(bytes[8], 2);
        assert_eq!(Hello::decode(&bytes), Ok(hello));
    }

    #[test]
    fn hello_with_bad_magic_or_kind_is_refused() {
        let mut bytes = Hello {
            kind: StreamKind::Raft,
            cluster_id: 1,
            from: 2,
            to: 3,
        }
        .encode();
        bytes[8] = 3;
        assert_eq!(Hello::decode(&bytes).unwrap().kind, StreamKind::ClusterInfo);
        bytes[8] = 9;
        assert_eq!(
            Hello::decode(&bytes),
            Err("unknown stream kind 9".to_string())
        );
        bytes[7] = b'2';
        assert!(Hello::decode(&bytes).is_err());
    }

    #[tokio::test]
    async fn cluster_info_round_trips_and_oversized_is_refused() {
        let members = b"three members".to_vec();
        let mut buf = vec![0xaa];
        encode_cluster_info(0x1122_3344_5566_7788, &members, &mut buf, 13).unwrap();
        assert_eq!(buf.len(), 1 + 8 + 4 + members.len());
        assert!(matches!(
            encode_cluster_info(1, &members, &mut buf, 12),
            Err(TransportError::FrameTooLarge { .. })
        ));
        assert_eq!(buf.len(), 1 + 8 + 4 + members.len());

        let mut reader = &buf[1..];
        let (cluster_id, read) = read_cluster_info(&mut reader, 13).await.unwrap();
        assert_eq!(cluster_id, 0x1122_3344_5566_7788);
        assert_eq!(read, members);
        assert!(reader.is_empty());
        let mut reader = &buf[1..];
        assert!(matches!(
            read_cluster_info(&mut reader, 12).await,
            Err(TransportError::FrameTooLarge { .. })
        ));
        let mut torn = &buf[1..10];
        assert!(matches!(
            read_cluster_info(&mut torn, 13).await,
            Err(TransportError::Closed)
        ));
        let mut no_length = &buf[1..9];
        assert!(matches!(
            read_cluster_info(&mut no_length, 13).await,
            Err(TransportError::Closed)
        ));
    }

    #[test]
    fn answer_text_is_cut_at_a_char_boundary() {
        let text = "é".repeat(40_000); // 80,000 bytes
        let bytes = encode_answer(1, &text);
        let length_bytes = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        assert_eq!(length_bytes, 65_534);
        assert!(std::str::from_utf8(&bytes[3..]).is_ok());
    }

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgAppend);
        message.set_to(2);
        message.set_index(99);
        let mut buf = Vec::new();
        encode_frame(&message, &mut buf, 1024).unwrap();
        encode_frame(&message, &mut buf, 1024).unwrap();
        assert!(matches!(
            encode_frame(&message, &mut buf, 1),
            Err(TransportError::FrameTooLarge { .. })
        ));

        let mut reader = &buf[..];
        let mut body = Vec::new();
        for _ in 0..2 {
            assert!(
                read_frame(&mut reader, 1024, &mut body, None)
                    .await
                    .unwrap()
            );
            assert_eq!(decode_message(&body).unwrap(), message);
        }
        assert!(
            !read_frame(&mut reader, 1024, &mut body, None)
                .await
                .unwrap()
        );

        let mut reader = &buf[..];
        assert!(matches!(
            read_frame(&mut reader, 1, &mut body, None).await,
            Err(TransportError::FrameTooLarge { .. })
        ));
        let mut torn = &buf[..buf.len() / 2 + 1];
        read_frame(&mut torn, 1024, &mut body, None).await.unwrap();
        assert!(matches!(
            read_frame(&mut torn, 1024, &mut body, None).await,
            Err(TransportError::Closed)
        ));
    }
}
