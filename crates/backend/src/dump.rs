//! The backend's whole contents as one byte stream, and back: what a leader sends a follower
//! that is too far behind for the raft log (the data of a raft snapshot), and what that
//! follower installs in place of its own contents.
//!
//! Format: the magic `STEADDB1`, then one record per key-value, bucket by bucket in
//! [`Bucket::ALL`] order and keys in order: `[u8 bucket position + 1][u32 BE key length][key]
//! [u32 BE value length][value]`, then a `0` byte. Integrity over the network is the
//! transport's job (it checksums the stream); this module checks structure and bounds.
//!
//! It does not own when to dump or install (the server), nor moving the stream (the transport).

use std::io::{Read, Write};
use std::ops::ControlFlow;

use redb::{Durability, ReadableTableMetadata};
use tracing::info;

use crate::backend::{Backend, ReadTx};
use crate::{BackendError, Bucket, ConsistentIndex};

/// First bytes of a dump.
pub const DUMP_MAGIC: &[u8; 8] = b"STEADDB1";
/// A key or value longer than this is refused as corrupt (etcd's values are bounded by the
/// request size, far below).
const DUMP_FIELD_BYTES_MAX: usize = 256 * 1024 * 1024;

/// What a dump held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpStats {
    pub records: u64,
    pub bytes: u64,
}

impl ReadTx {
    /// Writes every bucket of this view to `out` as a dump.
    pub fn dump(&self, out: &mut impl Write) -> Result<DumpStats, BackendError> {
        let io = |e: std::io::Error| BackendError::Dump(format!("writing: {e}"));
        out.write_all(DUMP_MAGIC).map_err(io)?;
        let mut stats = DumpStats {
            records: 0,
            bytes: DUMP_MAGIC.len() as u64,
        };
        let mut failed = None;
        for bucket in Bucket::ALL {
            self.for_each(bucket, &[], None, |key, value| {
                let tag = [bucket.position() as u8 + 1];
                let written = out
                    .write_all(&tag)
                    .and_then(|()| out.write_all(&(key.len() as u32).to_be_bytes()))
                    .and_then(|()| out.write_all(key))
                    .and_then(|()| out.write_all(&(value.len() as u32).to_be_bytes()))
                    .and_then(|()| out.write_all(value));
                match written {
                    Ok(()) => {
                        stats.records += 1;
                        stats.bytes += 9 + key.len() as u64 + value.len() as u64;
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        failed = Some(e);
                        ControlFlow::Break(())
                    }
                }
            })?;
            if let Some(e) = failed.take() {
                return Err(io(e));
            }
        }
        out.write_all(&[0]).map_err(io)?;
        out.flush().map_err(io)?;
        stats.bytes += 1;
        Ok(stats)
    }
}

impl Backend {
    /// Replaces everything the backend holds with the dump read from `input`, in one durable
    /// redb transaction: afterwards the backend holds exactly the dump (or, on error, exactly
    /// what it held before). Returns the dump's consistent index. The caller must hold no
    /// [`crate::BatchTx`] and must not write while this runs (the apply thread calls it).
    pub fn restore_dump(&self, input: &mut impl Read) -> Result<ConsistentIndex, BackendError> {
        let shared = self.shared();
        let _commit = crate::backend::lock(&shared.commit_lock);
        shared.check_poison()?;
        let mut writer = crate::backend::lock(&shared.writer);
        let storage = |operation| {
            move |source: redb::Error| BackendError::Storage {
                operation,
                path: shared.path.to_path_buf(),
                source: Box::new(source),
            }
        };
        let mut magic = [0u8; 8];
        read_exact(input, &mut magic)?;
        if &magic != DUMP_MAGIC {
            return Err(BackendError::Dump("not a stead backend dump".into()));
        }
        let mut txn = shared
            .db
            .begin_write()
            .map_err(|e| storage("begin write transaction")(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| storage("set durability")(e.into()))?;
        txn.set_quick_repair(true);
        let mut records = 0u64;
        {
            let mut tables = Vec::with_capacity(Bucket::COUNT);
            for bucket in Bucket::ALL {
                txn.delete_table(bucket.table())
                    .map_err(|e| storage("delete table")(e.into()))?;
                tables.push(
                    txn.open_table(bucket.table())
                        .map_err(|e| storage("create table")(e.into()))?,
                );
            }
            loop {
                let mut tag = [0u8; 1];
                read_exact(input, &mut tag)?;
                if tag[0] == 0 {
                    break;
                }
                let position = usize::from(tag[0] - 1);
                let Some(table) = tables.get_mut(position) else {
                    return Err(BackendError::Dump(format!("unknown bucket tag {}", tag[0])));
                };
                let key = read_field(input)?;
                let value = read_field(input)?;
                table
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(|e| storage("insert")(e.into()))?;
                records += 1;
            }
            let meta = &tables[Bucket::Meta.position()];
            if meta.len().map_err(|e| storage("count")(e.into()))? == 0 {
                return Err(BackendError::Dump("the dump has no meta bucket".into()));
            }
        }
        txn.commit().map_err(|e| storage("commit")(e.into()))?;
        writer.pending_changes = 0;
        shared.reset_view()?;
        drop(writer);
        let consistent_index = self.consistent_index()?;
        info!(
            records,
            index = consistent_index.index,
            term = consistent_index.term,
            "backend replaced by a snapshot's dump"
        );
        Ok(consistent_index)
    }
}

fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> Result<(), BackendError> {
    input
        .read_exact(buf)
        .map_err(|e| BackendError::Dump(format!("reading: {e}")))
}

fn read_field(input: &mut impl Read) -> Result<Vec<u8>, BackendError> {
    let mut length = [0u8; 4];
    read_exact(input, &mut length)?;
    let length = u32::from_be_bytes(length) as usize;
    if length > DUMP_FIELD_BYTES_MAX {
        return Err(BackendError::Dump(format!(
            "a field of {length} bytes (more than {DUMP_FIELD_BYTES_MAX})"
        )));
    }
    let mut field = vec![0u8; length];
    read_exact(input, &mut field)?;
    Ok(field)
}
