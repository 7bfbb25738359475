//! Reading a run of segments in order: the CRC chain across segments, the per-segment structure
//! (a CRC record, then metadata), metadata agreement, and the torn-tail-or-corruption decision.
//!
//! Owns the rules of "Torn tails vs corruption" in the crate docs. Does not modify files (the
//! caller truncates a torn tail it is told about) and does not interpret entries, hard states or
//! snapshot markers: it hands them to a visitor, which is `wal`'s replay or marker collection.

use std::fs::File;
use std::path::Path;

use crate::record::{BadFrame, Decoded, HEADER_BYTES, Record, SegmentReader};
use crate::segment::SegmentName;
use crate::{WalError, WalMetadata};

/// A torn tail found at the end of the last segment (not yet truncated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TornFinding {
    /// Where valid data ends and the torn record begins.
    pub(crate) offset: u64,
    /// Bytes from `offset` up to the last non-zero byte of the file.
    pub(crate) bytes_discarded: u64,
    pub(crate) reason: String,
}

/// What a scan ends with.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Metadata all segments agree on.
    pub(crate) metadata: WalMetadata,
    /// Running CRC at the end of valid data.
    pub(crate) crc: u32,
    /// Offset of the end of valid data in the last segment.
    pub(crate) tail_valid_bytes: u64,
    /// A torn tail at `tail_valid_bytes`, for the caller to truncate (or ignore when read-only).
    pub(crate) torn: Option<TornFinding>,
}

/// A record handed to the visitor, with where it sits.
pub(crate) struct Located<'a> {
    pub(crate) path: &'a Path,
    pub(crate) offset: u64,
    pub(crate) record: Record,
}

/// Reads `segments` (consecutive, non-empty) of `dir` in order, handing every entry, hard state
/// and snapshot marker to `visit`.
pub(crate) fn scan(
    dir: &Path,
    segments: &[SegmentName],
    mut visit: impl FnMut(Located<'_>) -> Result<(), WalError>,
) -> Result<ScanEnd, WalError> {
    debug_assert!(!segments.is_empty());
    let mut metadata: Option<WalMetadata> = None;
    let mut crc = 0u32;
    let mut tail_valid_bytes = 0u64;
    let mut torn = None;
    for (position, name) in segments.iter().enumerate() {
        let is_last = position + 1 == segments.len();
        let chain_known = position > 0;
        let path = dir.join(name.file_name());
        let file = File::open(&path).map_err(|error| WalError::io("open", &path, error))?;
        let file_bytes = file
            .metadata()
            .map_err(|error| WalError::io("stat", &path, error))?
            .len();
        let mut reader = SegmentReader::new(file, file_bytes);
        let mut offset = 0u64;
        let mut records_in_segment = 0u64;
        // End of the CRC and metadata records: a segment is created whole (tmp file, fsync,
        // rename), so a failure before this point is never a torn write.
        let mut structure_end: Option<u64> = None;
        loop {
            let decoded = reader
                .decode(offset, crc)
                .map_err(|error| WalError::io("read", &path, error))?;
            match decoded {
                Decoded::Record {
                    record,
                    crc: record_crc,
                    next_offset,
                } => {
                    match (records_in_segment, record) {
                        (0, Record::Crc(carried)) => {
                            if chain_known && carried != crc {
                                return Err(WalError::CrcMismatch { path, offset });
                            }
                        }
                        (0, _) => {
                            return Err(WalError::corrupt(
                                &path,
                                offset,
                                "segment does not start with a crc record",
                            ));
                        }
                        (_, Record::Crc(_)) => {
                            return Err(WalError::corrupt(
                                &path,
                                offset,
                                "crc record after the start of the segment",
                            ));
                        }
                        (_, Record::Metadata(found)) => {
                            match metadata {
                                Some(expected) if expected != found => {
                                    return Err(WalError::ConflictingMetadata {
                                        path,
                                        offset,
                                        found,
                                        expected,
                                    });
                                }
                                _ => metadata = Some(found),
                            }
                            if records_in_segment == 1 {
                                structure_end = Some(next_offset);
                            }
                        }
                        (1, _) => {
                            return Err(WalError::corrupt(
                                &path,
                                offset,
                                "segment has no metadata record after its crc record",
                            ));
                        }
                        (_, record) => visit(Located {
                            path: &path,
                            offset,
                            record,
                        })?,
                    }
                    crc = record_crc;
                    records_in_segment += 1;
                    debug_assert!(next_offset > offset);
                    offset = next_offset;
                }
                Decoded::End => {
                    if structure_end.is_none() {
                        return Err(WalError::corrupt(
                            &path,
                            offset,
                            "segment ends before its crc and metadata records",
                        ));
                    }
                    break;
                }
                Decoded::Bad(bad) => {
                    let after_structure = structure_end.is_some_and(|end| offset >= end);
                    if is_last
                        && after_structure
                        && is_torn(&mut reader, offset, &bad)
                            .map_err(|error| WalError::io("read", &path, error))?
                    {
                        let bytes_discarded = reader
                            .last_nonzero_end(offset)
                            .map_err(|error| WalError::io("read", &path, error))?
                            .map_or(0, |end| end - offset);
                        torn = Some(TornFinding {
                            offset,
                            bytes_discarded,
                            reason: describe(&bad),
                        });
                        break;
                    }
                    if let BadFrame::BadCrc { .. } = bad {
                        return Err(WalError::CrcMismatch { path, offset });
                    }
                    let context = if !is_last {
                        "in a segment that is not the last"
                    } else if !after_structure {
                        "before the segment's crc and metadata records"
                    } else {
                        "not at the end of the log"
                    };
                    return Err(WalError::corrupt(
                        &path,
                        offset,
                        format!("{} ({context})", describe(&bad)),
                    ));
                }
            }
        }
        debug_assert!(offset <= reader.file_bytes());
        tail_valid_bytes = offset;
    }
    let metadata = metadata.ok_or_else(|| WalError::FileNotFound {
        dir: dir.to_path_buf(),
        index: 0,
    })?;
    Ok(ScanEnd {
        metadata,
        crc,
        tail_valid_bytes,
        torn,
    })
}

/// Whether a bad frame at `offset` of the last segment is a torn final write: a partial record,
/// or a damaged record with nothing but zeros after it. Anything followed by data is corruption,
/// since truncating it would drop records that may have been acknowledged.
fn is_torn(reader: &mut SegmentReader, offset: u64, bad: &BadFrame) -> std::io::Result<bool> {
    match bad {
        BadFrame::TruncatedHeader | BadFrame::TruncatedFrame => Ok(true),
        BadFrame::BadHeader(_) => reader.all_zero_from(offset + HEADER_BYTES),
        BadFrame::BadCrc { frame_end } => reader.all_zero_from(*frame_end),
        BadFrame::BadPayload(_) | BadFrame::DataAfterZeroHeader => Ok(false),
    }
}

fn describe(bad: &BadFrame) -> String {
    match bad {
        BadFrame::TruncatedHeader => "partial record header at the end of the file".to_owned(),
        BadFrame::TruncatedFrame => "record runs past the end of the file".to_owned(),
        BadFrame::BadHeader(why) => format!("bad record header: {why}"),
        BadFrame::BadCrc { .. } => "crc mismatch".to_owned(),
        BadFrame::BadPayload(why) => why.clone(),
        BadFrame::DataAfterZeroHeader => "zeroed record header followed by data".to_owned(),
    }
}
