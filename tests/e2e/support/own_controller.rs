//! Controller processes of a test's own (the HA tests in tests/ha run several at once and kill them);
//! the end-to-end binary shares one controller instead (`controller.rs`) and uses none of this.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::cluster::{control_plane, spawn_tied};
use super::controller::{free_port, http_get, wait_ready};

/// A controller process of one test's own, beside (never instead of) the shared one: its own storage,
/// ports and log, the chart's ServiceAccount, and the flags the test adds (`--watch-namespace`,
/// `--drift-db`, ...). Killed with SIGKILL (a node lost) by [`OwnController::kill`] or when dropped.
pub struct OwnController {
    pub name: String,
    pub storage_path: PathBuf,
    pub http: String,
    pub log: PathBuf,
    child: Child,
}

/// Starts `confighub-source-controller run` as `name` (a folder under this test process's temp state)
/// with `args` added, and waits until it reports ready. `env` is set on the process (e.g. `DRIFT_DB`).
pub fn own_controller(name: &str, args: &[&str], env: &[(&str, &str)]) -> OwnController {
    let cp = control_plane();
    let dir = std::env::temp_dir().join(format!("chsc-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = super::service_account::service_account_kubeconfig(cp, &dir);
    let storage_path = dir.join("storage");
    let log = dir.join("controller.log");
    let http = format!("127.0.0.1:{}", free_port());
    let storage_addr = format!("127.0.0.1:{}", free_port());
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confighub-source-controller"));
    cmd.args(["run", "--log-format", "json"])
        .arg("--storage-path")
        .arg(&storage_path)
        .args(["--storage-addr", &storage_addr, "--http-addr", &http])
        .args(args)
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info,confighub_source_controller=debug")
        .envs(env.iter().copied())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out));
    let child = spawn_tied(cmd).expect("starting a controller");
    wait_ready(&http, &log);
    OwnController {
        name: name.to_string(),
        storage_path,
        http,
        log,
        child,
    }
}

impl OwnController {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` on its HTTP address: the status and the body as JSON (null when not JSON).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = http_get(&format!("http://{}{path}", self.http)).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Its /metrics text.
    pub async fn metrics(&self) -> String {
        http_get(&format!("http://{}/metrics", self.http))
            .await
            .text()
            .await
            .unwrap()
    }

    /// SIGTERM, as Kubernetes stops a pod; returns how it exited.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: signals our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().expect("waiting for the controller")
    }

    /// SIGKILL, as when its node is lost: no graceful shutdown, nothing flushed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnController {
    fn drop(&mut self) {
        self.kill();
    }
}
