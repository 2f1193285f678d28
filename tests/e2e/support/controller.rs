//! The controller under test: the real `confighub-source-controller run` binary, one per test binary,
//! watching all namespaces of the shared control plane as the Helm chart's ServiceAccount, with the
//! chart's RBAC (see `service_account`). It can be restarted (as a rollout would).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::cluster::{control_plane, spawn_tied};

pub struct ControllerProcess {
    pub storage_path: PathBuf,
    pub http: String,
    pub log: PathBuf,
    /// Authenticates as the chart's ServiceAccount, not as the admin.
    pub kubeconfig: PathBuf,
    storage_addr: String,
    child: Mutex<Child>,
}

static CONTROLLER: OnceLock<ControllerProcess> = OnceLock::new();

/// The shared controller, if a test started it (for failure messages, which must not start it).
pub fn started_controller() -> Option<&'static ControllerProcess> {
    CONTROLLER.get()
}

/// Held by tests that make the controller check every repository at once (a restart), and by the one
/// test that needs no full check to happen while it works.
pub static FULL_CHECKS_OF_EVERYTHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the controller on first use and waits until it reports ready.
pub fn controller() -> &'static ControllerProcess {
    CONTROLLER.get_or_init(|| {
        let cp = control_plane();
        let dir = std::env::temp_dir().join(format!("chsc-e2e-{}-controller", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = super::service_account::service_account_kubeconfig(cp, &dir);
        let storage_path = dir.join("storage");
        let log = dir.join("controller.log");
        let http = format!("127.0.0.1:{}", free_port());
        let storage_addr = format!("127.0.0.1:{}", free_port());
        let child = spawn(&kubeconfig, &storage_path, &storage_addr, &http, &log);
        wait_ready(&http, &log);
        ControllerProcess {
            storage_path,
            http,
            log,
            kubeconfig,
            storage_addr,
            child: Mutex::new(child),
        }
    })
}

/// Label selector of the shared controller: everything but the repositories of other shards
/// (Flux's sharding), so tests can run controllers of their own beside it.
pub const MAIN_SHARD_SELECTOR: &str = "!sharding.fluxcd.io/key";

fn spawn(
    kubeconfig: &Path,
    storage_path: &Path,
    storage_addr: &str,
    http: &str,
    log: &Path,
) -> Child {
    let selector = format!("--watch-label-selector={MAIN_SHARD_SELECTOR}");
    spawn_with(
        &[],
        kubeconfig,
        storage_path,
        storage_addr,
        http,
        log,
        &[selector.as_str()],
    )
}

/// Starts `confighub-source-controller run` (behind `wrapper`, e.g. `unshare …`, when not empty) with
/// the test flags and `extra` ones.
pub fn spawn_with(
    wrapper: &[&str],
    kubeconfig: &Path,
    storage_path: &Path,
    storage_addr: &str,
    http: &str,
    log: &Path,
    extra: &[&str],
) -> Child {
    let out = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let binary = env!("CARGO_BIN_EXE_confighub-source-controller");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(binary);
            cmd
        }
        None => Command::new(binary),
    };
    cmd.args(["run", "--log-format", "json", "--concurrent", "4"])
        .arg("--storage-path")
        .arg(storage_path)
        .args(["--storage-addr", storage_addr, "--http-addr", http])
        .args(["--events-addr", &super::flux_events::event_receiver().url])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info,confighub_source_controller=debug")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out));
    spawn_tied(cmd).expect("starting the controller")
}

pub fn wait_ready(http: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = std::net::TcpStream::connect(http).ok().and_then(|mut s| {
            use std::io::{Read, Write};
            s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            Some(out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"))
        });
        if ready == Some(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the controller did not become ready; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl ControllerProcess {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` log lines that contain `needle` (a test's namespace), for a failure message.
    pub fn log_tail_about(&self, needle: &str, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The controller's /metrics text.
    pub async fn metrics(&self) -> String {
        http_get(&format!("http://{}/metrics", self.http))
            .await
            .text()
            .await
            .unwrap()
    }

    /// Stops the controller with SIGTERM, as Kubernetes would, and starts it again on the same storage
    /// and ports. Tests sharing it see a short outage, as they would during a rollout.
    pub fn restart(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: signals our own child process.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let _ = child.wait();
        *child = spawn(
            &self.kubeconfig,
            &self.storage_path,
            &self.storage_addr,
            &self.http,
            &self.log,
        );
        wait_ready(&self.http, &self.log);
    }
}

/// GET from the controller (API, metrics or artifact server), retried while it is down: another test may
/// be restarting it, as a rollout would, and clients of a real controller retry too (Flux does).
pub async fn http_get(url: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match reqwest::get(url).await {
            Ok(response) => return response,
            // Refused, or cut off mid-request by a shutdown.
            Err(err) if (err.is_connect() || err.is_request()) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("GET {url}: {err}"),
        }
    }
}
