//! Criterion benchmarks of the MVCC hot paths on a store of 100,000 keys.
//!
//! Run: `cargo bench -p stead-mvcc --bench mvcc`
//! Each put is a whole write transaction (index, backend batch, revision publish), committed to
//! redb in batches as the server does; each range is a whole read at the newest revision.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stead_backend::{Backend, BackendOptions};
use stead_mvcc::{KeyRange, KvView, NoLeases, RangeOptions, Store, StoreOptions};

const KEYS: u64 = 100_000;
const VALUE_BYTES: usize = 256;

fn key(i: u64) -> Vec<u8> {
    format!("key/{i:08}").into_bytes()
}

fn loaded_store(dir: &tempfile::TempDir) -> Store {
    let backend = Backend::open(
        &dir.path().join("db"),
        BackendOptions {
            batch_interval: Duration::from_millis(100),
            ..BackendOptions::default()
        },
    )
    .expect("open backend");
    let store = Store::open(
        Arc::new(backend),
        Arc::new(NoLeases),
        StoreOptions::default(),
    )
    .expect("open store");
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut txn = store.write().expect("write");
        for &i in chunk {
            txn.put(&key(i), value.clone(), 0).expect("put");
        }
        txn.end().expect("end");
    }
    store.backend().commit().expect("commit");
    store
}

fn bench_put(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = loaded_store(&dir);
    let value = Bytes::from(vec![b'w'; VALUE_BYTES]);
    let mut group = c.benchmark_group("mvcc_put");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("overwrite_100k_keys_256B", |b| {
        b.iter(|| {
            // A stride co-prime with KEYS walks every key in scattered order.
            i = (i + 7_919) % KEYS;
            let mut txn = store.write().expect("write");
            txn.put(&key(i), value.clone(), 0).expect("put");
            txn.end().expect("end");
        })
    });
    group.finish();
}

fn bench_range(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = loaded_store(&dir);
    let mut group = c.benchmark_group("mvcc_range");
    let mut i = 0u64;
    for width in [1u64, 100] {
        group.throughput(Throughput::Elements(width));
        group.bench_with_input(
            BenchmarkId::new("keys_of_100k", width),
            &width,
            |b, &width| {
                b.iter(|| {
                    i = (i + 7_919) % (KEYS - width);
                    let range = if width == 1 {
                        KeyRange::Single(Bytes::from(key(i)))
                    } else {
                        KeyRange::Between {
                            start: Bytes::from(key(i)),
                            end: Bytes::from(key(i + width)),
                        }
                    };
                    let result = store
                        .read()
                        .range(&range, &RangeOptions::latest())
                        .expect("range");
                    assert_eq!(result.kvs.len() as u64, width);
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_put, bench_range);
criterion_main!(benches);
