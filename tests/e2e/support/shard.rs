//! Controllers of a test's own beside the shared one: a Flux-style shard that owns the repositories
//! labelled `sharding.fluxcd.io/key: <key>` (the shared controller ignores every repository with that
//! label), under the chart's ServiceAccount, on its own storage and ports. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;

use super::cluster::control_plane;
use super::controller::{free_port, http_get, spawn_with, wait_ready};

/// The label that assigns a repository to a shard.
pub const SHARD_KEY: &str = "sharding.fluxcd.io/key";

pub struct Shard {
    pub http: String,
    pub storage_addr: String,
    pub storage_path: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    wrapper: Vec<String>,
    selector: String,
    child: Mutex<Child>,
}

impl Shard {
    /// Starts a shard owning the repositories labelled `sharding.fluxcd.io/key: <key>`, with storage
    /// under `storage_path` (a fresh folder when `None`), started behind `wrapper` when not empty.
    pub fn start(key: &str, storage_path: Option<&Path>, wrapper: &[&str]) -> Shard {
        let cp = control_plane();
        let dir = std::env::temp_dir().join(format!("chsc-e2e-{}-shard-{key}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = super::service_account::service_account_kubeconfig(cp, &dir);
        let storage_path = storage_path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("storage"));
        let log = dir.join("controller.log");
        let http = format!("127.0.0.1:{}", free_port());
        let storage_addr = format!("127.0.0.1:{}", free_port());
        let selector = format!("--watch-label-selector={SHARD_KEY}={key}");
        let child = spawn_with(
            wrapper,
            &kubeconfig,
            &storage_path,
            &storage_addr,
            &http,
            &log,
            &[selector.as_str()],
        );
        wait_ready(&http, &log);
        Shard {
            http,
            storage_addr,
            storage_path,
            kubeconfig,
            log,
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
            selector,
            child: Mutex::new(child),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the shard with SIGKILL (no shutdown of any kind) and waits until it is gone.
    pub fn kill9(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the shard again on the same storage and ports, and waits until it is ready.
    pub fn start_again(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let wrapper: Vec<&str> = self.wrapper.iter().map(String::as_str).collect();
        *child = spawn_with(
            &wrapper,
            &self.kubeconfig,
            &self.storage_path,
            &self.storage_addr,
            &self.http,
            &self.log,
            &[self.selector.as_str()],
        );
        wait_ready(&self.http, &self.log);
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// The shard's /metrics text.
    pub async fn metrics(&self) -> String {
        http_get(&format!("http://{}/metrics", self.http))
            .await
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}
