//! End to end: the `stead-bench` binary against Debian's etcd 3.4.
//!
//! Each test starts its own single-member etcd on free loopback ports with a
//! temporary data directory, runs the benchmark binary with `--json`, and
//! checks the JSON line (workload, total, no errors, positive latencies).
//! For `put` it also counts, with its own range request, that the keys
//! were really written. etcd missing is a failure, not a skip: run
//! `scripts/test`, which installs it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use stead_proto::etcdserverpb::RangeRequest;
use stead_proto::etcdserverpb::kv_client::KvClient;

const ETCD: &str = "/usr/bin/etcd";
const BENCH: &str = env!("CARGO_BIN_EXE_stead-bench");
const ETCD_READY_MAX: Duration = Duration::from_secs(20);

/// A running etcd, killed and its data removed on drop.
struct Etcd {
    child: Child,
    data_dir: PathBuf,
    endpoint: String,
}

impl Etcd {
    fn start() -> Etcd {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: these tests run stead-bench against etcd 3.4. Run scripts/test \
             (it installs Debian's etcd-server), or `apt-get install -y etcd-server`."
        );
        let data_dir = temp_dir();
        let client_port = free_port();
        let peer_port = free_port();
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(ETCD)
            .args(["--name", "bench"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("bench={peer_url}")])
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let etcd = Etcd {
            child,
            data_dir,
            endpoint: format!("127.0.0.1:{client_port}"),
        };
        etcd.wait_ready();
        etcd
    }

    /// Waits until a linearizable read succeeds (a leader is elected).
    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if self.count_keys(b"\0", b"\0").is_ok() {
                return;
            }
            assert!(
                started.elapsed() < ETCD_READY_MAX,
                "etcd at {} not ready after {ETCD_READY_MAX:?}",
                self.endpoint
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Number of keys in `[key, end)`, by a count-only range request.
    fn count_keys(&self, key: &'static [u8], end: &'static [u8]) -> Result<i64, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let endpoint = format!("http://{}", self.endpoint);
        runtime.block_on(async move {
            let mut kv = KvClient::connect(endpoint)
                .await
                .map_err(|error| error.to_string())?;
            let response = kv
                .range(RangeRequest {
                    key: Bytes::from_static(key),
                    range_end: Bytes::from_static(end),
                    count_only: true,
                    ..RangeRequest::default()
                })
                .await
                .map_err(|status| status.to_string())?;
            Ok(response.into_inner().count)
        })
    }

    /// Runs stead-bench against this etcd.
    fn bench(&self, args: &[&str]) -> Output {
        Command::new(BENCH)
            .args(["--endpoints", &self.endpoint])
            .args(args)
            .output()
            .expect("run stead-bench")
    }

    /// Runs stead-bench with `--json` and returns the parsed line, checking
    /// what every successful run must show.
    fn bench_json(&self, workload: &str, args: &[&str]) -> Value {
        let output = self.bench(&[&["--json", workload], args].concat());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "stead-bench {workload} {args:?} failed: {stderr}"
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "--json prints exactly one line: {stdout}");
        let line: Value = serde_json::from_str(lines[0]).expect("a JSON line");
        assert_eq!(line["workload"], workload, "{line}");
        assert_eq!(line["errors"], 0, "{workload}: {line}\n{stderr}");
        for field in [
            "duration_s",
            "requests_per_sec",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "p999_ms",
        ] {
            let value = line[field].as_f64().unwrap_or(-1.0);
            assert!(
                value > 0.0,
                "{workload}: {field} should be positive: {line}"
            );
        }
        let p50 = line["p50_ms"].as_f64().unwrap_or(0.0);
        let p99 = line["p99_ms"].as_f64().unwrap_or(0.0);
        let max = line["max_ms"].as_f64().unwrap_or(0.0);
        assert!(
            p50 <= p99 && p99 <= max,
            "{workload}: percentiles out of order: {line}"
        );
        line
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("stead-bench-e2e-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary data directory");
    dir
}

#[test]
fn put_writes_the_keys_and_range_and_txn_put_read_and_write() {
    let etcd = Etcd::start();

    let put = etcd.bench_json(
        "put",
        &[
            "--total",
            "200",
            "--clients",
            "4",
            "--conns",
            "2",
            "--key-space-size",
            "1000",
            "--sequential-keys",
        ],
    );
    assert_eq!(put["total"], 200, "{put}");
    // Sequential keys 0..200 of the 1000-key space: 00000000 ..= 000000c7.
    assert_eq!(etcd.count_keys(b"00000000", b"000003e8"), Ok(200));
    assert_eq!(etcd.count_keys(b"000000c8", b"000003e8"), Ok(0));

    let range = etcd.bench_json(
        "range",
        &[
            "00000000",
            "000003e8",
            "--total",
            "100",
            "--clients",
            "4",
            "--limit",
            "10",
        ],
    );
    assert_eq!(range["total"], 100, "{range}");
    let serializable = etcd.bench_json(
        "range",
        &["00000005", "--total", "50", "--consistency", "s"],
    );
    assert_eq!(serializable["total"], 50, "{serializable}");

    let txn_put = etcd.bench_json(
        "txn-put",
        &[
            "--total",
            "100",
            "--clients",
            "4",
            "--txn-ops",
            "4",
            "--key-space-size",
            "50",
            "--key-size",
            "10",
        ],
    );
    assert_eq!(txn_put["total"], 100, "{txn_put}");
    // 10-byte keys 0..50, all written (100 txns x 4 puts cycle the space).
    assert_eq!(etcd.count_keys(b"0000000000", b"0000000032"), Ok(50));

    let mixed = etcd.bench_json(
        "txn-mixed",
        &[
            "00000000",
            "000003e8",
            "--total",
            "100",
            "--clients",
            "4",
            "--key-space-size",
            "20",
        ],
    );
    assert_eq!(mixed["total"], 100, "{mixed}");

    // The text report goes to stdout; nothing to stderr off a terminal.
    let text = etcd.bench(&["put", "--total", "20"]);
    assert!(text.status.success());
    let stdout = String::from_utf8_lossy(&text.stdout);
    for section in [
        "Summary:",
        "Requests/sec:",
        "Response time histogram:",
        "99.9% in",
    ] {
        assert!(
            stdout.contains(section),
            "missing {section:?} in:\n{stdout}"
        );
    }
    assert!(
        text.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
}

#[test]
fn watch_lease_keepalive_watch_get_and_stm() {
    let etcd = Etcd::start();

    // 6 watchers over 3 keys (2 each); 30 puts, 10 per key: 60 events.
    let watch = etcd.bench_json(
        "watch",
        &[
            "--watchers",
            "6",
            "--streams",
            "2",
            "--watched-key-total",
            "3",
            "--put-total",
            "30",
            "--put-rate",
            "0",
            "--clients",
            "2",
        ],
    );
    assert_eq!(watch["total"], 60, "{watch}");

    let lease = etcd.bench_json("lease-keepalive", &["--total", "200", "--clients", "4"]);
    assert_eq!(lease["total"], 200, "{lease}");

    let watch_get = etcd.bench_json(
        "watch-get",
        &["--watchers", "200", "--streams", "2", "--events", "4"],
    );
    assert!(watch_get["total"].as_u64().unwrap_or(0) > 0, "{watch_get}");

    for isolation in ["c", "r", "s", "ss"] {
        let stm = etcd.bench_json(
            "stm",
            &[
                "--total",
                "60",
                "--clients",
                "4",
                "--keys",
                "8",
                "--keys-per-txn",
                "3",
                "--isolation",
                isolation,
            ],
        );
        assert_eq!(stm["total"], 60, "{stm}");
    }
}

#[test]
fn an_unreachable_endpoint_fails_the_run() {
    let port = free_port();
    let output = Command::new(BENCH)
        .args(["--endpoints", &format!("127.0.0.1:{port}"), "--json", "put"])
        .output()
        .expect("run stead-bench");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}
