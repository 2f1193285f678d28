//! Crashes: a shard is killed with SIGKILL at random moments while it writes artifacts, the unit data
//! cache and the drift database (a unit edited in the hub and an applied object edited out of band
//! just before each kill), then started again on the same storage. After every kill, with the
//! controller down: every artifact file's bytes match the digest in its name, every cache entry matches
//! its hash, and the drift database passes SQLite's integrity check without being moved aside. After
//! every restart it converges by itself: the served artifact matches its digest and holds the last edit.
//!
//! `CRASH_RUNS` (default 6, for CI) and `CRASH_SEED` set the loop; `hack/crash-loop.sh` runs 200.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use confighub_source_controller::api::ConfigHubRepository;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use rand::{Rng, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(90);
const UNITS: usize = 4;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[derive(Default, Debug)]
struct Findings {
    artifacts_checked: usize,
    cache_entries_checked: usize,
    torn: Vec<String>,
    /// Hidden in-progress files a kill left behind (never served: the server refuses hidden names).
    leftover_temp_files: usize,
}

/// Checks everything on disk while the controller is down.
fn check_storage(storage: &Path, findings: &mut Findings) {
    let mut files = Vec::new();
    files_under(&storage.join("artifacts"), &mut files);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') {
            findings.leftover_temp_files += 1;
            continue;
        }
        let hex = name
            .strip_suffix(".tar.gz")
            .expect("only archives are stored");
        findings.artifacts_checked += 1;
        if sha256_hex(&file) != hex {
            findings.torn.push(file.display().to_string());
        }
    }
    let mut files = Vec::new();
    files_under(&storage.join("cache/data"), &mut files);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') {
            findings.leftover_temp_files += 1;
            continue;
        }
        findings.cache_entries_checked += 1;
        if sha256_hex(&file) != name {
            findings.torn.push(file.display().to_string());
        }
    }
    let db =
        rusqlite::Connection::open(storage.join("drift.db")).expect("the drift database opens");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok", "the drift database is intact");
    let moved_aside = std::fs::read_dir(storage)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(!moved_aside, "the drift database was never moved aside");
}

/// Edits an applied ConfigMap behind Flux's back.
async fn drift(config_maps: &Api<ConfigMap>, name: &str, color: &str) {
    let drifted = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": name}, "data": {"color": color}});
    let _ = config_maps
        .patch(
            name,
            &PatchParams::apply("crash-test").force(),
            &Patch::Apply(&drifted),
        )
        .await;
}

/// The artifact's decompressed contents, if it is served and matches its digest.
async fn served(url: &str, digest: &str) -> Option<Vec<u8>> {
    let response = http_get(url).await;
    if response.status() != 200 {
        return None;
    }
    let bytes = response.bytes().await.ok()?;
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        digest,
        "the served file matches the status digest"
    );
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_never_tears_what_is_stored_or_served() {
    let runs: usize = std::env::var("CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    eprintln!("crash loop: {runs} runs, CRASH_SEED={seed}");

    let shard = Shard::start("crash", None, &[]);
    let client = client().await;
    let ns = namespace(&client, "crash").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("crash").await;
    for u in 0..UNITS {
        hub.put_unit(
            &space_id,
            &format!("u{u}"),
            &config_map(&format!("u{u}"), "start"),
        )
        .await;
    }
    token_secret(&client, &ns, "confighub", &hub.token).await;
    apply_repository_labelled(
        &client,
        &ns,
        "crash",
        json!({ SHARD_KEY: "crash" }),
        json!({"url": hub.url, "space": "crash", "interval": "1s", "secretRef": {"name": "confighub"},
               "drift": {"mode": "Report"}}),
    )
    .await;
    wait_repository(&client, &ns, "crash", "True", None, TIMEOUT).await;
    apply_kustomization(&client, &ns, "crash", "crash").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the units applied", TIMEOUT, || async {
        config_maps.get_opt("u0").await.ok().flatten()
    })
    .await;
    let repos: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);
    // A first drift record before the kills, so the database holds records to tear (Flux's next
    // apply resolves each later drift quickly, so a run may kill before any is recorded).
    drift(&config_maps, "u0", "drifted-first").await;
    let first = format!("/api/v1/drift-records/ConfigMap:{ns}:u0");
    wait_for("a first drift record", TIMEOUT, || async {
        let response = http_get(&format!("http://{}{first}", shard.http)).await;
        (response.status() == 200).then_some(())
    })
    .await;

    let mut findings = Findings::default();
    for run in 0..runs {
        // Writes in flight: a new artifact and cache entry, and a drift record.
        let color = format!("run-{run}");
        let unit = format!("u{}", run % UNITS);
        hub.put_unit(&space_id, &unit, &config_map(&unit, &color))
            .await;
        drift(
            &config_maps,
            &format!("u{}", (run + 1) % UNITS),
            &format!("drifted-{run}"),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
        shard.kill9();
        check_storage(&shard.storage_path, &mut findings);
        assert!(findings.torn.is_empty(), "torn files: {:?}", findings.torn);
        shard.start_again();

        // Converges by itself: the served artifact is intact and holds this run's edit.
        let needle = format!("color: {color}");
        wait_for(
            &format!("run {run}: the edit served again"),
            TIMEOUT,
            || async {
                let chr = repos.get("crash").await.ok()?;
                let artifact = chr.status?.artifact?;
                let contents = served(&artifact.url, &artifact.digest).await?;
                contents
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes())
                    .then_some(())
            },
        )
        .await;
    }
    // Proof the drift database was being written while the kills happened.
    let stats: serde_json::Value = http_get(&format!("http://{}/api/v1/statistics", shard.http))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        stats["total"].as_u64().unwrap() > 0,
        "{stats}\n{}",
        shard
            .log_text()
            .lines()
            .filter(|l| l.contains("drift") && !l.contains("\"DEBUG\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "crash loop: {runs} kill -9 runs (seed {seed}): {} artifact files and {} cache entries checked, 0 torn, {} leftover temp files, drift database intact after every kill ({} records)",
        findings.artifacts_checked,
        findings.cache_entries_checked,
        findings.leftover_temp_files,
        stats["total"]
    );
}
