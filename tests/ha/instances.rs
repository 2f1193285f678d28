//! Controller processes of their own (not the e2e suite's shared one): each on its own storage path and
//! loopback ports, as the chart's ServiceAccount, with extra flags (`--leader-elect ...`, and whatever
//! a test needs, e.g. a shared drift store). Killed when dropped.

use std::path::PathBuf;
use std::process::Child;
use std::sync::OnceLock;

use crate::support::control_plane;
use crate::support::controller::{free_port, spawn_with};
use crate::support::service_account::service_account_kubeconfig;

pub struct Instance {
    pub http: String,
    pub storage_addr: String,
    pub log: PathBuf,
    child: Child,
}

/// The ServiceAccount kubeconfig, made once per control plane.
fn kubeconfig() -> &'static PathBuf {
    static KUBECONFIG: OnceLock<PathBuf> = OnceLock::new();
    KUBECONFIG.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chsc-e2e-{}-ha", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        service_account_kubeconfig(control_plane(), &dir)
    })
}

impl Instance {
    /// Starts instance `name` with `extra` flags; does not wait for it (a follower is never ready).
    pub fn start(name: &str, extra: &[String]) -> Instance {
        let kubeconfig = kubeconfig();
        let dir = kubeconfig
            .parent()
            .unwrap()
            .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let http = format!("127.0.0.1:{}", free_port());
        let storage_addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("controller.log");
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let child = spawn_with(
            &[],
            kubeconfig,
            &dir.join("storage"),
            &storage_addr,
            &http,
            &log,
            &extra,
        );
        Instance {
            http,
            storage_addr,
            log,
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (not exited, not restarted).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown, no Lease release.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as Kubernetes stops a pod, and waits for the process to exit within the chart's grace
    /// period (30 s; Kubernetes would SIGKILL it then).
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: signals our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the controller") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the controller did not stop within 30 s of SIGTERM; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` on the HTTP address: (status, body), `None` while nothing answers.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        get(&format!("http://{}{path}", self.http)).await
    }

    /// GET `path` on the artifact server.
    pub async fn get_artifact(&self, path: &str) -> Option<(u16, String)> {
        get(&format!("http://{}{path}", self.storage_addr)).await
    }

    /// The value of `leader_election_master_status{name="<lease>"}`, `None` while not exported.
    pub async fn leader_status(&self, lease: &str) -> Option<i64> {
        let (_, text) = self.get("/metrics").await?;
        let series = format!("leader_election_master_status{{name=\"{lease}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
    }
}

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}
