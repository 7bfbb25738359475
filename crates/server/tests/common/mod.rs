//! Test harness: the real `stead` binary on free loopback ports with a temporary data dir,
//! talked to with a real client (the `etcd-client` crate).

#![allow(dead_code)] // each test file uses a part

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Liveness bound for start-up (not a performance assertion).
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Bound on one question to one member while looking for the leader.
const ASK_WITHIN: Duration = Duration::from_secs(5);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A `stead` process and where it lives.
pub struct Member {
    child: Option<Child>,
    pub name: String,
    pub data_dir: PathBuf,
    pub client_port: u16,
    pub peer_port: u16,
    log_path: PathBuf,
    pub extra_args: Vec<String>,
    /// Stopped with SIGSTOP: it accepts connections (the kernel does) but answers nothing.
    paused: bool,
    /// Environment of the next launch (a failpoint, say).
    pub env: Vec<(String, String)>,
    /// `--initial-cluster` of a member of a bigger cluster (default: itself alone).
    pub initial_cluster: Option<String>,
}

impl Member {
    /// Starts a single-member cluster in `data_dir` and waits until it serves clients.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Member {
        let mut member = Member::spawn(data_dir, extra_args);
        member.wait_ready();
        member
    }

    /// Starts the process without waiting for it to be ready.
    pub fn spawn(data_dir: &Path, extra_args: &[&str]) -> Member {
        let mut member = Member::configure(data_dir, extra_args);
        member.launch();
        member
    }

    /// A member's ports and arguments, not started.
    pub fn configure(data_dir: &Path, extra_args: &[&str]) -> Member {
        Member {
            child: None,
            name: "default".to_owned(),
            data_dir: data_dir.to_path_buf(),
            client_port: free_port(),
            peer_port: free_port(),
            log_path: data_dir.with_extension("log"),
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            paused: false,
            env: Vec::new(),
            initial_cluster: None,
        }
    }

    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--name".to_owned(),
            self.name.clone(),
            "--data-dir".to_owned(),
            self.data_dir.display().to_string(),
            "--listen-client-urls".to_owned(),
            self.client_url(),
            "--advertise-client-urls".to_owned(),
            self.client_url(),
            "--listen-peer-urls".to_owned(),
            self.peer_url(),
            "--initial-advertise-peer-urls".to_owned(),
            self.peer_url(),
            "--initial-cluster".to_owned(),
            self.initial_cluster
                .clone()
                .unwrap_or_else(|| format!("{}={}", self.name, self.peer_url())),
        ];
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(&self.log_path).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_stead"))
            .args(self.args())
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn stead");
        self.child = Some(child);
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits for the "ready to serve client requests" line; panics with the log if the
    /// process exits or does not get there.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if self.log().contains("ready to serve client requests") {
                return;
            }
            if let Some(status) = self.try_exit_status() {
                panic!(
                    "stead exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "stead not ready within {READY_WITHIN:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status, if the process has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// Waits for the process to exit on its own (liveness bound), returning its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.try_exit_status() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "stead did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process dies at once, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process freezes (to its peers, a partition); `resume` thaws it.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
        self.paused = true;
    }

    /// SIGCONT after [`Member::pause`].
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.paused = false;
    }

    /// Whether the process runs and is not paused: it answers.
    pub fn answers(&self) -> bool {
        self.is_running() && !self.paused
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.as_ref().expect("running").id();
        // SAFETY: kill(2) with a pid we spawned and still own.
        let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(sent, 0, "kill -{signal} {pid}");
    }

    /// Whether the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.as_ref().expect("running").id();
        // SAFETY: kill(2) with a pid we spawned and still own.
        let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "kill -TERM {pid}");
        self.wait_exit()
    }

    /// Starts the process again on the same data dir and ports; waits until ready.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.launch();
        self.wait_ready();
    }

    /// Starts the process again on the same data dir and ports, without waiting.
    pub fn relaunch(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.launch();
    }

    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.client_url()], None)
            .await
            .expect("connect")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The gRPC status of a failed call.
pub fn status_of(err: etcd_client::Error) -> (tonic::Code, String) {
    match err {
        etcd_client::Error::GRpcStatus(status) => (status.code(), status.message().to_owned()),
        other => panic!("not a gRPC status: {other:?}"),
    }
}

/// Members of one cluster on loopback ports, each with its own data dir under one directory.
pub struct Cluster {
    pub members: Vec<Member>,
}

impl Cluster {
    /// Starts `size` members (`m0`, `m1`, ...) of a new cluster in `dir`, all at once (each
    /// waits for a quorum), and waits until every one serves clients.
    pub fn start(dir: &Path, size: usize, extra_args: &[&str]) -> Cluster {
        let mut members: Vec<Member> = (0..size)
            .map(|i| {
                let mut member = Member::configure(&dir.join(format!("m{i}")), extra_args);
                member.name = format!("m{i}");
                member
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|member| format!("{}={}", member.name, member.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        for member in &mut members {
            member.initial_cluster = Some(initial_cluster.clone());
            member.launch();
        }
        for member in &mut members {
            member.wait_ready();
        }
        Cluster { members }
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// A client of every member (the client picks among them).
    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect(self.endpoints(), None)
            .await
            .expect("connect")
    }

    /// The index of the member that leads, as running members see it (asked through Status
    /// until one answers with a leader that runs; liveness bound 60 s). Paused members are not
    /// asked (a connection to one hangs), and each question has its own bound.
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            for member in self.members.iter().filter(|m| m.answers()) {
                let asked = tokio::time::timeout(ASK_WITHIN, async {
                    let mut client = etcd_client::Client::connect([member.client_url()], None)
                        .await
                        .ok()?;
                    let leader = client.status().await.ok()?.leader();
                    if leader == 0 {
                        return None;
                    }
                    let members = client.member_list().await.ok()?;
                    members
                        .members()
                        .iter()
                        .find(|m| m.id() == leader)
                        .map(|m| m.name().to_owned())
                })
                .await;
                let Ok(Some(name)) = asked else {
                    continue;
                };
                if let Some(index) = self
                    .members
                    .iter()
                    .position(|m| m.name == name && m.answers())
                {
                    return index;
                }
            }
            assert!(Instant::now() < deadline, "no leader among running members");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
