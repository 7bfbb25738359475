//! Transactions: nested txns, every `Compare.target_union` variant and every
//! `RequestOp` / `ResponseOp` variant survive an encode/decode round trip,
//! and oneof members are written even when they hold a default value.

use bytes::Bytes;
use prost::Message;
use stead_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
    compare::{CompareResult, CompareTarget, TargetUnion},
    range_request::{SortOrder, SortTarget},
    request_op::Request,
    response_op::Response,
};
use stead_proto::mvccpb::KeyValue;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn cmp(target: CompareTarget, result: CompareResult, union: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: b("k"),
        range_end: Bytes::new(),
        target_union: Some(union),
    }
}

fn all_compares() -> Vec<Compare> {
    vec![
        cmp(
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(0),
        ),
        cmp(
            CompareTarget::Create,
            CompareResult::Greater,
            TargetUnion::CreateRevision(5),
        ),
        cmp(
            CompareTarget::Mod,
            CompareResult::Less,
            TargetUnion::ModRevision(7),
        ),
        cmp(
            CompareTarget::Value,
            CompareResult::NotEqual,
            TargetUnion::Value(b("v")),
        ),
        Compare {
            range_end: b("l"),
            ..cmp(
                CompareTarget::Lease,
                CompareResult::Equal,
                TargetUnion::Lease(-1),
            )
        },
    ]
}

fn op(request: Request) -> RequestOp {
    RequestOp {
        request: Some(request),
    }
}

fn nested_txn() -> TxnRequest {
    let inner = TxnRequest {
        compare: vec![cmp(
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value(Bytes::new()),
        )],
        success: vec![op(Request::RequestPut(PutRequest {
            key: b("inner"),
            value: b("x"),
            ..Default::default()
        }))],
        failure: vec![],
    };
    TxnRequest {
        compare: all_compares(),
        success: vec![
            op(Request::RequestRange(RangeRequest {
                key: b("a"),
                range_end: b("b"),
                limit: 10,
                sort_order: SortOrder::Descend as i32,
                sort_target: SortTarget::Mod as i32,
                keys_only: true,
                ..Default::default()
            })),
            op(Request::RequestPut(PutRequest {
                key: b("k"),
                value: b("v"),
                lease: 42,
                prev_kv: true,
                ..Default::default()
            })),
            op(Request::RequestDeleteRange(DeleteRangeRequest {
                key: b("\0"),
                range_end: b("\0"),
                prev_kv: true,
            })),
            op(Request::RequestTxn(inner)),
        ],
        failure: vec![op(Request::RequestRange(RangeRequest {
            key: b("k"),
            ..Default::default()
        }))],
    }
}

#[test]
fn nested_txn_request_round_trips() {
    let txn = nested_txn();
    let wire = txn.encode_to_vec();
    let back = TxnRequest::decode(wire.as_slice()).unwrap();
    assert_eq!(back, txn);
    assert_eq!(back.encode_to_vec(), wire);

    // Spot-check the decoded shape, so an encoder/decoder pair that agreed on
    // a wrong layout would still be caught by the byte tests below.
    assert_eq!(back.compare.len(), 5);
    let Some(Request::RequestTxn(inner)) = &back.success[3].request else {
        panic!("4th success op is not a txn");
    };
    let Some(Request::RequestPut(put)) = &inner.success[0].request else {
        panic!("inner op is not a put");
    };
    assert_eq!(put.key, b("inner"));
}

#[test]
fn txn_response_round_trips() {
    let kv = KeyValue {
        key: b("k"),
        value: b("v"),
        create_revision: 1,
        mod_revision: 2,
        version: 1,
        lease: 0,
    };
    let header = Some(ResponseHeader {
        cluster_id: 1,
        member_id: 2,
        revision: 3,
        raft_term: 4,
    });
    let resp = TxnResponse {
        header,
        succeeded: true,
        responses: vec![
            ResponseOp {
                response: Some(Response::ResponseRange(RangeResponse {
                    header,
                    kvs: vec![kv.clone()],
                    more: true,
                    count: 9,
                })),
            },
            ResponseOp {
                response: Some(Response::ResponsePut(PutResponse {
                    header,
                    prev_kv: Some(kv.clone()),
                })),
            },
            ResponseOp {
                response: Some(Response::ResponseDeleteRange(DeleteRangeResponse {
                    header,
                    deleted: 1,
                    prev_kvs: vec![kv],
                })),
            },
            ResponseOp {
                response: Some(Response::ResponseTxn(TxnResponse {
                    header,
                    succeeded: false,
                    responses: vec![],
                })),
            },
        ],
    };
    let wire = resp.encode_to_vec();
    assert_eq!(TxnResponse::decode(wire.as_slice()).unwrap(), resp);
}

#[test]
fn compare_encodes_like_etcd() {
    // target=VALUE(3), key="k", value="v": field 7, wire type 2.
    let c = Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Value as i32,
        key: b("k"),
        range_end: Bytes::new(),
        target_union: Some(TargetUnion::Value(b("v"))),
    };
    assert_eq!(
        c.encode_to_vec(),
        [0x10, 0x03, 0x1a, 0x01, b'k', 0x3a, 0x01, b'v']
    );

    // `version == 0` (key absent) is the common etcd guard. The oneof member
    // must be written even though 0 is the default; result and target (both
    // 0) are not.
    let c = cmp(
        CompareTarget::Version,
        CompareResult::Equal,
        TargetUnion::Version(0),
    );
    assert_eq!(c.encode_to_vec(), [0x1a, 0x01, b'k', 0x20, 0x00]);
    assert_eq!(
        Compare::decode(&[0x1a, 0x01, b'k', 0x20, 0x00][..])
            .unwrap()
            .target_union,
        Some(TargetUnion::Version(0))
    );

    // Remaining members: create_revision=5, mod_revision=6, lease=8; range_end=64
    // needs a two-byte tag (64 << 3 | 2 = 0x202 -> 0x82 0x04).
    let tags = |u: TargetUnion| {
        Compare {
            target_union: Some(u),
            ..Default::default()
        }
        .encode_to_vec()
    };
    assert_eq!(tags(TargetUnion::CreateRevision(1)), [0x28, 0x01]);
    assert_eq!(tags(TargetUnion::ModRevision(1)), [0x30, 0x01]);
    assert_eq!(tags(TargetUnion::Lease(1)), [0x40, 0x01]);
    let c = Compare {
        range_end: b("z"),
        ..Default::default()
    };
    assert_eq!(c.encode_to_vec(), [0x82, 0x04, 0x01, b'z']);
}

#[test]
fn request_op_oneof_tags_match_etcd() {
    let first_byte = |r: Request| op(r).encode_to_vec()[0];
    // Empty sub-messages are still written (length 0): tag (n << 3 | 2).
    assert_eq!(first_byte(Request::RequestRange(Default::default())), 0x0a);
    assert_eq!(first_byte(Request::RequestPut(Default::default())), 0x12);
    assert_eq!(
        first_byte(Request::RequestDeleteRange(Default::default())),
        0x1a
    );
    assert_eq!(first_byte(Request::RequestTxn(Default::default())), 0x22);
    assert_eq!(
        op(Request::RequestTxn(Default::default())).encode_to_vec(),
        [0x22, 0x00]
    );
}
