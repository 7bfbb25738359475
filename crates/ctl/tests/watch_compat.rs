//! `watch` of steadctl and of the stead server against etcdctl 3.4 and etcd 3.4, byte for byte.
//!
//! As in `etcdctl_compat.rs`, the reference is etcdctl talking to etcd 3.4, and three candidates
//! (steadctl on etcd, etcdctl on stead, steadctl on stead) run the same cases against a fresh
//! single-member server with the same identity. A case starts a watcher (the client under test,
//! as a child process), drives it (writes with etcdctl against the same server, lines on the
//! watcher's standard input), waits until the output it must produce has arrived, and then kills
//! the watcher unless it ended by itself. Standard output, standard error and exit status must
//! be equal.
//!
//! Determinism without clocks: every write is made only after the watcher has shown that its
//! watch exists and is in step with the server, so that each write is its own watch response
//! (etcd batches the events a lagging watcher catches up on). A watcher from a revision shows it
//! by printing the event of a marker key written just before it started (`--rev @REV`); an
//! interactive watcher by answering a `progress` line. Waiting is by polling the output, with a
//! generous deadline only so that a broken candidate cannot hang the test.
//!
//! Masked before comparing, as in `etcdctl_compat.rs`: each side's endpoint address and
//! capnslog's timestamps. Nothing else: revisions, raft terms, member and cluster IDs, error
//! texts and exit statuses must match exactly.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

use common::{
    EP, ETCDCTL, Running, Server, Side, etcdctl, etcdctl_on_etcd, etcdctl_on_stead, mask_capnslog,
    steadctl_on_etcd, steadctl_on_stead, without_usage_line,
};

/// Placeholder for the server's current revision when a command starts.
const REV: &str = "@REV";
/// The environment of every client: a search path for exec-commands.
const PATH: &str = "/usr/bin:/bin";

/// One step of a case, after the watcher started.
#[derive(Debug)]
enum Act {
    /// Run etcdctl against the side's server with these arguments (output not compared).
    Op(Vec<String>),
    /// Write this line (a newline is added) to the watcher's standard input.
    Line(String),
    /// Wait until the watcher's standard output holds this many lines.
    Lines(usize),
    /// Wait until the watcher's standard output contains this text.
    Text(String),
    /// Wait until the watcher's standard error contains this text.
    ErrText(String),
    /// Close the watcher's standard input.
    CloseStdin,
    /// Wait until the watcher exits by itself.
    Exit,
}

fn op(args: &[&str]) -> Act {
    Act::Op(args.iter().map(|s| s.to_string()).collect())
}

fn line(text: &str) -> Act {
    Act::Line(text.to_string())
}

fn text(text: &str) -> Act {
    Act::Text(text.to_string())
}

struct Case {
    /// etcdctl commands run before the watcher starts.
    before: Vec<Vec<String>>,
    /// The watcher's arguments (`--endpoints` first).
    args: Vec<String>,
    env: Vec<(String, String)>,
    script: Vec<Act>,
}

/// A watcher with `args` (after `--endpoints=@EP`).
fn watch(args: &[&str]) -> Case {
    let mut all = vec![format!("--endpoints={EP}")];
    all.extend(args.iter().map(|s| s.to_string()));
    Case {
        before: Vec::new(),
        args: all,
        env: Vec::new(),
        script: Vec::new(),
    }
}

impl Case {
    fn before(mut self, args: &[&str]) -> Self {
        self.before
            .push(args.iter().map(|s| s.to_string()).collect());
        self
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn script(mut self, script: Vec<Act>) -> Self {
        self.script = script;
        self
    }
}

/// Every case, in order: they share the server, whose history grows from case to case the same
/// way on every side.
fn cases() -> Vec<Case> {
    let exec_env = "echo \"rev=$ETCD_WATCH_REVISION type=$ETCD_WATCH_EVENT_TYPE key=$ETCD_WATCH_KEY value=$ETCD_WATCH_VALUE api=$ETCDCTL_API\"";
    vec![
        // History replay from revision 1 (the server is fresh: revisions 2 to 5).
        watch(&["watch", "--prefix", "h/", "--rev", "1"])
            .before(&["put", "h/1", "a"])
            .before(&["put", "h/2", "b"])
            .before(&["put", "h/1", "c"])
            .before(&["del", "h/2"])
            .script(vec![Act::Lines(12)]),
        watch(&["watch", "--prefix", "h/", "--rev=1", "-w", "json"]).script(vec![Act::Lines(1)]),
        watch(&[
            "-w",
            "fields",
            "watch",
            "--prefix",
            "h/",
            "--rev",
            "1",
            "--prev-kv",
        ])
        .script(vec![Act::Lines(44)]),
        watch(&["watch", "h/1", "--rev", "1", "--hex"]).script(vec![Act::Lines(6)]),
        // A single key: puts and a delete, other keys unseen.
        watch(&["watch", "k", "--rev", REV])
            .before(&["put", "k", "marker"])
            .script(vec![
                Act::Lines(3),
                op(&["put", "k", "v1"]),
                Act::Lines(6),
                op(&["put", "other", "x"]),
                op(&["del", "k"]),
                Act::Lines(9),
            ]),
        // A prefix.
        watch(&["watch", "--prefix", "p/", "--rev", REV])
            .before(&["put", "p/0", "marker"])
            .script(vec![
                Act::Lines(3),
                op(&["put", "p/1", "a"]),
                Act::Lines(6),
                op(&["put", "q", "x"]),
                op(&["put", "p/2", "b"]),
                Act::Lines(9),
            ]),
        // A key and a range end.
        watch(&["watch", "r/a", "r/c", "--rev", REV])
            .before(&["put", "r/a", "marker"])
            .script(vec![
                Act::Lines(3),
                op(&["put", "r/b", "1"]),
                Act::Lines(6),
                op(&["put", "r/c", "2"]),
                op(&["put", "r/a", "3"]),
                Act::Lines(9),
            ]),
        // A third argument is ignored.
        watch(&["watch", "m3", "m3z", "extra", "--rev", REV])
            .before(&["put", "m3", "marker"])
            .script(vec![Act::Lines(3)]),
        // Previous key-values.
        watch(&["watch", "v", "--prev-kv", "--rev", REV])
            .before(&["put", "v", "k1"])
            .script(vec![
                Act::Lines(3),
                op(&["put", "v", "k2"]),
                Act::Lines(8),
                op(&["del", "v"]),
                Act::Lines(13),
            ]),
        // JSON and fields, one response per write.
        watch(&["watch", "j", "--prev-kv", "--rev", REV, "-w", "json"])
            .before(&["put", "j", "marker"])
            .script(vec![
                Act::Lines(1),
                op(&["put", "j", "1"]),
                Act::Lines(2),
                op(&["del", "j"]),
                Act::Lines(3),
            ]),
        watch(&["-w", "fields", "watch", "j", "--rev", REV])
            .before(&["put", "j", "marker"])
            .script(vec![Act::Lines(11), op(&["del", "j"]), Act::Lines(22)]),
        watch(&["watch", "ключ", "--rev", REV, "--hex"])
            .before(&["put", "ключ", "значение"])
            .script(vec![Act::Lines(3)]),
        // exec-command: once per event, with the event in its environment (and without
        // ETCDCTL_API, which etcdctl removes from its own).
        watch(&["watch", "e", "--rev", REV, "--", "sh", "-c", exec_env])
            .env("ETCDCTL_API", "3")
            .before(&["put", "e", "marker"])
            .script(vec![
                Act::Lines(4),
                op(&["put", "e", "a \"quoted\" välue"]),
                Act::Lines(8),
                op(&["del", "e"]),
                Act::Lines(12),
            ]),
        watch(&["watch", "--rev", REV, "e", "--", "sh", "-c", "exit 3"])
            .before(&["put", "e", "fails"])
            .script(vec![Act::Exit]),
        watch(&[
            "watch",
            "e",
            "--rev",
            REV,
            "--",
            "no-such-command-anywhere",
            "x",
        ])
        .before(&["put", "e", "not found"])
        .script(vec![Act::Exit]),
        // The key from the environment (no warning for it, one for an unknown variable).
        watch(&["watch", "--rev", REV])
            .env("ETCDCTL_WATCH_KEY", "ek")
            .env("ETCDCTL_BOGUS", "1")
            .before(&["put", "ek", "marker"])
            .script(vec![Act::Lines(3)]),
        watch(&["watch", "--rev", REV, "--", "echo", "event"])
            .env("ETCDCTL_WATCH_KEY", "ek")
            .env("ETCDCTL_WATCH_RANGE_END", "el")
            .before(&["put", "ek", "marker"])
            .script(vec![Act::Lines(4)]),
        watch(&["watch", "ek"])
            .env("ETCDCTL_WATCH_KEY", "ek")
            .script(vec![Act::Exit]),
        watch(&["watch", "ek", "--", "echo", "1"])
            .env("ETCDCTL_WATCH_KEY", "ek")
            .script(vec![Act::Exit]),
        watch(&["watch", "k"])
            .env("ETCDCTL_WATCH_RANGE_END", "z")
            .script(vec![Act::Exit]),
        // Argument errors.
        watch(&["watch"]).script(vec![Act::Exit]),
        watch(&["watch", "a", "b", "--prefix"]).script(vec![Act::Exit]),
        watch(&["watch", "a", "--"]).script(vec![Act::Exit]),
        watch(&["watch", "--"]).script(vec![Act::Exit]),
        watch(&["watch", "--", "echo", "hi"]).script(vec![Act::Exit]),
        // (`--progress-notify` is etcdctl 3.5's; 3.4 rejects it, steadctl has it.)
        watch(&["watch", "--rev", "x", "a"]).script(vec![Act::Exit]),
        watch(&["watch", "--help"]).script(vec![Act::Exit]),
        watch(&["watch", "a", "-w", "bogus"]).script(vec![Act::Exit]),
        // The server refuses the watch.
        watch(&["watch", "b", "a"]).script(vec![Act::Exit]),
        watch(&["watch", "b", "a", "-w", "json"]).script(vec![Act::Exit]),
        // A format that cannot show watch responses fails at the first one.
        watch(&["watch", "t", "--rev", REV, "-w", "table"])
            .before(&["put", "t", "marker"])
            .script(vec![Act::Exit]),
        // Interactive: two watchers, a progress request, writes, invalid lines, end of input.
        watch(&["watch", "-i"]).script(vec![
            line("watch ia"),
            line("watch --prefix ib/ --prev-kv"),
            line("progress"),
            Act::Lines(2),
            op(&["put", "ia", "1"]),
            Act::Lines(5),
            op(&["put", "ib/x", "2"]),
            Act::Lines(8),
            op(&["put", "ib/x", "3"]),
            Act::Lines(13),
            op(&["del", "ia"]),
            Act::Lines(16),
            line(""),
            line("bogus"),
            line("watch"),
            line("watch a --prefix b"),
            line("watch -- echo"),
            Act::CloseStdin,
            Act::Exit,
        ]),
        watch(&["watch", "--interactive", "-w", "json"]).script(vec![
            line("watch ij --prev-kv"),
            line("progress"),
            Act::Lines(2),
            op(&["put", "ij", "v"]),
            Act::Lines(3),
            Act::CloseStdin,
            Act::Exit,
        ]),
        watch(&["watch", "-i"]).script(vec![
            line("watch ie -- sh -c \"echo got $ETCD_WATCH_VALUE\""),
            line("progress"),
            text("progress notify: "),
            op(&["put", "ie", "1"]),
            Act::Lines(5),
            Act::CloseStdin,
            Act::Exit,
        ]),
        // A watch the server refuses (its message races with the end of input in etcdctl, so
        // another watcher's progress notification comes first).
        watch(&["watch", "-i"]).script(vec![
            line("watch b a"),
            line("watch ic"),
            line("progress"),
            text("progress notify: "),
            Act::CloseStdin,
            Act::Exit,
        ]),
        watch(&["watch", "-i"]).script(vec![line("watch ia -w json"), Act::Exit]),
        watch(&["watch", "-i"]).script(vec![line("watch ia --help"), Act::Exit]),
        watch(&["watch", "-i"]).script(vec![line("watch ia --"), Act::Exit]),
        watch(&["watch", "-i"])
            .env("ETCDCTL_WATCH_RANGE_END", "x")
            .script(vec![Act::Exit]),
        // Compacted revisions: the server cancels the watch; etcdctl exits with status 5.
        watch(&["watch", "c", "--rev", "1"])
            .before(&["put", "c", "1"])
            .before(&["put", "c", "2"])
            .before(&["compaction", REV])
            .script(vec![Act::Exit]),
        watch(&["watch", "c", "--rev", "2", "-w", "json"]).script(vec![Act::Exit]),
        watch(&["watch", "c", "--rev", "2", "-w", "fields"]).script(vec![Act::Exit]),
        // etcd cancels a compacted watch only when its next sync of lagging watchers comes
        // round, so the next line waits for the cancellation.
        watch(&["watch", "-i"]).script(vec![
            line("watch c --rev 1"),
            Act::ErrText("watch was canceled".to_string()),
            line("watch c"),
            line("progress"),
            text("progress notify: "),
            Act::CloseStdin,
            Act::Exit,
        ]),
    ]
}

/// The server's current revision (from the header of a read).
fn revision(endpoint: &str) -> i64 {
    let json = etcdctl(
        endpoint,
        &[
            "get".to_string(),
            "revision-probe".to_string(),
            "-w".to_string(),
            "json".to_string(),
        ],
    );
    let marker = "\"revision\":";
    let at = json.find(marker).expect("a revision in the header") + marker.len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a numeric revision")
}

fn substitute(args: &[String], endpoint: &str) -> Vec<String> {
    let needs_revision = args.iter().any(|a| a.contains(REV));
    let current = if needs_revision {
        revision(endpoint).to_string()
    } else {
        String::new()
    };
    args.iter()
        .map(|a| a.replace(EP, endpoint).replace(REV, &current))
        .collect()
}

/// Runs one case on one side; returns its masked standard output, standard error and status.
fn run_case(client: &Path, case: &Case, endpoint: &str) -> (String, String, Option<i32>) {
    for args in &case.before {
        etcdctl(endpoint, &substitute(args, endpoint));
    }
    let args = substitute(&case.args, endpoint);
    let mut env = vec![("PATH".to_string(), PATH.to_string())];
    env.extend(
        case.env
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(EP, endpoint))),
    );
    let mut watcher = Running::start(client, &args, &env, Stdio::piped());
    for act in &case.script {
        match act {
            Act::Op(args) => {
                etcdctl(endpoint, &substitute(args, endpoint));
            }
            Act::Line(text) => watcher.write_line(text),
            Act::Lines(n) => watcher.wait_for_lines(*n),
            Act::Text(text) | Act::ErrText(text) => {
                let stderr = matches!(act, Act::ErrText(_));
                let text = text.as_bytes();
                watcher.wait_for(stderr, |out| out.windows(text.len()).any(|w| w == text));
            }
            Act::CloseStdin => watcher.close_stdin(),
            Act::Exit => watcher.wait_exit(),
        }
    }
    let (stdout, stderr, code) = watcher.finish();
    (mask(&stdout, endpoint), mask(&stderr, endpoint), code)
}

fn mask(bytes: &[u8], endpoint: &str) -> String {
    let text = String::from_utf8_lossy(bytes).replace(endpoint, EP);
    mask_capnslog(&text)
}

/// Runs every case on the reference side and on the candidate side, each against its own
/// fresh server; their masked outputs and exit statuses must be equal.
fn compare(reference: Side, candidate: Side) {
    common::require_oracle();
    let (reference_server, candidate_server) = common::start_servers(&reference, &candidate);
    let mut report = String::new();
    let mut compared = 0;
    for (index, case) in cases().into_iter().enumerate() {
        let want = run_case(&reference.client, &case, &reference_server.endpoint);
        let mut got = run_case(&candidate.client, &case, &candidate_server.endpoint);
        if candidate.client != Path::new(ETCDCTL) {
            got.0 = without_usage_line(&got.0, "--progress-notify");
            got.1 = without_usage_line(&got.1, "--progress-notify");
        }
        compared += 1;
        if want != got {
            let _ = writeln!(
                report,
                "\n=== case {index}: {:?} (env {:?}, before {:?}, script {:?})\n--- exit: {} {:?}, {} {:?}\n--- stdout {}:\n{}\n--- stdout {}:\n{}\n--- stderr {}:\n{}\n--- stderr {}:\n{}",
                case.args,
                case.env,
                case.before,
                case.script,
                reference.name,
                want.2,
                candidate.name,
                got.2,
                reference.name,
                want.0,
                candidate.name,
                got.0,
                reference.name,
                want.1,
                candidate.name,
                got.1,
            );
        }
    }
    common::assert_no_differences(&report, &reference, &candidate);
    assert!(compared > 30, "only {compared} cases ran");
}

#[test]
fn steadctl_watch_matches_etcdctl_byte_for_byte() {
    compare(etcdctl_on_etcd(), steadctl_on_etcd());
}

#[test]
fn etcdctl_watch_on_stead_matches_etcdctl_on_etcd() {
    compare(etcdctl_on_etcd(), etcdctl_on_stead());
}

#[test]
fn steadctl_watch_on_stead_matches_etcdctl_on_etcd() {
    compare(etcdctl_on_etcd(), steadctl_on_stead());
}

/// The comparisons could pass with both tools broken the same way; pin a few outputs of
/// steadctl (on etcd) to their known values.
#[test]
fn steadctl_watch_outputs_known_values() {
    common::require_oracle();
    let server = Server::start(common::etcd_server);
    let endpoint = server.endpoint.clone();
    let steadctl = common::steadctl();
    etcdctl(
        &endpoint,
        &["put".to_string(), "foo".to_string(), "bar".to_string()],
    );
    etcdctl(&endpoint, &["del".to_string(), "foo".to_string()]);

    let history = run_case(
        &steadctl,
        &watch(&["watch", "foo", "--rev", "1", "--prev-kv"]).script(vec![Act::Lines(8)]),
        &endpoint,
    );
    assert_eq!(history.0, "PUT\nfoo\nbar\nDELETE\nfoo\nbar\nfoo\n\n");
    assert_eq!(history.2, None, "still watching when killed");

    let json = run_case(
        &steadctl,
        &watch(&["watch", "foo", "--rev", "3", "-w", "json"]).script(vec![Act::Lines(1)]),
        &endpoint,
    );
    assert!(
        json.0.ends_with(
            "\"revision\":3,\"raft_term\":2},\"Events\":[{\"type\":1,\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":3}}],\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n"
        ),
        "{}",
        json.0
    );

    etcdctl(&endpoint, &["compaction".to_string(), "3".to_string()]);
    let compacted = run_case(
        &steadctl,
        &watch(&["watch", "foo", "--rev", "1"]).script(vec![Act::Exit]),
        &endpoint,
    );
    assert_eq!(compacted.0, "");
    assert_eq!(
        compacted.1,
        "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n"
    );
    assert_eq!(compacted.2, Some(5));

    let interactive = run_case(
        &steadctl,
        &watch(&["watch", "-i"]).script(vec![
            line("watch foo"),
            line("progress"),
            text("progress notify: 3\n"),
            Act::CloseStdin,
            Act::Exit,
        ]),
        &endpoint,
    );
    assert_eq!(interactive.0, "progress notify: 3\n");
    assert_eq!(
        interactive.1,
        "Error: Error reading watch request line: EOF\n"
    );
    assert_eq!(interactive.2, Some(3));
}
