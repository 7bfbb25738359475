//! The record framing of a WAL segment: encoding frames into a write buffer, and decoding them
//! from a segment file with a bounded read window.
//!
//! Owns the byte layout (described in the crate docs) and the chained CRC. Does not own what a
//! record means (the payload types are decoded here, but ordering rules, torn-tail decisions and
//! replay live in `scan`), nor files and directories (`segment`).
//!
//! The byte layout (12-byte header: type, reserved, header check, payload length, chained CRC;
//! payload; zero padding to 8 bytes) is documented once, in the crate docs ("Record framing");
//! this module is its only implementation.

use std::fs::File;
use std::os::unix::fs::FileExt;

use protobuf::Message;
use raft::eraftpb::{Entry, HardState};

use crate::{SnapshotMarker, WalMetadata};

/// Bytes in a frame header.
pub(crate) const HEADER_BYTES: u64 = 12;
/// Frames start and end on multiples of this.
pub(crate) const FRAME_ALIGN_BYTES: u64 = 8;
/// Largest payload a frame may carry. Bounds the decoder's allocation for one record; raft entries
/// are limited far below this by the server's request size limit.
pub(crate) const RECORD_PAYLOAD_BYTES_MAX: u64 = 128 * 1024 * 1024;
/// Bytes the decoder reads at a time (its window grows to one record when a record is larger).
const READ_CHUNK_BYTES: usize = 1024 * 1024;

/// What a record holds. The numbering is etcd's (walpb record types); 0 is never a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordType {
    Metadata = 1,
    Entry = 2,
    HardState = 3,
    Crc = 4,
    Snapshot = 5,
}

impl RecordType {
    fn from_byte(byte: u8) -> Option<RecordType> {
        match byte {
            1 => Some(RecordType::Metadata),
            2 => Some(RecordType::Entry),
            3 => Some(RecordType::HardState),
            4 => Some(RecordType::Crc),
            5 => Some(RecordType::Snapshot),
            _ => None,
        }
    }
}

/// A decoded record.
#[derive(Debug)]
pub(crate) enum Record {
    /// The running CRC at the end of the previous segment (0 for the first segment).
    Crc(u32),
    Metadata(WalMetadata),
    Entry(Entry),
    HardState(HardState),
    Snapshot(SnapshotMarker),
}

/// Rounds a frame length up to the frame alignment.
pub(crate) fn frame_bytes(payload_bytes: u64) -> u64 {
    (HEADER_BYTES + payload_bytes).div_ceil(FRAME_ALIGN_BYTES) * FRAME_ALIGN_BYTES
}

fn header_check(record_type: u8, payload_len_le: [u8; 4]) -> u16 {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[record_type, 0]), &payload_len_le);
    (crc & 0xffff) as u16
}

/// The chained CRC of one record.
fn record_crc(previous_crc: u32, record_type: u8, payload_len_le: [u8; 4], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(previous_crc, &[record_type]);
    let crc = crc32c::crc32c_append(crc, &payload_len_le);
    crc32c::crc32c_append(crc, payload)
}

/// Appends one frame to `buffer`; `write_payload` appends the payload. Returns the new running
/// CRC. On error `buffer` is left as it was.
pub(crate) fn encode_frame(
    buffer: &mut Vec<u8>,
    previous_crc: u32,
    record_type: RecordType,
    write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::WalError>,
) -> Result<u32, crate::WalError> {
    let start = buffer.len();
    buffer.extend_from_slice(&[0u8; HEADER_BYTES as usize]);
    if let Err(error) = write_payload(buffer) {
        buffer.truncate(start);
        return Err(error);
    }
    let payload_start = start + HEADER_BYTES as usize;
    let payload_bytes = (buffer.len() - payload_start) as u64;
    if payload_bytes > RECORD_PAYLOAD_BYTES_MAX {
        buffer.truncate(start);
        return Err(crate::WalError::RecordTooLarge {
            bytes: payload_bytes,
            bytes_max: RECORD_PAYLOAD_BYTES_MAX,
        });
    }
    let type_byte = record_type as u8;
    let len_le = (payload_bytes as u32).to_le_bytes();
    let crc = record_crc(previous_crc, type_byte, len_le, &buffer[payload_start..]);
    let header = &mut buffer[start..payload_start];
    header[0] = type_byte;
    header[1] = 0;
    header[2..4].copy_from_slice(&header_check(type_byte, len_le).to_le_bytes());
    header[4..8].copy_from_slice(&len_le);
    header[8..12].copy_from_slice(&crc.to_le_bytes());
    let frame_end = start + frame_bytes(payload_bytes) as usize;
    buffer.resize(frame_end, 0);
    debug_assert_eq!(
        (buffer.len() - start) % FRAME_ALIGN_BYTES as usize,
        0,
        "frames are aligned"
    );
    Ok(crc)
}

/// Encodes a record (other than an entry, which is protobuf-encoded straight into the buffer).
pub(crate) fn encode_record(
    buffer: &mut Vec<u8>,
    previous_crc: u32,
    record: &Record,
) -> Result<u32, crate::WalError> {
    match record {
        Record::Crc(crc) => {
            // A CRC record carries the chain so far, and its own CRC is seeded with that value;
            // the decoder can then check it without having read the previous segment.
            debug_assert_eq!(*crc, previous_crc);
            encode_frame(buffer, previous_crc, RecordType::Crc, |out| {
                out.extend_from_slice(&crc.to_le_bytes());
                Ok(())
            })
        }
        Record::Metadata(metadata) => {
            encode_frame(buffer, previous_crc, RecordType::Metadata, |out| {
                out.extend_from_slice(&metadata.member_id.to_le_bytes());
                out.extend_from_slice(&metadata.cluster_id.to_le_bytes());
                Ok(())
            })
        }
        Record::Entry(entry) => encode_entry(buffer, previous_crc, entry),
        Record::HardState(state) => {
            encode_frame(buffer, previous_crc, RecordType::HardState, |out| {
                out.extend_from_slice(&state.term.to_le_bytes());
                out.extend_from_slice(&state.vote.to_le_bytes());
                out.extend_from_slice(&state.commit.to_le_bytes());
                Ok(())
            })
        }
        Record::Snapshot(marker) => {
            encode_frame(buffer, previous_crc, RecordType::Snapshot, |out| {
                out.extend_from_slice(&marker.index.to_le_bytes());
                out.extend_from_slice(&marker.term.to_le_bytes());
                Ok(())
            })
        }
    }
}

/// Encodes an entry record, protobuf-encoding the entry straight into the buffer.
pub(crate) fn encode_entry(
    buffer: &mut Vec<u8>,
    previous_crc: u32,
    entry: &Entry,
) -> Result<u32, crate::WalError> {
    encode_frame(buffer, previous_crc, RecordType::Entry, |out| {
        entry
            .write_to_vec(out)
            .map_err(|error| crate::WalError::Encode {
                what: "entry",
                reason: error.to_string(),
            })
    })
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Decodes a payload whose frame and CRC have been checked. An error is a reason string: the
/// record is intact on disk but its content is impossible, which is corruption (or a bug).
fn decode_payload(record_type: RecordType, payload: &[u8]) -> Result<Record, String> {
    let want_bytes = match record_type {
        RecordType::Crc => Some(4),
        RecordType::Metadata | RecordType::Snapshot => Some(16),
        RecordType::HardState => Some(24),
        RecordType::Entry => None,
    };
    if let Some(want_bytes) = want_bytes
        && payload.len() != want_bytes
    {
        return Err(format!(
            "{record_type:?} record has a {}-byte payload, expected {want_bytes}",
            payload.len()
        ));
    }
    Ok(match record_type {
        RecordType::Crc => {
            let mut word = [0u8; 4];
            word.copy_from_slice(payload);
            Record::Crc(u32::from_le_bytes(word))
        }
        RecordType::Metadata => Record::Metadata(WalMetadata {
            member_id: u64_at(payload, 0),
            cluster_id: u64_at(payload, 8),
        }),
        RecordType::HardState => Record::HardState(HardState {
            term: u64_at(payload, 0),
            vote: u64_at(payload, 8),
            commit: u64_at(payload, 16),
            ..HardState::default()
        }),
        RecordType::Snapshot => Record::Snapshot(SnapshotMarker {
            index: u64_at(payload, 0),
            term: u64_at(payload, 8),
        }),
        RecordType::Entry => Record::Entry(
            Entry::parse_from_bytes(payload).map_err(|error| format!("bad entry: {error}"))?,
        ),
    })
}

/// Why a frame could not be decoded at some offset. `scan` decides whether it is a torn tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// Fewer than a header's bytes remain, and not all of them are zero.
    TruncatedHeader,
    /// The header is sound but the frame runs past the end of the file.
    TruncatedFrame,
    /// The header is garbage (unknown type, non-zero reserved byte, failed header check, or an
    /// absurd length).
    BadHeader(&'static str),
    /// The frame is complete but its CRC (or padding) is wrong. `frame_end` is where it ends.
    BadCrc { frame_end: u64 },
    /// The frame is complete and CRC-valid but its payload cannot be decoded.
    BadPayload(String),
    /// A zeroed header with non-zero bytes somewhere after it.
    DataAfterZeroHeader,
}

/// One step of decoding.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A record, the running CRC after it, and the offset of the next frame.
    Record {
        record: Record,
        crc: u32,
        next_offset: u64,
    },
    /// End of data: the end of the file on a frame boundary, or a zeroed area running to the end
    /// of the file.
    End,
    /// A frame that cannot be decoded.
    Bad(BadFrame),
}

/// Reads frames from one segment file through a bounded window.
pub(crate) struct SegmentReader {
    file: File,
    file_bytes: u64,
    window: Vec<u8>,
    /// File offset of `window[0]`.
    window_offset: u64,
}

impl SegmentReader {
    pub(crate) fn new(file: File, file_bytes: u64) -> SegmentReader {
        SegmentReader {
            file,
            file_bytes,
            window: Vec::new(),
            window_offset: 0,
        }
    }

    pub(crate) fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// The bytes `[offset, offset + len)`, which the caller has checked lie inside the file.
    fn bytes(&mut self, offset: u64, len: u64) -> std::io::Result<&[u8]> {
        debug_assert!(offset + len <= self.file_bytes);
        debug_assert!(len <= RECORD_PAYLOAD_BYTES_MAX + HEADER_BYTES + FRAME_ALIGN_BYTES);
        let window_end = self.window_offset + self.window.len() as u64;
        if offset < self.window_offset || offset + len > window_end {
            let read_bytes = (len.max(READ_CHUNK_BYTES as u64)).min(self.file_bytes - offset);
            self.window.resize(read_bytes as usize, 0);
            self.file.read_exact_at(&mut self.window, offset)?;
            self.window_offset = offset;
            if self.window.capacity() > 2 * READ_CHUNK_BYTES
                && read_bytes as usize <= READ_CHUNK_BYTES
            {
                self.window.shrink_to(READ_CHUNK_BYTES);
            }
        }
        let start = (offset - self.window_offset) as usize;
        Ok(&self.window[start..start + len as usize])
    }

    /// The end offset of the last non-zero byte in `[from, end of file)`, or `None` when it is
    /// all zeros. Reads in window-sized chunks.
    pub(crate) fn last_nonzero_end(&mut self, from: u64) -> std::io::Result<Option<u64>> {
        let mut last = None;
        let mut offset = from;
        while offset < self.file_bytes {
            let len = (READ_CHUNK_BYTES as u64).min(self.file_bytes - offset);
            let chunk = self.bytes(offset, len)?;
            if let Some(position) = chunk.iter().rposition(|&byte| byte != 0) {
                last = Some(offset + position as u64 + 1);
            }
            offset += len;
        }
        Ok(last)
    }

    /// True when `[from, end of file)` is all zeros.
    pub(crate) fn all_zero_from(&mut self, from: u64) -> std::io::Result<bool> {
        let mut offset = from;
        while offset < self.file_bytes {
            let len = (READ_CHUNK_BYTES as u64).min(self.file_bytes - offset);
            if self.bytes(offset, len)?.iter().any(|&byte| byte != 0) {
                return Ok(false);
            }
            offset += len;
        }
        Ok(true)
    }

    /// Decodes the frame at `offset`. `previous_crc` is the running CRC before it; a CRC record
    /// is checked against the value it carries instead (the caller checks that value against the
    /// chain when the chain is known).
    pub(crate) fn decode(&mut self, offset: u64, previous_crc: u32) -> std::io::Result<Decoded> {
        debug_assert_eq!(offset % FRAME_ALIGN_BYTES, 0);
        if offset >= self.file_bytes {
            return Ok(Decoded::End);
        }
        let remaining = self.file_bytes - offset;
        if remaining < HEADER_BYTES {
            return Ok(if self.all_zero_from(offset)? {
                Decoded::End
            } else {
                Decoded::Bad(BadFrame::TruncatedHeader)
            });
        }
        let mut header = [0u8; HEADER_BYTES as usize];
        header.copy_from_slice(self.bytes(offset, HEADER_BYTES)?);
        if header == [0u8; HEADER_BYTES as usize] {
            return Ok(if self.all_zero_from(offset + HEADER_BYTES)? {
                Decoded::End
            } else {
                Decoded::Bad(BadFrame::DataAfterZeroHeader)
            });
        }
        let Some(record_type) = RecordType::from_byte(header[0]) else {
            return Ok(Decoded::Bad(BadFrame::BadHeader("unknown record type")));
        };
        if header[1] != 0 {
            return Ok(Decoded::Bad(BadFrame::BadHeader("non-zero reserved byte")));
        }
        let len_le = [header[4], header[5], header[6], header[7]];
        let check = u16::from_le_bytes([header[2], header[3]]);
        if check != header_check(header[0], len_le) {
            return Ok(Decoded::Bad(BadFrame::BadHeader("header check mismatch")));
        }
        let payload_bytes = u64::from(u32::from_le_bytes(len_le));
        if payload_bytes > RECORD_PAYLOAD_BYTES_MAX {
            return Ok(Decoded::Bad(BadFrame::BadHeader(
                "payload length too large",
            )));
        }
        let frame_len = frame_bytes(payload_bytes);
        if frame_len > remaining {
            return Ok(Decoded::Bad(BadFrame::TruncatedFrame));
        }
        let stored_crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let frame_end = offset + frame_len;
        let frame = self.bytes(offset + HEADER_BYTES, frame_len - HEADER_BYTES)?;
        let (payload, padding) = frame.split_at(payload_bytes as usize);
        let seed = if record_type == RecordType::Crc && payload.len() == 4 {
            u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]])
        } else {
            previous_crc
        };
        let crc = record_crc(seed, header[0], len_le, payload);
        if crc != stored_crc || padding.iter().any(|&byte| byte != 0) {
            return Ok(Decoded::Bad(BadFrame::BadCrc { frame_end }));
        }
        match decode_payload(record_type, payload) {
            Ok(record) => Ok(Decoded::Record {
                record,
                crc,
                next_offset: frame_end,
            }),
            Err(reason) => Ok(Decoded::Bad(BadFrame::BadPayload(reason))),
        }
    }
}
