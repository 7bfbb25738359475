//! Bad input gets etcd's gRPC status code and message, and changes nothing.

mod common;

use common::{Member, status_of};
use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};
use tonic::Code;

async fn revision(client: &mut Client) -> i64 {
    client
        .get("any", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision()
}

/// Runs `call`, expects `code` and `message`, and checks the store did not move.
async fn refused<T: std::fmt::Debug>(
    client: &mut Client,
    call: impl AsyncFnOnce(&mut Client) -> Result<T, etcd_client::Error>,
    code: Code,
    message: &str,
) {
    let before = revision(client).await;
    let err = call(client).await.expect_err("must be refused");
    assert_eq!(status_of(err), (code, message.to_owned()));
    assert_eq!(
        revision(client).await,
        before,
        "a refused request changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_request_gets_etcds_error() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &["--max-txn-ops", "4"]);
    let mut client = member.client().await;
    client.put("k", "v", None).await.unwrap();
    client.put("k", "v2", None).await.unwrap();

    let empty_key = "etcdserver: key is not provided";
    refused(
        &mut client,
        async |c| c.put("", "v", None).await,
        Code::InvalidArgument,
        empty_key,
    )
    .await;
    refused(
        &mut client,
        async |c| c.get("", None).await,
        Code::InvalidArgument,
        empty_key,
    )
    .await;
    refused(
        &mut client,
        async |c| c.delete("", None).await,
        Code::InvalidArgument,
        empty_key,
    )
    .await;
    refused(
        &mut client,
        async |c| {
            c.txn(Txn::new().when([Compare::value("", CompareOp::Equal, "x")]))
                .await
        },
        Code::InvalidArgument,
        empty_key,
    )
    .await;

    refused(
        &mut client,
        async |c| {
            c.put("k", "v", Some(PutOptions::new().with_ignore_value()))
                .await
        },
        Code::InvalidArgument,
        "etcdserver: value is provided",
    )
    .await;
    refused(
        &mut client,
        async |c| {
            c.put(
                "k",
                "",
                Some(PutOptions::new().with_ignore_lease().with_lease(5)),
            )
            .await
        },
        Code::InvalidArgument,
        "etcdserver: lease is provided",
    )
    .await;
    refused(
        &mut client,
        async |c| {
            c.put("missing", "", Some(PutOptions::new().with_ignore_value()))
                .await
        },
        Code::InvalidArgument,
        "etcdserver: key not found",
    )
    .await;
    refused(
        &mut client,
        async |c| {
            c.put("k", "v", Some(PutOptions::new().with_lease(0x1234)))
                .await
        },
        Code::NotFound,
        "etcdserver: requested lease not found",
    )
    .await;

    // --max-txn-ops 4: five operations in one branch are too many.
    let five: Vec<TxnOp> = (0..5)
        .map(|i| TxnOp::put(format!("t{i}"), "v", None))
        .collect();
    refused(
        &mut client,
        async |c| c.txn(Txn::new().and_then(five)).await,
        Code::InvalidArgument,
        "etcdserver: too many operations in txn request",
    )
    .await;
    let four: Vec<TxnOp> = (0..4)
        .map(|i| TxnOp::put(format!("t{i}"), "v", None))
        .collect();
    assert!(
        client
            .txn(Txn::new().and_then(four))
            .await
            .unwrap()
            .succeeded()
    );
    refused(
        &mut client,
        async |c| {
            c.txn(Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]))
                .await
        },
        Code::InvalidArgument,
        "etcdserver: duplicate key given in txn request",
    )
    .await;

    let current = revision(&mut client).await;
    refused(
        &mut client,
        async |c| {
            c.get("k", Some(GetOptions::new().with_revision(current + 1)))
                .await
        },
        Code::OutOfRange,
        "etcdserver: mvcc: required revision is a future revision",
    )
    .await;
    refused(
        &mut client,
        async |c| c.compact(current + 1, None).await,
        Code::OutOfRange,
        "etcdserver: mvcc: required revision is a future revision",
    )
    .await;
    client.compact(current, None).await.unwrap();
    refused(
        &mut client,
        async |c| {
            c.get("k", Some(GetOptions::new().with_revision(current - 1)))
                .await
        },
        Code::OutOfRange,
        "etcdserver: mvcc: required revision has been compacted",
    )
    .await;
    refused(
        &mut client,
        async |c| c.compact(current, None).await,
        Code::OutOfRange,
        "etcdserver: mvcc: required revision has been compacted",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_max_request_bytes_are_too_large() {
    let dir = tempfile::tempdir().unwrap();
    // The default limit: 1.5 MiB.
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    let just_over = vec![b'x'; 1_572_864];
    refused(
        &mut client,
        async |c| c.put("big", just_over, None).await,
        Code::InvalidArgument,
        "etcdserver: request is too large",
    )
    .await;
    let fits = vec![b'x'; 1_500_000];
    client.put("big", fits, None).await.unwrap();
    // Past the limit plus gRPC's overhead allowance, gRPC itself refuses the message.
    let before = revision(&mut client).await;
    let err = client
        .put("huge", vec![b'x'; 3 * 1024 * 1024], None)
        .await
        .unwrap_err();
    let (code, message) = status_of(err);
    assert_eq!(
        code,
        Code::ResourceExhausted,
        "as grpc-go answers: {message}"
    );
    assert!(
        message.starts_with("grpc: received message larger than max ("),
        "{message}"
    );
    assert_eq!(revision(&mut client).await, before);
    assert!(client.get("huge", None).await.unwrap().kvs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_max_request_bytes_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &["--max-request-bytes", "1024"]);
    let mut client = member.client().await;
    refused(
        &mut client,
        async |c| c.put("k", vec![b'x'; 2048], None).await,
        Code::InvalidArgument,
        "etcdserver: request is too large",
    )
    .await;
    client.put("k", vec![b'x'; 512], None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_backend_quota_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A 1-byte quota: every write would exceed it. etcd checks the quota before anything
    // else about a write.
    let member = Member::start(&dir.path().join("data"), &["--quota-backend-bytes", "1"]);
    let mut client = member.client().await;
    refused(
        &mut client,
        async |c| c.put("k", "v", None).await,
        Code::ResourceExhausted,
        "etcdserver: mvcc: database space exceeded",
    )
    .await;
    refused(
        &mut client,
        async |c| {
            c.txn(Txn::new().and_then([TxnOp::put("k", "v", None)]))
                .await
        },
        Code::ResourceExhausted,
        "etcdserver: mvcc: database space exceeded",
    )
    .await;
    // Reads and deletes still work.
    assert!(client.get("k", None).await.unwrap().kvs().is_empty());
    client.delete("k", None).await.unwrap();
}
