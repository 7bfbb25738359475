//! Append + sync (group commit) of 1, 10 and 100 entries of 256 bytes per batch, on a tempdir in
//! /tmp with default 64 MiB segments (cuts included as they fall). One fdatasync per batch, as
//! the node driver does once per Ready.
//!
//! Run: `cargo bench -p stead-wal --bench wal_append -- --warm-up-time 1 --measurement-time 5`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use raft::eraftpb::{Entry, HardState};
use stead_wal::{Wal, WalMetadata, WalOptions};

const ENTRY_DATA_BYTES: usize = 256;

fn append_and_sync(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("wal_append_sync");
    for batch_entries in [1u64, 10, 100] {
        group.throughput(Throughput::Elements(batch_entries));
        group.bench_with_input(
            BenchmarkId::new("entries_per_batch", batch_entries),
            &batch_entries,
            |bencher, &batch_entries| {
                let tmp = tempfile::Builder::new()
                    .prefix("stead-wal-bench")
                    .tempdir_in("/tmp")
                    .unwrap();
                let dir = tmp.path().join("wal");
                let metadata = WalMetadata {
                    member_id: 1,
                    cluster_id: 1,
                };
                let mut wal = Wal::create(&dir, metadata, WalOptions::default()).unwrap();
                let mut batch: Vec<Entry> = (0..batch_entries)
                    .map(|_| Entry {
                        term: 1,
                        data: vec![0xab; ENTRY_DATA_BYTES].into(),
                        ..Entry::default()
                    })
                    .collect();
                let mut hard_state = HardState {
                    term: 1,
                    ..HardState::default()
                };
                let mut next_index = 1u64;
                bencher.iter(|| {
                    for entry in &mut batch {
                        entry.index = next_index;
                        next_index += 1;
                    }
                    hard_state.commit = next_index - 1;
                    wal.append(Some(&hard_state), &batch).unwrap();
                    wal.sync().unwrap();
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, append_and_sync);
criterion_main!(benches);
