//! `member add|remove|update|list|promote`, `move-leader` and `endpoint status|health --cluster`
//! of steadctl against etcdctl 3.4, byte for byte.
//!
//! The reference is etcdctl talking to etcd 3.4; the candidate runs the same steps against its
//! own servers, which start in the same state. Standard output, standard error and exit status
//! must be equal. Two comparisons:
//!
//! - **One member** (the fixed-identity server of the other compat tests, whose member and
//!   cluster IDs are the same everywhere): usage screens, argument errors, `member list`,
//!   learners added, updated, refused promotion and removed in every format, `move-leader` to the
//!   member itself and to an unknown ID, and last (as it costs the cluster its quorum) a voting
//!   member added. Candidates: steadctl on etcd, and etcdctl and steadctl on stead (without
//!   the updates of a learner: stead keeps it a learner, as etcd does since its fix of
//!   etcd-io/etcd#21694, where etcd 3.4 forgets it).
//! - **Three members** (each side starts its own cluster of real members on the same loopback
//!   ports, one side after the other, so that member and cluster IDs are equal; candidates:
//!   steadctl on etcd, etcdctl and steadctl on stead): `member list`, `endpoint status|health
//!   --cluster`, `move-leader` between members and to an unknown ID, voting members added,
//!   updated and removed in every format, and learners that start, catch up and are promoted.
//!   Each side first makes `m1` the leader.
//!
//! Member IDs of members added by a case depend on the clock (etcd hashes the time into them), so
//! each side keeps a list of member IDs in order of appearance: the initial members, then each
//! member a case marked `reveals` added (found in `member list` after the case). Outputs show them
//! (in hex or decimal) as `<M1>`, `<M2>`, ..., and arguments name them `@M1`, `@M2`, ... Other
//! masks: each side's endpoint address, zap's and capnslog's timestamps, clientv3's random client
//! UUID (as in every comparison); the order of members (etcd sorts them by ID) in every list,
//! table and `ETCD_INITIAL_CLUSTER`; padding inside table cells (a 15-digit ID is padded where a
//! 16-digit one is not; the borders, hence column widths, are still compared); the Go stack trace
//! after a panic's `goroutine 1 [running]:` line. With three members, also raft terms (elections
//! at start may take more than one round) and, per case, `endpoint status`'s database size, raft
//! indexes and `endpoint health`'s duration and order of endpoints (probes run in parallel).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{
    Cluster, EP, MemberPorts, Server, Side, etcdctl_on_etcd, etcdctl_on_stead, mask_after,
    mask_number_after, mask_volatile, normalize_table, steadctl_on_etcd, steadctl_on_stead,
};

/// Prefix of the placeholder for the n-th member ID a side knows (`@M1`).
const MEMBER: &str = "@M";
/// Every member's endpoint, comma-separated (three-member comparison).
const ALL_ENDPOINTS: &str = "@EPS";
/// The second and third member's endpoints.
const ENDPOINT_2: &str = "@E2";
const ENDPOINT_3: &str = "@E3";
/// Peer URLs of the members that join the three-member cluster later.
const JOINER_1_PEER_URL: &str = "@J1P";
const JOINER_2_PEER_URL: &str = "@J2P";

/// Masks a case needs besides the common ones.
#[derive(Debug, Clone, Copy, Default)]
struct Masks {
    /// `endpoint status`: database size, raft term and indexes, server version.
    status: bool,
    /// `endpoint health`: durations and the order of endpoints.
    health: bool,
}

#[derive(Debug)]
struct Case {
    args: Vec<String>,
    env: Vec<(String, String)>,
    masks: Masks,
    /// The case adds a member: number its ID.
    reveals: bool,
}

/// A case with `args` (after `--endpoints=@EP`).
fn case(args: &[&str]) -> Case {
    let mut all = vec![format!("--endpoints={EP}")];
    all.extend(args.iter().map(|s| s.to_string()));
    Case {
        args: all,
        env: Vec::new(),
        masks: Masks::default(),
        reveals: false,
    }
}

/// A case without `--endpoints` (usage screens, other endpoints, environment variables).
fn bare(args: &[&str]) -> Case {
    let mut case = case(args);
    case.args.remove(0);
    case
}

impl Case {
    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn reveals(mut self) -> Self {
        self.reveals = true;
        self
    }

    fn status(mut self) -> Self {
        self.masks.status = true;
        self
    }

    fn health(mut self) -> Self {
        self.masks.health = true;
        self
    }
}

/// One step of a comparison.
#[derive(Debug)]
enum Step {
    /// Run on both sides; outputs compared.
    Run(Case),
    /// Wait until etcd accepts new members (every voting member connected for its health
    /// interval).
    Settle,
    /// Start the member `name` (added by an earlier case with joiner `slot`'s peer URL) and wait
    /// until it has caught up with the leader.
    Join { name: &'static str, slot: usize },
}

impl From<Case> for Step {
    fn from(case: Case) -> Self {
        Step::Run(case)
    }
}

/// Peer URLs `member add` and `member update` refuse before sending (etcd's client checks them).
const BAD_PEER_URLS: &[&str] = &[
    "foo",
    "127.0.0.1:2390",
    "http://127.0.0.1",
    "http://127.0.0.1:2390/x",
    "ftp://a:1",
    "http://a:1,",
    "http://a b:1",
    "http://[::1:1",
    ":foo",
    "http://a:b",
    "http://%zz:1",
    "http://u^v@a:1",
    "http://a:1#%zz",
];

/// Steps against one member, in order: they share the server, whose membership changes from case
/// to case the same way on every side. `@M1` is the server's own member.
fn single_member_steps(unreachable: &str) -> Vec<Step> {
    let mut cases = vec![
        // Usage screens.
        bare(&["member"]),
        bare(&["member", "--help"]),
        bare(&["member", "add", "-h"]),
        bare(&["member", "remove", "-h"]),
        bare(&["member", "update", "-h"]),
        bare(&["member", "promote", "-h"]),
        bare(&["member", "list", "-h"]),
        bare(&["move-leader", "-h"]),
        bare(&["help", "member", "add"]),
        bare(&["help", "member", "promote"]),
        bare(&["help", "move-leader"]),
        bare(&["member", "bogus"]),
        // Argument errors, in etcdctl's order of checks.
        case(&["member", "add"]),
        case(&["member", "add", "x"]),
        case(&["member", "add", "x", "http://127.0.0.1:2391", "y"]),
        case(&["member", "add", "a", "b", "HTTP://y", "--peer-urls=z"]),
        case(&["member", "add", "x", "--peer-urls="]),
        case(&[
            "member",
            "add",
            "x",
            "--peer-urls=http://a:1",
            "--learner=maybe",
        ]),
        case(&["member", "add", "x", "--peer-urls=http://a:1", "--bogus"]),
        case(&["member", "add", "x", "--peer-urls"]),
        case(&["member", "add", "-w", "bogus", "x", "--peer-urls=foo"]),
        case(&["member", "remove"]),
        case(&["member", "remove", "zz"]),
        case(&["member", "remove", "1", "2"]),
        case(&["member", "remove", "--", "-1"]),
        case(&["member", "remove", "fffffffffffffffffffz"]),
        case(&["member", "remove", "-w", "bogus", "1"]),
        case(&["member", "update"]),
        case(&["member", "update", "1"]),
        case(&["member", "update", "zz", "--peer-urls=http://a:1"]),
        case(&["member", "update", "1", "2", "--peer-urls=http://a:1"]),
        case(&["member", "update", "-w", "bogus", "1", "--peer-urls=foo"]),
        case(&["member", "promote"]),
        case(&["member", "promote", "q"]),
        case(&["member", "promote", "1", "2"]),
        case(&["member", "promote", "-w", "bogus", "1"]),
        case(&["move-leader"]),
        case(&["move-leader", "zz"]),
        case(&["move-leader", "1", "2"]),
        case(&["move-leader", "--", "-1"]),
        case(&["move-leader", "1ffffffffffffffff"]),
        case(&["move-leader", "-w", "bogus", "1"]),
    ];
    for url in BAD_PEER_URLS {
        cases.push(case(&["member", "add", "x", &format!("--peer-urls={url}")]));
    }
    for url in ["foo", "http://a:1/p", "http://a b:1"] {
        cases.push(case(&[
            "member",
            "update",
            "@M1",
            &format!("--peer-urls={url}"),
        ]));
    }
    cases.extend([
        // The membership in every format.
        case(&["member", "list"]),
        case(&["member", "list", "-w", "json"]),
        case(&["member", "list", "-w", "fields"]),
        case(&["member", "list", "-w", "table"]),
        // A learner: added, listed, refused a second one and promotion, updated, removed.
        case(&[
            "member",
            "add",
            "learner1",
            "--learner",
            "--peer-urls=http://127.0.0.1:2391,http://127.0.0.2:2391",
        ])
        .reveals(),
        case(&["member", "list"]),
        case(&["member", "list", "-w", "json"]),
        case(&["member", "list", "-w", "fields"]),
        case(&["member", "list", "-w", "table"]),
        case(&[
            "member",
            "add",
            "learner2",
            "--learner",
            "--peer-urls=http://127.0.0.1:2392",
        ]),
        case(&["member", "promote", "@M2"]),
        case(&["member", "promote", "@M2", "-w", "json"]),
        case(&["member", "promote", "@M2", "-w", "table"]),
        case(&["member", "promote", "@M1"]),
        case(&["member", "promote", "1234"]),
        case(&["member", "pro", "1234"]),
        case(&[
            "member",
            "update",
            "@M2",
            "--peer-urls=http://127.0.0.1:2393,http://127.0.0.2:2393",
        ]),
        case(&[
            "member",
            "update",
            "@M2",
            "--peer-urls=http://127.0.0.1:2394",
            "-w",
            "json",
        ]),
        case(&[
            "member",
            "update",
            "@M2",
            "--peer-urls=HTTP://127.0.0.1:2395",
            "-w",
            "fields",
        ]),
        case(&[
            "member",
            "update",
            "@M2",
            "--peer-urls= http://127.0.0.1:2396",
            "-w",
            "table",
        ]),
        case(&[
            "member",
            "update",
            "1234",
            "--peer-urls=http://127.0.0.1:2397",
        ]),
        case(&["member", "list", "-w", "json"]),
        case(&["member", "remove", "1234"]),
        case(&["member", "remove", "@M2"]),
        case(&["member", "remove", "@M2"]),
        case(&[
            "member",
            "update",
            "@M2",
            "--peer-urls=http://127.0.0.1:2398",
        ]),
        case(&["member", "list"]),
        // Additions and removals in the other formats (fields and table refuse to print them,
        // after the change).
        case(&[
            "member",
            "add",
            "learner3",
            "--learner",
            "--peer-urls=http://127.0.0.1:2399",
            "-w",
            "json",
        ])
        .reveals(),
        case(&["member", "remove", "@M3", "-w", "json"]),
        case(&[
            "member",
            "add",
            "learner4",
            "--learner",
            "--peer-urls=http://127.0.0.1:2400",
            "-w",
            "fields",
        ])
        .reveals(),
        case(&["member", "list", "-w", "fields"]),
        case(&["member", "remove", "@M4", "-w", "fields"]),
        case(&[
            "member",
            "add",
            "learner5",
            "--learner",
            "--peer-urls=http://127.0.0.1:2401",
            "-w",
            "table",
        ])
        .reveals(),
        case(&["member", "list", "-w", "table"]),
        case(&["member", "remove", "@M5", "-w", "table"]),
        case(&["member", "list"]),
        // Leadership: the only member is the leader already.
        case(&["move-leader", "@M1"]),
        case(&["move-leader", "@M1", "-w", "json"]),
        case(&["move-leader", "@M1", "-w", "fields"]),
        case(&["move-leader", "@M1", "-w", "table"]),
        case(&["move-leader", "1234"]),
        bare(&["--endpoints=http://@EP", "move-leader", "@M1"]),
        // The environment.
        bare(&["member", "list"]).env("ETCDCTL_ENDPOINTS", EP),
        bare(&["move-leader", "@M1"]).env("ETCDCTL_ENDPOINTS", EP),
    ]);
    // An endpoint nobody listens on: requests wait out their deadline.
    for args in [
        &["member", "add", "x", "--peer-urls=http://a:1"][..],
        &["member", "remove", "1"][..],
        &["member", "update", "1", "--peer-urls=http://a:1"][..],
        &["member", "promote", "1"][..],
        &["move-leader", "1"][..],
    ] {
        let mut offline = bare(args);
        offline.args.insert(0, "--command-timeout=1s".to_string());
        offline.args.insert(0, format!("--endpoints={unreachable}"));
        cases.push(offline);
    }
    cases.extend([
        // Last: a voting member that never starts. etcd lets a single member add one (to restore
        // a cluster from its data), and then has no quorum; the member list is served locally.
        case(&[
            "member",
            "add",
            "voter1",
            "--peer-urls=http://127.0.0.1:2402",
        ])
        .reveals(),
        case(&[
            "member",
            "add",
            "voter2",
            "--peer-urls=http://127.0.0.1:2403",
        ]),
        case(&["member", "list"]),
    ]);
    cases.into_iter().map(Step::from).collect()
}

/// Steps against three members `m1` (the leader, `@M1`), `m2` (`@M2`) and `m3` (`@M3`), in
/// order. Cases reach `m1` alone (clientv3 picks one of several endpoints at random, and a
/// response names the member that served it), except where they need all three.
fn three_member_steps() -> Vec<Step> {
    let all = format!("--endpoints={ALL_ENDPOINTS}");
    let all = all.as_str();
    let cases = vec![
        // The cluster as it started.
        case(&["member", "list"]),
        case(&["member", "list", "-w", "json"]),
        case(&["member", "list", "-w", "fields"]),
        case(&["member", "list", "-w", "table"]),
        case(&["endpoint", "status", "--cluster"]).status(),
        case(&["endpoint", "status", "--cluster", "-w", "json"]).status(),
        case(&["endpoint", "status", "--cluster", "-w", "fields"]).status(),
        case(&["endpoint", "status", "--cluster", "-w", "table"]).status(),
        case(&["endpoint", "health", "--cluster"]).health(),
        case(&["endpoint", "health", "--cluster", "-w", "json"]).health(),
        case(&["endpoint", "health", "--cluster", "-w", "fields"]).health(),
        case(&["endpoint", "health", "--cluster", "-w", "table"]).health(),
        case(&["endpoint", "st", "--cluster=true", "-w", "json"]).status(),
        bare(&["endpoint", "health", "--cluster"])
            .env("ETCDCTL_ENDPOINTS", &format!("{ENDPOINT_3},{ENDPOINT_2}"))
            .health(),
        // Leadership moves: the leader is found among the endpoints, in their order.
        bare(&[all, "move-leader", "@M2"]),
        bare(&[all, "endpoint", "status"]).status(),
        bare(&["--endpoints=@E2", "move-leader", "@M2", "-w", "json"]),
        bare(&["--endpoints=@E3,@E2", "move-leader", "@M1", "-w", "fields"]),
        bare(&["--endpoints=@E2,@E3", "move-leader", "@M3"]),
        bare(&[all, "move-leader", "1234"]),
        bare(&[
            "--endpoints=http://@E3,http://@EP",
            "move-leader",
            "@M1",
            "-w",
            "table",
        ]),
        bare(&["move-leader", "@M3"]).env("ETCDCTL_ENDPOINTS", ALL_ENDPOINTS),
        bare(&[all, "move-leader", "@M1"]),
        bare(&[all, "endpoint", "status"]).status(),
    ];
    let mut steps: Vec<Step> = cases.into_iter().map(Step::from).collect();
    steps.push(Step::Settle);
    let cases = vec![
        // A voting member that does not start: etcd accepts it (three of four members are
        // started), then refuses further members while one voting member is not connected.
        case(&[
            "member",
            "add",
            "voter1",
            "--peer-urls=http://127.0.0.1:2391",
        ])
        .reveals(),
        case(&["member", "list"]),
        case(&["member", "list", "-w", "json"]),
        case(&["member", "list", "-w", "fields"]),
        case(&["member", "list", "-w", "table"]),
        case(&[
            "member",
            "add",
            "voter2",
            "--peer-urls=http://127.0.0.1:2392",
        ]),
        case(&[
            "member",
            "add",
            "learner",
            "--learner",
            "--peer-urls=http://127.0.0.1:2392",
        ]),
        case(&["member", "promote", "@M4"]),
        case(&[
            "member",
            "update",
            "@M4",
            "--peer-urls=http://127.0.0.1:2393",
        ]),
        case(&[
            "member",
            "update",
            "@M4",
            "--peer-urls=http://127.0.0.1:2394,http://127.0.0.2:2394",
            "-w",
            "json",
        ]),
        case(&[
            "member",
            "update",
            "@M4",
            "--peer-urls=http://127.0.0.1:2395",
            "-w",
            "table",
        ]),
        case(&["member", "list"]),
        case(&["member", "remove", "@M4"]),
        case(&[
            "member",
            "add",
            "voter3",
            "--peer-urls=http://127.0.0.1:2396",
            "-w",
            "json",
        ])
        .reveals(),
        case(&["member", "remove", "@M5", "-w", "json"]),
        case(&[
            "member",
            "add",
            "voter4",
            "--peer-urls=http://127.0.0.1:2397",
            "-w",
            "fields",
        ])
        .reveals(),
        case(&["member", "remove", "@M6", "-w", "fields"]),
        case(&[
            "member",
            "add",
            "voter5",
            "--peer-urls=http://127.0.0.1:2398",
            "-w",
            "table",
        ])
        .reveals(),
        case(&["member", "remove", "@M7", "-w", "table"]),
        case(&["member", "remove", "@M7"]),
        case(&["member", "remove", "1234"]),
        case(&["member", "list"]),
        // A learner that starts, catches up and is promoted.
        case(&[
            "member",
            "add",
            "learner1",
            "--learner",
            &format!("--peer-urls={JOINER_1_PEER_URL}"),
        ])
        .reveals(),
        case(&[
            "member",
            "add",
            "learner2",
            "--learner",
            "--peer-urls=http://127.0.0.1:2399",
        ]),
        case(&["member", "promote", "@M8"]),
    ];
    steps.extend(cases.into_iter().map(Step::from));
    steps.push(Step::Join {
        name: "learner1",
        slot: 1,
    });
    let cases = vec![
        case(&["member", "list"]),
        case(&["member", "list", "-w", "table"]),
        case(&["endpoint", "status", "--cluster"]).status(),
        case(&["member", "promote", "@M8"]),
        case(&["member", "promote", "@M8"]),
        case(&["member", "list"]),
        case(&["member", "remove", "@M8"]),
        // Another one, promoted with `-w json`: etcdctl 3.4 crashes printing it.
        case(&[
            "member",
            "add",
            "learner3",
            "--learner",
            &format!("--peer-urls={JOINER_2_PEER_URL}"),
            "-w",
            "json",
        ])
        .reveals(),
    ];
    steps.extend(cases.into_iter().map(Step::from));
    steps.push(Step::Join {
        name: "learner3",
        slot: 2,
    });
    let cases = vec![
        case(&["member", "promote", "@M9", "-w", "json"]),
        case(&["member", "list"]),
        case(&["member", "remove", "@M9", "-w", "json"]),
        case(&["member", "list", "-w", "json"]),
    ];
    steps.extend(cases.into_iter().map(Step::from));
    steps
}

/// The member IDs one side knows, in order of appearance.
#[derive(Default)]
struct MemberIds {
    ids: Vec<u64>,
}

/// Whether the byte at `at` in `text` continues a word (so a match ending or starting there is
/// part of a longer word).
fn is_word_byte(text: &str, at: usize) -> bool {
    text.as_bytes()
        .get(at)
        .is_some_and(u8::is_ascii_alphanumeric)
}

/// Replaces each occurrence of `needle` that is a whole word.
fn replace_word(text: &str, needle: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = text[at..].find(needle) {
        let start = at + found;
        let end = start + needle.len();
        let whole = (start == 0 || !is_word_byte(text, start - 1)) && !is_word_byte(text, end);
        out.push_str(&text[at..start]);
        out.push_str(if whole { with } else { needle });
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

impl MemberIds {
    /// `@M1` ... replaced by the IDs in hex; unknown ones are left as they are.
    fn substitute(&self, text: &str) -> String {
        let mut text = text.to_string();
        // Highest numbers first, so that `@M1` does not eat the start of `@M10`.
        for (index, id) in self.ids.iter().enumerate().rev() {
            text = text.replace(&format!("{MEMBER}{}", index + 1), &format!("{id:x}"));
        }
        text
    }

    /// Adds IDs not known yet, in the order given.
    fn learn(&mut self, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            if !self.ids.contains(&id) {
                self.ids.push(id);
            }
        }
    }

    /// Known IDs in `text` (etcdctl's `%16x`, `%x` and decimal forms) as `<M1>`, `<M2>`, ...
    fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (index, id) in self.ids.iter().enumerate() {
            let placeholder = format!("<M{}>", index + 1);
            text = text.replace(
                &format!("Member {id:16x} "),
                &format!("Member {placeholder} "),
            );
            text = replace_word(&text, &format!("{id:x}"), &placeholder);
            text = replace_word(&text, &id.to_string(), &placeholder);
        }
        text
    }
}

/// The top-level elements of the JSON array that starts at `text[open]` (a `[`), and the index
/// just after its `]`.
fn json_array_elements(text: &str, open: usize) -> (Vec<&str>, usize) {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = open + 1;
    let mut elements = Vec::new();
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    if i > start {
                        elements.push(&text[start..i]);
                    }
                    return (elements, i + 1);
                }
            }
            b',' if depth == 1 => {
                elements.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    (elements, text.len())
}

/// Sorts the elements of every JSON array that follows `marker`.
fn sort_json_arrays_after(text: &str, marker: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = text[at..].find(marker) {
        let open = at + found + marker.len() - 1;
        let (mut elements, end) = json_array_elements(text, open);
        elements.sort_unstable();
        out.push_str(&text[at..=open]);
        out.push_str(&elements.join(","));
        out.push(']');
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// Sorts each run of consecutive lines that `belongs` accepts.
fn sort_line_runs(text: &str, belongs: impl Fn(&str) -> bool) -> String {
    let mut out = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for line in text.split_inclusive('\n') {
        if belongs(line) {
            run.push(line);
            continue;
        }
        run.sort_unstable();
        out.append(&mut run);
        out.push(line);
    }
    run.sort_unstable();
    out.append(&mut run);
    out.concat()
}

/// Sorts each run of consecutive blocks that start with a line beginning with `first` and end
/// with an empty line (the fields format's members and endpoints).
fn sort_blocks(text: &str, first: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut blocks: Vec<String> = Vec::new();
        while i < lines.len() && lines[i].starts_with(first) {
            let mut block = String::new();
            while i < lines.len() {
                block.push_str(lines[i]);
                i += 1;
                if lines[i - 1] == "\n" {
                    break;
                }
            }
            blocks.push(block);
        }
        if blocks.is_empty() {
            out.push(lines[i].to_string());
            i += 1;
        } else {
            blocks.sort_unstable();
            out.extend(blocks);
        }
    }
    out.concat()
}

/// Sorts the comma-separated items of `ETCD_INITIAL_CLUSTER="..."`.
fn sort_initial_cluster(text: &str) -> String {
    const MARKER: &str = "ETCD_INITIAL_CLUSTER=\"";
    let Some(start) = text.find(MARKER).map(|i| i + MARKER.len()) else {
        return text.to_string();
    };
    let Some(length) = text[start..].find('"') else {
        return text.to_string();
    };
    let mut items: Vec<&str> = text[start..start + length].split(',').collect();
    items.sort_unstable();
    format!(
        "{}{}{}",
        &text[..start],
        items.join(","),
        &text[start + length..]
    )
}

/// Members in any order: etcd sorts them by ID, and IDs of added members depend on the clock.
fn mask_member_order(text: &str) -> String {
    let text = sort_initial_cluster(text);
    let text = sort_json_arrays_after(&text, "\"members\":[");
    let text = sort_line_runs(&text, |line| {
        line.contains(", started, ") || line.contains(", unstarted, ")
    });
    let text = sort_line_runs(&text, |line| line.starts_with('|'));
    sort_blocks(&text, "\"ID\" : ")
}

/// Table cells without their padding (borders kept).
fn trim_table_cells(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if !line.starts_with('|') {
                return line.to_string();
            }
            let cells: Vec<&str> = line
                .trim_end_matches('\n')
                .split('|')
                .map(str::trim)
                .collect();
            format!("{}\n", cells.join("|"))
        })
        .collect()
}

/// Raft terms of response headers.
fn mask_raft_terms(text: &str) -> String {
    let text = mask_number_after(text, "\"raft_term\":");
    mask_number_after(&text, "\"RaftTerm\" : ")
}

/// Whether a table cell is a go-humanize size (`25 kB`) or a plain number.
fn is_size_or_number(cell: &str) -> bool {
    let number_only = !cell.is_empty() && cell.bytes().all(|b| b.is_ascii_digit());
    let size = cell.split_once(' ').is_some_and(|(number, unit)| {
        ["B", "kB", "MB", "GB"].contains(&unit)
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    });
    number_only || size
}

/// `endpoint status`: the database size, raft terms and indexes, which depend on when bbolt grew
/// its file and on how many elections there were; rows in any order.
fn mask_status(text: &str) -> String {
    let mut text = text.to_string();
    for marker in [
        "\"dbSize\":",
        "\"dbSizeInUse\":",
        "\"raftIndex\":",
        "\"raftTerm\":",
        "\"raftAppliedIndex\":",
        "\"DBSize\" : ",
        "\"RaftIndex\" : ",
        "\"RaftAppliedIndex\" : ",
    ] {
        text = mask_number_after(&text, marker);
    }
    // The simple format: size, term, index and applied index are the 4th and 7th to 9th fields.
    text = text
        .split_inclusive('\n')
        .map(|line| {
            let mut fields: Vec<&str> = line.split(", ").collect();
            if fields.len() == 10 {
                for index in [3, 6, 7, 8] {
                    fields[index] = "<N>";
                }
            }
            fields.join(", ")
        })
        .collect();
    text = sort_line_runs(&text, |line| line.split(", ").count() == 10);
    text = normalize_table(&text, is_size_or_number, "<N>");
    common::mask_version(&text)
}

/// `endpoint health`: durations; endpoints in any order.
fn mask_health(text: &str) -> String {
    let mut text = mask_after(text, "took = ", '\n');
    text = mask_after(&text, "\"took\":\"", '"');
    text = mask_after(&text, "\"Took\" : ", '\n');
    text = normalize_table(
        &text,
        |cell| cell.starts_with(|c: char| c.is_ascii_digit()) && cell.ends_with('s'),
        "<TOOK>",
    );
    text = sort_line_runs(&text, |line| {
        line.contains(" is healthy: ") || line.contains(" is unhealthy: ")
    });
    text = sort_line_runs(&text, |line| line.starts_with('|'));
    if text.starts_with('[') {
        let (mut elements, end) = json_array_elements(&text, 0);
        elements.sort_unstable();
        text = format!("[{}]{}", elements.join(","), &text[end..]);
    }
    sort_blocks(&text, "\"Endpoint\" : ")
}

/// A Go panic's stack trace (addresses vary from run to run, and steadctl prints none).
fn without_stack_trace(text: &str) -> String {
    const TRACE_START: &str = "goroutine 1 [running]:\n";
    match text.find(TRACE_START) {
        Some(at) => text[..at + TRACE_START.len()].to_string(),
        None => text.to_string(),
    }
}

/// How a side's servers look to its cases.
struct Runner<'a> {
    client: &'a Path,
    /// Placeholders in arguments (`@EP`, `@EPS`, ...) and their values, longest first.
    places: Vec<(String, String)>,
    /// The endpoint masked as `<EP>` in outputs, and asked for the member list.
    endpoint: String,
    ids: MemberIds,
    /// Raft terms are masked (several members: elections may take more than one round).
    mask_terms: bool,
    /// The three-member cluster, for [`Step::Settle`] and [`Step::Join`].
    cluster: Option<&'a mut Cluster>,
    /// Ports of the members that join later, by slot (from 1).
    joiners: &'a [MemberPorts],
}

/// One case's masked standard output, standard error and exit status.
type Outcome = (String, String, Option<i32>);

impl Runner<'_> {
    fn substitute(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (place, value) in &self.places {
            text = text.replace(place, value);
        }
        self.ids.substitute(&text)
    }

    /// Numbers members the side has not seen yet (in the order the server lists them).
    fn learn_members(&mut self) {
        let ids = common::member_ids(&self.endpoint);
        self.ids.learn(ids.into_iter().map(|(_, id)| id));
    }

    fn mask(&self, bytes: &[u8], masks: Masks) -> String {
        let mut text = mask_volatile(bytes, &self.endpoint);
        text = self.ids.mask(&text);
        if self.mask_terms {
            text = mask_raft_terms(&text);
        }
        if masks.status {
            text = mask_status(&text);
        }
        if masks.health {
            text = mask_health(&text);
        }
        text = trim_table_cells(&text);
        text = mask_member_order(&text);
        without_stack_trace(&text)
    }

    /// Runs every step; returns the outcome of each case, in order.
    fn run_all(&mut self, steps: &[Step]) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for step in steps {
            match step {
                Step::Run(case) => outcomes.push(self.run(case)),
                Step::Settle => self.cluster.as_ref().expect("a cluster").settle(),
                Step::Join { name, slot } => {
                    let ports = self.joiners[slot - 1];
                    self.cluster.as_mut().expect("a cluster").join(name, ports);
                }
            }
        }
        outcomes
    }

    fn run(&mut self, case: &Case) -> Outcome {
        let args: Vec<String> = case.args.iter().map(|a| self.substitute(a)).collect();
        let env: Vec<(String, String)> = case
            .env
            .iter()
            .map(|(k, v)| (k.clone(), self.substitute(v)))
            .collect();
        let output = common::run(self.client, &args, b"", &env);
        if case.reveals {
            self.learn_members();
        }
        (
            self.mask(&output.stdout, case.masks),
            self.mask(&output.stderr, case.masks),
            output.status.code(),
        )
    }
}

/// The differences between the reference's and the candidate's outcomes, case by case.
fn report(
    steps: &[Step],
    want: &[Outcome],
    got: &[Outcome],
    reference: &str,
    candidate: &str,
) -> String {
    let cases: Vec<&Case> = steps
        .iter()
        .filter_map(|step| match step {
            Step::Run(case) => Some(case),
            _ => None,
        })
        .collect();
    assert_eq!(cases.len(), want.len(), "every case of the reference ran");
    assert_eq!(cases.len(), got.len(), "every case of the candidate ran");
    let mut report = String::new();
    for (index, ((case, want), got)) in cases.iter().zip(want).zip(got).enumerate() {
        if want != got {
            let _ = writeln!(
                report,
                "\n=== case {index}: {:?} (env {:?})\n--- exit: {reference} {:?}, {candidate} {:?}\n--- stdout {reference}:\n{}\n--- stdout {candidate}:\n{}\n--- stderr {reference}:\n{}\n--- stderr {candidate}:\n{}",
                case.args, case.env, want.2, got.2, want.0, got.0, want.1, got.1,
            );
        }
    }
    report
}

/// Which of etcd 3.4's server behaviours a comparison expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server34 {
    /// The server is etcd 3.4 itself: every step runs.
    Itself,
    /// The server is stead, which keeps a learner a learner across `member update` where etcd
    /// 3.4 forgets it (etcd-io/etcd#21694, fixed on 3.5 and 3.6): the steps that update a
    /// learner are left out (afterwards etcd 3.4 would also count the forgotten learner as an
    /// unstarted voter, and refuse the next removal for want of started members).
    AsFixed,
}

/// Whether `case` updates the learner `@M2` of the single-member steps.
fn updates_the_learner(case: &Case) -> bool {
    case.args
        .windows(3)
        .any(|words| words == ["member", "update", "@M2"])
}

/// Runs the single-member steps against a fresh server for each side.
fn compare_single(reference: Side, candidate: Side, server: Server34) {
    common::require_oracle();
    let (reference_server, candidate_server) = common::start_servers(&reference, &candidate);
    let unreachable = format!("127.0.0.1:{}", common::closed_port());
    let mut steps = single_member_steps(&unreachable);
    if server == Server34::AsFixed {
        steps.retain(|step| !matches!(step, Step::Run(case) if updates_the_learner(case)));
    }
    let mut outcomes = Vec::new();
    for (side, server) in [
        (&reference, &reference_server),
        (&candidate, &candidate_server),
    ] {
        let mut runner = Runner {
            client: &side.client,
            places: vec![(EP.to_string(), server.endpoint.clone())],
            endpoint: server.endpoint.clone(),
            ids: MemberIds::default(),
            mask_terms: false,
            cluster: None,
            joiners: &[],
        };
        runner.learn_members();
        assert_eq!(
            runner.ids.ids.len(),
            1,
            "{} starts with one member",
            side.name
        );
        outcomes.push(runner.run_all(&steps));
        assert_eq!(
            runner.ids.ids.len(),
            6,
            "{}: every added member was numbered",
            side.name
        );
    }
    let report = report(
        &steps,
        &outcomes[0],
        &outcomes[1],
        reference.name,
        candidate.name,
    );
    common::assert_no_differences(&report, &reference, &candidate);
    assert!(
        outcomes[0].len() > 100,
        "only {} cases ran",
        outcomes[0].len()
    );
}

/// One side of the three-member comparison: a client, and the server its cluster runs.
struct ClusterSide {
    name: &'static str,
    client: PathBuf,
    server: PathBuf,
}

/// etcdctl 3.4 on a cluster of etcd 3.4 members: the reference.
fn etcdctl_on_etcd_cluster() -> ClusterSide {
    ClusterSide {
        name: "etcdctl on etcd",
        client: common::ETCDCTL.into(),
        server: common::ETCD.into(),
    }
}

/// Runs the three-member steps on each side against its own cluster, one after the other on
/// the same ports (so that member and cluster IDs are the same).
fn compare_three_members(reference: ClusterSide, candidate: ClusterSide) {
    common::require_oracle();
    let ports = [MemberPorts::new(), MemberPorts::new(), MemberPorts::new()];
    let joiners = [MemberPorts::new(), MemberPorts::new()];
    let steps = three_member_steps();
    let mut outcomes = Vec::new();
    for side in [&reference, &candidate] {
        let client = &side.client;
        let mut cluster = Cluster::start(&side.server, &ports);
        let mut by_name = cluster.member_ids();
        by_name.sort();
        let places = vec![
            (ALL_ENDPOINTS.to_string(), cluster.endpoints()),
            (ENDPOINT_2.to_string(), cluster.endpoint(1)),
            (ENDPOINT_3.to_string(), cluster.endpoint(2)),
            (EP.to_string(), cluster.endpoint(0)),
            (JOINER_1_PEER_URL.to_string(), joiners[0].peer_url()),
            (JOINER_2_PEER_URL.to_string(), joiners[1].peer_url()),
        ];
        let endpoint = cluster.endpoint(0);
        let mut runner = Runner {
            client,
            places,
            endpoint,
            ids: MemberIds::default(),
            mask_terms: true,
            cluster: Some(&mut cluster),
            joiners: &joiners,
        };
        runner.ids.learn(by_name.iter().map(|(_, id)| *id));
        assert_eq!(
            runner.ids.ids.len(),
            3,
            "the cluster starts with three members"
        );
        outcomes.push(runner.run_all(&steps));
        assert_eq!(runner.ids.ids.len(), 9, "every added member was numbered");
    }
    let report = report(
        &steps,
        &outcomes[0],
        &outcomes[1],
        reference.name,
        candidate.name,
    );
    assert!(
        report.is_empty(),
        "{} differs from {} (three members):{report}",
        candidate.name,
        reference.name
    );
}

#[test]
fn steadctl_member_commands_match_etcdctl_byte_for_byte() {
    compare_single(etcdctl_on_etcd(), steadctl_on_etcd(), Server34::Itself);
}

#[test]
fn steadctl_matches_etcdctl_on_a_three_member_cluster() {
    compare_three_members(
        etcdctl_on_etcd_cluster(),
        ClusterSide {
            name: "steadctl on etcd",
            client: common::steadctl(),
            server: common::ETCD.into(),
        },
    );
}

#[test]
fn etcdctl_on_a_three_member_stead_cluster_matches_etcd() {
    compare_three_members(
        etcdctl_on_etcd_cluster(),
        ClusterSide {
            name: "etcdctl on stead",
            client: common::ETCDCTL.into(),
            server: common::stead(),
        },
    );
}

#[test]
fn steadctl_on_a_three_member_stead_cluster_matches_etcdctl_on_etcd() {
    compare_three_members(
        etcdctl_on_etcd_cluster(),
        ClusterSide {
            name: "steadctl on stead",
            client: common::steadctl(),
            server: common::stead(),
        },
    );
}

#[test]
fn etcdctl_member_commands_on_stead_match_etcdctl_on_etcd() {
    compare_single(etcdctl_on_etcd(), etcdctl_on_stead(), Server34::AsFixed);
}

#[test]
fn steadctl_member_commands_on_stead_match_etcdctl_on_etcd() {
    compare_single(etcdctl_on_etcd(), steadctl_on_stead(), Server34::AsFixed);
}

/// The comparisons could pass with both tools broken the same way, and masks could hide too
/// much; pin a few outputs of steadctl (on etcd) to their known values.
#[test]
fn steadctl_member_outputs_known_values() {
    common::require_oracle();
    let server = Server::start(common::etcd_server);
    let steadctl = common::steadctl();
    let endpoint = format!("--endpoints={}", server.endpoint);
    let run = |args: &[&str]| {
        let mut all = vec![endpoint.clone()];
        all.extend(args.iter().map(|s| s.to_string()));
        let output = common::run(&steadctl, &all, b"", &[]);
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            output.status.code(),
        )
    };
    let (listed, _, _) = run(&["member", "list", "-w", "json"]);
    let member_id = common::json_number_after(&listed, "{\"ID\":").expect("a member ID");
    let cluster_id = common::json_number_after(&listed, "\"cluster_id\":").expect("a cluster ID");
    let member = format!("{member_id:x}");
    let member = member.as_str();
    let cluster = format!("{cluster_id:16x}");

    let (added, _, code) = run(&[
        "member",
        "add",
        "new",
        "--learner",
        "--peer-urls=http://127.0.0.1:2391",
    ]);
    assert_eq!(code, Some(0), "{added}");
    let id_hex = added
        .strip_prefix("Member ")
        .and_then(|rest| rest.split_once(&format!(" added to cluster {cluster}\n")))
        .map(|(id, _)| id.trim_start().to_string())
        .unwrap_or_else(|| panic!("unexpected add output {added:?}"));
    let id = u64::from_str_radix(&id_hex, 16).expect("a hex member ID");
    let environment = added.split_once("\n\n").map(|(_, rest)| rest);
    let want = format!(
        "ETCD_NAME=\"new\"\nETCD_INITIAL_CLUSTER=\"{}\"\nETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:2391\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
        if id < member_id {
            "new=http://127.0.0.1:2391,default=http://127.0.0.1:2380"
        } else {
            "default=http://127.0.0.1:2380,new=http://127.0.0.1:2391"
        }
    );
    assert_eq!(environment, Some(want.as_str()), "{added}");

    let (listed, _, _) = run(&["member", "list", "-w", "json"]);
    assert!(
        listed.contains(&format!(
            "{{\"ID\":{id},\"peerURLs\":[\"http://127.0.0.1:2391\"],\"isLearner\":true}}"
        )),
        "{listed}"
    );
    let (_, error, code) = run(&["member", "promote", &id_hex]);
    assert_eq!(
        (error.lines().last(), code),
        (
            Some(
                "Error: etcdserver: can only promote a learner member which is in sync with leader"
            ),
            Some(1)
        )
    );
    let (updated, error, code) = run(&[
        "member",
        "update",
        &id_hex,
        "--peer-urls=http://127.0.0.1:2392",
        "-w",
        "fields",
    ]);
    assert_eq!(
        (updated.as_str(), error.as_str(), code),
        (
            "",
            "Error: fields not supported as output format\n",
            Some(4)
        )
    );
    let (removed, _, code) = run(&["member", "remove", &id_hex]);
    assert_eq!(
        (removed, code),
        (
            format!("Member {id:16x} removed from cluster {cluster}\n"),
            Some(0)
        )
    );
    let (moved, _, code) = run(&["move-leader", member]);
    assert_eq!(
        (moved, code),
        (
            format!("Leadership transferred from {member} to {member}\n"),
            Some(0)
        )
    );
    let (moved, _, _) = run(&["move-leader", member, "-w", "json"]);
    assert_eq!(moved, "{}\n");
    let (_, error, code) = run(&["member", "add", "x", "--peer-urls=http://a b:1"]);
    assert_eq!(
        (error.as_str(), code),
        (
            "Error: parse \"http://a b:1\": invalid character \" \" in host name\n",
            Some(1)
        )
    );
}

#[test]
fn masks_number_member_ids_and_order_members() {
    let mut ids = MemberIds::default();
    ids.learn([0x5b94_1b0d_71c9_917e, 0x0e50_5052_cf07_4a1d]);
    assert_eq!(
        ids.substitute("@M2,@M1,@M3"),
        "e505052cf074a1d,5b941b0d71c9917e,@M3"
    );
    assert_eq!(
        ids.mask("Member  e505052cf074a1d added to cluster 6ff7ad0266691698\n"),
        "Member <M2> added to cluster 6ff7ad0266691698\n"
    );
    assert_eq!(
        ids.mask("{\"ID\":6598929098562179454,\"x\":16598929098562179454}"),
        "{\"ID\":<M1>,\"x\":16598929098562179454}"
    );
    assert_eq!(
        mask_member_order(
            "ETCD_INITIAL_CLUSTER=\"b=u,a=v\"\n{\"members\":[{\"ID\":2,\"peerURLs\":[\"x\",\"y\"]},{\"ID\":1}]}\n"
        ),
        "ETCD_INITIAL_CLUSTER=\"a=v,b=u\"\n{\"members\":[{\"ID\":1},{\"ID\":2,\"peerURLs\":[\"x\",\"y\"]}]}\n"
    );
    assert_eq!(
        sort_blocks(
            "\"A\" : 1\n\"ID\" : 2\nx\n\n\"ID\" : 1\ny\n\nend\n",
            "\"ID\" : "
        ),
        "\"A\" : 1\n\"ID\" : 1\ny\n\n\"ID\" : 2\nx\n\nend\n"
    );
    assert_eq!(trim_table_cells("+--+\n|  a |   b |\n"), "+--+\n|a|b|\n");
    assert_eq!(
        without_stack_trace("panic: x\n\ngoroutine 1 [running]:\nmain.main()\n"),
        "panic: x\n\ngoroutine 1 [running]:\n"
    );
}
