//! Starts one real control plane per test binary through `hack/dev-cluster.sh start`, and makes sure it
//! dies with the test process, however that process ends.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;

pub use super::tied::spawn_tied;
use std::time::Duration;

/// A running control plane: a kubeconfig with cluster-admin rights, and the folder of the real binaries
/// (kubectl, flux, ...) that built it.
pub struct ControlPlane {
    pub kubeconfig: PathBuf,
    pub bin: PathBuf,
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// How long to wait for the control plane. The binaries are built before `cargo test` runs (see .ci/run);
/// this only covers process start-up, and a cold build if someone runs `cargo test` first.
const START_TIMEOUT: Duration = Duration::from_secs(3600);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared control plane, started on first use. A failure to start fails every test that needs it
/// with the script's message: end-to-end tests are never skipped.
pub fn control_plane() -> &'static ControlPlane {
    match CONTROL_PLANE.get_or_init(start) {
        Ok(cp) => cp,
        Err(msg) => panic!("the test control plane could not be started: {msg}"),
    }
}

const STATE_PREFIX: &str = "chsc-e2e-";

/// Removes state folders left by earlier test processes (a killed process cannot clean up after itself).
fn remove_stale_state() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(STATE_PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start() -> Result<ControlPlane, String> {
    remove_stale_state();
    let state_dir = std::env::temp_dir().join(format!("{STATE_PREFIX}{}", std::process::id()));
    let script = repo_root().join("hack/dev-cluster.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("start")
        .arg(&state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = spawn_tied(cmd).map_err(|e| format!("running {}: {e}", script.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout from dev-cluster.sh")?;

    let (line_tx, line_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(path) = line.strip_prefix("READY ") {
                    let kubeconfig = PathBuf::from(path.trim());
                    let bin = std::fs::read_to_string(state_dir.join("testbin-path"))
                        .map_err(|e| format!("reading testbin-path: {e}"))?;
                    std::mem::forget(child); // lives until the process exits; pdeathsig reaps it
                    return Ok(ControlPlane {
                        kubeconfig,
                        bin: PathBuf::from(bin.trim()),
                    });
                }
            }
            Err(_) => {
                let _ = child.kill();
                return Err(format!(
                    "hack/dev-cluster.sh start did not report READY (logs in {})",
                    state_dir.join("logs").display()
                ));
            }
        }
    }
}

impl ControlPlane {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// Runs a real CLI (kubectl, flux) against the cluster and returns (success, stdout, stderr).
    pub fn run_tool(&self, name: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(self.tool(name))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap_or_else(|e| panic!("running {name}: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `kubectl apply -f -` with `manifest` on stdin.
    pub fn kubectl_apply(&self, manifest: &str) -> (bool, String, String) {
        use std::io::Write;
        let mut child = Command::new(self.tool("kubectl"))
            .args(["apply", "-f", "-"])
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
