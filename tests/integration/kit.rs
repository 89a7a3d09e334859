//! The test kit: runs the `steward` binary in a fresh directory and reads what it says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn steward(args: &[&str]) -> Run {
    steward_env(args, &[])
}

pub fn steward_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    steward_in(Path::new("."), args, env)
}

/// Runs `steward` in the directory `cwd`, with `env` added.
pub fn steward_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.current_dir(cwd);
    cmd.args(args)
        .env_remove("STEWARD_MASTER_KEY")
        .env_remove("STEWARD_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("steward runs"))
}

pub fn example_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies/cloud-provider.toml")
}

pub fn example_text() -> String {
    std::fs::read_to_string(example_policy()).unwrap()
}

/// A data directory holding the demo's store.
pub fn demo_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    steward(&["demo", "--data-dir", dir.to_str().unwrap()]).ok();
    (tmp, dir)
}

/// The machine's time, Unix ms: for what runs on the real clock (a `steward` process, the
/// independent webhook verifier, which checks timestamps against it).
pub fn real_now_ms() -> i64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "what the test talks to runs on the real clock"
    )]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Waits until `ready` holds, checking every few milliseconds, for at most `limit`; fails the
/// test naming `what` if it never does. For things outside the test's clock (a process
/// starting, mail arriving), never to make time pass.
#[track_caller]
pub fn wait_for(what: &str, limit: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    let mut pause = std::time::Duration::from_millis(1);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        #[expect(
            clippy::disallowed_methods,
            reason = "waits on another process, never to make the test's clock move"
        )]
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// Runs `tools/browser/<script>` with Node (Debian's Chromium through Playwright) and `env`;
/// the one line of JSON it prints. It fails the test, with what the script said, if the
/// script finds something that does not hold.
pub fn browser(script: &str, args: &[&str], env: &[(&str, String)]) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tools/browser/node_modules/playwright-core")
            .exists(),
        "the browser tests need tools/browser's packages: run tools/test (or `npm ci --prefix tools/browser`) and install Debian's chromium"
    );
    let mut cmd = Command::new("node");
    cmd.arg(root.join("tools/browser").join(script)).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node runs");
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Where the browser tests leave their screenshots.
pub fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots")
}
