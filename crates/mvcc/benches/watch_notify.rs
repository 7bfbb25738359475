//! What notifying the watch hub adds to each applied write: `WatchHub::notify` for one put,
//! with no watchers, with 10,000 watchers of other keys (single keys and ranges), and with
//! 10,000 watchers of which one matches. Lower is better; the point is that it stays small
//! and flat however many watchers there are.
//!
//! Run: `cargo bench -p stead-mvcc --bench watch_notify`

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use stead_backend::{Backend, BackendOptions};
use stead_mvcc::watch::{
    EventFilter, Presentation, WatchHub, WatchMessage, WatchSpec, WatchStream,
};
use stead_mvcc::{KeyRange, NoLeases, Store, StoreOptions};
use stead_proto::mvccpb::{Event, KeyValue, event::EventType};
use tokio::sync::mpsc::Receiver;

const STREAMS: usize = 100;

fn put_event(key: &[u8], revision: i64) -> Event {
    Event {
        r#type: EventType::Put as i32,
        kv: Some(KeyValue {
            key: Bytes::copy_from_slice(key),
            create_revision: 2,
            mod_revision: revision,
            version: 1,
            value: Bytes::from(vec![b'v'; 256]),
            lease: 0,
        }),
        prev_kv: None,
    }
}

struct Fixture {
    hub: Arc<WatchHub>,
    _streams: Vec<(WatchStream, Receiver<WatchMessage>)>,
    _dir: tempfile::TempDir,
    _store: Store,
}

/// A hub with `singles` single-key watchers on `watched/<i>` and `ranges` range watchers on
/// `range/<i>/..`, spread over [`STREAMS`] streams whose Created answers are drained.
fn fixture(singles: usize, ranges: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend =
        Backend::open(&dir.path().join("db"), BackendOptions::default()).expect("backend");
    let store = Store::open(
        Arc::new(backend),
        Arc::new(NoLeases),
        StoreOptions::default(),
    )
    .expect("store");
    let hub = WatchHub::start(store.history()).expect("hub");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut streams: Vec<_> = (0..STREAMS).map(|_| WatchStream::open(&hub)).collect();
    let specs = (0..singles)
        .map(|i| KeyRange::Single(Bytes::from(format!("watched/{i}"))))
        .chain((0..ranges).map(|i| KeyRange::Between {
            start: Bytes::from(format!("range/{i}/")),
            end: Bytes::from(format!("range/{i}0")),
        }));
    for (i, range) in specs.enumerate() {
        let (stream, outbox) = &mut streams[i % STREAMS];
        runtime.block_on(async {
            stream
                .watch(WatchSpec {
                    watch_id: 0,
                    range,
                    start_revision: 0,
                    filter: EventFilter::default(),
                    presentation: Presentation::default(),
                })
                .await
                .expect("watch");
            outbox.recv().await.expect("created");
        });
    }
    Fixture {
        hub,
        _streams: streams,
        _dir: dir,
        _store: store,
    }
}

fn bench_notify(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch_notify_one_put");
    // "other/key" sorts before every watched range; "zzz" after every one (the worst case:
    // every block of the range index is checked).
    for (name, singles, ranges, key) in [
        ("no_watchers", 0, 0, &b"other/key"[..]),
        ("10k_key_watchers_none_match", 10_000, 0, b"other/key"),
        (
            "10k_range_watchers_none_match_key_before",
            0,
            10_000,
            b"other/key",
        ),
        ("10k_range_watchers_none_match_key_after", 0, 10_000, b"zzz"),
        ("9k_key_1k_range_watchers_none_match", 9_000, 1_000, b"zzz"),
    ] {
        let fixture = fixture(singles, ranges);
        let mut revision = 2;
        group.bench_function(name, |b| {
            b.iter(|| {
                revision += 1;
                fixture.hub.notify(&[put_event(key, revision)]);
            })
        });
    }
    // One watcher of 10,000 matches each put; its outbox is drained as it fills.
    let mut fixture = fixture(10_000, 0);
    let mut revision = 2;
    group.bench_function("10k_key_watchers_one_matches", |b| {
        b.iter(|| {
            revision += 1;
            fixture.hub.notify(&[put_event(b"watched/0", revision)]);
            while fixture._streams[0].1.try_recv().is_ok() {}
        })
    });
    group.finish();
}

criterion_group!(benches, bench_notify);
criterion_main!(benches);
