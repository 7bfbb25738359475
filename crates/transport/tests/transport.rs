//! End-to-end tests of the peer transport: real transports on 127.0.0.1 listeners, and raw
//! TCP streams speaking (or mangling) the wire format by hand.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use stead_transport::{
    ClusterInfo, ClusterInfoSource, FetchError, SnapshotSource, Transport, TransportConfig,
    TransportEvent, fetch_cluster_info,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A bound on waits that should succeed: reaching it fails the test, nothing is timed.
const WAIT: Duration = Duration::from_secs(10);
const CLUSTER: u64 = 0x1000;

/// A source whose data is a fixed byte string (or an error for snapshots at index 13).
struct BytesSource(Vec<u8>);

impl SnapshotSource for BytesSource {
    fn open(&self, message: &Message) -> io::Result<Box<dyn io::Read + Send>> {
        if message.get_snapshot().get_metadata().get_index() == 13 {
            return Err(io::Error::other("no data for index 13"));
        }
        Ok(Box::new(io::Cursor::new(self.0.clone())))
    }
}

/// A cluster info source that answers a fixed byte string.
struct InfoBytes(Vec<u8>);

impl ClusterInfoSource for InfoBytes {
    fn cluster_info(&self) -> Vec<u8> {
        self.0.clone()
    }
}

struct Member {
    transport: Transport,
    events: mpsc::Receiver<TransportEvent>,
    address: SocketAddr,
    snapshot_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Member {
    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The next event that is not an unreachable report.
    async fn next_event(&mut self) -> TransportEvent {
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .expect("an event in time")
                .expect("the events channel is open");
            if !matches!(event, TransportEvent::Unreachable(_)) {
                return event;
            }
        }
    }

    async fn next_message(&mut self) -> Message {
        match self.next_event().await {
            TransportEvent::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Waits for an event `wanted` accepts, skipping the others.
    async fn wait_for(&mut self, wanted: impl Fn(&TransportEvent) -> bool) -> TransportEvent {
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .expect("the awaited event in time")
                .expect("the events channel is open");
            if wanted(&event) {
                return event;
            }
        }
    }

    /// The events already emitted, without waiting.
    fn drain(&mut self) -> Vec<TransportEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }
}

fn config(local_id: u64, cluster_id: u64, snapshot_dir: &Path) -> TransportConfig {
    let mut config = TransportConfig::new(local_id, cluster_id, snapshot_dir.to_path_buf());
    config.backoff_min = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(200);
    config
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// A free port on 127.0.0.1 with nothing listening on it (yet).
async fn reserve_address() -> SocketAddr {
    let listener = bind().await;
    listener.local_addr().expect("local address")
}

/// Binds `address` again. Retried: a dialer's connection to an ephemeral port with nothing
/// listening can, rarely, connect to itself (TCP simultaneous open) and hold the port until its
/// handshake times out.
async fn rebind(address: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match TcpListener::bind(address).await {
            Ok(listener) => return listener,
            Err(error) if tokio::time::Instant::now() < deadline => {
                eprintln!("rebinding {address}: {error}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("rebind {address}: {error}"),
        }
    }
}

fn start_on(
    listener: TcpListener,
    edit: impl FnOnce(&mut TransportConfig),
    local_id: u64,
    cluster_id: u64,
    source: Arc<dyn SnapshotSource>,
) -> Member {
    let info = Arc::new(InfoBytes(b"no members here".to_vec()));
    start_answering(listener, edit, local_id, cluster_id, source, info)
}

/// [`start_on`], answering cluster info queries from `info`.
fn start_answering(
    listener: TcpListener,
    edit: impl FnOnce(&mut TransportConfig),
    local_id: u64,
    cluster_id: u64,
    source: Arc<dyn SnapshotSource>,
    info: Arc<dyn ClusterInfoSource>,
) -> Member {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot_dir = dir.path().join("snap");
    let mut config = config(local_id, cluster_id, &snapshot_dir);
    edit(&mut config);
    let address = listener.local_addr().expect("local address");
    let (sender, events) = mpsc::channel(64);
    let transport = Transport::start(
        config,
        vec![listener],
        source,
        info,
        sender,
        &tokio::runtime::Handle::current(),
    );
    Member {
        transport,
        events,
        address,
        snapshot_dir,
        _dir: dir,
    }
}

async fn start(local_id: u64, cluster_id: u64) -> Member {
    start_on(
        bind().await,
        |_| {},
        local_id,
        cluster_id,
        Arc::new(BytesSource(Vec::new())),
    )
}

fn append(from: u64, to: u64, index: u64) -> Message {
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgAppend);
    message.set_from(from);
    message.set_to(to);
    message.set_term(1);
    message.set_index(index);
    message
}

fn snapshot_message(from: u64, to: u64, index: u64) -> Message {
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgSnapshot);
    message.set_from(from);
    message.set_to(to);
    message.set_term(3);
    let metadata = message.mut_snapshot().mut_metadata();
    metadata.set_index(index);
    metadata.set_term(3);
    message
}

/// Pseudo-random bytes (xorshift64), the same for the same seed.
fn pseudo_random(length_bytes: usize, mut seed: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(length_bytes + 8);
    while bytes.len() < length_bytes {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        bytes.extend_from_slice(&seed.to_le_bytes());
    }
    bytes.truncate(length_bytes);
    bytes
}

/// The 33-byte handshake, written out by hand from the documented layout.
fn hello(kind: u8, cluster_id: u64, from: u64, to: u64) -> Vec<u8> {
    let mut bytes = b"STEADPR1".to_vec();
    bytes.push(kind);
    bytes.extend_from_slice(&cluster_id.to_be_bytes());
    bytes.extend_from_slice(&from.to_be_bytes());
    bytes.extend_from_slice(&to.to_be_bytes());
    bytes
}

/// Connects, sends `hello`, and reads the answer: the stream, the code and the text.
async fn raw_handshake(address: SocketAddr, hello: &[u8]) -> (TcpStream, u8, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(hello).await.expect("write the handshake");
        let code = stream.read_u8().await.expect("answer code");
        let length_bytes = stream.read_u16().await.expect("answer length");
        let mut text = vec![0u8; usize::from(length_bytes)];
        stream.read_exact(&mut text).await.expect("answer text");
        (stream, code, String::from_utf8(text).expect("utf-8 text"))
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("an answer in time")
}

fn frame(message: &Message) -> Vec<u8> {
    let body = message.write_to_bytes().expect("encode");
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&body);
    bytes
}

/// Reads until the peer closes the connection (EOF or reset); fails if it stays open.
async fn assert_closed_by_peer(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("the listener wrote on a raft stream"),
        Err(_) => panic!("the connection stayed open"),
    }
}

/// Files in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.expect("entry").path()).collect(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(error) => panic!("read {}: {error}", dir.display()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_both_ways_in_order() {
    let mut a = start(1, CLUSTER).await;
    let mut b = start(2, CLUSTER).await;
    a.transport.set_peers(&[(2, vec![b.url()])]);
    b.transport.set_peers(&[(1, vec![a.url()])]);

    for batch in 0..10u64 {
        a.transport
            .send((1..=100).map(|i| append(1, 2, batch * 100 + i)).collect());
        b.transport
            .send((1..=100).map(|i| append(2, 1, batch * 100 + i)).collect());
    }
    for index in 1..=1000 {
        let message = b.next_message().await;
        assert_eq!(message, append(1, 2, index));
    }
    for index in 1..=1000 {
        let message = a.next_message().await;
        assert_eq!(message, append(2, 1, index));
    }
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_comes_up_later_gets_the_queued_messages() {
    let mut a = start(1, CLUSTER).await;
    let b_address = reserve_address().await;
    a.transport
        .set_peers(&[(2, vec![format!("http://{b_address}")])]);

    a.transport.send(vec![append(1, 2, 1)]);
    let event = a
        .wait_for(|event| matches!(event, TransportEvent::Unreachable(_)))
        .await;
    assert_eq!(event, TransportEvent::Unreachable(2));

    let listener = rebind(b_address).await;
    let mut b = start_on(
        listener,
        |_| {},
        2,
        CLUSTER,
        Arc::new(BytesSource(Vec::new())),
    );
    assert_eq!(b.next_message().await, append(1, 2, 1));
    a.transport.send(vec![append(1, 2, 2)]);
    assert_eq!(b.next_message().await, append(1, 2, 2));
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_another_cluster_is_refused() {
    let mut a = start(1, 0xabc).await;
    let mut b = start(2, 0xdef).await;
    a.transport.set_peers(&[(2, vec![b.url()])]);

    // The refusals, as a dialer sees them.
    let (_, code, text) = raw_handshake(b.address, &hello(1, 0xabc, 1, 2)).await;
    assert_eq!(code, 1);
    assert_eq!(text, "request cluster ID mismatch (got abc want def)");
    let (_, code, text) = raw_handshake(b.address, &hello(1, 0xdef, 1, 0x3f)).await;
    assert_eq!(code, 2);
    assert_eq!(text, "request sent to member 3f, but this is member 2");
    let mut bad_magic = hello(1, 0xdef, 1, 2);
    bad_magic[7] = b'9';
    let (_, code, _) = raw_handshake(b.address, &bad_magic).await;
    assert_eq!(code, 4);
    let (_, code, _) = raw_handshake(b.address, &hello(7, 0xdef, 1, 2)).await;
    assert_eq!(code, 4);

    // a keeps dialing (10 ms to 200 ms backoff) and keeps being refused: nothing arrives, and
    // what a queues is reported unreachable because no stream is up.
    for index in 1..=10 {
        a.transport.send(vec![append(1, 2, index)]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.drain();
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.transport.send(vec![append(1, 2, 11)]);
    let event = a
        .wait_for(|event| matches!(event, TransportEvent::Unreachable(_)))
        .await;
    assert_eq!(event, TransportEvent::Unreachable(2));
    assert_eq!(b.drain(), Vec::new());
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_told_so() {
    let mut a = start(1, CLUSTER).await;
    let mut b = start(2, CLUSTER).await;
    a.transport.set_peers(&[(2, vec![b.url()])]);
    b.transport.set_peers(&[(1, vec![a.url()])]);
    a.transport.send(vec![append(1, 2, 1)]);
    assert_eq!(b.next_message().await, append(1, 2, 1));

    // a's stream to b is up; marking a removed closes it, and a's redial is refused.
    b.transport.mark_removed(1);
    let event = a
        .wait_for(|event| matches!(event, TransportEvent::Removed))
        .await;
    assert_eq!(event, TransportEvent::Removed);

    let (_, code, text) = raw_handshake(b.address, &hello(1, CLUSTER, 1, 2)).await;
    assert_eq!(code, 3);
    assert_eq!(
        text,
        "the member has been permanently removed from the cluster"
    );
    // b no longer dials a either: what b sends to a is dropped and reported.
    b.transport.send(vec![append(2, 1, 1)]);
    let event = b
        .wait_for(|event| matches!(event, TransportEvent::Unreachable(_)))
        .await;
    assert_eq!(event, TransportEvent::Unreachable(1));
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_arrives_whole() {
    // 5 MiB and a partial last chunk.
    let payload = pseudo_random(5 * 1024 * 1024 + 123, 0x5eed);
    let mut a = start_on(
        bind().await,
        |_| {},
        1,
        CLUSTER,
        Arc::new(BytesSource(payload.clone())),
    );
    let mut b = start(2, CLUSTER).await;
    a.transport.set_peers(&[(2, vec![b.url()])]);

    let message = snapshot_message(1, 2, 42);
    a.transport.send(vec![message.clone()]);
    assert_eq!(
        a.next_event().await,
        TransportEvent::SnapshotSent { to: 2, ok: true }
    );
    let expected_path = b
        .snapshot_dir
        .join("0000000000000001-000000000000002a.received");
    match b.next_event().await {
        TransportEvent::Snapshot {
            message: received,
            data,
        } => {
            assert_eq!(received, message);
            assert_eq!(received.get_snapshot().get_metadata().get_index(), 42);
            assert_eq!(data, expected_path);
            let stored = std::fs::read(&data).expect("read the received snapshot");
            assert_eq!(stored.len(), payload.len());
            assert!(stored == payload, "the received bytes differ");
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
    // Exactly one snapshot event: the next thing b hears is an ordinary message.
    a.transport.send(vec![append(1, 2, 7)]);
    assert_eq!(b.next_message().await, append(1, 2, 7));
    assert_eq!(files_in(&b.snapshot_dir), vec![expected_path]);
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_snapshot_in_flight_per_peer_and_source_failures_are_reported() {
    let payload = pseudo_random(3 * 1024 * 1024, 7);
    let mut a = start_on(
        bind().await,
        |_| {},
        1,
        CLUSTER,
        Arc::new(BytesSource(payload)),
    );
    let mut b = start(2, CLUSTER).await;
    a.transport.set_peers(&[(2, vec![b.url()])]);

    // The second is refused at once: the first is in flight.
    a.transport
        .send(vec![snapshot_message(1, 2, 20), snapshot_message(1, 2, 21)]);
    assert_eq!(
        a.next_event().await,
        TransportEvent::SnapshotSent { to: 2, ok: false }
    );
    assert_eq!(
        a.next_event().await,
        TransportEvent::SnapshotSent { to: 2, ok: true }
    );
    match b.next_event().await {
        TransportEvent::Snapshot { message, .. } => {
            assert_eq!(message.get_snapshot().get_metadata().get_index(), 20)
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }

    // The source cannot open index 13: the sender reports the failure, the receiver keeps
    // nothing.
    a.transport.send(vec![snapshot_message(1, 2, 13)]);
    assert_eq!(
        a.next_event().await,
        TransportEvent::SnapshotSent { to: 2, ok: false }
    );
    // A snapshot to a member that is not a peer fails at once.
    a.transport.send(vec![snapshot_message(1, 9, 30)]);
    assert_eq!(
        a.next_event().await,
        TransportEvent::SnapshotSent { to: 9, ok: false }
    );
    a.transport.send(vec![append(1, 2, 8)]);
    assert_eq!(b.next_message().await, append(1, 2, 8));
    // The sender reports the failure only after the receiver has answered, and the receiver
    // answers after removing its temporary file: nothing of index 13 is left.
    assert_eq!(
        files_in(&b.snapshot_dir),
        vec![
            b.snapshot_dir
                .join("0000000000000001-0000000000000014.received")
        ]
    );
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_snapshot_is_refused_and_leaves_nothing() {
    let mut b = start(2, CLUSTER).await;
    let data = b"ten bytes!".to_vec();
    let good_crc = crc32c::crc32c(&data);

    // A chunk whose CRC is wrong.
    let (mut stream, code, _) = raw_handshake(b.address, &hello(2, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    let mut bytes = frame(&snapshot_message(1, 2, 7));
    bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&good_crc.wrapping_add(1).to_be_bytes());
    stream.write_all(&bytes).await.expect("write");
    let verdict = tokio::time::timeout(WAIT, stream.read_u8())
        .await
        .expect("a verdict in time")
        .expect("read the verdict");
    assert_eq!(verdict, 1);
    assert_eq!(files_in(&b.snapshot_dir), Vec::<PathBuf>::new());

    // Good chunks, but totals that do not match them.
    let (mut stream, code, _) = raw_handshake(b.address, &hello(2, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    let mut bytes = frame(&snapshot_message(1, 2, 8));
    bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&good_crc.to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes());
    bytes.extend_from_slice(&(data.len() as u64 + 1).to_be_bytes());
    bytes.extend_from_slice(&good_crc.to_be_bytes());
    stream.write_all(&bytes).await.expect("write");
    let verdict = tokio::time::timeout(WAIT, stream.read_u8())
        .await
        .expect("a verdict in time")
        .expect("read the verdict");
    assert_eq!(verdict, 1);
    assert_eq!(files_in(&b.snapshot_dir), Vec::<PathBuf>::new());

    // And the same stream done right is stored: the check above is not vacuous.
    let (mut stream, code, _) = raw_handshake(b.address, &hello(2, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    let mut bytes = frame(&snapshot_message(1, 2, 9));
    bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&good_crc.to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes());
    bytes.extend_from_slice(&(data.len() as u64).to_be_bytes());
    bytes.extend_from_slice(&good_crc.to_be_bytes());
    stream.write_all(&bytes).await.expect("write");
    let verdict = tokio::time::timeout(WAIT, stream.read_u8())
        .await
        .expect("a verdict in time")
        .expect("read the verdict");
    assert_eq!(verdict, 0);
    // No event came from the two failures: the first is the good one.
    match b.next_event().await {
        TransportEvent::Snapshot {
            message,
            data: path,
        } => {
            assert_eq!(message.get_snapshot().get_metadata().get_index(), 9);
            assert_eq!(std::fs::read(path).expect("read"), data);
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_snapshot_exchange_fails_on_both_sides() {
    let idle = |config: &mut TransportConfig| {
        config.snapshot_idle_timeout = Duration::from_millis(200);
    };
    // The receiver: a raw sender that stops after the message frame is answered 1 and leaves
    // nothing behind.
    let b = start_on(
        bind().await,
        idle,
        2,
        CLUSTER,
        Arc::new(BytesSource(Vec::new())),
    );
    let (mut stream, code, _) = raw_handshake(b.address, &hello(2, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    stream
        .write_all(&frame(&snapshot_message(1, 2, 6)))
        .await
        .expect("write");
    let verdict = tokio::time::timeout(WAIT, stream.read_u8())
        .await
        .expect("a verdict in time")
        .expect("read the verdict");
    assert_eq!(verdict, 1);
    assert_eq!(files_in(&b.snapshot_dir), Vec::<PathBuf>::new());
    b.transport.stop().await;

    // The sender: a raw peer that accepts every stream, takes everything and never answers.
    // It reports how many bytes each snapshot stream carried once the sender hangs up.
    let listener = bind().await;
    let address = listener.local_addr().expect("local address");
    let (carried_sender, mut carried) = mpsc::unbounded_channel::<usize>();
    let silent = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let carried_sender = carried_sender.clone();
            tokio::spawn(async move {
                let mut handshake = [0u8; 33];
                stream.read_exact(&mut handshake).await.expect("handshake");
                stream.write_all(&[0, 0, 0]).await.expect("answer");
                let mut sink = vec![0u8; 64 * 1024];
                let mut total_bytes = 0;
                while let Ok(read @ 1..) = stream.read(&mut sink).await {
                    total_bytes += read;
                }
                if handshake[8] == 2 {
                    let _ = carried_sender.send(total_bytes);
                }
            });
        }
    });
    let mut a = start_on(
        bind().await,
        idle,
        1,
        CLUSTER,
        Arc::new(BytesSource(pseudo_random(100_000, 3))),
    );
    a.transport
        .set_peers(&[(2, vec![format!("http://{address}")])]);
    let message = snapshot_message(1, 2, 6);
    a.transport.send(vec![message.clone()]);
    assert_eq!(
        a.next_event().await,
        TransportEvent::SnapshotSent { to: 2, ok: false }
    );
    // Everything was sent (one chunk, the end, the totals): what failed was the wait for the
    // verdict.
    let carried_bytes = tokio::time::timeout(WAIT, carried.recv())
        .await
        .expect("the snapshot stream closed in time")
        .expect("a byte count");
    assert_eq!(
        carried_bytes,
        frame(&message).len() + (4 + 100_000 + 4) + 4 + 8 + 4
    );
    a.transport.stop().await;
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_removes_what_a_crashed_receive_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot_dir = dir.path().to_path_buf();
    // No process has this ID (Linux caps them at 2^22).
    let stale = snapshot_dir.join("0000000000000001-0000000000000005.receiving.999999999.0");
    let received = snapshot_dir.join("0000000000000001-0000000000000004.received");
    let other = snapshot_dir.join("unrelated");
    for path in [&stale, &received, &other] {
        std::fs::write(path, b"x").expect("write");
    }
    let b = start_on(
        bind().await,
        |config| config.snapshot_dir = snapshot_dir.clone(),
        2,
        CLUSTER,
        Arc::new(BytesSource(Vec::new())),
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while stale.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut left = files_in(&snapshot_dir);
    left.sort();
    assert_eq!(left, vec![received, other]);
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_the_raft_stream_and_deliver_nothing() {
    let mut b = start_on(
        bind().await,
        |config| config.frame_bytes_max = 1024,
        2,
        CLUSTER,
        Arc::new(BytesSource(Vec::new())),
    );

    // Over the limit: the connection closes before the body is read.
    let (mut stream, code, _) = raw_handshake(b.address, &hello(1, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    let mut bytes = 2048u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&frame(&append(1, 2, 1))[4..]);
    bytes.resize(4 + 2048, 0);
    // The listener may close before all of it is written.
    let _ = stream.write_all(&bytes).await;
    assert_closed_by_peer(&mut stream).await;

    // Not protobuf.
    let (mut stream, code, _) = raw_handshake(b.address, &hello(1, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    let _ = stream
        .write_all(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff])
        .await;
    assert_closed_by_peer(&mut stream).await;

    // A snapshot has no business on a raft stream.
    let (mut stream, code, _) = raw_handshake(b.address, &hello(1, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    let _ = stream.write_all(&frame(&snapshot_message(1, 2, 5))).await;
    assert_closed_by_peer(&mut stream).await;

    // A good frame on a fresh stream is the first thing b hears.
    let (mut stream, code, _) = raw_handshake(b.address, &hello(1, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    stream
        .write_all(&frame(&append(1, 2, 99)))
        .await
        .expect("write");
    assert_eq!(b.next_message().await, append(1, 2, 99));
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_raft_stream_is_closed_and_an_idle_one_is_kept_alive() {
    let read_timeout = Duration::from_millis(300);
    let short = |config: &mut TransportConfig| config.stream_read_timeout = read_timeout;
    let source = || -> Arc<dyn SnapshotSource> { Arc::new(BytesSource(Vec::new())) };
    let a = start_on(bind().await, short, 1, CLUSTER, source());
    let mut b = start_on(bind().await, short, 2, CLUSTER, source());

    // A dialer that goes quiet after its handshake (as a peer that lost power would) is
    // closed once nothing arrived for the read timeout.
    let (mut silent, code, _) = raw_handshake(b.address, &hello(1, CLUSTER, 1, 2)).await;
    assert_eq!(code, 0);
    assert_closed_by_peer(&mut silent).await;

    // Two members with nothing to say keep their streams up with link heartbeats: the stream
    // dialed before an idle spell of several read timeouts is the one still up after it.
    a.transport.set_peers(&[(2, vec![b.url()])]);
    b.transport.set_peers(&[(1, vec![a.url()])]);
    a.transport.send(vec![append(1, 2, 1)]);
    assert_eq!(b.next_message().await, append(1, 2, 1));
    let idle = read_timeout * 4;
    tokio::time::sleep(idle).await;
    let connected = a.transport.connected_for(2).expect("a's stream to b is up");
    assert!(
        connected >= idle,
        "a's stream to b was redialed during the idle spell: up for {connected:?}"
    );
    // Heartbeats never reach raft: the next thing b hears is a's next message.
    a.transport.send(vec![append(1, 2, 2)]);
    assert_eq!(b.next_message().await, append(1, 2, 2));
    assert_eq!(a.transport.connected_for(3), None, "3 is not a peer");
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_without_blocking() {
    let mut a = start_on(
        bind().await,
        |config| config.peer_queue_max = 16,
        1,
        CLUSTER,
        Arc::new(BytesSource(Vec::new())),
    );
    let b_address = reserve_address().await;
    a.transport
        .set_peers(&[(2, vec![format!("http://{b_address}")])]);

    // From a plain thread, as the raft driver calls it.
    let transport = a.transport.clone();
    let sending = tokio::task::spawn_blocking(move || {
        transport.send((1..=100).map(|index| append(1, 2, index)).collect());
    });
    tokio::time::timeout(WAIT, sending)
        .await
        .expect("send returned in time")
        .expect("send did not panic");
    let event = a
        .wait_for(|event| matches!(event, TransportEvent::Unreachable(_)))
        .await;
    assert_eq!(event, TransportEvent::Unreachable(2));

    // When b comes up it gets the 16 that fit, then what is sent next: the rest were dropped.
    let listener = rebind(b_address).await;
    let mut b = start_on(
        listener,
        |_| {},
        2,
        CLUSTER,
        Arc::new(BytesSource(Vec::new())),
    );
    for index in 1..=16 {
        assert_eq!(b.next_message().await, append(1, 2, index));
    }
    a.transport.send(vec![append(1, 2, 1000)]);
    assert_eq!(b.next_message().await, append(1, 2, 1000));
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_listeners() {
    let b = start(2, CLUSTER).await;
    b.transport.stop().await;
    // The listener is closed: connecting fails, or the connection is closed without an answer.
    if let Ok(mut stream) = TcpStream::connect(b.address).await {
        let _ = stream.write_all(&hello(1, CLUSTER, 1, 2)).await;
        let mut buf = [0u8; 3];
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "got an answer: {read:?}");
    }
    // And the stopped transport ignores what it is asked.
    b.transport.send(vec![append(2, 1, 1)]);
    b.transport
        .set_peers(&[(1, vec!["http://127.0.0.1:1".to_string()])]);
}

/// A member answering cluster info queries with `members`.
async fn start_with_info(
    local_id: u64,
    cluster_id: u64,
    members: Vec<u8>,
    edit: impl FnOnce(&mut TransportConfig),
) -> Member {
    start_answering(
        bind().await,
        edit,
        local_id,
        cluster_id,
        Arc::new(BytesSource(Vec::new())),
        Arc::new(InfoBytes(members)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_fetches_the_cluster_info() {
    let members = pseudo_random(100_000, 0x1eaf);
    let a = start_with_info(1, CLUSTER, members.clone(), |_| {}).await;

    let info = fetch_cluster_info(&[a.url()], WAIT)
        .await
        .expect("cluster info");
    assert_eq!(
        info,
        ClusterInfo {
            cluster_id: CLUSTER,
            members: members.clone(),
        }
    );

    // Empty members are an answer too.
    let b = start_with_info(2, CLUSTER, Vec::new(), |_| {}).await;
    let info = fetch_cluster_info(&[b.url()], WAIT)
        .await
        .expect("cluster info");
    assert_eq!(
        info,
        ClusterInfo {
            cluster_id: CLUSTER,
            members: Vec::new(),
        }
    );

    // A member removed from the cluster, or of another cluster, may ask: nothing is checked.
    a.transport.mark_removed(7);
    let (mut stream, code, text) = raw_handshake(a.address, &hello(3, 0xdead, 7, 0x99)).await;
    assert_eq!((code, text.as_str()), (0, ""));
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the answer and the close in time")
        .expect("read the answer");
    let mut expected = CLUSTER.to_be_bytes().to_vec();
    expected.extend_from_slice(&(members.len() as u32).to_be_bytes());
    expected.extend_from_slice(&members);
    assert!(
        answer == expected,
        "the answer is not the documented layout"
    );

    // The queries left no trace in the events.
    let mut a = a;
    assert_eq!(a.drain(), Vec::new());
    a.transport.stop().await;
    b.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_info_comes_from_the_first_member_that_answers() {
    let a = start_with_info(1, CLUSTER, b"the members".to_vec(), |_| {}).await;
    let closed = format!("http://{}", reserve_address().await);
    let info = fetch_cluster_info(&[closed, a.url()], WAIT)
        .await
        .expect("cluster info from the second URL");
    assert_eq!(
        info,
        ClusterInfo {
            cluster_id: CLUSTER,
            members: b"the members".to_vec(),
        }
    );
    a.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_info_fails_naming_every_url() {
    // Nothing listening; a listener that accepts and never answers; a URL that is not http://;
    // a member whose members are over its frame limit.
    let closed = format!("http://{}", reserve_address().await);
    let silent_listener = bind().await;
    let silent = format!("http://{}", silent_listener.local_addr().expect("address"));
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = silent_listener.accept().await.expect("accept");
            held.push(stream);
        }
    });
    let https = "https://127.0.0.1:2380".to_string();
    let big = start_with_info(1, CLUSTER, vec![7; 2048], |config| {
        config.frame_bytes_max = 1024
    })
    .await;
    let urls = vec![closed.clone(), silent.clone(), https.clone(), big.url()];

    let error = fetch_cluster_info(&urls, Duration::from_millis(300))
        .await
        .expect_err("no URL answers");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot fetch cluster info from any of [{}]: ",
            urls.join(", ")
        )),
        "{text}"
    );
    let FetchError::AllFailed { failures } = &error else {
        panic!("expected every URL to fail: {error:?}");
    };
    let tried: Vec<&str> = failures
        .iter()
        .map(|failure| failure.url.as_str())
        .collect();
    assert_eq!(tried, urls);
    for failure in failures {
        assert!(text.contains(&failure.to_string()), "{text}");
    }
    assert!(
        failures[0].reason.to_lowercase().contains("refused"),
        "{text}"
    );
    assert_eq!(failures[1].reason, "no answer within 300 ms", "{text}");
    assert!(failures[2].reason.contains("only http://"), "{text}");
    assert_eq!(
        failures[3].reason, "the peer closed the connection",
        "{text}"
    );

    let error = fetch_cluster_info(&[], WAIT)
        .await
        .expect_err("no URLs to ask");
    assert_eq!(error, FetchError::NoUrls);
    holder.abort();
    big.transport.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_info_query_with_bad_magic_is_refused() {
    let a = start_with_info(1, CLUSTER, b"the members".to_vec(), |_| {}).await;
    let mut bad_magic = hello(3, 0, 0, 0);
    bad_magic[0] = b'X';
    let (mut stream, code, text) = raw_handshake(a.address, &bad_magic).await;
    assert_eq!(code, 4);
    assert_eq!(text, "bad magic or protocol version (want STEADPR1)");
    // Refused and closed: no cluster info follows.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "got more: {read:?}");
    a.transport.stop().await;
}
