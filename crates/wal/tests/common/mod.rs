//! Helpers shared by the WAL integration tests: building entries and hard states, copying and
//! damaging files, and walking frames with the byte layout documented in the crate docs (written
//! here independently, so the tests also check that the documentation is true).

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use protobuf::Message;
use raft::eraftpb::{Entry, EntryType, HardState};

pub const HEADER_BYTES: usize = 12;

pub fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Entry::default()
    }
}

pub fn entry_full(
    index: u64,
    term: u64,
    entry_type: EntryType,
    data: &[u8],
    context: &[u8],
) -> Entry {
    let mut entry = entry(index, term, data);
    entry.entry_type = entry_type;
    entry.context = context.to_vec().into();
    entry
}

/// Entries `first..=last` at `term`, each with `data_bytes` of non-zero data.
pub fn entries(first: u64, last: u64, term: u64, data_bytes: usize) -> Vec<Entry> {
    (first..=last)
        .map(|index| {
            let data: Vec<u8> = (0..data_bytes)
                .map(|i| (index as usize + i) as u8 | 1)
                .collect();
            entry(index, term, &data)
        })
        .collect()
}

pub fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..HardState::default()
    }
}

pub fn indexes_and_terms(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

/// Copies the files of `from` into a fresh `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    if to.exists() {
        fs::remove_dir_all(to).unwrap();
    }
    fs::create_dir_all(to).unwrap();
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        fs::copy(item.path(), to.join(item.file_name())).unwrap();
    }
}

/// Segment files of `dir`, sorted by name.
pub fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    paths.sort();
    paths
}

/// Every file in `dir` with its bytes, to check a failed open changed nothing.
pub fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|item| {
            let path = item.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// A frame found by `frames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub start: usize,
    pub record_type: u8,
    pub payload_bytes: usize,
    pub end: usize,
}

impl Frame {
    pub fn payload_start(&self) -> usize {
        self.start + HEADER_BYTES
    }
    pub fn payload_end(&self) -> usize {
        self.payload_start() + self.payload_bytes
    }
}

/// Walks the frames of a segment until a zero type byte or the end.
pub fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut found = Vec::new();
    let mut offset = 0;
    while offset + HEADER_BYTES <= bytes.len() && bytes[offset] != 0 {
        let payload_bytes = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap());
        let end = (offset + HEADER_BYTES + payload_bytes as usize).div_ceil(8) * 8;
        found.push(Frame {
            start: offset,
            record_type: bytes[offset],
            payload_bytes: payload_bytes as usize,
            end,
        });
        offset = end;
    }
    found
}

pub const TYPE_METADATA: u8 = 1;
pub const TYPE_ENTRY: u8 = 2;
pub const TYPE_HARD_STATE: u8 = 3;
pub const TYPE_CRC: u8 = 4;
pub const TYPE_SNAPSHOT: u8 = 5;

/// Decodes the entry in an entry frame.
pub fn frame_entry(bytes: &[u8], frame: Frame) -> Entry {
    assert_eq!(frame.record_type, TYPE_ENTRY);
    Entry::parse_from_bytes(&bytes[frame.payload_start()..frame.payload_end()]).unwrap()
}

/// Encodes one frame per the documented layout; returns the new running CRC.
pub fn encode_frame(out: &mut Vec<u8>, previous_crc: u32, record_type: u8, payload: &[u8]) -> u32 {
    let len = (payload.len() as u32).to_le_bytes();
    let check = crc32c::crc32c_append(crc32c::crc32c(&[record_type, 0]), &len) as u16;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c_append(crc32c::crc32c_append(previous_crc, &[record_type]), &len),
        payload,
    );
    let start = out.len();
    out.push(record_type);
    out.push(0);
    out.extend_from_slice(&check.to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    let end = (out.len() - start).div_ceil(8) * 8 + start;
    out.resize(end, 0);
    crc
}

/// The usual start of a segment: CRC record, metadata, hard state.
pub fn encode_segment_start(
    out: &mut Vec<u8>,
    chain_crc: u32,
    member_id: u64,
    cluster_id: u64,
) -> u32 {
    let crc = encode_frame(out, chain_crc, TYPE_CRC, &chain_crc.to_le_bytes());
    let mut metadata = member_id.to_le_bytes().to_vec();
    metadata.extend_from_slice(&cluster_id.to_le_bytes());
    let crc = encode_frame(out, crc, TYPE_METADATA, &metadata);
    encode_frame(out, crc, TYPE_HARD_STATE, &[0u8; 24])
}

pub fn encode_entry_frame(out: &mut Vec<u8>, previous_crc: u32, entry: &Entry) -> u32 {
    encode_frame(
        out,
        previous_crc,
        TYPE_ENTRY,
        &entry.write_to_bytes().unwrap(),
    )
}
