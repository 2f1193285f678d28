//! Faults from ConfigHub (R1): a shard reconciles several repositories, applied by kustomize-controller,
//! against a hub process started with `hub --fault-rate R --fault-seed S` (500s, 429s with
//! Retry-After, resets, truncated and garbage bodies, answers held back past the client's timeout)
//! while units are edited now and then. Every second each repository's served artifact is fetched
//! and checked against the digest in its status (a miss is a serving gap) and its Ready condition is
//! sampled. A short outage follows (every request faulted, so reconciles fail whatever the seed drew).
//! Then faults are turned off (`PUT /admin/faults`) with a last edit to every repository.
//!
//! Asserted: no panic in the controller's log and no token in it; no serving gap; every failure
//! reason the controller counted (`confighub_source_reconcile_failures_total`) was seen in a sampled
//! `Ready=False` condition of that repository, whose message says which artifact is still served;
//! after faults stop, every repository is Ready with its last edit, served and applied, within one
//! interval plus `spec.timeout` (a reconcile in flight may run that long).
//!
//! `SOAK_SECONDS` (default 60, for CI), `SOAK_RATE` (0.5) and `SOAK_SEED` set the run;
//! `hack/soak.sh` runs 10 minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confighub_source_controller::api::ConfigHubRepository;
use confighub_source_controller::hub::faults::{EXEMPT_HEADER, FaultReport};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::controller::free_port;
use crate::support::tied::spawn_tied;
use crate::support::*;

const REPOS: usize = 5;
const UNITS: usize = 3;
/// `spec.interval` and `spec.timeout` of every repository: the timeout is past the client's 30 s
/// per request, so a held-back answer shows as the client's timeout and, retried, as the reconcile's.
const INTERVAL_SECS: u64 = 5;
const SPEC_TIMEOUT_SECS: u64 = 45;
const EDIT_EVERY: Duration = Duration::from_secs(3);
/// The outage at the end of the faulty period: over two intervals, so every repository reconciles in it.
const OUTAGE: Duration = Duration::from_secs(2 * INTERVAL_SECS + 2);
const SETUP: Duration = Duration::from_secs(90);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config_map(repo: usize, unit: usize, edit: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r{repo}-u{unit}\ndata:\n  edit: \"{edit}\"\n"
    )
}

/// `hub --fault-rate … --fault-seed …` as its own process, killed with the test.
struct FaultyHub {
    url: String,
    token: String,
    http: reqwest::Client,
    log: PathBuf,
    child: Child,
}

impl FaultyHub {
    async fn start(rate: f64, seed: u64) -> FaultyHub {
        let dir = std::env::temp_dir().join(format!("chsc-e2e-{}-soak-hub", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("hub.log");
        let out = std::fs::File::create(&log).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let token = format!("soak-token-{}", uuid::Uuid::new_v4().simple());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_confighub-source-controller"));
        cmd.args(["hub", "--addr", &addr, "--data"])
            .arg(dir.join("data"))
            .args([
                "--fault-rate",
                &rate.to_string(),
                "--fault-seed",
                &seed.to_string(),
            ])
            .env("CONFIGHUB_TOKEN", &token)
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        let child = spawn_tied(cmd).expect("starting the hub");
        let hub = FaultyHub {
            url: format!("http://{addr}"),
            token,
            http: reqwest::Client::new(),
            log,
            child,
        };
        wait_for("the hub to listen", SETUP, || async {
            let r = hub.exempt(reqwest::Method::GET, "/api/info").send().await;
            r.ok().filter(|r| r.status() == 200).map(|_| ())
        })
        .await;
        hub
    }

    /// A request the hub never faults (the test's own set-up and edits).
    fn exempt(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header(EXEMPT_HEADER, "1")
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> serde_json::Value {
        let response = req.send().await.expect("hub request");
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_success(), "hub answered {status}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn space(&self, slug: &str) -> String {
        let req = self
            .exempt(reqwest::Method::POST, "/api/space")
            .json(&json!({"Slug": slug}));
        self.json(req).await["SpaceID"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn unit(&self, space_id: &str, slug: &str) -> String {
        let req = self
            .exempt(
                reqwest::Method::POST,
                &format!("/api/space/{space_id}/unit"),
            )
            .json(&json!({"Slug": slug, "ToolchainType": "Kubernetes/YAML"}));
        self.json(req).await["Unit"]["UnitID"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn put_data(&self, space_id: &str, unit_id: &str, yaml: String) {
        let path = format!("/api/space/{space_id}/unit/{unit_id}/data");
        let req = self.exempt(reqwest::Method::PUT, &path).body(yaml);
        self.json(req).await;
    }

    async fn faults(&self) -> FaultReport {
        let req = self.exempt(reqwest::Method::GET, "/admin/faults");
        serde_json::from_value(self.json(req).await).unwrap()
    }

    /// Every request faulted, with quick faults only (no held-back answers): an outage the client's
    /// retries cannot ride out, so reconciles fail whatever the seed drew before.
    async fn outage(&self) {
        let req = self
            .exempt(reqwest::Method::PUT, "/admin/faults")
            .json(&json!({"rate": 1.0, "kinds": ["server_error", "reset", "garbage"]}));
        self.json(req).await;
    }

    async fn stop_faults(&self) {
        let req = self
            .exempt(reqwest::Method::PUT, "/admin/faults")
            .json(&json!({"rate": 0}));
        self.json(req).await;
    }
}

impl Drop for FaultyHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the artifact at `url` is there and hashes to `digest`; its decompressed tar when it is.
async fn fetch_served(url: &str, digest: &str) -> Result<Vec<u8>, String> {
    let response = http_get(url).await;
    if response.status() != 200 {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    let got = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if got != digest {
        return Err(format!("{url}: digest {got}, status says {digest}"));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(out)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Failure reasons counted per repository in the shard's metrics.
fn counted_reasons(metrics: &str, ns: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("confighub_source_reconcile_failures_total{") else {
            continue;
        };
        let label = |key: &str| {
            let start = rest.find(&format!("{key}=\""))? + key.len() + 2;
            let end = rest[start..].find('"')? + start;
            Some(rest[start..end].to_string())
        };
        if label("namespace").as_deref() != Some(ns) {
            continue;
        }
        let (Some(name), Some(reason)) = (label("name"), label("reason")) else {
            continue;
        };
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *out.entry(name).or_default().entry(reason).or_default() += value as u64;
    }
    out
}

#[derive(Default)]
struct Samples {
    artifact_checks: u64,
    gaps: Vec<String>,
    /// Ready=False samples by repository and reason.
    failing: BTreeMap<String, BTreeMap<String, u64>>,
    ready_true: u64,
    /// Ready=False samples whose message does not name the artifact still served.
    unexplained: Vec<String>,
}

impl Samples {
    /// One look at every repository: its Ready condition, and its served artifact against its digest.
    async fn take(&mut self, repos: &Api<ConfigHubRepository>) {
        // All repositories at once, so each is looked at about every second.
        let looks = (0..REPOS).map(|i| async move {
            let name = format!("soak-{i}");
            let chr = repos.get(&name).await.ok()?;
            let artifact = chr.status.as_ref().and_then(|s| s.artifact.clone());
            let served = match &artifact {
                Some(a) => Some(fetch_served(&a.url, &a.digest).await.map(|_| ())),
                None => None,
            };
            Some((name, chr, artifact.is_some(), served))
        });
        for (name, chr, has_artifact, served) in
            futures::future::join_all(looks).await.into_iter().flatten()
        {
            if let Some(served) = served {
                self.artifact_checks += 1;
                if let Err(e) = served {
                    self.gaps.push(format!("{name}: {e}"));
                }
            }
            match condition(&chr, "Ready") {
                Some(ready) if ready.status == "False" => {
                    *self
                        .failing
                        .entry(name.clone())
                        .or_default()
                        .entry(ready.reason.clone())
                        .or_default() += 1;
                    // Once there is an artifact, a failure says which revision is still served.
                    let serving = !has_artifact || ready.message.contains("still serving revision");
                    if ready.reason.is_empty() || ready.message.is_empty() || !serving {
                        self.unexplained
                            .push(format!("{name}: {} {}", ready.reason, ready.message));
                    }
                }
                Some(ready) if ready.status == "True" => self.ready_true += 1,
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_from_confighub_never_stop_serving_and_are_all_visible() {
    let seconds: u64 = env_or("SOAK_SECONDS", 60);
    let rate: f64 = env_or("SOAK_RATE", 0.5);
    let seed: u64 = env_or("SOAK_SEED", rand::random::<u32>() as u64);
    eprintln!("soak: {seconds} s at fault rate {rate}, SOAK_SEED={seed}");

    let shard = Shard::start("soak", None, &[]);
    let client = client().await;
    let ns = namespace(&client, "soak").await;
    let hub = FaultyHub::start(rate, seed).await;
    token_secret(&client, &ns, "confighub", &hub.token).await;

    // (space id, unit ids) per repository, and the edit each repository's artifact must hold last.
    let mut spaces = Vec::new();
    for i in 0..REPOS {
        let space_id = hub.space(&format!("soak-{i}")).await;
        let mut units = Vec::new();
        for u in 0..UNITS {
            let unit_id = hub.unit(&space_id, &format!("u{u}")).await;
            hub.put_data(&space_id, &unit_id, config_map(i, u, "start"))
                .await;
            units.push(unit_id);
        }
        spaces.push((space_id, units));
    }
    let started = Instant::now();
    for i in 0..REPOS {
        let name = format!("soak-{i}");
        apply_repository_labelled(
            &client,
            &ns,
            &name,
            json!({ SHARD_KEY: "soak" }),
            json!({"url": hub.url, "space": name, "interval": format!("{INTERVAL_SECS}s"),
                   "timeout": format!("{SPEC_TIMEOUT_SECS}s"), "secretRef": {"name": "confighub"}}),
        )
        .await;
        apply_kustomization(&client, &ns, &name, &name).await;
    }
    let repos: Api<ConfigHubRepository> = Api::namespaced(client.clone(), &ns);

    let mut samples = Samples::default();
    let mut edits = 0usize;
    let mut last_edit = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let tick = Instant::now();
        if last_edit.elapsed() >= EDIT_EVERY {
            let (repo, unit) = (edits % REPOS, (edits / REPOS) % UNITS);
            let (space_id, units) = &spaces[repo];
            let yaml = config_map(repo, unit, &format!("e{edits}"));
            hub.put_data(space_id, &units[unit], yaml).await;
            edits += 1;
            last_edit = Instant::now();
        }
        samples.take(&repos).await;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
    }

    // Then an outage: with the client retrying 500s, resets and undecodable answers, the random faults
    // above may all have been ridden out; these cannot be, so there are failures to find in Ready.
    hub.outage().await;
    let outage = Instant::now();
    while outage.elapsed() < OUTAGE {
        let tick = Instant::now();
        samples.take(&repos).await;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
    }

    // Failures counted by now have their condition written next and kept for the retry delay (the
    // interval here): a few more samples, faults still on, see them.
    let counted = counted_reasons(&shard.metrics().await, &ns);
    for _ in 0..3 {
        samples.take(&repos).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Faults stop, and every repository gets one more edit it must serve within an interval.
    let during = hub.faults().await;
    let mut last = Vec::new();
    for (repo, (space_id, units)) in spaces.iter().enumerate() {
        let marker = format!("final-{repo}");
        hub.put_data(space_id, &units[0], config_map(repo, 0, &marker))
            .await;
        last.push(marker);
    }
    hub.stop_faults().await;
    let stopped = Instant::now();
    let bound = Duration::from_secs(INTERVAL_SECS + SPEC_TIMEOUT_SECS);
    let mut recovered = vec![None; REPOS];
    while recovered.iter().any(Option::is_none) {
        for (i, done) in recovered.iter_mut().enumerate() {
            if done.is_some() {
                continue;
            }
            let Ok(chr) = repos.get(&format!("soak-{i}")).await else {
                continue;
            };
            let ready = condition(&chr, "Ready").is_some_and(|c| c.status == "True");
            let Some(artifact) = chr.status.and_then(|s| s.artifact) else {
                continue;
            };
            if ready
                && let Ok(tar) = fetch_served(&artifact.url, &artifact.digest).await
                && contains(&tar, &format!("edit: \"{}\"", last[i]))
            {
                *done = Some(stopped.elapsed());
            }
        }
        assert!(
            stopped.elapsed() <= bound,
            "not every repository recovered within {bound:?} of the faults stopping: {recovered:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let recovery = recovered.iter().flatten().max().copied().unwrap();
    // kustomize-controller applies each last edit.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for (i, marker) in last.iter().enumerate() {
        wait_for(&format!("r{i}-u0 applied with {marker}"), SETUP, || async {
            let cm = config_maps.get_opt(&format!("r{i}-u0")).await.ok()??;
            (cm.data?.get("edit")? == marker).then_some(())
        })
        .await;
    }

    let log = shard.log_text();
    let panics = log.lines().filter(|l| l.contains("panicked")).count();
    let faults = hub.faults().await;
    let hub_log = std::fs::read_to_string(&hub.log).unwrap_or_default();
    let summary = format!(
        "soak: {seconds} s at fault rate {rate} (seed {seed}), {REPOS} repositories every {INTERVAL_SECS}s: \
         {} hub requests, faults {:?}, {edits} edits, {} artifact checks, serving gaps {}, panics {panics}, \
         Ready=False samples {:?} (Ready=True {}), failures counted {:?}, recovery {:.1} s after faults stopped",
        during.requests,
        during.faults,
        samples.artifact_checks,
        samples.gaps.len(),
        samples.failing,
        samples.ready_true,
        counted,
        recovery.as_secs_f64(),
    );
    eprintln!("{summary}");

    assert_eq!(panics, 0, "the controller panicked:\n{log}");
    assert!(
        !log.contains(&hub.token),
        "the token is in the controller's log"
    );
    assert!(samples.gaps.is_empty(), "serving gaps: {:#?}", samples.gaps);
    assert!(
        samples.unexplained.is_empty(),
        "Ready=False without reason or served revision: {:#?}",
        samples.unexplained
    );
    assert!(
        during.faults.values().sum::<u64>() > 0,
        "no fault served: {faults:?}\n{hub_log}"
    );
    assert!(
        counted.values().any(|r| !r.is_empty()),
        "no failed reconcile counted, so nothing was checked: {summary}"
    );
    // Errors of the Kubernetes API (kube, finalizer) are the reconcile's, not ConfigHub's: reported,
    // not required in Ready.
    for (repo, reasons) in &counted {
        for reason in reasons
            .keys()
            .filter(|r| !["kube", "finalizer"].contains(&r.as_str()))
        {
            assert!(
                samples
                    .failing
                    .get(repo)
                    .is_some_and(|seen| seen.contains_key(reason)),
                "{repo}: failures with reason {reason} were counted but never seen in Ready: {summary}"
            );
        }
    }
    let known: BTreeSet<&str> = ["ConfigHubUnavailable", "InvalidResponse", "Timeout"].into();
    for (repo, reasons) in &samples.failing {
        for reason in reasons.keys() {
            assert!(
                known.contains(reason.as_str()),
                "{repo}: unexpected reason {reason}: {summary}"
            );
        }
    }
}
