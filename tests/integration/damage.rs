//! Damage is an error, not an answer (P34): a full disk is named and reported not ready until
//! space returns; a damaged store answers `storage_corrupt`, never a wrong or missing record.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::http::{Server, TestBackend};

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped. Needs root, as CI
/// and the development machines run.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs (the test needs root)");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` with `file`, leaving nothing free.
fn fill(file: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(file).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.flush();
    let _ = f.sync_all();
}

/// P34: with the disk full a write answers `507 storage_full` (not `500 storage_failed`),
/// `/health/ready` answers not ready (it said 200 before), reads still answer, and once space
/// is freed readiness and writes come back by themselves.
#[test]
fn p34_a_full_disk_is_named_reported_not_ready_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mount = tmp.path().join("small");
    let fs = Tmpfs::mount(&mount, "16m");
    let server = Server::start_on(TestBackend::sqlite_at(tmp, mount.join("data")), None);
    let service = server.key("service");
    let subject = server.subject(&service);
    assert_eq!(server.get("/health/ready", "").status, 200);
    let filler = fs.0.join("filler");
    fill(&filler);
    let collect = |n: usize| {
        server.post(
            &format!("/v1/subjects/{subject}/collect"),
            &service,
            json!({
                "feature": "account",
                "values": [
                    {"category": "name", "value": "x".repeat(n)},
                    {"category": "email", "value": "wang.fang@example.cn"}
                ],
                "source": {"kind": "subject"}
            }),
        )
    };
    // Some pages may still be free inside the database: write until the disk says no.
    let mut refused = None;
    for _ in 0..200 {
        let r = collect(200_000);
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the full disk never refused a write");
    assert_eq!(r.status, 507, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "storage_full", "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert_eq!(message.matches("full").count(), 1, "{message}");
    let ready = server.get("/health/ready", "");
    assert_eq!(ready.status, 507, "{}", ready.body);
    assert_eq!(ready.body["error"]["code"], "storage_full");
    // A purpose-checked read is audited before it answers (P21): no room for the entry, no
    // read, and it says why.
    let read = || {
        server.post(
            &format!("/v1/subjects/{subject}/read"),
            &service,
            json!({"categories": ["email"], "purpose": "provide_service"}),
        )
    };
    let r = read();
    assert_eq!(r.status, 507, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "storage_full");

    std::fs::remove_file(&filler).unwrap();
    let ready = server.get("/health/ready", "");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body, json!({"status": "ready"}));
    let r = collect(10);
    assert_eq!(r.status, 201, "{}", r.body);
    let r = read();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["values"][0]["value"], "wang.fang@example.cn",
        "{}",
        r.body
    );
    drop(server);
}
