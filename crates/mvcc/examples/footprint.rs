//! Memory and restart footprint of the store, each phase in its own process:
//! `footprint load <dir> <keys> <key bytes> <value bytes>` loads keys and reports resident
//! memory; `footprint open <dir>` restores the store (what a restart does) and reports the time
//! and resident memory.
//!
//! Run: `cargo run --release -p stead-mvcc --example footprint -- load /tmp/fp 1000000 8 256`
//! then `... --example footprint -- open /tmp/fp`. The figures go to docs/benchmarks.md.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use stead_backend::{Backend, BackendOptions};
use stead_mvcc::{NoLeases, Store, StoreOptions};

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn open(path: &std::path::Path) -> Store {
    let backend = Backend::open(path, BackendOptions::default()).expect("backend");
    Store::open(
        Arc::new(backend),
        Arc::new(NoLeases),
        StoreOptions::default(),
    )
    .expect("store")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["load", dir, keys, key_bytes, value_bytes] => load(
            &std::path::Path::new(dir).join("db"),
            keys.parse().expect("keys"),
            key_bytes.parse().expect("key bytes"),
            value_bytes.parse().expect("value bytes"),
        ),
        ["open", dir] => {
            let started = Instant::now();
            let store = open(&std::path::Path::new(dir).join("db"));
            println!(
                "restored {} keys in {:.2} s: rss {:.0} MiB",
                store.key_count(),
                started.elapsed().as_secs_f64(),
                rss_mib()
            );
        }
        _ => eprintln!("usage: footprint load <dir> <keys> <key bytes> <value bytes> | open <dir>"),
    }
}

fn load(path: &std::path::Path, keys: usize, key_bytes: usize, value_bytes: usize) {
    let value = Bytes::from(vec![b'v'; value_bytes]);
    let started = Instant::now();
    let store = open(path);
    for chunk_start in (0..keys).step_by(1000) {
        let mut txn = store.write().expect("write");
        for i in chunk_start..(chunk_start + 1000).min(keys) {
            let mut key = vec![0u8; key_bytes];
            let id = (i as u64).to_be_bytes();
            let n = key_bytes.min(8);
            key[key_bytes - n..].copy_from_slice(&id[8 - n..]);
            txn.put(&key, value.clone(), 0).expect("put");
        }
        txn.end().expect("end");
    }
    store.backend().commit().expect("commit");
    println!(
        "loaded {keys} keys ({key_bytes} B keys, {value_bytes} B values) in {:.2} s: rss {:.0} MiB, db {:.0} MiB",
        started.elapsed().as_secs_f64(),
        rss_mib(),
        store.backend().size_bytes() as f64 / 1048576.0
    );
}
