//! Building etcd requests from `get`, `put` and `del` arguments, with
//! etcdctl's argument checks in etcdctl's order (`getGetOp`, `getPutOp`,
//! `getDelOp`) and its client library's range rules (`--prefix` on an empty
//! key means every key; a key of all `0xff` bytes has no prefix end).
//!
//! Used both by the top-level commands and by the request lines of `txn`.
//! Nothing here talks to the server.

use std::io::Read;

use bytes::Bytes;
use stead_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, range_request::SortOrder,
    range_request::SortTarget,
};

use crate::error::CtlError;
use crate::flags::FlagSet;
use crate::gofmt;

/// The range end that selects every key with `key` as prefix (clientv3's
/// `getPrefix`): the key with its last non-`0xff` byte incremented; `\0`
/// (from-key) when there is none.
pub fn prefix_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return end;
        }
        end.pop();
    }
    vec![0]
}

const PREFIX_AND_FROM_KEY: &str =
    "`--prefix` and `--from-key` cannot be set at the same time, choose one";
/// etcdctl 3.5's refusal of `--keys-only` with `--count-only`.
const KEYS_AND_COUNT_ONLY: &str =
    "`--keys-only` and `--count-only` cannot be set at the same time, choose one";
const TOO_MANY_WITH_RANGE: &str =
    "too many arguments, only accept one argument when `--prefix` or `--from-key` is set";

/// etcdctl's `getGetOp`.
pub fn range_request(args: &[String], flags: &FlagSet) -> Result<RangeRequest, CtlError> {
    if args.is_empty() {
        return Err(CtlError::BadArgs(
            "get command needs one argument as key and an optional argument as range_end"
                .to_string(),
        ));
    }
    let prefix = flags.bool("prefix");
    let from_key = flags.bool("from-key");
    if prefix && from_key {
        return Err(CtlError::BadArgs(PREFIX_AND_FROM_KEY.to_string()));
    }
    if flags.bool("keys-only") && flags.bool("count-only") {
        return Err(CtlError::BadArgs(KEYS_AND_COUNT_ONLY.to_string()));
    }
    let mut request = RangeRequest::default();
    let consistency = flags.string("consistency");
    match consistency.as_str() {
        "s" => request.serializable = true,
        "l" => {}
        other => {
            return Err(CtlError::BadFeature(format!(
                "unknown consistency flag {}",
                gofmt::quote(other)
            )));
        }
    }
    let mut key = args[0].as_bytes().to_vec();
    if args.len() > 1 {
        if prefix || from_key {
            return Err(CtlError::BadArgs(TOO_MANY_WITH_RANGE.to_string()));
        }
        request.range_end = Bytes::from(args[1].clone().into_bytes());
    }
    request.limit = flags.int("limit");
    let revision = flags.int("rev");
    if revision > 0 {
        request.revision = revision;
    }
    let order_flag = flags.string("order");
    let mut order = match order_flag.to_uppercase().as_str() {
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        "" => SortOrder::None,
        _ => {
            return Err(CtlError::BadFeature(format!("bad sort order {order_flag}")));
        }
    };
    let target_flag = flags.string("sort-by");
    let target = match target_flag.to_uppercase().as_str() {
        "CREATE" => SortTarget::Create,
        "KEY" | "" => SortTarget::Key,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        _ => {
            return Err(CtlError::BadFeature(format!(
                "bad sort target {target_flag}"
            )));
        }
    };
    // clientv3: keys already come sorted ascending, so that order is no
    // order at all (and spares the server a full sort).
    if target == SortTarget::Key && order == SortOrder::Ascend {
        order = SortOrder::None;
    }
    request.sort_order = order as i32;
    request.sort_target = target as i32;
    if prefix {
        if key.is_empty() {
            key = vec![0];
            request.range_end = Bytes::from_static(b"\0");
        } else {
            request.range_end = Bytes::from(prefix_end(&key));
        }
    }
    if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        request.range_end = Bytes::from_static(b"\0");
    }
    request.keys_only = flags.bool("keys-only");
    request.count_only = flags.bool("count-only");
    request.key = Bytes::from(key);
    Ok(request)
}

const PUT_NEEDS_ARGS: &str = "put command needs 1 argument and input from stdin or 2 arguments";

/// etcdctl's `getPutOp`; reads the value from `stdin` when it is not an
/// argument.
pub fn put_request(
    args: &[String],
    flags: &FlagSet,
    stdin: &mut dyn Read,
) -> Result<PutRequest, CtlError> {
    if args.is_empty() {
        return Err(CtlError::BadArgs(PUT_NEEDS_ARGS.to_string()));
    }
    let ignore_value = flags.bool("ignore-value");
    if ignore_value && args.len() > 1 {
        return Err(CtlError::BadArgs(
            "put command needs only 1 argument when 'ignore-value' is set".to_string(),
        ));
    }
    let mut value = Vec::new();
    if !ignore_value {
        if let Some(arg) = args.get(1) {
            value = arg.clone().into_bytes();
        } else {
            let read = stdin.read_to_end(&mut value);
            if read.is_err() || value.is_empty() {
                return Err(CtlError::BadArgs(PUT_NEEDS_ARGS.to_string()));
            }
        }
    }
    let lease = gofmt::parse_int(&flags.string("lease"), 16)
        .map_err(|e| CtlError::BadArgs(format!("bad lease ID ({e}), expecting ID in Hex")))?;
    Ok(PutRequest {
        key: Bytes::from(args[0].clone().into_bytes()),
        value: Bytes::from(value),
        lease,
        prev_kv: flags.bool("prev-kv"),
        ignore_value,
        ignore_lease: flags.bool("ignore-lease"),
    })
}

/// etcdctl's `getDelOp`.
pub fn delete_request(args: &[String], flags: &FlagSet) -> Result<DeleteRangeRequest, CtlError> {
    if args.is_empty() || args.len() > 2 {
        return Err(CtlError::BadArgs(
            "del command needs one argument as key and an optional argument as range_end"
                .to_string(),
        ));
    }
    let prefix = flags.bool("prefix");
    let from_key = flags.bool("from-key");
    if prefix && from_key {
        return Err(CtlError::BadArgs(PREFIX_AND_FROM_KEY.to_string()));
    }
    let mut request = DeleteRangeRequest::default();
    let mut key = args[0].as_bytes().to_vec();
    if args.len() > 1 {
        if prefix || from_key {
            return Err(CtlError::BadArgs(TOO_MANY_WITH_RANGE.to_string()));
        }
        request.range_end = Bytes::from(args[1].clone().into_bytes());
    }
    if prefix {
        if key.is_empty() {
            key = vec![0];
            request.range_end = Bytes::from_static(b"\0");
        } else {
            request.range_end = Bytes::from(prefix_end(&key));
        }
    }
    request.prev_kv = flags.bool("prev-kv");
    if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        request.range_end = Bytes::from_static(b"\0");
    }
    request.key = Bytes::from(key);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree;

    fn flags(spec: Vec<crate::flags::FlagSpec>, args: &[&str]) -> (FlagSet, Vec<String>) {
        let mut set = FlagSet::new(spec);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let rest = set.parse(&args).unwrap();
        (set, rest)
    }

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"foo"), b"fop");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }

    #[test]
    fn get_builds_prefix_and_sort() {
        let (set, rest) = flags(
            tree::get_flags(),
            &[
                "--prefix",
                "foo",
                "--sort-by=value",
                "--order",
                "descend",
                "--rev",
                "7",
                "--limit",
                "2",
            ],
        );
        let req = range_request(&rest, &set).unwrap();
        assert_eq!(&req.key[..], b"foo");
        assert_eq!(&req.range_end[..], b"fop");
        assert_eq!(req.sort_target, SortTarget::Value as i32);
        assert_eq!(req.sort_order, SortOrder::Descend as i32);
        assert_eq!(req.revision, 7);
        assert_eq!(req.limit, 2);
    }

    #[test]
    fn get_empty_prefix_means_every_key() {
        let (set, rest) = flags(tree::get_flags(), &["--prefix", ""]);
        let req = range_request(&rest, &set).unwrap();
        assert_eq!(&req.key[..], b"\0");
        assert_eq!(&req.range_end[..], b"\0");
    }

    #[test]
    fn get_key_ascend_is_no_order() {
        let (set, rest) = flags(tree::get_flags(), &["--order=ASCEND", "a"]);
        let req = range_request(&rest, &set).unwrap();
        assert_eq!(req.sort_order, SortOrder::None as i32);
    }

    #[test]
    fn get_argument_errors() {
        let (set, _) = flags(tree::get_flags(), &["--prefix", "--from-key"]);
        assert_eq!(
            range_request(&["a".to_string()], &set),
            Err(CtlError::BadArgs(PREFIX_AND_FROM_KEY.to_string()))
        );
        let (set, rest) = flags(tree::get_flags(), &["--consistency", "x", "a"]);
        assert_eq!(
            range_request(&rest, &set),
            Err(CtlError::BadFeature(
                "unknown consistency flag \"x\"".to_string()
            ))
        );
        let (set, rest) = flags(tree::get_flags(), &["--sort-by", "size", "a"]);
        assert_eq!(
            range_request(&rest, &set),
            Err(CtlError::BadFeature("bad sort target size".to_string()))
        );
    }

    #[test]
    fn put_reads_stdin_and_parses_hex_lease() {
        let (set, rest) = flags(tree::put_flags(), &["--lease", "1f", "k"]);
        let mut stdin: &[u8] = b"from stdin\n";
        let req = put_request(&rest, &set, &mut stdin).unwrap();
        assert_eq!(&req.value[..], b"from stdin\n");
        assert_eq!(req.lease, 31);
        let (set, rest) = flags(tree::put_flags(), &["--lease", "zz", "k", "v"]);
        assert_eq!(
            put_request(&rest, &set, &mut &b""[..]),
            Err(CtlError::BadArgs(
                "bad lease ID (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex".to_string()
            ))
        );
        let (set, rest) = flags(tree::put_flags(), &["k"]);
        assert_eq!(
            put_request(&rest, &set, &mut &b""[..]),
            Err(CtlError::BadArgs(PUT_NEEDS_ARGS.to_string()))
        );
    }

    #[test]
    fn del_from_key_and_arity() {
        let (set, rest) = flags(tree::del_flags(), &["--from-key", "b"]);
        let req = delete_request(&rest, &set).unwrap();
        assert_eq!(&req.range_end[..], b"\0");
        let (set, rest) = flags(tree::del_flags(), &["a", "b", "c"]);
        assert!(matches!(
            delete_request(&rest, &set),
            Err(CtlError::BadArgs(_))
        ));
    }
}
