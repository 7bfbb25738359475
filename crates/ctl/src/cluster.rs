//! `member add|remove|update|list|promote` and `move-leader`: etcdctl 3.4's
//! membership and leadership commands (`member_command.go`,
//! `move_leader_command.go`), step by step in its order.
//!
//! - Arguments: checked first, with etcdctl's texts and exit statuses (128);
//!   member IDs are hexadecimal, parsed as Go's `strconv.ParseUint` parses
//!   them. `--peer-urls` is split on commas and checked as etcd's client
//!   library checks it before sending (`gourl`), after the client is set up:
//!   a bad `-w` is reported before a bad URL.
//! - Requests are sent once (no retry), as clientv3 sends them. Server
//!   errors are printed as clientv3 words them, with status 1.
//! - Output: see `printer`. The response is printed whatever the format can
//!   do, after the change is made: `-w fields` and `-w table` report that
//!   they cannot show it (status 4), and etcdctl 3.4 crashes printing
//!   `member promote` in any format but `simple`, which steadctl mimics.
//! - `member add` in the simple format then prints the environment a new
//!   member starts with (`ETCD_NAME`, `ETCD_INITIAL_CLUSTER`, ...), from a
//!   member list served by the member that made the change.
//! - `move-leader` asks each endpoint for its status, in order, until one is
//!   the leader, then asks that one to hand leadership over.

use stead_proto::etcdserverpb::{
    MemberAddRequest, MemberListResponse, MemberUpdateRequest, RangeRequest,
};
use tokio::time::Instant;

use crate::client::Client;
use crate::commands::{Context, block_on, client_from_ctx, command_deadline, finish};
use crate::error::CtlError;
use crate::gofmt;
use crate::gourl;
use crate::output::Output;
use crate::printer::Printer;

/// etcdctl's parse of a member ID argument.
fn member_id_from_arg(arg: &str) -> Result<u64, CtlError> {
    gofmt::parse_uint64(arg, 16)
        .map_err(|e| CtlError::BadArgs(format!("bad member ID arg ({e}), expecting ID in Hex")))
}

/// The one member ID argument of `remove`, `update` and `promote`.
fn member_id(ctx: &Context<'_, '_>) -> Result<u64, CtlError> {
    if ctx.args.len() != 1 {
        return Err(CtlError::BadArgs("member ID is not provided".to_string()));
    }
    member_id_from_arg(&ctx.args[0])
}

/// `--peer-urls`, which must not be empty.
fn peer_urls(ctx: &Context<'_, '_>) -> Result<String, CtlError> {
    let urls = ctx.flags.string("peer-urls");
    if urls.is_empty() {
        return Err(CtlError::BadArgs(
            "member peer urls not provided".to_string(),
        ));
    }
    Ok(urls)
}

/// Go's `strings.Split(s, ",")`.
fn split_urls(urls: &str) -> Vec<String> {
    urls.split(',').map(str::to_string).collect()
}

/// `member list`.
pub fn list(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let deadline = command_deadline(&ctx.flags);
    let (mut client, printer) = client_from_ctx(ctx)?;
    let result = block_on(client.member_list(deadline))?;
    let response = finish(&mut client, ctx.out, result)?;
    printer.member_list(ctx.out, &response);
    Ok(())
}

/// `member add <memberName> --peer-urls=... [--learner]`.
pub fn add(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    if ctx.args.is_empty() {
        return Err(CtlError::BadArgs("member name not provided".to_string()));
    }
    if ctx.args.len() > 1 {
        let mut message = "too many arguments".to_string();
        for arg in &ctx.args {
            if arg.to_lowercase().starts_with("http") {
                message.push_str(&format!(", did you mean --peer-urls={arg}"));
            }
        }
        return Err(CtlError::BadArgs(message));
    }
    let name = ctx.args[0].clone();
    let urls = peer_urls(ctx)?;
    let deadline = command_deadline(&ctx.flags);
    let (mut client, printer) = client_from_ctx(ctx)?;
    let peer_urls = split_urls(&urls);
    gourl::check_urls(&peer_urls).map_err(CtlError::General)?;
    let request = MemberAddRequest {
        peer_ur_ls: peer_urls,
        is_learner: ctx.flags.bool("learner"),
    };
    // One runtime for every request: the client's connection lives in it.
    block_on(async {
        let result = client.member_add(request, deadline).await;
        let response = finish(&mut client, ctx.out, result)?;
        printer.member_add(ctx.out, &response)?;
        if !matches!(printer, Printer::Simple { .. }) {
            return Ok(());
        }
        let new_id = response.member.as_ref().map_or(0, |m| m.id);
        let adder_id = response.header.as_ref().map_or(0, |h| h.member_id);
        let deadline = command_deadline(&ctx.flags);
        let members = members_seen_by(&mut client, ctx.out, adder_id, deadline).await?;
        let mut initial_cluster = Vec::new();
        for member in &members.members {
            let member_name = if member.id == new_id {
                &name
            } else {
                &member.name
            };
            for url in &member.peer_ur_ls {
                initial_cluster.push(format!("{member_name}={url}"));
            }
        }
        ctx.out.out(format!(
            "\nETCD_NAME={}\nETCD_INITIAL_CLUSTER={}\nETCD_INITIAL_ADVERTISE_PEER_URLS={}\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
            gofmt::quote(&name),
            gofmt::quote(&initial_cluster.join(",")),
            gofmt::quote(&urls)
        ));
        Ok(())
    })?
}

/// The member list as the member `member_id` (the one that added a member,
/// and so knows of it) serves it: etcdctl reads through the cluster (a
/// quorum read) until its client reaches that member.
async fn members_seen_by(
    client: &mut Client,
    out: &mut Output<'_>,
    member_id: u64,
    deadline: Instant,
) -> Result<MemberListResponse, CtlError> {
    let mut wanted = member_id;
    loop {
        let result = client.member_list(deadline).await;
        let members = finish(client, out, result)?;
        if members.header.as_ref().map_or(0, |h| h.member_id) == wanted {
            return Ok(members);
        }
        let request = RangeRequest {
            key: bytes::Bytes::from_static(b"_"),
            ..Default::default()
        };
        let result = client.range(request, deadline).await;
        // etcdctl reports the list's error here, which is nil: `<nil>`.
        let read =
            finish(client, out, result).map_err(|_| CtlError::General("<nil>".to_string()))?;
        wanted = read.header.as_ref().map_or(0, |h| h.member_id);
    }
}

/// `member remove <memberID>`.
pub fn remove(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let id = member_id(ctx)?;
    let deadline = command_deadline(&ctx.flags);
    let (mut client, printer) = client_from_ctx(ctx)?;
    let result = block_on(client.member_remove(id, deadline))?;
    let response = finish(&mut client, ctx.out, result)?;
    printer.member_remove(ctx.out, id, &response)
}

/// `member update <memberID> --peer-urls=...`.
pub fn update(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let id = member_id(ctx)?;
    let urls = peer_urls(ctx)?;
    let deadline = command_deadline(&ctx.flags);
    let (mut client, printer) = client_from_ctx(ctx)?;
    let peer_urls = split_urls(&urls);
    gourl::check_urls(&peer_urls).map_err(CtlError::General)?;
    let request = MemberUpdateRequest {
        id,
        peer_ur_ls: peer_urls,
    };
    let result = block_on(client.member_update(request, deadline))?;
    let response = finish(&mut client, ctx.out, result)?;
    printer.member_update(ctx.out, id, &response)
}

/// `member promote <memberID>`.
pub fn promote(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let id = member_id(ctx)?;
    let deadline = command_deadline(&ctx.flags);
    let (mut client, printer) = client_from_ctx(ctx)?;
    let result = block_on(client.member_promote(id, deadline))?;
    let response = finish(&mut client, ctx.out, result)?;
    printer.member_promote(ctx.out, id, &response)
}

/// `move-leader <transferee-member-id>`.
pub fn move_leader(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    if ctx.args.len() != 1 {
        return Err(CtlError::BadArgs(
            "move-leader command needs 1 argument".to_string(),
        ));
    }
    let target = gofmt::parse_uint64(&ctx.args[0], 16).map_err(CtlError::BadArgs)?;
    let (mut client, printer) = client_from_ctx(ctx)?;
    // The client's endpoints, as etcdctl's `Endpoints()` gives them.
    let endpoints: Vec<String> = ctx
        .flags
        .list("endpoints")
        .iter()
        .map(|e| e.trim().to_string())
        .collect();
    // One deadline for the whole search and the transfer.
    let deadline = command_deadline(&ctx.flags);
    let dial_timeout = ctx.flags.duration("dial-timeout").to_std();
    let mut leader = None;
    for endpoint in &endpoints {
        let result = block_on(client.status(endpoint, deadline))?;
        let status = finish(&mut client, ctx.out, result)?;
        let member_id = status.header.as_ref().map_or(0, |h| h.member_id);
        if member_id == status.leader {
            leader = Some((endpoint, status.leader));
            break;
        }
    }
    let Some((leader_endpoint, leader_id)) = leader else {
        return Err(CtlError::BadArgs(format!(
            "no leader endpoint given at [{}]",
            endpoints.join(" ")
        )));
    };
    let mut leader_client = Client::new(std::slice::from_ref(leader_endpoint), dial_timeout)?;
    let result = block_on(leader_client.move_leader(target, deadline))?;
    let response = finish(&mut leader_client, ctx.out, result)?;
    printer.move_leader(ctx.out, leader_id, target, &response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_unsigned_hexadecimal() {
        assert_eq!(
            member_id_from_arg("5b941b0d71c9917e"),
            Ok(0x5b94_1b0d_71c9_917e)
        );
        assert_eq!(
            member_id_from_arg("-1"),
            Err(CtlError::BadArgs(
                "bad member ID arg (strconv.ParseUint: parsing \"-1\": invalid syntax), expecting ID in Hex"
                    .to_string()
            ))
        );
    }

    #[test]
    fn peer_urls_split_like_go() {
        assert_eq!(split_urls("a,,b"), vec!["a", "", "b"]);
        assert_eq!(split_urls("a"), vec!["a"]);
    }
}
