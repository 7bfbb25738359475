//! The backend's `lease` bucket: one record per live lease, keyed by the lease ID as 8
//! big-endian bytes, holding etcd's `leasepb.Lease` (ID, granted TTL, checkpointed remaining
//! TTL). The same bytes etcd writes, so the table reads the same to both.

use bytes::Bytes;
use prost::Message as _;
use stead_backend::{Backend, BackendError, Bucket};
use stead_proto::leasepb;

/// One lease as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub id: i64,
    /// Granted TTL, seconds.
    pub ttl: i64,
    /// Checkpointed remaining TTL, seconds; 0 = none.
    pub remaining_ttl: i64,
}

impl LeaseRecord {
    /// The record's key in the `lease` bucket.
    pub fn key(&self) -> [u8; 8] {
        key_of(self.id)
    }

    /// The record's value: `leasepb.Lease`.
    pub fn encode(&self) -> Vec<u8> {
        leasepb::Lease {
            id: self.id,
            ttl: self.ttl,
            remaining_ttl: self.remaining_ttl,
        }
        .encode_to_vec()
    }
}

/// The `lease` bucket key of lease `id`.
pub fn key_of(id: i64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Why the lease table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("corrupt lease record {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Every lease record of the backend, in key order.
pub fn load(backend: &Backend) -> Result<Vec<LeaseRecord>, RecordError> {
    let mut records = Vec::new();
    let mut corrupt = None;
    backend
        .read()
        .for_each(Bucket::Lease, &[], None, |key, value| {
            match leasepb::Lease::decode(Bytes::copy_from_slice(value)) {
                Ok(lease) if key == key_of(lease.id) => records.push(LeaseRecord {
                    id: lease.id,
                    ttl: lease.ttl,
                    remaining_ttl: lease.remaining_ttl,
                }),
                Ok(lease) => {
                    corrupt = Some(RecordError::Corrupt {
                        key: hex(key),
                        reason: format!("holds lease {:016x}", lease.id),
                    });
                    return std::ops::ControlFlow::Break(());
                }
                Err(e) => {
                    corrupt = Some(RecordError::Corrupt {
                        key: hex(key),
                        reason: e.to_string(),
                    });
                    return std::ops::ControlFlow::Break(());
                }
            }
            std::ops::ControlFlow::Continue(())
        })?;
    match corrupt {
        Some(err) => Err(err),
        None => Ok(records),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_etcds_leasepb() {
        let record = LeaseRecord {
            id: 0x1234,
            ttl: 60,
            remaining_ttl: 0,
        };
        // Field 1 (varint 0x1234), field 2 (varint 60); a zero field is not written.
        assert_eq!(record.encode(), vec![0x08, 0xb4, 0x24, 0x10, 60]);
        assert_eq!(record.key(), [0, 0, 0, 0, 0, 0, 0x12, 0x34]);
    }

    #[test]
    fn records_round_trip_through_the_backend() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let backend = Backend::open(&dir.path().join("db"), Default::default())?;
        let records = [
            LeaseRecord {
                id: 7,
                ttl: 10,
                remaining_ttl: 4,
            },
            LeaseRecord {
                id: 1 << 40,
                ttl: 9_000_000_000,
                remaining_ttl: 0,
            },
        ];
        let mut batch = backend.batch()?;
        for record in &records {
            batch.put(Bucket::Lease, record.key().to_vec(), record.encode());
        }
        batch.end()?;
        assert_eq!(load(&backend)?, records.to_vec());
        Ok(())
    }
}
