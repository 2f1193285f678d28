//! A stand-in for notification-controller's event endpoint: `hack/flux-event-receiver`, a small Go
//! program that decodes every post with Flux's own `Event` type and checks that notification-controller
//! could route it to an Alert. Built once from its Go module (cached by the hash of its sources outside
//! the source tree, see `go_tool`) and started once per test binary; the shared controller posts every event to it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::cluster::spawn_tied;

pub struct EventReceiver {
    /// `http://127.0.0.1:<port>/`, for `--events-addr`.
    pub url: String,
    out: PathBuf,
}

static RECEIVER: OnceLock<EventReceiver> = OnceLock::new();

/// Starts the receiver on first use.
pub fn event_receiver() -> &'static EventReceiver {
    RECEIVER.get_or_init(|| {
        let bin = super::go_tool::built_go_tool("flux-event-receiver");
        let dir = std::env::temp_dir().join(format!("chsc-e2e-{}-events", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("events.jsonl");
        let mut cmd = Command::new(bin);
        cmd.args(["-addr", "127.0.0.1:0", "-out"])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = spawn_tied(cmd).expect("starting flux-event-receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("flux-event-receiver said {line:?}"))
            .trim()
            .to_string();
        // The child stays alive (tied to this process); its handle is not needed any more.
        std::mem::forget(child);
        EventReceiver {
            url: format!("http://{addr}/"),
            out,
        }
    })
}

impl EventReceiver {
    fn lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Every event accepted so far, as the Go program re-encoded it from Flux's type.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|l| l.get("invalid").is_none())
            .collect()
    }

    /// Every post refused so far, with the reason.
    pub fn refused(&self) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|l| l.get("invalid").is_some())
            .collect()
    }
}
