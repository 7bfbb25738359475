//! A member's life: clean shutdown, restart, snapshots, and data dirs it must refuse.

mod common;

use std::path::Path;
use std::process::Command;

use common::Member;
use etcd_client::GetOptions;

fn files_with_extension(dir: &Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == extension))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut member = Member::start(&dir.path().join("data"), &[]);
    {
        let mut client = member.client().await;
        for i in 0..20 {
            client
                .put(format!("k{i}"), format!("v{i}"), None)
                .await
                .unwrap();
        }
    }
    let status = member.terminate();
    assert!(status.success(), "exit status {status}:\n{}", member.log());
    member.restart();
    let mut client = member.client().await;
    let all = client
        .get("k", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(all.count(), 20);
    assert_eq!(all.header().unwrap().revision(), 21);
    // Writes go on at the next revision.
    let put = client.put("after", "restart", None).await.unwrap();
    assert_eq!(put.header().unwrap().revision(), 22);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_taken_every_snapshot_count_entries_and_purged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut member = Member::start(&data, &["--snapshot-count", "50"]);
    {
        let mut client = member.client().await;
        for i in 0..400 {
            client.put(format!("k{i:03}"), "v", None).await.unwrap();
        }
    }
    let snap_dir = data.join("member").join("snap");
    let snapshots = files_with_extension(&snap_dir, "snap");
    assert!(
        !snapshots.is_empty(),
        "no snapshot in {}",
        snap_dir.display()
    );
    assert!(
        snapshots.len() <= 5,
        "older snapshots are purged: {snapshots:?}"
    );
    member.kill();
    member.restart();
    let mut client = member.client().await;
    let all = client
        .get("k", Some(GetOptions::new().with_prefix().with_count_only()))
        .await
        .unwrap();
    assert_eq!(all.count(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_wal_is_refused_naming_the_file_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut member = Member::start(&data, &[]);
    {
        let mut client = member.client().await;
        for i in 0..50 {
            client
                .put(format!("k{i}"), "some value", None)
                .await
                .unwrap();
        }
    }
    assert!(member.terminate().success());
    let wal_dir = data.join("member").join("wal");
    let wal = files_with_extension(&wal_dir, "wal").remove(0);
    let mut bytes = std::fs::read(&wal).unwrap();
    // A flipped byte well inside the written records (not the final one).
    bytes[2000] ^= 0x55;
    std::fs::write(&wal, &bytes).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(member.args())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&wal.display().to_string()),
        "the error names the file:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        bytes,
        "the WAL is not modified"
    );
}

#[test]
fn a_data_dir_stead_did_not_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A database file with no WAL: not a stead data dir (or a damaged one).
    let db = data.join("member").join("snap").join("db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"not a database").unwrap();
    let member = Member::configure(&data, &[]);
    let output = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(member.args())
        .output()
        .unwrap();
    drop(member);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), b"not a database");

    // A WAL directory whose segment is not stead's format (etcd's, say).
    let data = dir.path().join("data2");
    let wal_dir = data.join("member").join("wal");
    std::fs::create_dir_all(&wal_dir).unwrap();
    let segment = wal_dir.join("0000000000000000-0000000000000000.wal");
    let foreign: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&segment, &foreign).unwrap();
    let member = Member::configure(&data, &[]);
    let output = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(member.args())
        .output()
        .unwrap();
    drop(member);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&segment.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(&segment).unwrap(), foreign);
}
