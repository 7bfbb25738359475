//! Printer tests against output captured from etcdctl 3.4.23 for the same
//! responses.

use stead_proto::etcdserverpb::{
    DeleteRangeResponse, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveResponse, Member, MemberAddResponse,
    MemberListResponse, MemberPromoteResponse, MemberRemoveResponse, MemberUpdateResponse,
    MoveLeaderResponse, PutResponse, RangeResponse, ResponseHeader, ResponseOp, StatusResponse,
    TxnResponse, response_op::Response,
};
use stead_proto::mvccpb::{Event, KeyValue};

use super::{ClientWatchResponse, EndpointHealth, EndpointStatus, Printer, lease_id_hex};
use crate::error::CtlError;
use crate::output::Output;

const CLUSTER: u64 = 2037210783374497686;
const MEMBER: u64 = 13195394291058371180;

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: CLUSTER,
        member_id: MEMBER,
        revision,
        raft_term: 2,
    })
}

fn foo_bar() -> KeyValue {
    KeyValue {
        key: bytes::Bytes::from_static(b"foo"),
        create_revision: 2,
        mod_revision: 2,
        version: 1,
        value: bytes::Bytes::from_static(b"bar"),
        lease: 0,
    }
}

fn get_response() -> RangeResponse {
    RangeResponse {
        header: header(2),
        kvs: vec![foo_bar()],
        more: false,
        count: 1,
    }
}

/// Runs `print` against buffers; returns (stdout, stderr).
fn capture(print: impl FnOnce(&mut Output<'_>)) -> (String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    {
        let mut output = Output::new(&mut out, &mut err);
        print(&mut output);
    }
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn simple() -> Printer {
    Printer::Simple {
        hex: false,
        value_only: false,
    }
}

#[test]
fn get_in_every_format() {
    let resp = get_response();
    let (out, _) = capture(|o| simple().get(o, &resp).unwrap());
    assert_eq!(out, "foo\nbar\n");
    let (out, _) = capture(|o| {
        Printer::Simple {
            hex: true,
            value_only: false,
        }
        .get(o, &resp)
        .unwrap()
    });
    assert_eq!(out, "\\x66\\x6f\\x6f\n\\x62\\x61\\x72\n");
    let (out, _) = capture(|o| {
        Printer::Simple {
            hex: false,
            value_only: true,
        }
        .get(o, &resp)
        .unwrap()
    });
    assert_eq!(out, "bar\n");
    let (out, _) = capture(|o| Printer::Json.get(o, &resp).unwrap());
    assert_eq!(
        out,
        "{\"header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":2,\"raft_term\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}],\"count\":1}\n"
    );
    let (out, _) = capture(|o| Printer::Fields.get(o, &resp).unwrap());
    assert_eq!(
        out,
        "\"ClusterID\" : 2037210783374497686\n\"MemberID\" : 13195394291058371180\n\"Revision\" : 2\n\"RaftTerm\" : 2\n\"Key\" : \"foo\"\n\"CreateRevision\" : 2\n\"ModRevision\" : 2\n\"Version\" : 1\n\"Value\" : \"bar\"\n\"Lease\" : 0\n\"More\" : false\n\"Count\" : 1\n"
    );
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut output = Output::new(&mut out, &mut err);
    let failure = Printer::Table.get(&mut output, &resp).unwrap_err();
    assert_eq!(failure.to_string(), "table not supported as output format");
    assert_eq!(failure.exit_code(), 4);
}

#[test]
fn put_and_delete() {
    let put = PutResponse {
        header: header(3),
        prev_kv: Some(foo_bar()),
    };
    let (out, _) = capture(|o| simple().put(o, &put).unwrap());
    assert_eq!(out, "OK\nfoo\nbar\n");
    let (out, _) = capture(|o| Printer::Json.put(o, &put).unwrap());
    assert!(out.ends_with(",\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}}\n"));
    let (out, _) = capture(|o| Printer::Fields.put(o, &put).unwrap());
    assert!(out.contains("\"PrevKey\" : \"foo\"\n\"PrevCreateRevision\" : 2\n"));

    let del = DeleteRangeResponse {
        header: header(4),
        deleted: 1,
        prev_kvs: vec![foo_bar()],
    };
    let (out, _) = capture(|o| simple().del(o, &del).unwrap());
    assert_eq!(out, "1\nfoo\nbar\n");
    let empty = DeleteRangeResponse {
        header: header(4),
        deleted: 0,
        prev_kvs: vec![],
    };
    let (out, _) = capture(|o| Printer::Json.del(o, &empty).unwrap());
    assert_eq!(
        out,
        "{\"header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":4,\"raft_term\":2}}\n"
    );
}

#[test]
fn txn_json_nests_oneofs_like_gogoproto() {
    let nested_header = Some(ResponseHeader {
        revision: 3,
        ..Default::default()
    });
    let resp = TxnResponse {
        header: header(3),
        succeeded: true,
        responses: vec![
            ResponseOp {
                response: Some(Response::ResponseRange(RangeResponse {
                    header: Some(ResponseHeader {
                        revision: 2,
                        ..Default::default()
                    }),
                    kvs: vec![foo_bar()],
                    more: false,
                    count: 1,
                })),
            },
            ResponseOp {
                response: Some(Response::ResponsePut(PutResponse {
                    header: nested_header,
                    prev_kv: None,
                })),
            },
            ResponseOp {
                response: Some(Response::ResponseDeleteRange(DeleteRangeResponse {
                    header: nested_header,
                    deleted: 0,
                    prev_kvs: vec![],
                })),
            },
        ],
    };
    let (out, _) = capture(|o| Printer::Json.txn(o, &resp).unwrap());
    assert_eq!(
        out,
        "{\"header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":3,\"raft_term\":2},\"succeeded\":true,\"responses\":[{\"Response\":{\"ResponseRange\":{\"header\":{\"revision\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}],\"count\":1}}},{\"Response\":{\"ResponsePut\":{\"header\":{\"revision\":3}}}},{\"Response\":{\"ResponseDeleteRange\":{\"header\":{\"revision\":3}}}}]}\n"
    );
    let (out, _) = capture(|o| simple().txn(o, &resp).unwrap());
    assert_eq!(out, "SUCCESS\n\nfoo\nbar\n\nOK\n\n0\n");
    let (out, _) = capture(|o| Printer::Fields.txn(o, &resp).unwrap());
    assert!(out.starts_with("\"ClusterID\" : 2037210783374497686\n\"MemberID\" : 13195394291058371180\n\"Revision\" : 3\n\"RaftTerm\" : 2\n\"Succeeded\" : true\n\"ClusterID\" : 0\n"));
}

fn members() -> MemberListResponse {
    MemberListResponse {
        header: Some(ResponseHeader {
            cluster_id: CLUSTER,
            member_id: MEMBER,
            revision: 0,
            raft_term: 2,
        }),
        members: vec![Member {
            id: MEMBER,
            name: "default".to_string(),
            peer_ur_ls: vec!["http://127.0.0.1:2380".to_string()],
            client_ur_ls: vec!["http://127.0.0.1:23791".to_string()],
            is_learner: false,
        }],
    }
}

#[test]
fn member_list_in_every_format() {
    let resp = members();
    let (out, _) = capture(|o| simple().member_list(o, &resp));
    assert_eq!(
        out,
        "b71f75320dc06a6c, started, default, http://127.0.0.1:2380, http://127.0.0.1:23791, false\n"
    );
    let (out, _) = capture(|o| Printer::Json.member_list(o, &resp));
    assert_eq!(
        out,
        "{\"header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"raft_term\":2},\"members\":[{\"ID\":13195394291058371180,\"name\":\"default\",\"peerURLs\":[\"http://127.0.0.1:2380\"],\"clientURLs\":[\"http://127.0.0.1:23791\"]}]}\n"
    );
    let (out, _) = capture(|o| Printer::Table.member_list(o, &resp));
    assert_eq!(
        out,
        "\
+------------------+---------+---------+-----------------------+------------------------+------------+
|        ID        | STATUS  |  NAME   |      PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+---------+-----------------------+------------------------+------------+
| b71f75320dc06a6c | started | default | http://127.0.0.1:2380 | http://127.0.0.1:23791 |      false |
+------------------+---------+---------+-----------------------+------------------------+------------+
"
    );
    let (out, _) = capture(|o| Printer::Fields.member_list(o, &resp));
    assert_eq!(
        out,
        "\"ClusterID\" : 2037210783374497686\n\"MemberID\" : 13195394291058371180\n\"Revision\" : 0\n\"RaftTerm\" : 2\n\"ID\" : 13195394291058371180\n\"Name\" : \"default\"\n\"PeerURL\" : \"http://127.0.0.1:2380\"\n\"ClientURL\" : \"http://127.0.0.1:23791\"\n\"IsLearner\" : false\n\n"
    );
}

/// A learner etcd gave an ID of fifteen hex digits, as it added it.
const LEARNER: u64 = 0x0e50_5052_cf07_4a1d;

fn learner() -> Member {
    Member {
        id: LEARNER,
        name: String::new(),
        peer_ur_ls: vec!["http://127.0.0.1:2391".to_string()],
        client_ur_ls: Vec::new(),
        is_learner: true,
    }
}

fn membership_header() -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: CLUSTER,
        member_id: MEMBER,
        revision: 0,
        raft_term: 2,
    })
}

#[test]
fn membership_changes_in_every_format() {
    let added = MemberAddResponse {
        header: membership_header(),
        member: Some(learner()),
        members: vec![members().members[0].clone(), learner()],
    };
    let (out, _) = capture(|o| simple().member_add(o, &added).unwrap());
    assert_eq!(
        out,
        "Member  e505052cf074a1d added to cluster 1c45a069f3a1d796\n"
    );
    let (out, _) = capture(|o| Printer::Json.member_add(o, &added).unwrap());
    assert_eq!(
        out,
        "{\"header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"raft_term\":2},\"member\":{\"ID\":1031412631258745373,\"peerURLs\":[\"http://127.0.0.1:2391\"],\"isLearner\":true},\"members\":[{\"ID\":13195394291058371180,\"name\":\"default\",\"peerURLs\":[\"http://127.0.0.1:2380\"],\"clientURLs\":[\"http://127.0.0.1:23791\"]},{\"ID\":1031412631258745373,\"peerURLs\":[\"http://127.0.0.1:2391\"],\"isLearner\":true}]}\n"
    );
    for printer in [Printer::Fields, Printer::Table] {
        let (out, _) = capture(|o| {
            let name = if printer == Printer::Table {
                "table"
            } else {
                "fields"
            };
            assert_eq!(
                printer.member_add(o, &added),
                Err(CtlError::BadFeature(format!(
                    "{name} not supported as output format"
                )))
            );
        });
        assert_eq!(out, "");
    }

    let removed = MemberRemoveResponse {
        header: membership_header(),
        members: members().members,
    };
    let (out, _) = capture(|o| simple().member_remove(o, LEARNER, &removed).unwrap());
    assert_eq!(
        out,
        "Member  e505052cf074a1d removed from cluster 1c45a069f3a1d796\n"
    );
    let (out, _) = capture(|o| Printer::Json.member_remove(o, LEARNER, &removed).unwrap());
    assert_eq!(
        out,
        "{\"header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"raft_term\":2},\"members\":[{\"ID\":13195394291058371180,\"name\":\"default\",\"peerURLs\":[\"http://127.0.0.1:2380\"],\"clientURLs\":[\"http://127.0.0.1:23791\"]}]}\n"
    );
    let updated = MemberUpdateResponse {
        header: membership_header(),
        members: vec![learner()],
    };
    let (out, _) = capture(|o| simple().member_update(o, MEMBER, &updated).unwrap());
    assert_eq!(
        out,
        "Member b71f75320dc06a6c updated in cluster 1c45a069f3a1d796\n"
    );
    assert!(
        Printer::Table
            .member_update(
                &mut Output::new(&mut Vec::new(), &mut Vec::new()),
                MEMBER,
                &updated
            )
            .is_err()
    );

    let promoted = MemberPromoteResponse {
        header: membership_header(),
        members: vec![learner()],
    };
    let (out, _) = capture(|o| simple().member_promote(o, LEARNER, &promoted).unwrap());
    assert_eq!(
        out,
        "Member  e505052cf074a1d promoted in cluster 1c45a069f3a1d796\n"
    );
    for printer in [Printer::Json, Printer::Fields, Printer::Table] {
        let (out, _) = capture(|o| {
            let error = printer.member_promote(o, LEARNER, &promoted).unwrap_err();
            let mut text = Vec::new();
            error.report(&mut text).unwrap();
            assert_eq!(
                String::from_utf8(text).unwrap(),
                "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x78 pc=0xbab2ee]\n\ngoroutine 1 [running]:\n"
            );
            assert_eq!(error.exit_code(), 2);
        });
        assert_eq!(out, "");
    }
}

#[test]
fn leader_moves_in_every_format() {
    let resp = MoveLeaderResponse { header: None };
    let (out, _) = capture(|o| simple().move_leader(o, MEMBER, LEARNER, &resp).unwrap());
    assert_eq!(
        out,
        "Leadership transferred from b71f75320dc06a6c to e505052cf074a1d\n"
    );
    let (out, _) = capture(|o| {
        Printer::Json
            .move_leader(o, MEMBER, LEARNER, &resp)
            .unwrap()
    });
    assert_eq!(out, "{}\n");
    let (out, _) = capture(|o| {
        assert!(
            Printer::Fields
                .move_leader(o, MEMBER, LEARNER, &resp)
                .is_err()
        );
    });
    assert_eq!(out, "");
}

fn status() -> Vec<EndpointStatus> {
    vec![EndpointStatus {
        endpoint: "127.0.0.1:23791".to_string(),
        status: StatusResponse {
            header: header(4),
            version: "3.4.23".to_string(),
            db_size: 20480,
            leader: MEMBER,
            raft_index: 7,
            raft_term: 2,
            raft_applied_index: 7,
            errors: vec![],
            db_size_in_use: 16384,
            is_learner: false,
        },
    }]
}

#[test]
fn endpoint_status_in_every_format() {
    let list = status();
    let (out, _) = capture(|o| simple().endpoint_status(o, &list));
    assert_eq!(
        out,
        "127.0.0.1:23791, b71f75320dc06a6c, 3.4.23, 20 kB, true, false, 2, 7, 7, \n"
    );
    let (out, _) = capture(|o| Printer::Json.endpoint_status(o, &list));
    assert_eq!(
        out,
        "[{\"Endpoint\":\"127.0.0.1:23791\",\"Status\":{\"header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":4,\"raft_term\":2},\"version\":\"3.4.23\",\"dbSize\":20480,\"leader\":13195394291058371180,\"raftIndex\":7,\"raftTerm\":2,\"raftAppliedIndex\":7,\"dbSizeInUse\":16384}}]\n"
    );
    let (out, _) = capture(|o| Printer::Fields.endpoint_status(o, &list));
    assert_eq!(
        out,
        "\"ClusterID\" : 2037210783374497686\n\"MemberID\" : 13195394291058371180\n\"Revision\" : 4\n\"RaftTerm\" : 2\n\"Version\" : \"3.4.23\"\n\"DBSize\" : 20480\n\"Leader\" : 13195394291058371180\n\"IsLearner\" : false\n\"RaftIndex\" : 7\n\"RaftTerm\" : 2\n\"RaftAppliedIndex\" : 7\n\"Errors\" : []\n\"Endpoint\" : \"127.0.0.1:23791\"\n\n"
    );
    let (out, _) = capture(|o| Printer::Table.endpoint_status(o, &list));
    assert_eq!(
        out,
        "\
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
| 127.0.0.1:23791 | b71f75320dc06a6c |  3.4.23 |   20 kB |      true |      false |         2 |          7 |                  7 |        |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
"
    );
}

#[test]
fn endpoint_health_in_every_format() {
    let list = vec![EndpointHealth {
        endpoint: "127.0.0.1:23791".to_string(),
        health: true,
        took: "1.466313ms".to_string(),
        error: String::new(),
    }];
    let (out, err) = capture(|o| simple().endpoint_health(o, &list));
    assert_eq!(out, "");
    assert_eq!(
        err,
        "127.0.0.1:23791 is healthy: successfully committed proposal: took = 1.466313ms\n"
    );
    let (out, _) = capture(|o| Printer::Json.endpoint_health(o, &list));
    assert_eq!(
        out,
        "[{\"endpoint\":\"127.0.0.1:23791\",\"health\":true,\"took\":\"1.466313ms\"}]\n"
    );
    let (out, _) = capture(|o| Printer::Fields.endpoint_health(o, &list));
    assert_eq!(
        out,
        "\"Endpoint\" : \"127.0.0.1:23791\"\n\"Health\" : true\n\"Took\" : 1.466313ms\n\"Error\" : \n\n"
    );
    let unhealthy = vec![EndpointHealth {
        endpoint: "127.0.0.1:1".to_string(),
        health: false,
        took: "1s".to_string(),
        error: "context deadline exceeded".to_string(),
    }];
    let (_, err) = capture(|o| simple().endpoint_health(o, &unhealthy));
    assert_eq!(
        err,
        "127.0.0.1:1 is unhealthy: failed to commit proposal: context deadline exceeded\n"
    );
    let (out, _) = capture(|o| Printer::Json.endpoint_health(o, &unhealthy));
    assert_eq!(
        out,
        "[{\"endpoint\":\"127.0.0.1:1\",\"health\":false,\"took\":\"1s\",\"error\":\"context deadline exceeded\"}]\n"
    );
}

fn watch_response(events: Vec<Event>) -> ClientWatchResponse {
    ClientWatchResponse {
        header: header(4).unwrap_or_default(),
        events: Some(events),
        ..Default::default()
    }
}

#[test]
fn watch_in_every_format() {
    let update = Event {
        r#type: 0,
        kv: Some(KeyValue {
            mod_revision: 3,
            version: 2,
            value: bytes::Bytes::from_static(b"baz"),
            ..foo_bar()
        }),
        prev_kv: Some(foo_bar()),
    };
    let delete = Event {
        r#type: 1,
        kv: Some(KeyValue {
            key: bytes::Bytes::from_static(b"foo"),
            mod_revision: 4,
            ..Default::default()
        }),
        prev_kv: None,
    };
    let resp = watch_response(vec![update, delete]);
    let (out, _) = capture(|o| simple().watch(o, &resp).unwrap());
    assert_eq!(out, "PUT\nfoo\nbar\nfoo\nbaz\nDELETE\nfoo\n\n");
    let (out, _) = capture(|o| Printer::Json.watch(o, &resp).unwrap());
    assert_eq!(
        out,
        "{\"Header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":4,\"raft_term\":2},\"Events\":[{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":3,\"version\":2,\"value\":\"YmF6\"},\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}},{\"type\":1,\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":4}}],\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n"
    );
    let (out, _) = capture(|o| Printer::Fields.watch(o, &resp).unwrap());
    assert!(out.starts_with("\"ClusterID\" : 2037210783374497686\n"));
    assert!(out.contains("\"RaftTerm\" : 2\n\"Type\" : PUT\n\"PrevKey\" : \"foo\"\n"));
    assert!(out.ends_with("\"Type\" : DELETE\n\"Key\" : \"foo\"\n\"CreateRevision\" : 0\n\"ModRevision\" : 4\n\"Version\" : 0\n\"Value\" : \"\"\n\"Lease\" : 0\n"));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut output = Output::new(&mut out, &mut err);
    let failure = Printer::Table.watch(&mut output, &resp).unwrap_err();
    assert_eq!(failure.to_string(), "table not supported as output format");
}

#[test]
fn watch_failures_in_json() {
    // A response the client library makes up when a watch fails: nil events.
    let closed = ClientWatchResponse {
        canceled: true,
        error: Some("mvcc: watcher range is empty".to_string()),
        ..Default::default()
    };
    let (out, _) = capture(|o| Printer::Json.watch(o, &closed).unwrap());
    assert_eq!(
        out,
        "{\"Header\":{},\"Events\":null,\"CompactRevision\":0,\"Canceled\":true,\"Created\":false}\n"
    );
    assert!(!closed.is_progress_notify());
    // The server's answer to a compacted start revision.
    let compacted = ClientWatchResponse {
        header: ResponseHeader {
            revision: 0,
            ..header(0).unwrap_or_default()
        },
        events: Some(Vec::new()),
        compact_revision: 3,
        canceled: true,
        ..Default::default()
    };
    let (out, _) = capture(|o| Printer::Json.watch(o, &compacted).unwrap());
    assert_eq!(
        out,
        "{\"Header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"raft_term\":2},\"Events\":[],\"CompactRevision\":3,\"Canceled\":true,\"Created\":false}\n"
    );
    assert!(watch_response(Vec::new()).is_progress_notify());
}

const LEASE: i64 = 7668682389188114949;

fn lease_header_text(revision: i64) -> String {
    format!(
        "\"ClusterID\" : {CLUSTER}\n\"MemberID\" : {MEMBER}\n\"Revision\" : {revision}\n\"RaftTerm\" : 2\n"
    )
}

fn table_refuses(print: impl FnOnce(&mut Output<'_>) -> Result<(), crate::error::CtlError>) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut output = Output::new(&mut out, &mut err);
    let failure = print(&mut output).unwrap_err();
    assert_eq!(failure.to_string(), "table not supported as output format");
    assert_eq!(failure.exit_code(), 4);
}

#[test]
fn lease_ids_print_as_go_prints_an_int64_with_016x() {
    assert_eq!(lease_id_hex(LEASE), "6a6ca200a6d9fa05");
    assert_eq!(lease_id_hex(0x1234), "0000000000001234");
    assert_eq!(lease_id_hex(-1), "-000000000000001");
    assert_eq!(lease_id_hex(i64::MIN), "-8000000000000000");
}

#[test]
fn lease_grant_revoke_and_keep_alive_in_every_format() {
    let grant = LeaseGrantResponse {
        header: header(1),
        id: LEASE,
        ttl: 2000,
        error: String::new(),
    };
    let (out, _) = capture(|o| simple().lease_grant(o, &grant).unwrap());
    assert_eq!(out, "lease 6a6ca200a6d9fa05 granted with TTL(2000s)\n");
    let (out, _) = capture(|o| Printer::Json.lease_grant(o, &grant).unwrap());
    assert_eq!(
        out,
        "{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":1,\"raft_term\":2,\"ID\":7668682389188114949,\"TTL\":2000,\"Error\":\"\"}\n"
    );
    let (out, _) = capture(|o| Printer::Fields.lease_grant(o, &grant).unwrap());
    assert_eq!(
        out,
        lease_header_text(1) + "\"ID\" : 7668682389188114949\n\"TTL\" : 2000\n"
    );
    table_refuses(|o| Printer::Table.lease_grant(o, &grant));

    let revoke = LeaseRevokeResponse { header: header(3) };
    let (out, _) = capture(|o| simple().lease_revoke(o, LEASE, &revoke).unwrap());
    assert_eq!(out, "lease 6a6ca200a6d9fa05 revoked\n");
    let (out, _) = capture(|o| Printer::Json.lease_revoke(o, LEASE, &revoke).unwrap());
    assert_eq!(
        out,
        "{\"header\":{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":3,\"raft_term\":2}}\n"
    );
    let (out, _) = capture(|o| Printer::Fields.lease_revoke(o, LEASE, &revoke).unwrap());
    assert_eq!(out, lease_header_text(3));
    table_refuses(|o| Printer::Table.lease_revoke(o, LEASE, &revoke));

    let kept = LeaseKeepAliveResponse {
        header: header(3),
        id: LEASE,
        ttl: 1000,
    };
    let (out, _) = capture(|o| simple().lease_keep_alive(o, &kept).unwrap());
    assert_eq!(out, "lease 6a6ca200a6d9fa05 keepalived with TTL(1000)\n");
    let (out, _) = capture(|o| Printer::Json.lease_keep_alive(o, &kept).unwrap());
    assert_eq!(
        out,
        "{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":3,\"raft_term\":2,\"ID\":7668682389188114949,\"TTL\":1000}\n"
    );
    let (out, _) = capture(|o| Printer::Fields.lease_keep_alive(o, &kept).unwrap());
    assert_eq!(
        out,
        lease_header_text(3) + "\"ID\" : 7668682389188114949\n\"TTL\" : 1000\n"
    );
    table_refuses(|o| Printer::Table.lease_keep_alive(o, &kept));
}

#[test]
fn lease_time_to_live_in_every_format() {
    let live = LeaseTimeToLiveResponse {
        header: header(3),
        id: LEASE,
        ttl: 998,
        granted_ttl: 1000,
        keys: vec![
            bytes::Bytes::from_static(b"k1"),
            bytes::Bytes::from_static(b"k 2"),
        ],
    };
    let (out, _) = capture(|o| simple().lease_time_to_live(o, &live, false).unwrap());
    assert_eq!(
        out,
        "lease 6a6ca200a6d9fa05 granted with TTL(1000s), remaining(998s)\n"
    );
    let (out, _) = capture(|o| simple().lease_time_to_live(o, &live, true).unwrap());
    assert_eq!(
        out,
        "lease 6a6ca200a6d9fa05 granted with TTL(1000s), remaining(998s), attached keys([k1 k 2])\n"
    );
    let (out, _) = capture(|o| Printer::Json.lease_time_to_live(o, &live, true).unwrap());
    assert_eq!(
        out,
        "{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":3,\"raft_term\":2,\"id\":7668682389188114949,\"ttl\":998,\"granted-ttl\":1000,\"keys\":[\"azE=\",\"ayAy\"]}\n"
    );
    let (out, _) = capture(|o| Printer::Fields.lease_time_to_live(o, &live, true).unwrap());
    assert_eq!(
        out,
        lease_header_text(3)
            + "\"ID\" : 7668682389188114949\n\"TTL\" : 998\n\"GrantedTTL\" : 1000\n\"Key\" : \"k1\"\n\"Key\" : \"k 2\"\n"
    );
    table_refuses(|o| Printer::Table.lease_time_to_live(o, &live, false));

    // A lease the server does not have.
    let gone = LeaseTimeToLiveResponse {
        header: header(3),
        id: 0x1234,
        ttl: -1,
        granted_ttl: 0,
        keys: Vec::new(),
    };
    let (out, _) = capture(|o| simple().lease_time_to_live(o, &gone, true).unwrap());
    assert_eq!(out, "lease 0000000000001234 already expired\n");
    let (out, _) = capture(|o| Printer::Json.lease_time_to_live(o, &gone, false).unwrap());
    assert_eq!(
        out,
        "{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":3,\"raft_term\":2,\"id\":4660,\"ttl\":-1,\"granted-ttl\":0,\"keys\":null}\n"
    );
}

#[test]
fn lease_list_in_every_format() {
    let leases = LeaseLeasesResponse {
        header: header(1),
        leases: vec![LeaseStatus { id: LEASE }, LeaseStatus { id: LEASE + 2 }],
    };
    let (out, _) = capture(|o| simple().lease_leases(o, &leases).unwrap());
    assert_eq!(out, "found 2 leases\n6a6ca200a6d9fa05\n6a6ca200a6d9fa07\n");
    let (out, _) = capture(|o| Printer::Json.lease_leases(o, &leases).unwrap());
    assert_eq!(
        out,
        "{\"cluster_id\":2037210783374497686,\"member_id\":13195394291058371180,\"revision\":1,\"raft_term\":2,\"leases\":[{\"id\":7668682389188114949},{\"id\":7668682389188114951}]}\n"
    );
    let (out, _) = capture(|o| Printer::Fields.lease_leases(o, &leases).unwrap());
    assert_eq!(
        out,
        lease_header_text(1) + "\"ID\" : 7668682389188114949\n\"ID\" : 7668682389188114951\n"
    );
    table_refuses(|o| Printer::Table.lease_leases(o, &leases));

    let none = LeaseLeasesResponse {
        header: header(6),
        leases: Vec::new(),
    };
    let (out, _) = capture(|o| simple().lease_leases(o, &none).unwrap());
    assert_eq!(out, "found 0 leases\n");
    let (out, _) = capture(|o| Printer::Json.lease_leases(o, &none).unwrap());
    assert!(out.ends_with(",\"raft_term\":2,\"leases\":[]}\n"), "{out}");
}
