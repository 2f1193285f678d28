//! The controller under test: the real `confighub-source-controller run` binary, one per test binary,
//! watching all namespaces of the shared control plane.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::cluster::{control_plane, spawn_tied};

pub struct ControllerProcess {
    pub storage_path: PathBuf,
    pub http: String,
    pub log: PathBuf,
}

static CONTROLLER: OnceLock<ControllerProcess> = OnceLock::new();

fn free_port() -> u16 {
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
        let storage_path = dir.join("storage");
        let log = dir.join("controller.log");
        let http = format!("127.0.0.1:{}", free_port());
        let storage_addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_confighub-source-controller"));
        cmd.args(["run", "--log-format", "json", "--concurrent", "4"])
            .arg("--storage-path")
            .arg(&storage_path)
            .args(["--storage-addr", &storage_addr, "--http-addr", &http])
            .env("KUBECONFIG", &cp.kubeconfig)
            .env("RUST_LOG", "info,confighub_source_controller=debug")
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ));
        let child = spawn_tied(cmd).expect("starting the controller");
        std::mem::forget(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = std::net::TcpStream::connect(&http).ok().and_then(|mut s| {
                use std::io::{Read, Write};
                s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").ok()?;
                let mut out = String::new();
                s.read_to_string(&mut out).ok()?;
                Some(out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"))
            });
            if ready == Some(true) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the controller did not become ready; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ControllerProcess {
            storage_path,
            http,
            log,
        }
    })
}

impl ControllerProcess {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The controller's /metrics text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}
