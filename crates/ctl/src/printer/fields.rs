//! The `fields` format (etcdctl's `fieldsPrinter`): one `"Name" : value`
//! line per field, header first; keys, values and names quoted with Go's
//! `%q`, numbers and booleans bare, string lists as Go prints slices
//! (`[a b]`).

use stead_proto::etcdserverpb::{
    DeleteRangeResponse, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseTimeToLiveResponse, MemberListResponse, PutResponse, RangeResponse,
    ResponseHeader, TxnResponse, response_op::Response,
};
use stead_proto::mvccpb::KeyValue;

use super::{ClientWatchResponse, EndpointHealth, EndpointStatus, event_type_name};
use crate::gofmt::{quote, quote_bytes};
use crate::output::Output;

fn kv(out: &mut Output<'_>, prefix: &str, kv: &KeyValue) {
    out.out(format!("\"{prefix}Key\" : {}\n", quote_bytes(&kv.key)));
    out.out(format!(
        "\"{prefix}CreateRevision\" : {}\n",
        kv.create_revision
    ));
    out.out(format!("\"{prefix}ModRevision\" : {}\n", kv.mod_revision));
    out.out(format!("\"{prefix}Version\" : {}\n", kv.version));
    out.out(format!("\"{prefix}Value\" : {}\n", quote_bytes(&kv.value)));
    out.out(format!("\"{prefix}Lease\" : {}\n", kv.lease));
}

fn header(out: &mut Output<'_>, h: &Option<ResponseHeader>) {
    let h = h.unwrap_or_default();
    out.out(format!("\"ClusterID\" : {}\n", h.cluster_id));
    out.out(format!("\"MemberID\" : {}\n", h.member_id));
    out.out(format!("\"Revision\" : {}\n", h.revision));
    out.out(format!("\"RaftTerm\" : {}\n", h.raft_term));
}

/// Go's `fmt.Println` of a `[]string`.
fn go_string_slice(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

pub fn del(out: &mut Output<'_>, resp: &DeleteRangeResponse) {
    header(out, &resp.header);
    out.out(format!("\"Deleted\" : {}\n", resp.deleted));
    for prev in &resp.prev_kvs {
        kv(out, "Prev", prev);
    }
}

pub fn get(out: &mut Output<'_>, resp: &RangeResponse) {
    header(out, &resp.header);
    for item in &resp.kvs {
        kv(out, "", item);
    }
    out.out(format!("\"More\" : {}\n", resp.more));
    out.out(format!("\"Count\" : {}\n", resp.count));
}

pub fn put(out: &mut Output<'_>, resp: &PutResponse) {
    header(out, &resp.header);
    if let Some(prev) = &resp.prev_kv {
        kv(out, "Prev", prev);
    }
}

pub fn txn(out: &mut Output<'_>, resp: &TxnResponse) {
    header(out, &resp.header);
    out.out(format!("\"Succeeded\" : {}\n", resp.succeeded));
    for op in &resp.responses {
        match &op.response {
            Some(Response::ResponseDeleteRange(r)) => del(out, r),
            Some(Response::ResponsePut(r)) => put(out, r),
            Some(Response::ResponseRange(r)) => get(out, r),
            // etcdctl prints Go's %+v of the value here; nested
            // transactions are never produced by etcdctl's own txn syntax.
            Some(Response::ResponseTxn(_)) | None => out.out("\"Unknown\" : \"\"\n"),
        }
    }
}

pub fn watch(out: &mut Output<'_>, resp: &ClientWatchResponse) {
    header(out, &Some(resp.header));
    for event in resp.events() {
        out.out(format!("\"Type\" : {}\n", event_type_name(event.r#type)));
        if let Some(prev) = &event.prev_kv {
            kv(out, "Prev", prev);
        }
        kv(out, "", &event.kv.clone().unwrap_or_default());
    }
}

pub fn member_list(out: &mut Output<'_>, resp: &MemberListResponse) {
    header(out, &resp.header);
    for m in &resp.members {
        out.out(format!("\"ID\" : {}\n", m.id));
        out.out(format!("\"Name\" : {}\n", quote(&m.name)));
        for url in &m.peer_ur_ls {
            out.out(format!("\"PeerURL\" : {}\n", quote(url)));
        }
        for url in &m.client_ur_ls {
            out.out(format!("\"ClientURL\" : {}\n", quote(url)));
        }
        out.out(format!("\"IsLearner\" : {}\n", m.is_learner));
        out.out("\n");
    }
}

pub fn endpoint_health(out: &mut Output<'_>, list: &[EndpointHealth]) {
    for h in list {
        out.out(format!("\"Endpoint\" : {}\n", quote(&h.endpoint)));
        out.out(format!("\"Health\" : {}\n", h.health));
        out.out(format!("\"Took\" : {}\n", h.took));
        out.out(format!("\"Error\" : {}\n", h.error));
        out.out("\n");
    }
}

pub fn endpoint_status(out: &mut Output<'_>, list: &[EndpointStatus]) {
    for s in list {
        let status = &s.status;
        header(out, &status.header);
        out.out(format!("\"Version\" : {}\n", quote(&status.version)));
        out.out(format!("\"DBSize\" : {}\n", status.db_size));
        out.out(format!("\"Leader\" : {}\n", status.leader));
        out.out(format!("\"IsLearner\" : {}\n", status.is_learner));
        out.out(format!("\"RaftIndex\" : {}\n", status.raft_index));
        out.out(format!("\"RaftTerm\" : {}\n", status.raft_term));
        out.out(format!(
            "\"RaftAppliedIndex\" : {}\n",
            status.raft_applied_index
        ));
        out.out(format!(
            "\"Errors\" : {}\n",
            go_string_slice(&status.errors)
        ));
        out.out(format!("\"Endpoint\" : {}\n", quote(&s.endpoint)));
        out.out("\n");
    }
}

pub fn lease_grant(out: &mut Output<'_>, resp: &LeaseGrantResponse) {
    header(out, &resp.header);
    out.out(format!("\"ID\" : {}\n", resp.id));
    out.out(format!("\"TTL\" : {}\n", resp.ttl));
}

pub fn lease_revoke(out: &mut Output<'_>, resp: &LeaseRevokeResponse) {
    header(out, &resp.header);
}

pub fn lease_keep_alive(out: &mut Output<'_>, resp: &LeaseKeepAliveResponse) {
    header(out, &resp.header);
    out.out(format!("\"ID\" : {}\n", resp.id));
    out.out(format!("\"TTL\" : {}\n", resp.ttl));
}

pub fn lease_time_to_live(out: &mut Output<'_>, resp: &LeaseTimeToLiveResponse) {
    header(out, &resp.header);
    out.out(format!("\"ID\" : {}\n", resp.id));
    out.out(format!("\"TTL\" : {}\n", resp.ttl));
    out.out(format!("\"GrantedTTL\" : {}\n", resp.granted_ttl));
    for key in &resp.keys {
        out.out(format!("\"Key\" : {}\n", quote_bytes(key)));
    }
}

pub fn lease_leases(out: &mut Output<'_>, resp: &LeaseLeasesResponse) {
    header(out, &resp.header);
    for lease in &resp.leases {
        out.out(format!("\"ID\" : {}\n", lease.id));
    }
}
