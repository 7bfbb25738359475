//! Test support for steadctl's end-to-end tests: which server binary the
//! tests talk to (and with which arguments), starting and stopping server
//! processes on free loopback ports, running a client binary (to its end, or
//! as a [`Running`] process whose output a test waits for), the sides of a
//! comparison, and the masks every comparison applies.
//!
//! Servers: [`etcd_server`] (etcd 3.4, the oracle) and [`stead_server`] (the
//! `stead` binary of this build, with the same arguments).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Debian's etcd 3.4 server and client, the oracle.
pub const ETCD: &str = "/usr/bin/etcd";
pub const ETCDCTL: &str = "/usr/bin/etcdctl";

/// Identity shared by every server a test starts, so member and cluster
/// IDs (derived from name, peer URLs and token) are equal everywhere.
pub const MEMBER_NAME: &str = "default";
pub const ADVERTISED_PEER_URL: &str = "http://127.0.0.1:2380";
pub const ADVERTISED_CLIENT_URL: &str = "http://127.0.0.1:2379";
pub const CLUSTER_TOKEN: &str = "steadctl-compat";

/// Placeholder for the endpoint of the server a client talks to, in a case's
/// arguments and environment.
pub const EP: &str = "@EP";

/// How long to wait for output that should come at once; only reached when a
/// client is broken.
pub const OUTPUT_DEADLINE: Duration = Duration::from_secs(15);

/// Fails the test (never skips it) when the oracle is not installed.
pub fn require_oracle() {
    for path in [ETCD, ETCDCTL] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: this test compares steadctl with etcd 3.4's etcdctl. \
             Run scripts/test (it installs Debian's etcd-server and etcd-client), \
             or `apt-get install -y etcd-server etcd-client`."
        );
    }
}

/// How to start one server: binary and arguments.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub binary: PathBuf,
    pub args: Vec<String>,
}

/// etcd 3.4, single member, with the shared identity, listening for
/// clients on `client_port` and for peers on `peer_port`.
pub fn etcd_server(data_dir: &Path, client_port: u16, peer_port: u16) -> ServerCommand {
    let args = [
        "--name",
        MEMBER_NAME,
        "--data-dir",
        &data_dir.display().to_string(),
        "--listen-client-urls",
        &format!("http://127.0.0.1:{client_port}"),
        "--advertise-client-urls",
        ADVERTISED_CLIENT_URL,
        "--listen-peer-urls",
        &format!("http://127.0.0.1:{peer_port}"),
        "--initial-advertise-peer-urls",
        ADVERTISED_PEER_URL,
        "--initial-cluster",
        &format!("{MEMBER_NAME}={ADVERTISED_PEER_URL}"),
        "--initial-cluster-token",
        CLUSTER_TOKEN,
        "--initial-cluster-state",
        "new",
        // Elect the single member quickly.
        "--heartbeat-interval",
        "10",
        "--election-timeout",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ServerCommand {
        binary: PathBuf::from(ETCD),
        args,
    }
}

/// The `stead` server with the same arguments as [`etcd_server`] (stead takes etcd's flags).
pub fn stead_server(data_dir: &Path, client_port: u16, peer_port: u16) -> ServerCommand {
    ServerCommand {
        binary: stead(),
        args: etcd_server(data_dir, client_port, peer_port).args,
    }
}

/// The `stead` binary of this build: next to this test in the target directory. `cargo test
/// --workspace` (what `scripts/test` runs) builds it before any test runs.
pub fn stead() -> PathBuf {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.join("stead")))
        .expect("the target directory of this test");
    assert!(
        binary.exists(),
        "{} is missing: build the server first (`cargo build -p stead-server`), or run \
         scripts/test, which builds the whole workspace",
        binary.display()
    );
    binary
}

/// Ports handed out by [`free_port`] in this process, never handed twice
/// (tests run in parallel threads).
static PORTS_GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A free loopback port (five digits, so that outputs which embed it keep
/// the same width whichever port a run gets).
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        let mut given = PORTS_GIVEN.lock().expect("port registry");
        if port >= 10_000 && !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A loopback port nothing listens on, taken below the kernel's ephemeral
/// range (32768 and up by default) so no server started by a test can get
/// it.
pub fn closed_port() -> u16 {
    for port in 20_000..32_000 {
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no closed loopback port in 20000..32000");
}

/// A running server; killed and its data removed on drop.
pub struct Server {
    child: Child,
    data_dir: tempfile::TempDir,
    /// `127.0.0.1:<port>` of its client listener.
    pub endpoint: String,
}

impl Server {
    /// Starts a server made by `make(data_dir, client_port, peer_port)`
    /// and waits until it serves a linearizable read.
    pub fn start(make: fn(&Path, u16, u16) -> ServerCommand) -> Server {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let client_port = free_port();
        let peer_port = free_port();
        let command = make(&data_dir.path().join("data"), client_port, peer_port);
        let log = std::fs::File::create(data_dir.path().join("server.log")).expect("log file");
        let child = Command::new(&command.binary)
            .args(&command.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", command.binary.display()));
        let server = Server {
            child,
            data_dir,
            endpoint: format!("127.0.0.1:{client_port}"),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.endpoint).is_err() {
            assert!(
                Instant::now() < deadline,
                "server at {} never listened",
                self.endpoint
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        loop {
            let probe = Command::new(ETCDCTL)
                .args([
                    "--endpoints",
                    &self.endpoint,
                    "--command-timeout",
                    "1s",
                    "get",
                    "readiness-probe",
                ])
                .env_clear()
                .output()
                .expect("run etcdctl");
            if probe.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server at {} never served a read: {}",
                self.endpoint,
                String::from_utf8_lossy(&probe.stderr)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the server logged: the only trace of it afterwards.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.data_dir.path().join("server.log"))
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(SERVER_LOG_LINES_SHOWN)..];
            eprintln!(
                "--- log of the server at {} (last {} lines):\n{}",
                self.endpoint,
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// How much of a server's log a failing test shows.
const SERVER_LOG_LINES_SHOWN: usize = 60;

/// The steadctl binary cargo built for this test run.
pub fn steadctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_steadctl"))
}

/// Starts `binary` with `args`, only `env` in its environment, `stdin` as
/// standard input, and its standard output and error piped; fails the test if
/// it cannot start.
pub fn spawn(binary: &Path, args: &[String], env: &[(String, String)], stdin: Stdio) -> Child {
    Command::new(binary)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

/// Runs `binary` with `args`, `stdin` as standard input and only `env` in
/// its environment.
pub fn run(binary: &Path, args: &[String], stdin: &[u8], env: &[(String, String)]) -> Output {
    let mut child = spawn(binary, args, env, Stdio::piped());
    if let Some(mut input) = child.stdin.take() {
        // The program may exit without reading; a broken pipe is fine.
        let _ = input.write_all(stdin);
    }
    child.wait_with_output().expect("wait for the client")
}

/// A client binary and the server it talks to: one side of a comparison.
pub struct Side {
    pub name: &'static str,
    pub client: PathBuf,
    pub server: fn(&Path, u16, u16) -> ServerCommand,
}

/// The reference every comparison is made against.
pub fn etcdctl_on_etcd() -> Side {
    Side {
        name: "etcdctl on etcd",
        client: PathBuf::from(ETCDCTL),
        server: etcd_server,
    }
}

/// A candidate: steadctl against etcd 3.4 (the CLI alone).
pub fn steadctl_on_etcd() -> Side {
    Side {
        name: "steadctl on etcd",
        client: steadctl(),
        server: etcd_server,
    }
}

/// A candidate: etcdctl 3.4 against stead (the server, as the real etcdctl
/// sees it).
pub fn etcdctl_on_stead() -> Side {
    Side {
        name: "etcdctl on stead",
        client: PathBuf::from(ETCDCTL),
        server: stead_server,
    }
}

/// A candidate: steadctl against stead (the whole stack).
pub fn steadctl_on_stead() -> Side {
    Side {
        name: "steadctl on stead",
        client: steadctl(),
        server: stead_server,
    }
}

/// Starts a fresh server for each side of a comparison, both at once;
/// returns the reference's and the candidate's, in that order.
pub fn start_servers(reference: &Side, candidate: &Side) -> (Server, Server) {
    std::thread::scope(|scope| {
        let reference_server = scope.spawn(|| Server::start(reference.server));
        let candidate_server = scope.spawn(|| Server::start(candidate.server));
        (
            reference_server.join().expect("start the reference server"),
            candidate_server.join().expect("start the candidate server"),
        )
    })
}

/// Fails the test unless `report` (the cases where the candidate's masked
/// output or exit status differs from the reference's) is empty.
#[track_caller]
pub fn assert_no_differences(report: &str, reference: &Side, candidate: &Side) {
    assert!(
        report.is_empty(),
        "{} differs from {}:{report}",
        candidate.name,
        reference.name
    );
}

/// Runs etcdctl with `--endpoints=<endpoint>` and `args` (and an empty
/// environment), to set up or change a server's state; fails the test if it
/// fails, returns its standard output.
pub fn etcdctl(endpoint: &str, args: &[String]) -> String {
    let mut all = vec![format!("--endpoints={endpoint}")];
    all.extend(args.iter().cloned());
    let output = run(Path::new(ETCDCTL), &all, b"", &[]);
    assert!(
        output.status.success(),
        "etcdctl {all:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A thread that appends everything read from `stream` to `into`, until end
/// of file or a read error.
fn collect(mut stream: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                return;
            }
            into.lock()
                .expect("output buffer")
                .extend_from_slice(&buffer[..n]);
        }
    })
}

/// The number of newlines in `bytes`.
pub fn count_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// A client left running (a watcher, a keep-alive loop) whose standard output
/// and error are collected by two threads while a test drives it and waits
/// for its output; [`Running::finish`] kills it unless it ended by itself.
pub struct Running {
    child: Child,
    /// Open when the client was started with a piped standard input.
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Starts `client` as [`spawn`] does, with `stdin` as its standard input
    /// ([`Stdio::piped`] to drive it with [`Running::write_line`]).
    pub fn start(
        client: &Path,
        args: &[String],
        env: &[(String, String)],
        stdin: Stdio,
    ) -> Running {
        let mut child = spawn(client, args, env, stdin);
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), stdout.clone()),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Running {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// Whether the client has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Polls until `done` holds for standard output (or error), the client
    /// exits, or [`OUTPUT_DEADLINE`] passes.
    pub fn wait_for(&mut self, stderr: bool, done: impl Fn(&[u8]) -> bool) {
        let deadline = Instant::now() + OUTPUT_DEADLINE;
        let stream = if stderr { &self.stderr } else { &self.stdout }.clone();
        loop {
            if done(&stream.lock().expect("output buffer")) || self.exited() {
                return;
            }
            if Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls until standard output holds `n` lines, the client exits, or
    /// [`OUTPUT_DEADLINE`] passes.
    pub fn wait_for_lines(&mut self, n: usize) {
        self.wait_for(false, |out| count_lines(out) >= n);
    }

    /// Polls until the client exits or [`OUTPUT_DEADLINE`] passes.
    pub fn wait_exit(&mut self) {
        let deadline = Instant::now() + OUTPUT_DEADLINE;
        while !self.exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Writes `text` and a newline to the client's standard input, if it is
    /// open; errors are ignored (the client may have exited; its output tells).
    pub fn write_line(&mut self, text: &str) {
        if let Some(stdin) = &mut self.stdin {
            let _ = stdin.write_all(format!("{text}\n").as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Closes the client's standard input.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Closes standard input and kills the client if it still runs; returns
    /// its standard output, standard error and exit status (`None` when
    /// killed).
    pub fn finish(mut self) -> (Vec<u8>, Vec<u8>, Option<i32>) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the client");
        for reader in self.readers {
            let _ = reader.join();
        }
        let stdout = self.stdout.lock().expect("output buffer").clone();
        let stderr = self.stderr.lock().expect("output buffer").clone();
        (stdout, stderr, status.code())
    }
}

/// Replaces the value after each `marker` up to `end` with `<MASKED>`.
pub fn mask_after(text: &str, marker: &str, end: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(marker) {
        out.push_str(&rest[..pos + marker.len()]);
        rest = &rest[pos + marker.len()..];
        let stop = rest.find(end).unwrap_or(rest.len());
        out.push_str("<MASKED>");
        rest = &rest[stop..];
    }
    out.push_str(rest);
    out
}

/// An output as text, with what varies from run to run and from side to side
/// in any command's output masked: the side's `endpoint` address (as
/// `<EP>`), zap's `"ts"` timestamps, clientv3's random client UUID
/// (`endpoint://client-<UUID>/`) and capnslog's timestamps.
pub fn mask_volatile(bytes: &[u8], endpoint: &str) -> String {
    let text = String::from_utf8_lossy(bytes).replace(endpoint, "<EP>");
    let mut text = mask_after(&text, "\"ts\":\"", '"');
    text = mask_after(&text, "endpoint://client-", '/');
    mask_capnslog(&text)
}

/// Masks capnslog's `2026-11-21 21:13:57.532763 ` line prefix.
pub fn mask_capnslog(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let b = line.as_bytes();
            let looks_like_time = b.len() > 27
                && b[4] == b'-'
                && b[7] == b'-'
                && b[10] == b' '
                && b[13] == b':'
                && b[16] == b':'
                && b[19] == b'.'
                && b[26] == b' ';
            if looks_like_time {
                format!("<TS>{}", &line[26..])
            } else {
                line.to_string()
            }
        })
        .collect()
}

/// `text` without the usage line of `flag` (`--count-only`): for a usage text of steadctl,
/// which has a few of etcdctl 3.5's flags that etcdctl 3.4 lacks.
pub fn without_usage_line(text: &str, flag: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| !line.trim_start().starts_with(flag))
        .collect()
}

/// Replaces the digits after each `marker` with `<N>`.
pub fn mask_number_after(text: &str, marker: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(marker) {
        out.push_str(&rest[..pos + marker.len()]);
        rest = &rest[pos + marker.len()..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        out.push_str("<N>");
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

fn is_version(cell: &str) -> bool {
    let parts: Vec<&str> = cell.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// Masks the server version in `endpoint status` output, in every format
/// (etcd 3.4.23 answers with its version, stead with 3.5.0).
pub fn mask_version(text: &str) -> String {
    let mut text = mask_after(text, "\"version\":\"", '"');
    text = mask_after(&text, "\"Version\" : \"", '"');
    // Simple format: the third of the comma-separated fields.
    text = text
        .split_inclusive('\n')
        .map(|line| {
            let mut fields: Vec<&str> = line.split(", ").collect();
            if fields.len() == 10 && is_version(fields[2]) {
                fields[2] = "<VERSION>";
            }
            fields.join(", ")
        })
        .collect();
    normalize_table(&text, is_version, "<VERSION>")
}

/// Normalises a tablewriter table whose cells vary in width: keeps cell
/// contents, drops padding, replaces cells `matches` accepts by `with`.
pub fn normalize_table(text: &str, matches: impl Fn(&str) -> bool, with: &str) -> String {
    if !text.starts_with('+') {
        return text.to_string();
    }
    text.lines()
        .map(|line| {
            if line.starts_with('+') {
                "+".to_string()
            } else if line.starts_with('|') {
                line.split('|')
                    .map(|cell| {
                        let cell = cell.trim();
                        if matches(cell) { with } else { cell }
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loopback port outside the kernel's range of ephemeral ports (which
/// ends at 60999 by default), never handed out twice in this process. A test
/// can stop a server listening there and start another on the same port
/// later without an outgoing connection taking the port in between.
pub fn stable_port() -> u16 {
    const FIRST: u16 = 61_000;
    let span = u32::from(u16::MAX - FIRST);
    let offset = std::process::id() % span;
    for step in 0..span {
        let port = FIRST + u16::try_from((offset + step) % span).expect("port in range");
        let mut given = PORTS_GIVEN.lock().expect("port registry");
        if given.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        given.push(port);
        return port;
    }
    panic!("no free loopback port in {FIRST}..65535");
}

/// The ports of one member of a [`Cluster`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberPorts {
    pub client: u16,
    pub peer: u16,
}

impl MemberPorts {
    /// Two [`stable_port`]s, so that a cluster can be started again on them.
    pub fn new() -> MemberPorts {
        MemberPorts {
            client: stable_port(),
            peer: stable_port(),
        }
    }

    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer)
    }

    /// `127.0.0.1:<client port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client)
    }
}

/// The cluster token of every [`Cluster`]: with the same names and ports,
/// two clusters get the same member and cluster IDs.
pub const CLUSTER_TOKEN_MULTI: &str = "steadctl-compat-cluster";

/// etcd's `HealthInterval`: how long a member must have been connected to
/// every voting member before etcd accepts a new member.
pub const MEMBER_HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// One server process of a [`Cluster`].
struct ClusterProcess {
    name: String,
    ports: MemberPorts,
    child: Child,
    data_dir: tempfile::TempDir,
}

/// A cluster of etcd 3.4 or stead members on loopback ports: members `m1`,
/// `m2`, ... each advertising the URLs it listens on. Members can join
/// later ([`Cluster::join`]). Every process is killed and its data removed
/// on drop; a failing test shows the end of each member's log.
pub struct Cluster {
    /// The server binary every member runs.
    server: PathBuf,
    processes: Vec<ClusterProcess>,
    /// When the last member started: etcd accepts new members only when
    /// every voting member has been connected for [`MEMBER_HEALTH_INTERVAL`].
    last_start: Instant,
}

/// Slower than the single-member server's timing, so that a loaded machine
/// does not see spurious elections (which would move the leadership the
/// tests rely on).
const CLUSTER_HEARTBEAT_MS: &str = "50";
const CLUSTER_ELECTION_TIMEOUT_MS: &str = "1000";

impl Cluster {
    /// Starts a member of `server` (etcd's or stead's binary) for each
    /// entry of `ports` (named `m1`, `m2`, ...), waits until each serves a
    /// linearizable read, and makes `m1` the leader.
    pub fn start(server: &Path, ports: &[MemberPorts]) -> Cluster {
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("m{}={}", i + 1, p.peer_url()))
            .collect();
        let initial = initial.join(",");
        let mut cluster = Cluster {
            server: server.to_path_buf(),
            processes: Vec::new(),
            last_start: Instant::now(),
        };
        for (i, member_ports) in ports.iter().enumerate() {
            let process = spawn_member(
                &cluster.server,
                &format!("m{}", i + 1),
                *member_ports,
                &initial,
                "new",
            );
            cluster.processes.push(process);
        }
        for process in &cluster.processes {
            wait_serving(&process.ports.endpoint());
        }
        cluster.last_start = Instant::now();
        cluster.make_leader(0);
        cluster
    }

    /// `127.0.0.1:<client port>` of the `index`-th member (from 0).
    pub fn endpoint(&self, index: usize) -> String {
        self.processes[index].ports.endpoint()
    }

    /// Every member's endpoint, comma-separated, in order.
    pub fn endpoints(&self) -> String {
        self.processes
            .iter()
            .map(|p| p.ports.endpoint())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The members' IDs (from `member list`), by name.
    pub fn member_ids(&self) -> Vec<(String, u64)> {
        member_ids(&self.endpoint(0))
    }

    /// Makes the `index`-th member the leader (etcdctl's `move-leader`,
    /// if it is not), and waits until every member sees it so.
    pub fn make_leader(&self, index: usize) {
        let name = self.processes[index].name.clone();
        let ids = self.member_ids();
        let id = ids
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
            .unwrap_or_else(|| panic!("{name} is not in the member list {ids:?}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leaders = self.leaders();
            if leaders.iter().all(|leader| *leader == id) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} ({id:x}) never became the leader: members see {leaders:x?}"
            );
            if leaders
                .iter()
                .all(|leader| *leader == leaders[0] && *leader != 0)
            {
                let _ = run(
                    Path::new(ETCDCTL),
                    &[
                        format!("--endpoints={}", self.endpoints()),
                        "move-leader".to_string(),
                        format!("{id:x}"),
                    ],
                    b"",
                    &[],
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The leader each member sees (0 when it cannot tell).
    fn leaders(&self) -> Vec<u64> {
        self.processes
            .iter()
            .map(|p| {
                let output = run(
                    Path::new(ETCDCTL),
                    &[
                        format!("--endpoints={}", p.ports.endpoint()),
                        "--command-timeout=2s".to_string(),
                        "endpoint".to_string(),
                        "status".to_string(),
                        "-w".to_string(),
                        "json".to_string(),
                    ],
                    b"",
                    &[],
                );
                json_number_after(&String::from_utf8_lossy(&output.stdout), "\"leader\":")
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Waits until every member has been connected to the others for
    /// etcd's health interval, after which etcd accepts new members.
    pub fn settle(&self) {
        let ready = self.last_start + MEMBER_HEALTH_INTERVAL + Duration::from_millis(500);
        std::thread::sleep(ready.saturating_duration_since(Instant::now()));
    }

    /// Starts a member named `name` on `ports`, which `member add` has
    /// added (as a learner or not), and waits until it has caught up with
    /// the leader's log (so that it can be promoted).
    pub fn join(&mut self, name: &str, ports: MemberPorts) {
        let mut initial: Vec<String> = member_peer_urls(&self.endpoint(0))
            .into_iter()
            .filter(|(member_name, _)| !member_name.is_empty())
            .map(|(member_name, url)| format!("{member_name}={url}"))
            .collect();
        initial.push(format!("{name}={}", ports.peer_url()));
        let process = spawn_member(&self.server, name, ports, &initial.join(","), "existing");
        self.processes.push(process);
        self.last_start = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leader_index = raft_index(&self.endpoint(0));
            let joined_applied = raft_applied_index(&ports.endpoint());
            if let (Some(leader), Some(joined)) = (leader_index, joined_applied)
                && joined >= leader
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never caught up with the leader"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The leader learns of the follower's progress with its next
        // heartbeat.
        std::thread::sleep(Duration::from_millis(500));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        if std::thread::panicking() {
            for process in &self.processes {
                let log = std::fs::read_to_string(process.data_dir.path().join("server.log"))
                    .unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(SERVER_LOG_LINES_SHOWN)..];
                eprintln!(
                    "--- log of cluster member {} at {} (last {} lines):\n{}",
                    process.name,
                    process.ports.endpoint(),
                    tail.len(),
                    tail.join("\n")
                );
            }
        }
    }
}

/// Starts one member of a multi-member cluster, running `server`.
fn spawn_member(
    server: &Path,
    name: &str,
    ports: MemberPorts,
    initial_cluster: &str,
    state: &str,
) -> ClusterProcess {
    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let log = std::fs::File::create(data_dir.path().join("server.log")).expect("log file");
    let args = [
        "--name",
        name,
        "--data-dir",
        &data_dir.path().join("data").display().to_string(),
        "--listen-client-urls",
        &ports.client_url(),
        "--advertise-client-urls",
        &ports.client_url(),
        "--listen-peer-urls",
        &ports.peer_url(),
        "--initial-advertise-peer-urls",
        &ports.peer_url(),
        "--initial-cluster",
        initial_cluster,
        "--initial-cluster-token",
        CLUSTER_TOKEN_MULTI,
        "--initial-cluster-state",
        state,
        "--heartbeat-interval",
        CLUSTER_HEARTBEAT_MS,
        "--election-timeout",
        CLUSTER_ELECTION_TIMEOUT_MS,
    ];
    let child = Command::new(server)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
    ClusterProcess {
        name: name.to_string(),
        ports,
        child,
        data_dir,
    }
}

/// Waits until the member at `endpoint` serves a linearizable read.
fn wait_serving(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = run(
            Path::new(ETCDCTL),
            &[
                format!("--endpoints={endpoint}"),
                "--command-timeout=1s".to_string(),
                "get".to_string(),
                "readiness-probe".to_string(),
            ],
            b"",
            &[],
        );
        if probe.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster member at {endpoint} never served a read: {}",
            String::from_utf8_lossy(&probe.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The number after the first `marker` in `text`.
pub fn json_number_after(text: &str, marker: &str) -> Option<u64> {
    let start = text.find(marker)? + marker.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `endpoint status -w json` of one endpoint (empty when it fails).
fn status_json(endpoint: &str) -> String {
    let output = run(
        Path::new(ETCDCTL),
        &[
            format!("--endpoints={endpoint}"),
            "--command-timeout=2s".to_string(),
            "endpoint".to_string(),
            "status".to_string(),
            "-w".to_string(),
            "json".to_string(),
        ],
        b"",
        &[],
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn raft_index(endpoint: &str) -> Option<u64> {
    json_number_after(&status_json(endpoint), "\"raftIndex\":")
}

fn raft_applied_index(endpoint: &str) -> Option<u64> {
    json_number_after(&status_json(endpoint), "\"raftAppliedIndex\":")
}

/// The members of `member list -w json` at `endpoint`: ID, name (empty
/// while unstarted) and peer URLs.
fn member_list_json(endpoint: &str) -> Vec<(u64, String, Vec<String>)> {
    let listed = etcdctl(
        endpoint,
        &[
            "member".to_string(),
            "list".to_string(),
            "-w".to_string(),
            "json".to_string(),
        ],
    );
    let Some(start) = listed.find("\"members\":[") else {
        return Vec::new();
    };
    listed[start..]
        .split("{\"ID\":")
        .skip(1)
        .map(|member| {
            let id = json_number_after(member, "").unwrap_or(0);
            let name = member
                .split_once("\"name\":\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(String::new(), |(name, _)| name.to_string());
            let urls = member
                .split_once("\"peerURLs\":[")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map_or(Vec::new(), |(list, _)| {
                    list.split(',')
                        .map(|url| url.trim_matches('"').to_string())
                        .collect()
                });
            (id, name, urls)
        })
        .collect()
}

/// Every member's ID and name, as the member at `endpoint` lists them.
pub fn member_ids(endpoint: &str) -> Vec<(String, u64)> {
    member_list_json(endpoint)
        .into_iter()
        .map(|(id, name, _)| (name, id))
        .collect()
}

/// `(name, peer URL)` of every member's peer URLs, as the member at
/// `endpoint` lists them.
fn member_peer_urls(endpoint: &str) -> Vec<(String, String)> {
    member_list_json(endpoint)
        .into_iter()
        .flat_map(|(_, name, urls)| urls.into_iter().map(move |url| (name.clone(), url)))
        .collect()
}
