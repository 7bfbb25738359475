//! The `json` format: what Go's `encoding/json` makes of etcd's
//! gogoproto-generated response structs. Field names and order follow the
//! structs' `json` tags (snake_case for key-value messages, camelCase for
//! status and members); every field is `omitempty` (zero numbers, false,
//! empty strings and lists are left out, an absent header too); 64-bit
//! integers are plain JSON numbers; bytes are standard base64; oneof
//! responses nest as `{"Response":{"ResponseRange":{...}}}`.
//!
//! Lease responses are clientv3's own structs, not the protobuf ones: their
//! header is embedded (its fields inline, `"cluster_id":...` first) and
//! their other fields are never left out (`"ID"`, `"TTL"`, `"Error"`, or
//! the lowercase names of their `json` tags).
//!
//! Only fields etcd 3.4's structs have are printed, whatever else a newer
//! server sends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use stead_proto::etcdserverpb::{
    DeleteRangeResponse, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseTimeToLiveResponse, Member, MemberAddResponse, MemberListResponse,
    MoveLeaderResponse, PutResponse, RangeResponse, ResponseHeader, ResponseOp, StatusResponse,
    TxnResponse, response_op::Response,
};
use stead_proto::mvccpb::{Event, KeyValue};

use super::{ClientWatchResponse, EndpointHealth, EndpointStatus};
use crate::gofmt::json_string;

/// Builds one JSON object, leaving out zero-valued fields.
struct Object {
    text: String,
    empty: bool,
}

impl Object {
    fn new() -> Self {
        Object {
            text: String::from("{"),
            empty: true,
        }
    }

    fn raw(&mut self, name: &str, value: &str) {
        if !self.empty {
            self.text.push(',');
        }
        self.empty = false;
        self.text.push('"');
        self.text.push_str(name);
        self.text.push_str("\":");
        self.text.push_str(value);
    }

    fn int(&mut self, name: &str, value: i64) {
        if value != 0 {
            self.raw(name, &value.to_string());
        }
    }

    fn uint(&mut self, name: &str, value: u64) {
        if value != 0 {
            self.raw(name, &value.to_string());
        }
    }

    fn boolean(&mut self, name: &str, value: bool) {
        if value {
            self.raw(name, "true");
        }
    }

    fn string(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.raw(name, &json_string(value.as_bytes()));
        }
    }

    fn bytes(&mut self, name: &str, value: &[u8]) {
        if !value.is_empty() {
            self.raw(name, &format!("\"{}\"", STANDARD.encode(value)));
        }
    }

    fn strings(&mut self, name: &str, values: &[String]) {
        if !values.is_empty() {
            let items: Vec<String> = values.iter().map(|v| json_string(v.as_bytes())).collect();
            self.raw(name, &format!("[{}]", items.join(",")));
        }
    }

    fn list(&mut self, name: &str, items: Vec<String>) {
        if !items.is_empty() {
            self.raw(name, &format!("[{}]", items.join(",")));
        }
    }

    fn header(&mut self, header: &Option<ResponseHeader>) {
        if let Some(h) = header {
            self.raw("header", &header_json(h));
        }
    }

    fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

impl Object {
    /// The fields of a header embedded in a clientv3 struct (Go promotes
    /// them into the outer object); none for an absent header.
    fn embedded_header(&mut self, header: &Option<ResponseHeader>) {
        if let Some(h) = header {
            self.uint("cluster_id", h.cluster_id);
            self.uint("member_id", h.member_id);
            self.int("revision", h.revision);
            self.uint("raft_term", h.raft_term);
        }
    }
}

fn header_json(h: &ResponseHeader) -> String {
    let mut o = Object::new();
    o.uint("cluster_id", h.cluster_id);
    o.uint("member_id", h.member_id);
    o.int("revision", h.revision);
    o.uint("raft_term", h.raft_term);
    o.finish()
}

fn kv_json(kv: &KeyValue) -> String {
    let mut o = Object::new();
    o.bytes("key", &kv.key);
    o.int("create_revision", kv.create_revision);
    o.int("mod_revision", kv.mod_revision);
    o.int("version", kv.version);
    o.bytes("value", &kv.value);
    o.int("lease", kv.lease);
    o.finish()
}

pub fn range(resp: &RangeResponse) -> String {
    let mut o = Object::new();
    o.header(&resp.header);
    o.list("kvs", resp.kvs.iter().map(kv_json).collect());
    o.boolean("more", resp.more);
    o.int("count", resp.count);
    o.finish()
}

pub fn put(resp: &PutResponse) -> String {
    let mut o = Object::new();
    o.header(&resp.header);
    if let Some(prev) = &resp.prev_kv {
        o.raw("prev_kv", &kv_json(prev));
    }
    o.finish()
}

pub fn delete(resp: &DeleteRangeResponse) -> String {
    let mut o = Object::new();
    o.header(&resp.header);
    o.int("deleted", resp.deleted);
    o.list("prev_kvs", resp.prev_kvs.iter().map(kv_json).collect());
    o.finish()
}

fn response_op(op: &ResponseOp) -> String {
    let inner = match &op.response {
        Some(Response::ResponseRange(r)) => format!("{{\"ResponseRange\":{}}}", range(r)),
        Some(Response::ResponsePut(r)) => format!("{{\"ResponsePut\":{}}}", put(r)),
        Some(Response::ResponseDeleteRange(r)) => {
            format!("{{\"ResponseDeleteRange\":{}}}", delete(r))
        }
        Some(Response::ResponseTxn(r)) => format!("{{\"ResponseTxn\":{}}}", txn(r)),
        None => "null".to_string(),
    };
    format!("{{\"Response\":{inner}}}")
}

pub fn txn(resp: &TxnResponse) -> String {
    let mut o = Object::new();
    o.header(&resp.header);
    o.boolean("succeeded", resp.succeeded);
    o.list(
        "responses",
        resp.responses.iter().map(response_op).collect(),
    );
    o.finish()
}

fn event_json(event: &Event) -> String {
    let mut o = Object::new();
    o.int("type", i64::from(event.r#type));
    if let Some(kv) = &event.kv {
        o.raw("kv", &kv_json(kv));
    }
    if let Some(prev) = &event.prev_kv {
        o.raw("prev_kv", &kv_json(prev));
    }
    o.finish()
}

/// clientv3's `WatchResponse` struct has no `json` tags: its fields keep
/// their Go names and are never left out; the header is a struct (`{}`
/// when empty), not a pointer.
pub fn watch(resp: &ClientWatchResponse) -> String {
    let events = match &resp.events {
        None => "null".to_string(),
        Some(list) => {
            let items: Vec<String> = list.iter().map(event_json).collect();
            format!("[{}]", items.join(","))
        }
    };
    format!(
        "{{\"Header\":{},\"Events\":{events},\"CompactRevision\":{},\"Canceled\":{},\"Created\":{}}}",
        header_json(&resp.header),
        resp.compact_revision,
        resp.canceled,
        resp.created
    )
}

fn member_json(m: &Member) -> String {
    let mut o = Object::new();
    o.uint("ID", m.id);
    o.string("name", &m.name);
    o.strings("peerURLs", &m.peer_ur_ls);
    o.strings("clientURLs", &m.client_ur_ls);
    o.boolean("isLearner", m.is_learner);
    o.finish()
}

pub fn member_list(resp: &MemberListResponse) -> String {
    let mut o = Object::new();
    o.header(&resp.header);
    o.list("members", resp.members.iter().map(member_json).collect());
    o.finish()
}

pub fn member_add(resp: &MemberAddResponse) -> String {
    let mut o = Object::new();
    o.header(&resp.header);
    if let Some(member) = &resp.member {
        o.raw("member", &member_json(member));
    }
    o.list("members", resp.members.iter().map(member_json).collect());
    o.finish()
}

/// A response made of a header and the membership after a change
/// (`member remove`, `update`).
pub fn members_response(header: &Option<ResponseHeader>, members: &[Member]) -> String {
    let mut o = Object::new();
    o.header(header);
    o.list("members", members.iter().map(member_json).collect());
    o.finish()
}

/// `{}` from etcd 3.4, which sends no header with it.
pub fn move_leader(resp: &MoveLeaderResponse) -> String {
    let mut o = Object::new();
    o.header(&resp.header);
    o.finish()
}

fn status_json(s: &StatusResponse) -> String {
    let mut o = Object::new();
    o.header(&s.header);
    o.string("version", &s.version);
    o.int("dbSize", s.db_size);
    o.uint("leader", s.leader);
    o.uint("raftIndex", s.raft_index);
    o.uint("raftTerm", s.raft_term);
    o.uint("raftAppliedIndex", s.raft_applied_index);
    o.strings("errors", &s.errors);
    o.int("dbSizeInUse", s.db_size_in_use);
    o.boolean("isLearner", s.is_learner);
    o.finish()
}

pub fn endpoint_status(list: &[EndpointStatus]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|s| {
            format!(
                "{{\"Endpoint\":{},\"Status\":{}}}",
                json_string(s.endpoint.as_bytes()),
                status_json(&s.status)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

pub fn endpoint_health(list: &[EndpointHealth]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|h| {
            let mut o = Object::new();
            o.raw("endpoint", &json_string(h.endpoint.as_bytes()));
            o.raw("health", if h.health { "true" } else { "false" });
            o.raw("took", &json_string(h.took.as_bytes()));
            o.string("error", &h.error);
            o.finish()
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// clientv3's `LeaseGrantResponse`.
pub fn lease_grant(resp: &LeaseGrantResponse) -> String {
    let mut o = Object::new();
    o.embedded_header(&resp.header);
    o.raw("ID", &resp.id.to_string());
    o.raw("TTL", &resp.ttl.to_string());
    o.raw("Error", &json_string(resp.error.as_bytes()));
    o.finish()
}

/// The protobuf `LeaseRevokeResponse` itself.
pub fn lease_revoke(resp: &LeaseRevokeResponse) -> String {
    let mut o = Object::new();
    o.header(&resp.header);
    o.finish()
}

/// clientv3's `LeaseKeepAliveResponse`.
pub fn lease_keep_alive(resp: &LeaseKeepAliveResponse) -> String {
    let mut o = Object::new();
    o.embedded_header(&resp.header);
    o.raw("ID", &resp.id.to_string());
    o.raw("TTL", &resp.ttl.to_string());
    o.finish()
}

/// clientv3's `LeaseTimeToLiveResponse`: keys are `null` when there are
/// none (a nil slice after decoding), base64 strings otherwise.
pub fn lease_time_to_live(resp: &LeaseTimeToLiveResponse) -> String {
    let mut o = Object::new();
    o.embedded_header(&resp.header);
    o.raw("id", &resp.id.to_string());
    o.raw("ttl", &resp.ttl.to_string());
    o.raw("granted-ttl", &resp.granted_ttl.to_string());
    if resp.keys.is_empty() {
        o.raw("keys", "null");
    } else {
        let keys: Vec<String> = resp
            .keys
            .iter()
            .map(|k| format!("\"{}\"", STANDARD.encode(k)))
            .collect();
        o.raw("keys", &format!("[{}]", keys.join(",")));
    }
    o.finish()
}

/// clientv3's `LeaseLeasesResponse`: the list is always there (`[]` when
/// empty), each lease an object with its `id`.
pub fn lease_leases(resp: &LeaseLeasesResponse) -> String {
    let mut o = Object::new();
    o.embedded_header(&resp.header);
    let leases: Vec<String> = resp
        .leases
        .iter()
        .map(|lease| format!("{{\"id\":{}}}", lease.id))
        .collect();
    o.raw("leases", &format!("[{}]", leases.join(",")));
    o.finish()
}
