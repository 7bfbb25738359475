//! The Watch API end to end: the real `stead` binary, the `etcd-client` crate (and the raw
//! generated client where `etcd-client` hides a field), etcd 3.5's semantics.
//!
//! Every wait is bounded by [`DEADLINE`] so that a broken server fails a test instead of
//! hanging it; nothing asserts on how long anything took.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::Member;
use etcd_client::{
    Client, DeleteOptions, Event, EventType, Txn, TxnOp, WatchFilterType, WatchOptions,
    WatchResponse,
};
use prost::Message as _;
use stead_proto::etcdserverpb::watch_client::WatchClient as RawWatchClient;
use stead_proto::etcdserverpb::watch_request::RequestUnion;
use stead_proto::etcdserverpb::{
    WatchCreateRequest, WatchRequest, WatchResponse as RawWatchResponse,
};
use tokio::time::timeout;
use tokio_stream::StreamExt as _;

/// Liveness bound for one wait (a response, a put, a task).
const DEADLINE: Duration = Duration::from_secs(60);
/// Liveness bound for the bulk writes of the larger tests.
const BULK_DEADLINE: Duration = Duration::from_secs(600);

type Responses =
    dyn tokio_stream::Stream<Item = Result<WatchResponse, etcd_client::Error>> + Unpin + Send;

/// The next response on a watch stream; panics if none comes within [`DEADLINE`].
async fn recv<S>(stream: &mut S) -> WatchResponse
where
    S: tokio_stream::Stream<Item = Result<WatchResponse, etcd_client::Error>> + Unpin + ?Sized,
{
    match timeout(DEADLINE, stream.next()).await {
        Err(_) => panic!("no watch response within {DEADLINE:?}"),
        Ok(None) => panic!("the watch stream ended"),
        Ok(Some(Err(err))) => panic!("the watch stream failed: {err}"),
        Ok(Some(Ok(response))) => response,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn header_revision(response: &WatchResponse) -> i64 {
    response.header().expect("a header").revision()
}

/// An event, as compared in these tests.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ev {
    kind: EventType,
    key: String,
    value: String,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
}

fn ev(event: &Event) -> Ev {
    let kv = event.kv().expect("an event has a kv");
    Ev {
        kind: event.event_type(),
        key: text(kv.key()),
        value: text(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    }
}

fn put_ev(key: &str, value: &str, create_revision: i64, mod_revision: i64, version: i64) -> Ev {
    Ev {
        kind: EventType::Put,
        key: key.to_owned(),
        value: value.to_owned(),
        create_revision,
        mod_revision,
        version,
        lease: 0,
    }
}

/// etcd's delete event: the key and the deletion's revision, nothing else.
fn del_ev(key: &str, mod_revision: i64) -> Ev {
    Ev {
        kind: EventType::Delete,
        key: key.to_owned(),
        value: String::new(),
        create_revision: 0,
        mod_revision,
        version: 0,
        lease: 0,
    }
}

/// An event's `prev_kv`, as an [`Ev`] (a put of the previous value).
fn prev_of(event: &Event) -> Option<Ev> {
    event.prev_kv().map(|kv| {
        put_ev(
            &text(kv.key()),
            &text(kv.value()),
            kv.create_revision(),
            kv.mod_revision(),
            kv.version(),
        )
    })
}

/// The events of a response that is about events (not created, canceled or progress).
fn events_of(response: &WatchResponse) -> Vec<Ev> {
    assert!(
        !response.created(),
        "unexpected created response {response:?}"
    );
    assert!(
        !response.canceled(),
        "unexpected canceled response {response:?}"
    );
    assert_eq!(response.compact_revision(), 0, "{response:?}");
    assert!(
        !response.events().is_empty(),
        "an empty response: {response:?}"
    );
    response.events().iter().map(ev).collect()
}

/// Asserts a successful create answer.
fn assert_created(response: &WatchResponse, watch_id: i64, revision: i64) {
    assert!(response.created(), "not a created response: {response:?}");
    assert!(!response.canceled(), "{response:?}");
    assert_eq!(response.cancel_reason(), "", "{response:?}");
    assert_eq!(response.watch_id(), watch_id, "{response:?}");
    assert_eq!(header_revision(response), revision, "{response:?}");
    assert!(response.events().is_empty(), "{response:?}");
}

/// Asserts a refused create: etcd answers `created` and `canceled` with watch ID -1.
fn assert_refused(response: &WatchResponse, reason: &str) {
    assert!(response.created(), "{response:?}");
    assert!(response.canceled(), "{response:?}");
    assert_eq!(response.watch_id(), -1, "{response:?}");
    assert_eq!(response.cancel_reason(), reason, "{response:?}");
    assert!(response.events().is_empty(), "{response:?}");
}

/// Compares long event lists, reporting the first difference only.
fn assert_same_events(actual: &[Ev], expected: &[Ev], what: &str) {
    if let Some(at) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        let show = |events: &[Ev]| {
            events[at.saturating_sub(2)..(at + 3).min(events.len())]
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    e.value.truncate(24);
                    format!("{e:?}")
                })
                .collect::<Vec<_>>()
                .join("\n    ")
        };
        panic!(
            "{what}: first difference at event {at} of {} (expected {}):\n  actual:\n    {}\n  expected:\n    {}",
            actual.len(),
            expected.len(),
            show(actual),
            show(expected)
        );
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: {} events, expected {} (the common part is equal)",
        actual.len(),
        expected.len()
    );
}

/// What a sequence of puts does to keys: the events they make, with create revisions and
/// versions as etcd counts them.
#[derive(Default)]
struct Model {
    keys: HashMap<String, (i64, i64)>,
}

impl Model {
    fn put(&mut self, key: &str, value: &str, revision: i64) -> Ev {
        let (create, version) = self.keys.entry(key.to_owned()).or_insert((revision, 0));
        *version += 1;
        put_ev(key, value, *create, revision, *version)
    }
}

async fn put(client: &mut Client, key: &str, value: &str) -> i64 {
    let response = timeout(DEADLINE, client.put(key, value, None))
        .await
        .expect("put within the deadline")
        .expect("put");
    response.header().unwrap().revision()
}

async fn delete(client: &mut Client, key: &str) -> i64 {
    let response = timeout(DEADLINE, client.delete(key, None))
        .await
        .expect("delete within the deadline")
        .expect("delete");
    assert_eq!(response.deleted(), 1, "{key} existed");
    response.header().unwrap().revision()
}

// ---------------------------------------------------------------------------------------------
// 1. History across restarts
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_replayed_in_order_across_restarts_then_live_events_follow() {
    let dir = tempfile::tempdir().unwrap();
    let mut member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    assert_eq!(put(&mut client, "a", "1").await, 2);
    assert_eq!(put(&mut client, "b", "1").await, 3);
    assert_eq!(put(&mut client, "a", "2").await, 4);
    assert_eq!(delete(&mut client, "b").await, 5);
    assert_eq!(put(&mut client, "c", "1").await, 6);
    let txn = Txn::new().and_then(vec![
        TxnOp::put("a", "3", None),
        TxnOp::delete("c", None),
        TxnOp::put("e", "1", None),
    ]);
    let txn = client.txn(txn).await.unwrap();
    assert_eq!(txn.header().unwrap().revision(), 7);

    // A clean stop with a watch stream open.
    let mut open = client
        .watch("a", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_created(&recv(&mut open).await, 0, 7);
    let status = member.terminate();
    assert!(status.success(), "exit status {status}:\n{}", member.log());
    let ended = timeout(DEADLINE, open.message())
        .await
        .expect("the stream ends");
    assert!(
        !matches!(ended, Ok(Some(_))),
        "no response after the stop: {ended:?}"
    );
    drop(open);

    member.restart();
    let mut client = member.client().await;
    assert_eq!(put(&mut client, "b", "2").await, 8);
    member.kill();
    member.restart();
    let mut client = member.client().await;
    assert_eq!(put(&mut client, "d", "1").await, 9);

    let expected_history = vec![
        put_ev("a", "1", 2, 2, 1),
        put_ev("b", "1", 3, 3, 1),
        put_ev("a", "2", 2, 4, 2),
        del_ev("b", 5),
        put_ev("c", "1", 6, 6, 1),
        put_ev("a", "3", 2, 7, 3),
        del_ev("c", 7),
        put_ev("e", "1", 7, 7, 1),
        put_ev("b", "2", 8, 8, 1),
        put_ev("d", "1", 9, 9, 1),
    ];

    let mut stream = client
        .watch(
            "",
            Some(WatchOptions::new().with_all_keys().with_start_revision(1)),
        )
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 0, 9);
    let mut seen = Vec::new();
    while seen.len() < expected_history.len() {
        let response = recv(&mut stream).await;
        assert_eq!(response.watch_id(), 0);
        let events = events_of(&response);
        // A catch-up response speaks for the store revision it was read at.
        assert!(header_revision(&response) >= events.last().unwrap().mod_revision);
        assert_eq!(header_revision(&response), 9, "{response:?}");
        seen.extend(events);
    }
    assert_same_events(&seen, &expected_history, "replayed history");

    // Live events follow, with no gap.
    assert_eq!(put(&mut client, "f", "1").await, 10);
    assert_eq!(delete(&mut client, "a").await, 11);
    assert_eq!(put(&mut client, "b", "3").await, 12);
    let mut live = Vec::new();
    while live.len() < 3 {
        let response = recv(&mut stream).await;
        assert_eq!(response.watch_id(), 0);
        let events = events_of(&response);
        assert_eq!(events.len(), 1, "one revision per live response");
        assert_eq!(header_revision(&response), events[0].mod_revision);
        live.extend(events);
    }
    assert_same_events(
        &live,
        &[
            put_ev("f", "1", 10, 10, 1),
            del_ev("a", 11),
            put_ev("b", "3", 8, 12, 2),
        ],
        "live events",
    );

    // A range delete: one revision, its events in key order.
    let deleted = client
        .delete("b", Some(DeleteOptions::new().with_from_key()))
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), 4);
    assert_eq!(deleted.header().unwrap().revision(), 13);
    let response = recv(&mut stream).await;
    assert_eq!(header_revision(&response), 13);
    assert_eq!(
        events_of(&response),
        vec![
            del_ev("b", 13),
            del_ev("d", 13),
            del_ev("e", 13),
            del_ev("f", 13)
        ]
    );
}

/// etcd hands a watcher that is behind at most 1,000 revisions per response
/// (`watchBatchMaxRevs`), so replaying a long history of large values never makes a response
/// too large for a client's default 4 MiB limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_history_is_replayed_in_batches_of_at_most_1000_revisions() {
    const PUTS: usize = 2_500;
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    let mut model = Model::default();
    let mut expected = Vec::with_capacity(PUTS);
    for i in 0..PUTS {
        let key = format!("long/{:02}", i % 40);
        let value = format!("{i:05}{}", "x".repeat(2043));
        let revision = put(&mut client, &key, &value).await;
        assert_eq!(revision, i as i64 + 2);
        expected.push(model.put(&key, &value, revision));
    }
    let mut stream = client
        .watch(
            "long/",
            Some(WatchOptions::new().with_prefix().with_start_revision(1)),
        )
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 0, PUTS as i64 + 1);
    let mut seen = Vec::with_capacity(PUTS);
    while seen.len() < PUTS {
        let response = recv(&mut stream).await;
        let events = events_of(&response);
        let mut revisions: Vec<i64> = events.iter().map(|e| e.mod_revision).collect();
        revisions.dedup();
        assert!(
            revisions.len() <= 1000,
            "a catch-up response with {} revisions ({} events)",
            revisions.len(),
            events.len()
        );
        seen.extend(events);
    }
    assert_same_events(&seen, &expected, "replayed history");
}

// ---------------------------------------------------------------------------------------------
// 2. Catch-up racing writes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Range {
    Prefix(&'static str),
    Key(&'static str),
    FromKey(&'static str),
}

impl Range {
    fn key(self) -> &'static str {
        match self {
            Range::Prefix(key) | Range::Key(key) | Range::FromKey(key) => key,
        }
    }

    fn options(self) -> WatchOptions {
        match self {
            Range::Prefix(_) => WatchOptions::new().with_prefix(),
            Range::Key(_) => WatchOptions::new(),
            Range::FromKey(_) => WatchOptions::new().with_from_key(),
        }
    }

    fn contains(self, key: &str) -> bool {
        match self {
            Range::Prefix(prefix) => key.starts_with(prefix),
            Range::Key(single) => key == single,
            Range::FromKey(from) => key >= from,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct RaceSpec {
    /// Created once the writer has done this many puts.
    after_puts: usize,
    start_revision: i64,
    range: Range,
    /// On the shared stream (else on a stream of its own).
    shared: bool,
}

/// Reads one watcher's events until the one at `last_revision`.
async fn collect_until(stream: &mut Responses, watch_id: i64, last_revision: i64) -> Vec<Ev> {
    let mut seen: Vec<Ev> = Vec::new();
    loop {
        let response = recv(stream).await;
        assert_eq!(response.watch_id(), watch_id, "{response:?}");
        let events = events_of(&response);
        assert!(header_revision(&response) >= events.last().unwrap().mod_revision);
        seen.extend(events);
        if let Some(last) = seen.last()
            && last.mod_revision >= last_revision
        {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_starting_in_the_past_see_every_revision_once_while_writes_race() {
    const PUTS: usize = 3_000;
    const KEYS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let client = member.client().await;

    // Every range contains the sentinel key, written last.
    const SENTINEL: &str = "race/k07";
    let specs = [
        RaceSpec {
            after_puts: 100,
            start_revision: 2,
            range: Range::Prefix("race/"),
            shared: false,
        },
        RaceSpec {
            after_puts: 300,
            start_revision: 150,
            range: Range::Prefix("race/k0"),
            shared: true,
        },
        RaceSpec {
            after_puts: 600,
            start_revision: 201,
            range: Range::Prefix("race/"),
            shared: false,
        },
        RaceSpec {
            after_puts: 1_200,
            start_revision: 2,
            range: Range::Key(SENTINEL),
            shared: false,
        },
        RaceSpec {
            after_puts: 1_500,
            start_revision: 1_400,
            range: Range::Prefix("race/"),
            shared: true,
        },
        RaceSpec {
            after_puts: 2_000,
            start_revision: 501,
            range: Range::FromKey("race/k05"),
            shared: false,
        },
        RaceSpec {
            after_puts: 2_500,
            start_revision: 1_000,
            range: Range::Key(SENTINEL),
            shared: true,
        },
        RaceSpec {
            after_puts: 2_900,
            start_revision: 2,
            range: Range::Prefix("race/"),
            shared: false,
        },
        RaceSpec {
            after_puts: 2_990,
            start_revision: 2_950,
            range: Range::FromKey("race/k05"),
            shared: true,
        },
    ];

    // What the writer will do: put i is revision i + 2; then the sentinel.
    let mut model = Model::default();
    let mut log: Vec<Ev> = (0..PUTS)
        .map(|i| {
            model.put(
                &format!("race/k{:02}", i % KEYS),
                &format!("v{i}"),
                i as i64 + 2,
            )
        })
        .collect();
    let last_revision = PUTS as i64 + 2;
    log.push(model.put(SENTINEL, "end", last_revision));
    let expected_for = |spec: &RaceSpec| -> Vec<Ev> {
        log.iter()
            .filter(|e| e.mod_revision >= spec.start_revision && spec.range.contains(&e.key))
            .cloned()
            .collect()
    };

    let (done_tx, mut done_rx) = tokio::sync::watch::channel(0usize);
    let writer = {
        let mut client = client.clone();
        tokio::spawn(async move {
            let mut revisions = Vec::with_capacity(PUTS);
            for i in 0..PUTS {
                let key = format!("race/k{:02}", i % KEYS);
                revisions.push(put(&mut client, &key, &format!("v{i}")).await);
                done_tx.send_replace(i + 1);
            }
            revisions
        })
    };

    let mut own_readers = Vec::new();
    let mut shared_sender: Option<etcd_client::WatchRequestSender> = None;
    let mut shared_reader = None;
    let shared_specs: Vec<RaceSpec> = specs.iter().filter(|s| s.shared).copied().collect();
    for spec in specs {
        timeout(
            BULK_DEADLINE,
            done_rx.wait_for(|&done| done >= spec.after_puts),
        )
        .await
        .expect("the writer makes progress")
        .unwrap();
        let options = spec
            .range
            .options()
            .with_start_revision(spec.start_revision);
        if !spec.shared {
            let mut stream = client
                .watch_client()
                .watch(spec.range.key(), Some(options))
                .await
                .unwrap();
            own_readers.push(tokio::spawn(async move {
                let created = recv(&mut stream).await;
                assert!(created.created() && !created.canceled(), "{created:?}");
                assert_eq!(created.watch_id(), 0);
                let seen = collect_until(&mut stream, 0, last_revision).await;
                (spec, seen)
            }));
        } else if let Some(sender) = shared_sender.as_mut() {
            sender.watch(spec.range.key(), Some(options)).await.unwrap();
        } else {
            let stream = client
                .watch_client()
                .watch(spec.range.key(), Some(options))
                .await
                .unwrap();
            let (sender, mut responses) = stream.split();
            shared_sender = Some(sender);
            let shared_specs = shared_specs.clone();
            // Created answers come in request order; watch IDs are 0, 1, ... in that order.
            shared_reader = Some(tokio::spawn(async move {
                let mut seen: BTreeMap<i64, Vec<Ev>> = BTreeMap::new();
                let mut created = 0;
                let finished = |seen: &BTreeMap<i64, Vec<Ev>>| {
                    seen.len() == shared_specs.len()
                        && seen.values().all(|events| {
                            events
                                .last()
                                .is_some_and(|e| e.mod_revision == last_revision)
                        })
                };
                while !finished(&seen) {
                    let response = recv(&mut responses).await;
                    if response.created() {
                        assert!(!response.canceled(), "{response:?}");
                        assert_eq!(response.watch_id(), created, "{response:?}");
                        seen.insert(created, Vec::new());
                        created += 1;
                        continue;
                    }
                    let events = events_of(&response);
                    seen.get_mut(&response.watch_id())
                        .expect("events for a created watcher")
                        .extend(events);
                }
                seen
            }));
        }
    }

    let revisions = timeout(BULK_DEADLINE, writer)
        .await
        .expect("writer done")
        .unwrap();
    let expected_revisions: Vec<i64> = (2..last_revision).collect();
    assert_eq!(revisions, expected_revisions, "the writer's put revisions");
    let mut client = client.clone();
    assert_eq!(put(&mut client, SENTINEL, "end").await, last_revision);

    for reader in own_readers {
        let (spec, seen) = timeout(BULK_DEADLINE, reader)
            .await
            .expect("reader done")
            .unwrap();
        assert_same_events(&seen, &expected_for(&spec), &format!("{spec:?}"));
    }
    let shared = timeout(BULK_DEADLINE, shared_reader.unwrap())
        .await
        .expect("shared reader done")
        .unwrap();
    for (watch_id, spec) in shared_specs.iter().enumerate() {
        assert_same_events(
            &shared[&(watch_id as i64)],
            &expected_for(spec),
            &format!("{spec:?}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Compaction
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_revision_below_the_compaction_is_canceled_with_the_compact_revision() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    assert_eq!(put(&mut client, "k", "v1").await, 2);
    assert_eq!(put(&mut client, "k", "v2").await, 3);
    assert_eq!(put(&mut client, "k", "v3").await, 4);
    assert_eq!(put(&mut client, "other", "x").await, 5);
    client.compact(4, None).await.unwrap();

    let mut stream = client
        .watch("k", Some(WatchOptions::new().with_start_revision(3)))
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 0, 5);
    let compacted = recv(&mut stream).await;
    assert!(compacted.canceled(), "{compacted:?}");
    assert!(!compacted.created(), "{compacted:?}");
    assert_eq!(compacted.watch_id(), 0);
    assert_eq!(compacted.compact_revision(), 4);
    assert!(compacted.events().is_empty());
    // etcd's compaction response carries no store revision.
    assert_eq!(header_revision(&compacted), 0, "{compacted:?}");

    // From the start of history: compacted too; an explicit ID stays taken until cancelled.
    stream
        .watch(
            "k",
            Some(WatchOptions::new().with_start_revision(1).with_watch_id(7)),
        )
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 7, 5);
    let compacted = recv(&mut stream).await;
    assert!(
        compacted.canceled() && !compacted.created(),
        "{compacted:?}"
    );
    assert_eq!(compacted.watch_id(), 7);
    assert_eq!(compacted.compact_revision(), 4);
    stream
        .watch("k", Some(WatchOptions::new().with_watch_id(7)))
        .await
        .unwrap();
    assert_refused(
        &recv(&mut stream).await,
        "mvcc: duplicate watch ID provided on the WatchStream",
    );
    stream.cancel(7).await.unwrap();
    let canceled = recv(&mut stream).await;
    assert!(canceled.canceled() && !canceled.created(), "{canceled:?}");
    assert_eq!(canceled.watch_id(), 7);
    assert_eq!(canceled.compact_revision(), 0);
    assert_eq!(header_revision(&canceled), 5);

    // The compaction revision itself is still there: replayed from it.
    stream
        .watch(
            "k",
            Some(
                WatchOptions::new()
                    .with_start_revision(4)
                    .with_watch_id(7)
                    .with_prev_key(),
            ),
        )
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 7, 5);
    let replayed = recv(&mut stream).await;
    assert_eq!(replayed.watch_id(), 7);
    assert_eq!(events_of(&replayed), vec![put_ev("k", "v3", 2, 4, 3)]);
    assert_eq!(header_revision(&replayed), 5);
    // Its previous value (revision 3) is compacted away: no prev_kv, as in etcd.
    assert_eq!(prev_of(&replayed.events()[0]), None);
    assert_eq!(put(&mut client, "k", "v4").await, 6);
    let live = recv(&mut stream).await;
    assert_eq!(live.watch_id(), 7);
    assert_eq!(events_of(&live), vec![put_ev("k", "v4", 2, 6, 4)]);
    assert_eq!(prev_of(&live.events()[0]), Some(put_ev("k", "v3", 2, 4, 3)));
    assert_eq!(header_revision(&live), 6);
}

// ---------------------------------------------------------------------------------------------
// 4. Many watchers, many streams
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_watchers_on_one_stream_and_a_hundred_streams_get_every_put_once() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;

    // 900 single keys w/000..w/899, 90 prefixes w/00..w/89, 10 prefixes w/0..w/9.
    let mut ranges: Vec<(String, bool)> = (0..900).map(|i| (format!("w/{i:03}"), false)).collect();
    ranges.extend((0..90).map(|j| (format!("w/{j:02}"), true)));
    ranges.extend((0..10).map(|d| (format!("w/{d}"), true)));
    assert_eq!(ranges.len(), 1000);
    let options = |prefix: bool| prefix.then(|| WatchOptions::new().with_prefix());

    let stream = client
        .watch(ranges[0].0.as_str(), options(ranges[0].1))
        .await
        .unwrap();
    let (mut sender, mut responses) = stream.split();
    let creating = {
        let ranges = ranges.clone();
        tokio::spawn(async move {
            for (key, prefix) in &ranges[1..] {
                sender.watch(key.as_str(), options(*prefix)).await.unwrap();
            }
            sender
        })
    };
    for watch_id in 0..1000 {
        assert_created(&recv(&mut responses).await, watch_id, 1);
    }
    let _sender = timeout(DEADLINE, creating).await.unwrap().unwrap();

    let mut expected: Vec<Vec<Ev>> = vec![Vec::new(); 1000];
    for i in 0..900 {
        let key = format!("w/{i:03}");
        let revision = put(&mut client, &key, "v").await;
        assert_eq!(revision, i + 2);
        for (watch_id, (range, prefix)) in ranges.iter().enumerate() {
            if (*prefix && key.starts_with(range.as_str())) || *range == key {
                expected[watch_id].push(put_ev(&key, "v", revision, revision, 1));
            }
        }
    }
    // The sentinel: only the w/9 prefix watcher (999) sees it; responses of one stream come in
    // revision order, so everything before it has arrived once it does.
    assert_eq!(put(&mut client, "w/999", "end").await, 902);
    expected[999].push(put_ev("w/999", "end", 902, 902, 1));
    let mut seen: Vec<Vec<Ev>> = vec![Vec::new(); 1000];
    loop {
        let response = recv(&mut responses).await;
        let events = events_of(&response);
        assert_eq!(events.len(), 1, "{response:?}");
        assert_eq!(header_revision(&response), events[0].mod_revision);
        let watch_id = usize::try_from(response.watch_id()).expect("a watch ID");
        let last = events[0].mod_revision == 902;
        seen[watch_id].extend(events);
        if last {
            break;
        }
    }
    for (watch_id, (range, _)) in ranges.iter().enumerate() {
        assert_same_events(
            &seen[watch_id],
            &expected[watch_id],
            &format!("watcher {watch_id} on {range}"),
        );
    }
    assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), 900 * 3 + 1);

    // 100 streams with one watcher each.
    let mut streams = Vec::new();
    for _ in 0..100 {
        let mut stream = client
            .watch("s/", Some(WatchOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_created(&recv(&mut stream).await, 0, 902);
        streams.push(stream);
    }
    let mut expected = Vec::new();
    for i in 0..50 {
        let key = format!("s/{i:02}");
        let revision = put(&mut client, &key, &format!("v{i}")).await;
        assert_eq!(revision, 903 + i);
        expected.push(put_ev(&key, &format!("v{i}"), revision, revision, 1));
    }
    for (n, stream) in streams.iter_mut().enumerate() {
        let mut seen = Vec::new();
        while seen.len() < expected.len() {
            let response = recv(stream).await;
            assert_eq!(response.watch_id(), 0);
            seen.extend(events_of(&response));
        }
        assert_same_events(&seen, &expected, &format!("stream {n}"));
    }
    // Nothing more: the next response of each stream is the next put.
    let revision = put(&mut client, "s/last", "end").await;
    for stream in &mut streams {
        let response = recv(stream).await;
        assert_eq!(
            events_of(&response),
            vec![put_ev("s/last", "end", revision, revision, 1)]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. A watcher that does not read
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_does_not_read_stalls_nobody_and_later_gets_everything() {
    const WRITERS: usize = 4;
    const PUTS_PER_WRITER: usize = 5_000;
    const EVENTS: usize = WRITERS * PUTS_PER_WRITER;
    const VALUE_BYTES: usize = 1024;
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);

    // Each party on its own connection: only the server is shared.
    let mut slow = member
        .client()
        .await
        .watch("slow/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_created(&recv(&mut slow).await, 0, 1);
    let mut fast = member
        .client()
        .await
        .watch("slow/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_created(&recv(&mut fast).await, 0, 1);
    let fast_reader = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(EVENTS);
        while seen.len() < EVENTS {
            let response = recv(&mut fast).await;
            assert_eq!(response.watch_id(), 0);
            let events = events_of(&response);
            assert_eq!(
                header_revision(&response),
                events.last().unwrap().mod_revision
            );
            seen.extend(events);
        }
        (fast, seen)
    });

    let writers_client = member.client().await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut client = writers_client.clone();
            tokio::spawn(async move {
                let mut done = Vec::with_capacity(PUTS_PER_WRITER);
                for i in 0..PUTS_PER_WRITER {
                    let key = format!("slow/{w}/{:03}", i % 100);
                    let mut value = format!("{w}:{i}:");
                    value.extend(std::iter::repeat_n('x', VALUE_BYTES - value.len()));
                    let revision = put(&mut client, &key, &value).await;
                    done.push((revision, key, value));
                }
                done
            })
        })
        .collect();
    let mut puts = Vec::with_capacity(EVENTS);
    for writer in writers {
        puts.extend(
            timeout(BULK_DEADLINE, writer)
                .await
                .expect("writes are not stalled")
                .unwrap(),
        );
    }
    puts.sort();
    let revisions: Vec<i64> = puts.iter().map(|(revision, _, _)| *revision).collect();
    assert_eq!(
        revisions,
        (2..EVENTS as i64 + 2).collect::<Vec<_>>(),
        "one revision per put"
    );
    let mut model = Model::default();
    let expected: Vec<Ev> = puts
        .iter()
        .map(|(revision, key, value)| model.put(key, value, *revision))
        .collect();

    // The reading watcher got everything while the other one read nothing.
    let (_fast, fast_seen) = timeout(BULK_DEADLINE, fast_reader)
        .await
        .expect("the reading watcher is not stalled")
        .unwrap();
    assert_same_events(&fast_seen, &expected, "the reading watcher");

    // Now the slow one reads: everything, in order, once; then live events.
    let mut slow_seen = Vec::with_capacity(EVENTS);
    while slow_seen.len() < EVENTS {
        let response = recv(&mut slow).await;
        assert_eq!(response.watch_id(), 0);
        let events = events_of(&response);
        assert!(header_revision(&response) >= events.last().unwrap().mod_revision);
        slow_seen.extend(events);
    }
    assert_same_events(&slow_seen, &expected, "the watcher that did not read");
    let mut client = member.client().await;
    let revision = put(&mut client, "slow/last", "end").await;
    assert_eq!(revision, EVENTS as i64 + 2);
    let live = recv(&mut slow).await;
    assert_eq!(
        events_of(&live),
        vec![put_ev("slow/last", "end", revision, revision, 1)]
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Cancel
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_answers_once_and_stops_only_that_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    let mut stream = client.watch("c/a", None).await.unwrap();
    assert_created(&recv(&mut stream).await, 0, 1);
    stream.watch("c/b", None).await.unwrap();
    assert_created(&recv(&mut stream).await, 1, 1);

    assert_eq!(put(&mut client, "c/a", "1").await, 2);
    let response = recv(&mut stream).await;
    assert_eq!(response.watch_id(), 0);
    assert_eq!(events_of(&response), vec![put_ev("c/a", "1", 2, 2, 1)]);

    stream.cancel(0).await.unwrap();
    let canceled = recv(&mut stream).await;
    assert!(canceled.canceled(), "{canceled:?}");
    assert!(!canceled.created(), "{canceled:?}");
    assert_eq!(canceled.watch_id(), 0);
    assert_eq!(canceled.compact_revision(), 0);
    assert_eq!(canceled.cancel_reason(), "");
    assert!(canceled.events().is_empty());
    assert_eq!(header_revision(&canceled), 2);

    // No more events for 0; 1 is unaffected.
    assert_eq!(put(&mut client, "c/a", "2").await, 3);
    assert_eq!(put(&mut client, "c/b", "1").await, 4);
    let response = recv(&mut stream).await;
    assert_eq!(response.watch_id(), 1, "{response:?}");
    assert_eq!(events_of(&response), vec![put_ev("c/b", "1", 4, 4, 1)]);
    assert_eq!(header_revision(&response), 4);

    // Unknown IDs (never used, and already cancelled) get no answer: the next response is the
    // next event.
    stream.cancel(42).await.unwrap();
    stream.cancel(0).await.unwrap();
    assert_eq!(put(&mut client, "c/b", "2").await, 5);
    let response = recv(&mut stream).await;
    assert_eq!(response.watch_id(), 1, "{response:?}");
    assert_eq!(events_of(&response), vec![put_ev("c/b", "2", 4, 5, 2)]);

    // IDs are not reused on the stream.
    stream.watch("c/a", None).await.unwrap();
    assert_created(&recv(&mut stream).await, 2, 5);
    assert_eq!(put(&mut client, "c/a", "3").await, 6);
    let response = recv(&mut stream).await;
    assert_eq!(response.watch_id(), 2, "{response:?}");
    assert_eq!(events_of(&response), vec![put_ev("c/a", "3", 2, 6, 3)]);
}

// ---------------------------------------------------------------------------------------------
// 7. Progress
// ---------------------------------------------------------------------------------------------

fn assert_progress(response: &WatchResponse, watch_id: i64, revision: i64) {
    assert_eq!(response.watch_id(), watch_id, "{response:?}");
    assert!(!response.created(), "{response:?}");
    assert!(!response.canceled(), "{response:?}");
    assert_eq!(response.compact_revision(), 0, "{response:?}");
    assert!(response.events().is_empty(), "{response:?}");
    assert_eq!(header_revision(response), revision, "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_request_is_answered_with_the_current_revision() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    let mut stream = client
        .watch("p/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 0, 1);
    assert_eq!(put(&mut client, "p/x", "1").await, 2);
    assert_eq!(put(&mut client, "q", "1").await, 3);
    stream.request_progress().await.unwrap();
    let response = recv(&mut stream).await;
    assert_eq!(events_of(&response), vec![put_ev("p/x", "1", 2, 2, 1)]);
    assert_progress(&recv(&mut stream).await, -1, 3);

    // A stream whose watcher replays history: the answer comes after the history.
    let mut replaying = client
        .watch(
            "p/",
            Some(WatchOptions::new().with_prefix().with_start_revision(1)),
        )
        .await
        .unwrap();
    replaying.request_progress().await.unwrap();
    assert_created(&recv(&mut replaying).await, 0, 3);
    let response = recv(&mut replaying).await;
    assert_eq!(events_of(&response), vec![put_ev("p/x", "1", 2, 2, 1)]);
    assert_progress(&recv(&mut replaying).await, -1, 3);

    // Again after more writes.
    assert_eq!(put(&mut client, "q", "2").await, 4);
    stream.request_progress().await.unwrap();
    assert_progress(&recv(&mut stream).await, -1, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watchers_that_asked_get_periodic_progress_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(
        &dir.path().join("data"),
        &["--experimental-watch-progress-notify-interval=200ms"],
    );
    let mut client = member.client().await;
    let mut stream = client
        .watch(
            "idle/",
            Some(WatchOptions::new().with_prefix().with_progress_notify()),
        )
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 0, 1);
    stream
        .watch("idle/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 1, 1);
    assert_eq!(put(&mut client, "busy", "1").await, 2);

    // Only watcher 0 asked; the notification speaks for the current revision. (One sent
    // before the put may still be on its way, at revision 1.)
    let mut notified = 0;
    while notified < 3 {
        let response = recv(&mut stream).await;
        if header_revision(&response) == 1 && notified == 0 {
            assert_progress(&response, 0, 1);
            continue;
        }
        assert_progress(&response, 0, 2);
        notified += 1;
    }

    // An event; then notifications again, at the new revision.
    assert_eq!(put(&mut client, "idle/a", "1").await, 3);
    let mut got_event = [false, false];
    while got_event != [true, true] {
        let response = recv(&mut stream).await;
        if response.events().is_empty() {
            // A notification that was due before the event.
            assert_progress(&response, 0, header_revision(&response));
            assert!(
                (2..=3).contains(&header_revision(&response)),
                "{response:?}"
            );
            continue;
        }
        let watch_id = response.watch_id();
        assert!(watch_id == 0 || watch_id == 1, "{response:?}");
        assert!(
            !got_event[watch_id as usize],
            "a duplicate event: {response:?}"
        );
        got_event[watch_id as usize] = true;
        assert_eq!(events_of(&response), vec![put_ev("idle/a", "1", 3, 3, 1)]);
        assert_eq!(header_revision(&response), 3);
    }
    for _ in 0..2 {
        assert_progress(&recv(&mut stream).await, 0, 3);
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Fragmenting
// ---------------------------------------------------------------------------------------------

/// A watch stream on the raw generated client (`etcd-client` does not show `fragment`).
async fn raw_watch(
    member: &Member,
    create: WatchCreateRequest,
) -> (
    tokio::sync::mpsc::Sender<WatchRequest>,
    tonic::Streaming<RawWatchResponse>,
) {
    let channel = tonic::transport::Channel::from_shared(member.client_url())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let (sender, requests) = tokio::sync::mpsc::channel(16);
    sender
        .send(WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create)),
        })
        .await
        .unwrap();
    let responses = RawWatchClient::new(channel)
        .watch(tokio_stream::wrappers::ReceiverStream::new(requests))
        .await
        .expect("watch")
        .into_inner();
    (sender, responses)
}

async fn raw_recv(stream: &mut tonic::Streaming<RawWatchResponse>) -> RawWatchResponse {
    timeout(DEADLINE, stream.message())
        .await
        .expect("a response within the deadline")
        .expect("no stream error")
        .expect("the stream goes on")
}

/// Reads one revision's responses: fragments up to the one that is not.
async fn raw_revision(stream: &mut tonic::Streaming<RawWatchResponse>) -> Vec<RawWatchResponse> {
    let mut parts = Vec::new();
    loop {
        let response = raw_recv(stream).await;
        assert!(!response.created && !response.canceled, "{response:?}");
        let last = !response.fragment;
        parts.push(response);
        if last {
            return parts;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_revisions_are_fragmented_for_watchers_that_ask() {
    const MAX_REQUEST_BYTES: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &["--max-request-bytes=10000"]);
    let mut client = member.client().await;
    let keys: Vec<String> = (0..20).map(|i| format!("frag/k{i:02}")).collect();
    let old_value = "a".repeat(1000);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(put(&mut client, key, &old_value).await, i as i64 + 2);
    }

    let create = |fragment: bool, prev_kv: bool| WatchCreateRequest {
        key: b"frag/".to_vec().into(),
        range_end: b"frag0".to_vec().into(),
        fragment,
        prev_kv,
        ..WatchCreateRequest::default()
    };
    let mut streams = Vec::new();
    for (fragment, prev_kv) in [(true, true), (false, true), (true, false)] {
        let (sender, mut responses) = raw_watch(&member, create(fragment, prev_kv)).await;
        let created = raw_recv(&mut responses).await;
        assert!(
            created.created && !created.canceled && !created.fragment,
            "{created:?}"
        );
        assert_eq!(created.watch_id, 0);
        streams.push((sender, responses));
    }

    // One revision of 20 puts (the request fits under --max-request-bytes; with the previous
    // values the watch response does not).
    let new_value = |i: usize| format!("{i:02}{}", "b".repeat(398));
    let ops: Vec<TxnOp> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| TxnOp::put(key.as_str(), new_value(i), None))
        .collect();
    let txn = client
        .txn(Txn::new().and_then(ops))
        .await
        .expect("txn under the limit");
    assert_eq!(txn.header().unwrap().revision(), 22);

    let check_events = |parts: &[RawWatchResponse], prev_kv: bool| {
        let events: Vec<_> = parts.iter().flat_map(|p| p.events.clone()).collect();
        assert_eq!(events.len(), 20);
        for (i, event) in events.iter().enumerate() {
            let kv = event.kv.as_ref().unwrap();
            assert_eq!(event.r#type, 0, "a put");
            assert_eq!(kv.key.as_ref(), keys[i].as_bytes());
            assert_eq!(kv.value.as_ref(), new_value(i).as_bytes());
            assert_eq!(
                (kv.create_revision, kv.mod_revision, kv.version),
                (i as i64 + 2, 22, 2)
            );
            match (&event.prev_kv, prev_kv) {
                (Some(prev), true) => {
                    assert_eq!(prev.key.as_ref(), keys[i].as_bytes());
                    assert_eq!(prev.value.as_ref(), old_value.as_bytes());
                    let revisions = (prev.create_revision, prev.mod_revision, prev.version);
                    assert_eq!(revisions, (i as i64 + 2, i as i64 + 2, 1));
                }
                (None, false) => {}
                (prev, _) => panic!("prev_kv {prev:?} for a watcher with prev_kv={prev_kv}"),
            }
        }
        for part in parts {
            assert_eq!(part.watch_id, 0);
            assert_eq!(part.header.as_ref().unwrap().revision, 22);
        }
    };

    // fragment + prev_kv: several parts, all but the last marked; etcd's greedy split (each
    // part under the limit unless it holds one event, and the next event would not have fit).
    let parts = raw_revision(&mut streams[0].1).await;
    assert!(parts.len() >= 2, "{} parts", parts.len());
    check_events(&parts, true);
    for (n, part) in parts.iter().enumerate() {
        assert_eq!(part.fragment, n + 1 < parts.len());
        assert!(
            part.events.len() == 1 || part.encoded_len() < MAX_REQUEST_BYTES,
            "part {n}"
        );
        if let Some(next) = parts.get(n + 1) {
            let mut grown = part.clone();
            grown.events.push(next.events[0].clone());
            assert!(
                grown.encoded_len() >= MAX_REQUEST_BYTES,
                "part {n} could have held more"
            );
        }
    }
    assert_eq!(
        parts.len(),
        4,
        "6 events of ~1.45 KB fit under 10,000 bytes"
    );

    // prev_kv without fragment: one response, over the limit.
    let parts = raw_revision(&mut streams[1].1).await;
    assert_eq!(parts.len(), 1);
    assert!(parts[0].encoded_len() > MAX_REQUEST_BYTES);
    check_events(&parts, true);

    // fragment without prev_kv: under the limit, so one response.
    let parts = raw_revision(&mut streams[2].1).await;
    assert_eq!(parts.len(), 1);
    assert!(parts[0].encoded_len() < MAX_REQUEST_BYTES);
    check_events(&parts, false);
}

// ---------------------------------------------------------------------------------------------
// 9. Filters, prev_kv, IDs, refusals, future start revisions
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_prev_kv_follow_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    let prefix = || WatchOptions::new().with_prefix();
    let mut stream = client
        .watch("f/", Some(prefix().with_filters([WatchFilterType::NoPut])))
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 0, 1);
    stream
        .watch(
            "f/",
            Some(prefix().with_filters([WatchFilterType::NoDelete])),
        )
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 1, 1);
    stream
        .watch("f/", Some(prefix().with_prev_key()))
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 2, 1);

    assert_eq!(put(&mut client, "f/a", "1").await, 2);
    assert_eq!(put(&mut client, "f/a", "2").await, 3);
    assert_eq!(delete(&mut client, "f/a").await, 4);
    assert_eq!(put(&mut client, "f/a", "3").await, 5);
    assert_eq!(put(&mut client, "f/z", "1").await, 6);
    // The sentinel: only the NOPUT watcher sees it, and it comes last.
    assert_eq!(delete(&mut client, "f/z").await, 7);

    let mut seen: [Vec<(Ev, Option<Ev>)>; 3] = Default::default();
    loop {
        let response = recv(&mut stream).await;
        let watch_id = usize::try_from(response.watch_id()).unwrap();
        assert!(watch_id < 3, "{response:?}");
        // Filtered-out events make no (empty) response.
        let events = events_of(&response);
        assert_eq!(header_revision(&response), events[0].mod_revision);
        for (event, raw) in events.iter().zip(response.events()) {
            seen[watch_id].push((event.clone(), prev_of(raw)));
        }
        if watch_id == 0 && events.last().unwrap().mod_revision == 7 {
            break;
        }
    }
    let without_prev = |events: &[(Ev, Option<Ev>)]| -> Vec<Ev> {
        events
            .iter()
            .map(|(event, prev)| {
                assert!(
                    prev.is_none(),
                    "prev_kv for a watcher that did not ask: {prev:?}"
                );
                event.clone()
            })
            .collect()
    };
    assert_same_events(
        &without_prev(&seen[0]),
        &[del_ev("f/a", 4), del_ev("f/z", 7)],
        "NOPUT",
    );
    assert_same_events(
        &without_prev(&seen[1]),
        &[
            put_ev("f/a", "1", 2, 2, 1),
            put_ev("f/a", "2", 2, 3, 2),
            put_ev("f/a", "3", 5, 5, 1),
            put_ev("f/z", "1", 6, 6, 1),
        ],
        "NODELETE",
    );
    // prev_kv: absent on creation (also a creation after a delete), the replaced kv otherwise.
    assert_eq!(
        seen[2][..4].to_vec(),
        vec![
            (put_ev("f/a", "1", 2, 2, 1), None),
            (
                put_ev("f/a", "2", 2, 3, 2),
                Some(put_ev("f/a", "1", 2, 2, 1))
            ),
            (del_ev("f/a", 4), Some(put_ev("f/a", "2", 2, 3, 2))),
            (put_ev("f/a", "3", 5, 5, 1), None),
        ]
    );
    // Its f/z events may or may not have arrived before the sentinel of watcher 0 (same
    // revision order, but read until watcher 0's last event only).
    let rest: Vec<_> = seen[2][4..].to_vec();
    let expected_rest = [
        (put_ev("f/z", "1", 6, 6, 1), None),
        (del_ev("f/z", 7), Some(put_ev("f/z", "1", 6, 6, 1))),
    ];
    assert_eq!(rest[..], expected_rest[..rest.len()]);

    // prev_kv on history replayed from the start.
    let mut replay = client
        .watch(
            "f/a",
            Some(WatchOptions::new().with_start_revision(1).with_prev_key()),
        )
        .await
        .unwrap();
    assert_created(&recv(&mut replay).await, 0, 7);
    let mut replayed = Vec::new();
    while replayed.len() < 4 {
        let response = recv(&mut replay).await;
        events_of(&response);
        replayed.extend(response.events().iter().map(|e| (ev(e), prev_of(e))));
    }
    assert_eq!(replayed, seen[2][..4].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_chosen_ids_duplicates_and_empty_ranges_follow_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    let mut stream = client
        .watch("i/a", Some(WatchOptions::new().with_watch_id(100)))
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 100, 1);
    stream
        .watch("i/b", Some(WatchOptions::new().with_watch_id(100)))
        .await
        .unwrap();
    assert_refused(
        &recv(&mut stream).await,
        "mvcc: duplicate watch ID provided on the WatchStream",
    );
    stream.watch("i/c", None).await.unwrap();
    assert_created(&recv(&mut stream).await, 0, 1);
    stream
        .watch("i/d", Some(WatchOptions::new().with_watch_id(1)))
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 1, 1);
    // The stream's next ID skips the ones clients took.
    stream.watch("i/e", None).await.unwrap();
    assert_created(&recv(&mut stream).await, 2, 1);

    // key >= range_end: refused, and no ID is used up.
    stream
        .watch("i/y", Some(WatchOptions::new().with_range("i/x")))
        .await
        .unwrap();
    assert_refused(&recv(&mut stream).await, "mvcc: watcher range is empty");
    stream
        .watch("i/x", Some(WatchOptions::new().with_range("i/x")))
        .await
        .unwrap();
    assert_refused(&recv(&mut stream).await, "mvcc: watcher range is empty");
    stream.watch("i/f", None).await.unwrap();
    assert_created(&recv(&mut stream).await, 3, 1);

    // Refused watchers do not exist: i/b's and i/x's puts reach nobody; i/a's reaches 100.
    assert_eq!(put(&mut client, "i/b", "1").await, 2);
    assert_eq!(put(&mut client, "i/x", "1").await, 3);
    assert_eq!(put(&mut client, "i/a", "1").await, 4);
    let response = recv(&mut stream).await;
    assert_eq!(response.watch_id(), 100, "{response:?}");
    assert_eq!(events_of(&response), vec![put_ev("i/a", "1", 4, 4, 1)]);

    // Another stream may use the same ID.
    let mut other = client
        .watch("i/b", Some(WatchOptions::new().with_watch_id(100)))
        .await
        .unwrap();
    assert_created(&recv(&mut other).await, 100, 4);
    assert_eq!(put(&mut client, "i/b", "2").await, 5);
    let response = recv(&mut other).await;
    assert_eq!(response.watch_id(), 100);
    assert_eq!(events_of(&response), vec![put_ev("i/b", "2", 2, 5, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_start_revision_waits_for_that_revision() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    assert_eq!(put(&mut client, "x", "1").await, 2);
    let mut stream = client
        .watch("fut", Some(WatchOptions::new().with_start_revision(5)))
        .await
        .unwrap();
    assert_created(&recv(&mut stream).await, 0, 2);
    assert_eq!(put(&mut client, "fut", "1").await, 3);
    assert_eq!(put(&mut client, "fut", "2").await, 4);
    assert_eq!(put(&mut client, "fut", "3").await, 5);
    assert_eq!(put(&mut client, "fut", "4").await, 6);
    let response = recv(&mut stream).await;
    assert_eq!(response.watch_id(), 0);
    assert_eq!(events_of(&response), vec![put_ev("fut", "3", 3, 5, 3)]);
    assert_eq!(header_revision(&response), 5);
    let response = recv(&mut stream).await;
    assert_eq!(events_of(&response), vec![put_ev("fut", "4", 3, 6, 4)]);
    assert_eq!(header_revision(&response), 6);
}
