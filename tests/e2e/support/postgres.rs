//! A real, throwaway PostgreSQL server for tests: Debian's `initdb` and `postgres` (hack/test.sh installs
//! the `postgresql` package when it is missing), a cluster in a temp folder, password (SCRAM) auth on a free
//! loopback port, killed with the test process (see `tied.rs`). One server per test binary, started on
//! first use; [`database_url`] makes a fresh database per test. PostgreSQL refuses to run as root, so as
//! root it runs as `nobody` (through `setpriv`, which also sets its death signal).
//!
//! Shared by the end-to-end support and the library's store tests (included there by path): std, libc and
//! the `postgres` client only.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::tied::spawn_tied;

/// The superuser the tests connect as, and its password (a test value; the server listens on loopback).
pub const USER: &str = "postgres";
pub const PASSWORD: &str = "chsc-pg-test-secret";

pub struct PgServer {
    pub port: u16,
    /// Holds the data folder, the socket and `postgres.log`.
    pub dir: PathBuf,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
const STATE_PREFIX: &str = "chsc-pg-";

/// The server, started on first use. A server that cannot start fails the test that needs it, with the
/// reason: tests of the PostgreSQL backend are never skipped.
pub fn server() -> &'static PgServer {
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(msg) => panic!("the test PostgreSQL server could not be started: {msg}"),
    }
}

/// A URL (with the password) to a new, empty database named after `prefix`.
pub fn database_url(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = server();
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let name = format!("{clean}_{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let admin = server.url("postgres");
    let create = format!("CREATE DATABASE \"{name}\"");
    // On a thread of its own: the synchronous client must not run inside an async test's runtime.
    std::thread::spawn(move || {
        let mut client = ::postgres::Client::connect(&admin, ::postgres::NoTls)
            .map_err(|e| format!("connecting: {e}"))?;
        client
            .batch_execute(&create)
            .map_err(|e| format!("{create}: {e}"))
    })
    .join()
    .expect("database creation thread")
    .unwrap_or_else(|e| panic!("creating a test database: {e}"));
    server.url(&name)
}

impl PgServer {
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }
}

/// `initdb`/`postgres`: on PATH, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    }) {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "PostgreSQL is not installed (no initdb on PATH, no /usr/lib/postgresql); hack/test.sh installs it with `apt-get install postgresql`".to_string())?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no /usr/lib/postgresql/<version>/bin/initdb".to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Removes state folders of earlier test processes that are gone (their servers died with them).
fn remove_stale_state() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(STATE_PREFIX) else {
            continue;
        };
        if pid.chars().all(|c| c.is_ascii_digit()) && !Path::new(&format!("/proc/{pid}")).exists() {
            remove_shared_memory(&entry.path().join("data/postmaster.pid"));
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A server killed with SIGKILL leaves its small System V shared memory segment; `postmaster.pid` names
/// it (line 7: key and id). Removed once nothing is attached.
fn remove_shared_memory(pidfile: &Path) {
    let Ok(text) = std::fs::read_to_string(pidfile) else {
        return;
    };
    let mut fields = text.lines().nth(6).unwrap_or_default().split_whitespace();
    let (Some(Ok(key)), Some(Ok(id))) = (
        fields.next().map(str::parse::<libc::key_t>),
        fields.next().map(str::parse::<i32>),
    ) else {
        return;
    };
    // SAFETY: IPC_STAT fills the zeroed struct we own; IPC_RMID only marks the segment for removal,
    // and only when it is still the server's (same key: the id may have been reused) and detached.
    unsafe {
        let mut stat: libc::shmid_ds = std::mem::zeroed();
        if libc::shmctl(id, libc::IPC_STAT, &mut stat) == 0
            && stat.shm_perm.__key == key
            && stat.shm_nattch == 0
        {
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

/// As root: the uid and gid of `nobody`, who will own the cluster and run the server.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions; getpwnam returns a pointer into static storage that is read
    // at once, on this thread (the server starts once per process).
    unsafe {
        if libc::getuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"nobody".as_ptr());
        if pw.is_null() {
            return Some((65534, 65534));
        }
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

fn command(bin: &Path, tool: &str, user: Option<(u32, u32)>) -> Command {
    match user {
        Some((uid, gid)) => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .args(["--clear-groups", "--pdeathsig", "KILL", "--"])
                .arg(bin.join(tool));
            cmd
        }
        None => Command::new(bin.join(tool)),
    }
}

fn chown(path: &Path, user: Option<(u32, u32)>) -> Result<(), String> {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

fn start() -> Result<PgServer, String> {
    remove_stale_state();
    let bin = bin_dir()?;
    let user = run_as();
    let dir = std::env::temp_dir().join(format!("{STATE_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
    chown(&dir, user)?;
    chown(&pwfile, user)?;

    let initdb = command(&bin, "initdb", user)
        .arg("-D")
        .arg(&data)
        .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
        .args(["--auth-host=scram-sha-256", "--auth-local=trust"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .map_err(|e| format!("running initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let port = free_port();
    let log = std::fs::File::create(dir.join("postgres.log")).map_err(|e| e.to_string())?;
    let mut cmd = command(&bin, "postgres", user);
    cmd.arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&dir)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        // A test server: durability is not what is tested.
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log));
    let child = spawn_tied(cmd).map_err(|e| format!("starting postgres: {e}"))?;
    std::mem::forget(child); // lives until the process exits; the death signal ends it
    let server = PgServer { port, dir };
    let url = server.url("postgres");
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = std::thread::spawn(move || {
        loop {
            match ::postgres::Client::connect(&url, ::postgres::NoTls) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e.to_string()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })
    .join()
    .expect("readiness thread");
    ready.map_err(|e| {
        format!(
            "postgres did not accept connections: {e}; log:\n{}",
            server.log_text()
        )
    })?;
    Ok(server)
}
