//! The KV API end to end: the real `stead` binary, the `etcd-client` crate, etcd's semantics.

mod common;

use common::{Member, status_of};
use etcd_client::{
    CompactionOptions, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, SortOrder,
    SortTarget, Txn, TxnOp, TxnOpResponse,
};

fn keys(response: &etcd_client::GetResponse) -> Vec<String> {
    response
        .kvs()
        .iter()
        .map(|kv| String::from_utf8(kv.key().to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_gets_and_deletes_follow_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;

    // An empty store is at revision 1; the first write makes revision 2.
    let empty = client.get("missing", None).await.unwrap();
    assert_eq!(empty.kvs().len(), 0);
    assert_eq!(empty.count(), 0);
    let header = empty.header().unwrap();
    assert_eq!(header.revision(), 1);
    assert_ne!(header.cluster_id(), 0);
    assert_ne!(header.member_id(), 0);
    assert!(header.raft_term() >= 2);

    let put = client.put("foo", "bar", None).await.unwrap();
    assert_eq!(put.header().unwrap().revision(), 2);
    assert!(put.prev_key().is_none());
    let put = client
        .put("foo", "baz", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(put.header().unwrap().revision(), 3);
    let prev = put.prev_key().expect("prev kv");
    assert_eq!(prev.value(), b"bar");
    assert_eq!(prev.mod_revision(), 2);

    let got = client.get("foo", None).await.unwrap();
    let kv = &got.kvs()[0];
    assert_eq!(kv.value(), b"baz");
    assert_eq!(kv.create_revision(), 2);
    assert_eq!(kv.mod_revision(), 3);
    assert_eq!(kv.version(), 2);
    assert_eq!(got.header().unwrap().revision(), 3);

    // History: the value at revision 2.
    let old = client
        .get("foo", Some(GetOptions::new().with_revision(2)))
        .await
        .unwrap();
    assert_eq!(old.kvs()[0].value(), b"bar");
    assert_eq!(
        old.header().unwrap().revision(),
        3,
        "the header has the store's revision"
    );

    // ignore_value keeps the value, changes the revision.
    client
        .put("foo", "", Some(PutOptions::new().with_ignore_value()))
        .await
        .unwrap();
    let kv = client.get("foo", None).await.unwrap().kvs()[0].clone();
    assert_eq!(kv.value(), b"baz");
    assert_eq!(kv.version(), 3);

    for key in ["a/1", "a/2", "a/3", "b/1"] {
        client.put(key, key, None).await.unwrap();
    }
    let prefix = client
        .get("a/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(keys(&prefix), ["a/1", "a/2", "a/3"]);
    let limited = client
        .get("a/", Some(GetOptions::new().with_prefix().with_limit(2)))
        .await
        .unwrap();
    assert_eq!(keys(&limited), ["a/1", "a/2"]);
    assert!(limited.more());
    assert_eq!(limited.count(), 3);
    let sorted = client
        .get(
            "a/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Key, SortOrder::Descend),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(&sorted), ["a/3", "a/2", "a/1"]);
    let counted = client
        .get(
            "a/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(counted.count(), 3);
    assert!(counted.kvs().is_empty());
    let keys_only = client
        .get("a/1", Some(GetOptions::new().with_keys_only()))
        .await
        .unwrap();
    assert_eq!(keys_only.kvs()[0].value(), b"");
    let from_key = client
        .get("a/3", Some(GetOptions::new().with_from_key()))
        .await
        .unwrap();
    assert_eq!(keys(&from_key), ["a/3", "b/1", "foo"]);
    let serializable = client
        .get("b/1", Some(GetOptions::new().with_serializable()))
        .await
        .unwrap();
    assert_eq!(serializable.kvs()[0].value(), b"b/1");

    let deleted = client
        .delete(
            "a/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), 3);
    assert_eq!(deleted.prev_kvs().len(), 3);
    let revision_after_delete = deleted.header().unwrap().revision();
    let nothing = client
        .delete("a/", Some(DeleteOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(nothing.deleted(), 0);
    assert_eq!(
        nothing.header().unwrap().revision(),
        revision_after_delete,
        "deleting nothing makes no revision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_compare_and_choose_a_branch() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    client.put("k", "v1", None).await.unwrap();

    let txn = Txn::new()
        .when([Compare::value("k", CompareOp::Equal, "v1")])
        .and_then([TxnOp::put("k", "v2", None), TxnOp::get("k", None)])
        .or_else([TxnOp::put("failed", "yes", None)]);
    let response = client.txn(txn).await.unwrap();
    assert!(response.succeeded());
    assert_eq!(response.header().unwrap().revision(), 3);
    let ops = response.op_responses();
    match &ops[1] {
        TxnOpResponse::Get(get) => assert_eq!(get.kvs()[0].value(), b"v2", "sees its own put"),
        other => panic!("unexpected {other:?}"),
    }

    let txn = Txn::new()
        .when([Compare::version("k", CompareOp::Greater, 5)])
        .and_then([TxnOp::put("never", "x", None)])
        .or_else([TxnOp::get("k", None)]);
    let response = client.txn(txn).await.unwrap();
    assert!(!response.succeeded());
    assert_eq!(
        response.header().unwrap().revision(),
        3,
        "a read-only branch"
    );
    assert!(client.get("never", None).await.unwrap().kvs().is_empty());

    // A compare on a missing key's create revision (= 0) is how locks are taken.
    let txn = Txn::new()
        .when([Compare::create_revision("lock", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("lock", "me", None)]);
    assert!(client.txn(txn.clone()).await.unwrap().succeeded());
    assert!(!client.txn(txn).await.unwrap().succeeded());

    // A nested transaction.
    let nested = Txn::new()
        .when([Compare::value("lock", CompareOp::Equal, "me")])
        .and_then([TxnOp::put("inner", "1", None)]);
    let txn = Txn::new().and_then([TxnOp::txn(nested), TxnOp::put("outer", "1", None)]);
    let response = client.txn(txn).await.unwrap();
    assert!(response.succeeded());
    let inner = client.get("inner", None).await.unwrap();
    let outer = client.get("outer", None).await.unwrap();
    assert_eq!(
        inner.kvs()[0].mod_revision(),
        outer.kvs()[0].mod_revision(),
        "one revision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_removes_history_and_status_reports() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    for i in 0..10 {
        client.put("k", format!("v{i}"), None).await.unwrap();
    }
    let compacted = client
        .compact(6, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();
    assert_eq!(compacted.header().unwrap().revision(), 11);
    let err = client
        .get("k", Some(GetOptions::new().with_revision(5)))
        .await
        .unwrap_err();
    assert_eq!(
        status_of(err),
        (
            tonic::Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted".to_owned()
        )
    );
    let at_compaction = client
        .get("k", Some(GetOptions::new().with_revision(6)))
        .await
        .unwrap();
    assert_eq!(at_compaction.kvs()[0].value(), b"v4");

    let status = client.status().await.unwrap();
    assert_eq!(status.leader(), status.header().unwrap().member_id());
    assert!(status.raft_index() >= status.raft_applied_index());
    assert!(status.raft_applied_index() > 10);
    assert!(status.db_size() > 0);
    assert!(status.errors().is_empty());

    let members = client.member_list().await.unwrap();
    assert_eq!(members.members().len(), 1);
    let me = &members.members()[0];
    assert_eq!(me.name(), "default");
    assert_eq!(me.peer_urls(), [member.peer_url()]);
    assert_eq!(me.client_urls(), [member.client_url()]);
    assert_eq!(me.id(), status.header().unwrap().member_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_linearizable_reads_share_read_index_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut member = Member::start(&dir.path().join("data"), &[]);
    let mut client = member.client().await;
    client.put("k", "v", None).await.unwrap();
    let mut readers = Vec::new();
    for _ in 0..64 {
        let mut client = client.clone();
        readers.push(tokio::spawn(async move {
            for _ in 0..20 {
                let got = client.get("k", None).await.unwrap();
                assert_eq!(got.kvs()[0].value(), b"v");
            }
        }));
    }
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(member.terminate().success());
    let log = member.log();
    let line = log
        .lines()
        .find(|line| line.contains("linearizable reads served"))
        .expect("the shutdown reports read counts");
    let field = |name: &str| -> u64 {
        let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[start..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (reads, rounds) = (field("reads"), field("rounds"));
    eprintln!("{reads} linearizable reads in {rounds} read index rounds");
    assert!(reads >= 64 * 20, "{line}");
    assert!(
        rounds < reads,
        "reads waiting together share a round: {line}"
    );
}
