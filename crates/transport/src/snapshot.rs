//! Snapshots on their own connections: the leader's side reads the data from the
//! [`SnapshotSource`](crate::SnapshotSource) and sends it in checksummed chunks; the follower's
//! side writes it to a temporary file, verifies it, fsyncs and renames it, and answers. Owns
//! the snapshot stream after the handshake and the files under `snapshot_dir` until they are
//! handed over in a [`TransportEvent::Snapshot`]. Does not own what the data is, or the file
//! after the event (the server applies, moves or deletes it).
//!
//! Disk IO never runs on a tokio worker: the source is opened and read on a blocking thread
//! that hands framed chunks over a small bounded channel, and the receiver's file writes,
//! fsyncs and renames run in `spawn_blocking`, one chunk written while the next is read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raft::eraftpb::{Message, MessageType};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::error::TransportError;
use crate::peer;
use crate::transport::{PeerLink, Shared, SnapshotInFlight};
use crate::wire::{self, CHUNK_BYTES_MAX, SNAPSHOT_FAILED, SNAPSHOT_STORED, StreamKind};
use crate::{SnapshotSource, TransportEvent};

/// Chunks read ahead of the socket on the sending side; the reading thread waits when full.
const CHUNKS_READ_AHEAD_MAX: usize = 2;

/// Makes temporary file names unique within the process.
static TEMP_FILE_SEQUENCE: AtomicU64 = AtomicU64::new(0);
/// In the name of a file being received: `{from:016x}-{index:016x}.receiving.{pid}.{sequence}`.
const TEMP_FILE_MARKER: &str = ".receiving.";

/// What the sending side's reading thread hands to the socket, already framed.
enum Piece {
    /// `length u32 | bytes | crc32c u32`.
    Chunk(Vec<u8>),
    /// `0 u32 | total bytes u64 | crc32c of all bytes u32`; the last piece.
    End { bytes: Vec<u8>, total_bytes: u64 },
}

/// Sends `message` (a MsgSnapshot) and its data to `link`'s peer and emits
/// [`TransportEvent::SnapshotSent`]. `in_flight` is released before the event, so a snapshot
/// raft sends again on hearing of a failure is not refused as a second one in flight.
pub(crate) async fn send(
    shared: Arc<Shared>,
    link: Arc<PeerLink>,
    message: Message,
    in_flight: SnapshotInFlight,
) {
    let to = link.id;
    let index = message.get_snapshot().get_metadata().get_index();
    let sent = send_inner(&shared, &link, message).await;
    drop(in_flight);
    let ok = match sent {
        Ok(total_bytes) => {
            info!("sent the snapshot at index {index} to peer {to:x} ({total_bytes} bytes)");
            true
        }
        Err(error) => {
            warn!("sending the snapshot at index {index} to peer {to:x} failed: {error}");
            false
        }
    };
    let _ = shared
        .events
        .send(TransportEvent::SnapshotSent { to, ok })
        .await;
}

/// Dials, sends the message frame and the data, and waits for the receiver's verdict. Returns
/// the data's size in bytes.
async fn send_inner(
    shared: &Shared,
    link: &PeerLink,
    message: Message,
) -> Result<u64, TransportError> {
    let idle = shared.config.snapshot_idle_timeout;
    let mut stream = peer::dial(shared, link, StreamKind::Snapshot).await?;
    let mut frame = Vec::new();
    wire::encode_frame(&message, &mut frame, shared.config.frame_bytes_max)?;
    wire::write_all(&mut stream, &frame, idle).await?;

    let (pieces_sender, mut pieces) = mpsc::channel(CHUNKS_READ_AHEAD_MAX);
    let source = shared.source.clone();
    // Detached: the thread ends at the end of the data, or at its next chunk once `pieces` is
    // dropped (this function failed or was cancelled).
    drop(tokio::task::spawn_blocking(move || {
        read_source(&*source, &message, &pieces_sender);
    }));
    let total_bytes = loop {
        match pieces.recv().await {
            Some(Ok(Piece::Chunk(bytes))) => wire::write_all(&mut stream, &bytes, idle).await?,
            Some(Ok(Piece::End { bytes, total_bytes })) => {
                wire::write_all(&mut stream, &bytes, idle).await?;
                break total_bytes;
            }
            Some(Err(error)) => {
                abandon(&mut stream, idle).await;
                return Err(error.into());
            }
            None => {
                abandon(&mut stream, idle).await;
                return Err(TransportError::SourceStopped);
            }
        }
    };
    let mut verdict = [0u8; 1];
    wire::read_exact(&mut stream, &mut verdict, Some(idle)).await?;
    if verdict[0] != SNAPSHOT_STORED {
        return Err(TransportError::SnapshotRejected);
    }
    Ok(total_bytes)
}

/// Ends a send the source cannot finish: closes the writing half, so the receiver fails at
/// the end of the data it has, and waits for its answer, which it writes after removing its
/// temporary file. The failure is reported only once the receiver has cleaned up (or gone
/// quiet for `idle`).
async fn abandon(stream: &mut TcpStream, idle: Duration) {
    use tokio::io::AsyncWriteExt;
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut verdict = [0u8; 1];
    let _ = wire::read_exact(stream, &mut verdict, Some(idle)).await;
}

/// Opens the data of `message` and hands it over in framed chunks, then the end piece. Runs on
/// a blocking thread; stops quietly when the receiving side is gone.
fn read_source(
    source: &dyn SnapshotSource,
    message: &Message,
    pieces: &mpsc::Sender<io::Result<Piece>>,
) {
    let mut reader = match source.open(message) {
        Ok(reader) => reader,
        Err(error) => {
            let _ = pieces.blocking_send(Err(error));
            return;
        }
    };
    let mut total_bytes = 0u64;
    let mut stream_crc = 0u32;
    loop {
        let mut piece = vec![0u8; 4 + CHUNK_BYTES_MAX + 4];
        let length = match fill(&mut *reader, &mut piece[4..4 + CHUNK_BYTES_MAX]) {
            Ok(length) => length,
            Err(error) => {
                let _ = pieces.blocking_send(Err(error));
                return;
            }
        };
        if length == 0 {
            let mut bytes = Vec::with_capacity(4 + 8 + 4);
            bytes.extend_from_slice(&0u32.to_be_bytes());
            bytes.extend_from_slice(&total_bytes.to_be_bytes());
            bytes.extend_from_slice(&stream_crc.to_be_bytes());
            let _ = pieces.blocking_send(Ok(Piece::End { bytes, total_bytes }));
            return;
        }
        piece.truncate(4 + length + 4);
        let chunk_crc = crc32c::crc32c(&piece[4..4 + length]);
        stream_crc = crc32c::crc32c_append(stream_crc, &piece[4..4 + length]);
        total_bytes += length as u64;
        // `length` is at most CHUNK_BYTES_MAX (1 MiB): the cast keeps every bit.
        piece[..4].copy_from_slice(&(length as u32).to_be_bytes());
        piece[4 + length..].copy_from_slice(&chunk_crc.to_be_bytes());
        if pieces.blocking_send(Ok(Piece::Chunk(piece))).is_err() {
            return;
        }
    }
}

/// Reads until `buf` is full or the data ends; the number of bytes read.
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Receives one snapshot from `from` on `stream` (after the handshake), answers, and on success
/// emits [`TransportEvent::Snapshot`].
pub(crate) async fn receive(shared: Arc<Shared>, mut stream: TcpStream, from: u64) {
    let idle = shared.config.snapshot_idle_timeout;
    match receive_inner(&shared, &mut stream, from).await {
        Ok((message, data, total_bytes)) => {
            info!(
                "received the snapshot at index {} from peer {from:x} ({total_bytes} bytes) at {}",
                message.get_snapshot().get_metadata().get_index(),
                data.display()
            );
            if let Err(error) = wire::write_all(&mut stream, &[SNAPSHOT_STORED], idle).await {
                // The data is whole and durable: hand it over anyway; the sender will report a
                // failure and raft may send it again.
                debug!("cannot confirm the snapshot to peer {from:x}: {error}");
            }
            let _ = shared
                .events
                .send(TransportEvent::Snapshot { message, data })
                .await;
        }
        Err(error) => {
            warn!("receiving a snapshot from peer {from:x} failed: {error}");
            let _ = wire::write_all(&mut stream, &[SNAPSHOT_FAILED], idle).await;
        }
    }
}

/// Reads the message and the data into `snapshot_dir`, verified, fsynced and renamed. Returns
/// the message, the file and its size in bytes. On failure nothing is left in `snapshot_dir`.
async fn receive_inner(
    shared: &Shared,
    stream: &mut TcpStream,
    from: u64,
) -> Result<(Message, PathBuf, u64), TransportError> {
    let idle = shared.config.snapshot_idle_timeout;
    let mut body = Vec::new();
    if !wire::read_frame(stream, shared.config.frame_bytes_max, &mut body, Some(idle)).await? {
        return Err(TransportError::Closed);
    }
    let message = wire::decode_message(&body)?;
    drop(body);
    if message.get_msg_type() != MessageType::MsgSnapshot || message.get_from() != from {
        return Err(TransportError::UnexpectedMessage {
            reason: format!(
                "{:?} from {:x} on a snapshot stream from {from:x}",
                message.get_msg_type(),
                message.get_from()
            ),
        });
    }
    let index = message.get_snapshot().get_metadata().get_index();
    let dir = shared.config.snapshot_dir.clone();
    let name = format!("{from:016x}-{index:016x}");
    let sequence = TEMP_FILE_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let temp_path = dir.join(format!(
        "{name}{TEMP_FILE_MARKER}{}.{sequence}",
        std::process::id()
    ));
    let final_path = dir.join(format!("{name}.received"));

    let file = {
        let dir = dir.clone();
        let temp_path = temp_path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            File::create_new(&temp_path)
        })
        .await??
    };
    let temp = TempFile {
        path: Some(temp_path.clone()),
    };
    let (file, total_bytes) = match receive_data(stream, file, idle).await {
        Ok(received) => received,
        Err(error) => {
            temp.discard().await;
            return Err(error);
        }
    };
    let persisted = {
        let final_path = final_path.clone();
        tokio::task::spawn_blocking(move || persist(file, &temp_path, &final_path, &dir)).await
    };
    match persisted {
        Ok(Ok(())) => {
            temp.forget();
            Ok((message, final_path, total_bytes))
        }
        Ok(Err(error)) => {
            temp.discard().await;
            Err(error.into())
        }
        Err(error) => {
            temp.discard().await;
            Err(error.into())
        }
    }
}

/// Reads chunks into `file` up to the end, verifying each chunk's CRC and the totals. Returns
/// the file (all written, not yet synced) and the number of bytes.
async fn receive_data(
    stream: &mut TcpStream,
    file: File,
    idle: Duration,
) -> Result<(File, u64), TransportError> {
    let idle = Some(idle);
    // The write of the previous chunk, running while the next one is read.
    let mut writing = tokio::task::spawn_blocking(move || Ok::<File, io::Error>(file));
    let mut total_bytes = 0u64;
    let mut stream_crc = 0u32;
    let mut chunk_index = 0u64;
    loop {
        let mut length = [0u8; 4];
        wire::read_exact(stream, &mut length, idle).await?;
        let length_bytes = u32::from_be_bytes(length) as usize;
        if length_bytes == 0 {
            break;
        }
        if length_bytes > CHUNK_BYTES_MAX {
            return Err(TransportError::ChunkTooLarge {
                chunk_index,
                length_bytes,
                max_bytes: CHUNK_BYTES_MAX,
            });
        }
        let mut chunk = vec![0u8; length_bytes + 4];
        wire::read_exact(stream, &mut chunk, idle).await?;
        let mut want = [0u8; 4];
        want.copy_from_slice(&chunk[length_bytes..]);
        let want = u32::from_be_bytes(want);
        chunk.truncate(length_bytes);
        let got = crc32c::crc32c(&chunk);
        if got != want {
            return Err(TransportError::ChunkCrc {
                chunk_index,
                got,
                want,
            });
        }
        stream_crc = crc32c::crc32c_append(stream_crc, &chunk);
        total_bytes += length_bytes as u64;
        chunk_index += 1;
        let mut file = writing.await??;
        writing = tokio::task::spawn_blocking(move || {
            file.write_all(&chunk)?;
            Ok(file)
        });
    }
    let mut trailer = [0u8; 8 + 4];
    wire::read_exact(stream, &mut trailer, idle).await?;
    let mut sent_bytes = [0u8; 8];
    sent_bytes.copy_from_slice(&trailer[..8]);
    let mut sent_crc = [0u8; 4];
    sent_crc.copy_from_slice(&trailer[8..]);
    let (sent_bytes, sent_crc) = (u64::from_be_bytes(sent_bytes), u32::from_be_bytes(sent_crc));
    if sent_bytes != total_bytes || sent_crc != stream_crc {
        return Err(TransportError::SnapshotTotals {
            sent_bytes,
            sent_crc,
            received_bytes: total_bytes,
            received_crc: stream_crc,
        });
    }
    let file = writing.await??;
    Ok((file, total_bytes))
}

/// Makes the received file durable under its final name: fsync, rename, fsync the directory.
/// When the last step fails the renamed file is removed too.
fn persist(file: File, temp_path: &Path, final_path: &Path, dir: &Path) -> io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(temp_path, final_path)?;
    if let Err(error) = File::open(dir).and_then(|dir| dir.sync_all()) {
        let _ = std::fs::remove_file(final_path);
        return Err(error);
    }
    Ok(())
}

/// A temporary file being received; removed unless [`TempFile::forget`] is called (a dropped
/// guard, as when the transport stops mid-transfer, removes it on a blocking thread).
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    /// Removes the file now, before the failure is answered.
    async fn discard(mut self) {
        if let Some(path) = self.path.take() {
            let removed = tokio::task::spawn_blocking(move || remove_if_present(&path)).await;
            if let Ok(Err(error)) = removed {
                warn!("cannot remove a failed snapshot's temporary file: {error}");
            }
        }
    }

    /// The file was renamed away: nothing is left to remove.
    fn forget(mut self) {
        self.path = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    drop(runtime.spawn_blocking(move || remove_if_present(&path)));
                }
                Err(_) => {
                    let _ = remove_if_present(&path);
                }
            }
        }
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        removed => removed,
    }
}

/// Removes the temporary files a process that died mid-transfer left in `dir` (those of this
/// process are in use). Runs on a blocking thread at start; a missing `dir` has none.
pub(crate) fn remove_stale_temp_files(dir: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return,
        Err(error) => {
            warn!(
                "cannot list {} for stale snapshot files: {error}",
                dir.display()
            );
            return;
        }
    };
    let ours = format!("{TEMP_FILE_MARKER}{}.", std::process::id());
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if !name.contains(TEMP_FILE_MARKER) || name.contains(&ours) {
            continue;
        }
        match remove_if_present(&entry.path()) {
            Ok(()) => info!(
                "removed the unfinished snapshot file {}",
                entry.path().display()
            ),
            Err(error) => warn!("cannot remove {}: {error}", entry.path().display()),
        }
    }
}
