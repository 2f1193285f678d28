//! Measures drift detection against a running controller, kube-apiserver and kustomize-controller (set up
//! by hack/bench-drift.sh, which documents the data): the controller's CPU and memory while it watches the
//! managed objects, the detection latency of out-of-band edits (edit → record visible in the API), and, on
//! the same objects, how long kustomize-controller takes to correct the same kind of edit at its interval.
//!
//! Objects are the ones hack/bench-drift.sh generates: ConfigMaps `cm-NNNN` (`data.key: value-N`) and
//! Deployments `web-NNNN` (`replicas: 1`). Edits are server-side applies by field manager `bench-editor`
//! with `force`, each on an object that has not drifted before, so each one is a new detection.
//!
//! cargo run --release --example drift_bench -- --http 127.0.0.1:PORT --namespace NS --pid PID ...

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

const EDITOR: &str = "bench-editor";
const POLL: Duration = Duration::from_millis(5);
const DETECTION_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser)]
struct Args {
    /// The controller's --http-addr (drift API and metrics).
    #[arg(long)]
    http: String,
    /// Namespace of the managed objects.
    #[arg(long)]
    namespace: String,
    /// The controller's process id (CPU and memory from /proc).
    #[arg(long)]
    pid: u32,
    #[arg(long)]
    configmaps: usize,
    #[arg(long)]
    deployments: usize,
    /// Out-of-band edits timed against the drift API.
    #[arg(long, default_value_t = 100)]
    edits: usize,
    /// Out-of-band edits timed until kustomize-controller restores them.
    #[arg(long, default_value_t = 20)]
    flux_samples: usize,
    /// The Kustomization's spec.interval, seconds; the Flux edits are spread over two intervals.
    #[arg(long, default_value_t = 30)]
    flux_interval: u64,
    /// Idle window for CPU, seconds.
    #[arg(long, default_value_t = 60)]
    idle: u64,
    /// How long to wait for the controller to have compared every object, seconds.
    #[arg(long, default_value_t = 600)]
    ready_timeout: u64,
    /// Other processes to report CPU for, as NAME=PID (kube-apiserver, kustomize-controller).
    #[arg(long = "peer")]
    peers: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    ConfigMap,
    Deployment,
    /// A Deployment scaled through the `scale` subresource, as `kubectl scale` does.
    DeploymentScale,
}

#[derive(Clone)]
struct Target {
    kind: Kind,
    index: usize,
}

impl Target {
    fn name(&self) -> String {
        match self.kind {
            Kind::ConfigMap => format!("cm-{:04}", self.index),
            Kind::Deployment | Kind::DeploymentScale => format!("web-{:04}", self.index),
        }
    }

    fn record_id(&self, ns: &str) -> String {
        let kind = match self.kind {
            Kind::ConfigMap => "ConfigMap",
            Kind::Deployment | Kind::DeploymentScale => "Deployment",
        };
        format!("{kind}:{ns}:{}", self.name())
    }
}

/// ConfigMaps and Deployments alternately, from `start` on, skipping kinds that have no objects left.
fn targets(args: &Args, start: usize, n: usize) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::with_capacity(n);
    let (mut cm, mut dep) = (start, start);
    while out.len() < n {
        let want_cm = out.len() % 2 == 0 || dep >= args.deployments;
        if want_cm && cm < args.configmaps {
            out.push(Target {
                kind: Kind::ConfigMap,
                index: cm,
            });
            cm += 1;
        } else if dep < args.deployments {
            // Every other Deployment is scaled through the subresource.
            let kind = if dep % 2 == 0 {
                Kind::Deployment
            } else {
                Kind::DeploymentScale
            };
            out.push(Target { kind, index: dep });
            dep += 1;
        } else {
            bail!("not enough objects for {n} edits from index {start}");
        }
    }
    Ok(out)
}

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let rest = &stat[stat.rfind(')').context("bad /proc stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

/// (VmRSS, VmHWM) in MiB.
fn memory_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1024.0
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// CPU of the controller and the peers over a window, plus RSS sampled every second.
struct Window {
    start: Instant,
    cpu: Vec<(String, u32, f64)>,
    rss: Arc<Mutex<Vec<f64>>>,
    sampler: tokio::task::JoinHandle<()>,
}

struct WindowResult {
    wall: f64,
    /// (name, CPU seconds, % of one core)
    cpu: Vec<(String, f64, f64)>,
    rss_median: f64,
    rss_max: f64,
    hwm: f64,
}

impl Window {
    fn start(pid: u32, peers: &[(String, u32)]) -> anyhow::Result<Self> {
        let mut cpu = vec![("controller".to_string(), pid, cpu_seconds(pid)?)];
        for (name, p) in peers {
            cpu.push((name.clone(), *p, cpu_seconds(*p)?));
        }
        let rss = Arc::new(Mutex::new(vec![memory_mib(pid)?.0]));
        let samples = Arc::clone(&rss);
        let sampler = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok((r, _)) = memory_mib(pid) {
                    samples.lock().unwrap().push(r);
                }
            }
        });
        Ok(Self {
            start: Instant::now(),
            cpu,
            rss,
            sampler,
        })
    }

    fn finish(self, pid: u32) -> anyhow::Result<WindowResult> {
        self.sampler.abort();
        let wall = self.start.elapsed().as_secs_f64();
        let mut cpu = Vec::new();
        for (name, p, before) in &self.cpu {
            let used = cpu_seconds(*p)? - before;
            cpu.push((name.clone(), used, 100.0 * used / wall));
        }
        let (rss_now, hwm) = memory_mib(pid)?;
        let mut rss = self.rss.lock().unwrap().clone();
        rss.push(rss_now);
        let (median, max) = (percentile(&rss, 0.5), percentile(&rss, 1.0));
        Ok(WindowResult {
            wall,
            cpu,
            rss_median: median,
            rss_max: max,
            hwm,
        })
    }
}

/// Nearest-rank percentile (`p` in 0..=1) of unsorted values.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn stats_line(label: &str, ms: &[f64]) -> String {
    format!(
        "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        ms.len(),
        percentile(ms, 0.0),
        percentile(ms, 0.5),
        percentile(ms, 0.9),
        percentile(ms, 0.99),
        percentile(ms, 1.0),
        ms.iter().sum::<f64>() / ms.len().max(1) as f64,
    )
}

struct Bench {
    args: Args,
    http: reqwest::Client,
    kube: kube::Client,
}

impl Bench {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.args.http)
    }

    async fn get_json(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self.http.get(self.url(path)).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// The record of an object, `None` when it has none (404).
    async fn record(&self, id: &str) -> anyhow::Result<Option<Value>> {
        let (status, body) = self
            .get_json(&format!("/api/v1/drift-records/{id}"))
            .await?;
        match status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            s => bail!("GET record {id}: HTTP {s}: {body}"),
        }
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let want = self.args.configmaps + self.args.deployments;
        let ns = &self.args.namespace;
        let deadline = Instant::now() + Duration::from_secs(self.args.ready_timeout);
        let mut seen = 0;
        while Instant::now() < deadline {
            if let Ok((200, body)) = self
                .get_json(&format!("/api/v1/resources?namespace={ns}"))
                .await
            {
                seen = body["count"].as_u64().unwrap_or(0) as usize;
                if seen >= want {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        bail!(
            "the controller compared {seen} of {want} objects within {}s",
            self.args.ready_timeout
        )
    }

    async fn active_ids(&self) -> anyhow::Result<Vec<String>> {
        let ns = &self.args.namespace;
        let (_, body) = self
            .get_json(&format!("/api/v1/drift-records/active?namespace={ns}"))
            .await?;
        Ok(body["records"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The out-of-band edit: a server-side apply by another field manager, forced.
    async fn edit(&self, target: &Target, n: usize) -> anyhow::Result<()> {
        let ns = &self.args.namespace;
        let name = target.name();
        let params = PatchParams::apply(EDITOR).force();
        match target.kind {
            Kind::ConfigMap => {
                let patch = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": ns}, "data": {"key": format!("edited-{n}")}});
                Api::<ConfigMap>::namespaced(self.kube.clone(), ns)
                    .patch(&name, &params, &Patch::Apply(&patch))
                    .await?;
            }
            Kind::Deployment => {
                let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": ns}, "spec": {"replicas": 2}});
                Api::<Deployment>::namespaced(self.kube.clone(), ns)
                    .patch(&name, &params, &Patch::Apply(&patch))
                    .await?;
            }
            Kind::DeploymentScale => {
                let scale = PatchParams {
                    field_manager: Some("bench-scaler".into()),
                    ..Default::default()
                };
                Api::<Deployment>::namespaced(self.kube.clone(), ns)
                    .patch_scale(
                        &name,
                        &scale,
                        &Patch::Merge(json!({"spec": {"replicas": 2}})),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn metrics(&self) -> String {
        match self.http.get(self.url("/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

struct Detected {
    latency_ms: f64,
    apply_ms: f64,
    source: String,
    /// The record's `first_detected` minus the wall clock just before the edit.
    first_detected_ms: f64,
}

fn ms_between(later: &str, earlier: DateTime<Utc>) -> f64 {
    DateTime::parse_from_rfc3339(later)
        .map(|t| {
            (t.with_timezone(&Utc) - earlier)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0
        })
        .unwrap_or(f64::NAN)
}

/// Times one edit from just before the apply until the API shows the new episode.
async fn detect_one(b: &Bench, target: &Target, n: usize) -> anyhow::Result<Option<Detected>> {
    let id = target.record_id(&b.args.namespace);
    let before = b
        .record(&id)
        .await?
        .and_then(|r| r["episode"].as_u64())
        .unwrap_or(0);
    let wall0 = Utc::now();
    let t0 = Instant::now();
    b.edit(target, n).await?;
    let apply_ms = t0.elapsed().as_secs_f64() * 1000.0;
    while t0.elapsed() < DETECTION_TIMEOUT {
        if let Some(r) = b.record(&id).await?
            && r["episode"].as_u64().unwrap_or(0) > before
        {
            return Ok(Some(Detected {
                latency_ms: t0.elapsed().as_secs_f64() * 1000.0,
                apply_ms,
                source: r["source"].as_str().unwrap_or("?").to_string(),
                first_detected_ms: ms_between(
                    r["first_detected"].as_str().unwrap_or_default(),
                    wall0,
                ),
            }));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(None)
}

/// One Flux sample: edited at `t0`; restored when a watch event shows the original value again after
/// one showed the edit.
struct FluxSample {
    target: Target,
    t0: Instant,
    wall0: DateTime<Utc>,
    saw_edit: bool,
    restored: Option<Instant>,
    restored_wall: Option<DateTime<Utc>>,
}

type Samples = Arc<Mutex<HashMap<String, FluxSample>>>;

fn observe(samples: &Samples, name: &str, original: bool) {
    let mut samples = samples.lock().unwrap();
    let Some(s) = samples.get_mut(name) else {
        return;
    };
    if !original {
        s.saw_edit = true;
    } else if s.saw_edit && s.restored.is_none() {
        s.restored = Some(Instant::now());
        s.restored_wall = Some(Utc::now());
    }
}

fn watch_restores(
    kube: &kube::Client,
    ns: &str,
    samples: &Samples,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cms: Api<ConfigMap> = Api::namespaced(kube.clone(), ns);
    let deps: Api<Deployment> = Api::namespaced(kube.clone(), ns);
    let s1 = Arc::clone(samples);
    let s2 = Arc::clone(samples);
    vec![
        tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher(cms, watcher::Config::default()));
            while let Some(event) = events.next().await {
                if let Ok(watcher::Event::Apply(cm)) = event {
                    let name = cm.metadata.name.clone().unwrap_or_default();
                    let value = cm.data.as_ref().and_then(|d| d.get("key")).cloned();
                    let original = value.is_some_and(|v| v.starts_with("value-"));
                    observe(&s1, &name, original);
                }
            }
        }),
        tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher(deps, watcher::Config::default()));
            while let Some(event) = events.next().await {
                if let Ok(watcher::Event::Apply(d)) = event {
                    let name = d.metadata.name.clone().unwrap_or_default();
                    let replicas = d.spec.as_ref().and_then(|s| s.replicas);
                    observe(&s2, &name, replicas == Some(1));
                }
            }
        }),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let peers: Vec<(String, u32)> = args
        .peers
        .iter()
        .filter_map(|p| {
            let (name, pid) = p.split_once('=')?;
            Some((name.to_string(), pid.parse().ok()?))
        })
        .collect();
    let pid = args.pid;
    let b = Bench {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        kube: kube::Client::try_default()
            .await
            .context("no kube client (KUBECONFIG)")?,
        args,
    };
    let ns = b.args.namespace.clone();
    let objects = b.args.configmaps + b.args.deployments;

    eprintln!("== waiting for the controller to compare all {objects} objects");
    let ready_start = Instant::now();
    b.wait_ready().await?;
    let active = b.active_ids().await?;
    eprintln!(
        "   ready after {:.0}s; active drift records before any edit: {}",
        ready_start.elapsed().as_secs_f64(),
        active.len()
    );
    if !active.is_empty() {
        eprintln!(
            "   WARNING: drift reported on untouched objects (false positives): {:?}",
            &active[..active.len().min(10)]
        );
    }

    eprintln!("== idle: {}s with {objects} watched objects", b.args.idle);
    let window = Window::start(pid, &peers)?;
    tokio::time::sleep(Duration::from_secs(b.args.idle)).await;
    let idle = window.finish(pid)?;

    eprintln!("== detection: {} out-of-band edits", b.args.edits);
    let window = Window::start(pid, &peers)?;
    let mut detected = Vec::new();
    let mut missed = Vec::new();
    for (n, target) in targets(&b.args, 0, b.args.edits)?.into_iter().enumerate() {
        match detect_one(&b, &target, n).await? {
            Some(d) => detected.push((target.kind, d)),
            None => missed.push(target.name()),
        }
    }
    let during = window.finish(pid)?;

    let flux_n = b.args.flux_samples;
    let spacing = Duration::from_secs_f64(2.0 * b.args.flux_interval as f64 / flux_n.max(1) as f64);
    eprintln!(
        "== Flux: {flux_n} edits, one every {:.1}s, until kustomize-controller restores each",
        spacing.as_secs_f64()
    );
    let first_unused = b.args.edits.div_ceil(2);
    let window = Window::start(pid, &peers)?;
    let samples: Samples = Arc::new(Mutex::new(HashMap::new()));
    let watchers = watch_restores(&b.kube, &ns, &samples);
    tokio::time::sleep(Duration::from_secs(2)).await; // the watches list first
    for (n, target) in targets(&b.args, first_unused, flux_n)?
        .into_iter()
        .enumerate()
    {
        let name = target.name();
        samples.lock().unwrap().insert(
            name,
            FluxSample {
                target: target.clone(),
                t0: Instant::now(),
                wall0: Utc::now(),
                saw_edit: false,
                restored: None,
                restored_wall: None,
            },
        );
        b.edit(&target, 10_000 + n).await?;
        tokio::time::sleep(spacing).await;
    }
    let deadline = Instant::now() + Duration::from_secs(4 * b.args.flux_interval + 60);
    while Instant::now() < deadline
        && samples
            .lock()
            .unwrap()
            .values()
            .any(|s| s.restored.is_none())
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in watchers {
        w.abort();
    }
    let samples: Vec<FluxSample> = samples.lock().unwrap().drain().map(|(_, s)| s).collect();
    // The controller resolves a record when it sees Flux's restore; give it a moment to catch up.
    let resolve_deadline = Instant::now() + Duration::from_secs(30);
    for s in &samples {
        let id = s.target.record_id(&ns);
        while Instant::now() < resolve_deadline {
            match b.record(&id).await? {
                Some(r) if r["resolved_at"].is_string() => break,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    let flux_window = window.finish(pid)?;
    let mut flux_ms = Vec::new();
    let mut same_detect_ms = Vec::new();
    let mut resolve_after_restore_ms = Vec::new();
    let mut flux_missed = 0;
    for s in &samples {
        let Some(restored) = s.restored else {
            flux_missed += 1;
            continue;
        };
        flux_ms.push((restored - s.t0).as_secs_f64() * 1000.0);
        // The controller's view of the same edits: first detection, and resolution after the restore.
        if let Some(r) = b.record(&s.target.record_id(&ns)).await? {
            same_detect_ms.push(ms_between(
                r["first_detected"].as_str().unwrap_or_default(),
                s.wall0,
            ));
            if let (Some(at), Some(restored_wall)) = (r["resolved_at"].as_str(), s.restored_wall) {
                resolve_after_restore_ms.push(ms_between(at, restored_wall));
            }
        }
    }
    let after = memory_mib(pid)?;
    let metrics = b.metrics().await;
    // Every object was edited once, so each should have exactly one episode.
    let (_, all_records) = b
        .get_json(&format!(
            "/api/v1/drift-records?namespace={ns}&limit=100000"
        ))
        .await?;
    let mut episodes: HashMap<String, u64> = HashMap::new();
    for r in all_records["records"].as_array().into_iter().flatten() {
        *episodes
            .entry(r["id"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let mut repeated: Vec<String> = episodes
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| format!("{id} ({n} episodes)"))
        .collect();
    repeated.sort();
    let still_active = b.active_ids().await?;

    // Summary.
    let all: Vec<f64> = detected.iter().map(|(_, d)| d.latency_ms).collect();
    let of_kind = |k: Kind| -> Vec<f64> {
        detected
            .iter()
            .filter(|(kind, _)| *kind == k)
            .map(|(_, d)| d.latency_ms)
            .collect()
    };
    let apply: Vec<f64> = detected.iter().map(|(_, d)| d.apply_ms).collect();
    let first: Vec<f64> = detected.iter().map(|(_, d)| d.first_detected_ms).collect();
    let mut sources: HashMap<String, usize> = HashMap::new();
    for (_, d) in &detected {
        *sources.entry(d.source.clone()).or_default() += 1;
    }
    println!();
    println!(
        "## Detection latency (ms): edit → new record visible in GET /api/v1/drift-records/{{id}}"
    );
    println!();
    println!("| what | n | min | p50 | p90 | p99 | max | mean |");
    println!("|---|---|---|---|---|---|---|---|");
    println!("{}", stats_line("all edits", &all));
    println!(
        "{}",
        stats_line("ConfigMap data", &of_kind(Kind::ConfigMap))
    );
    println!(
        "{}",
        stats_line("Deployment replicas (apply)", &of_kind(Kind::Deployment))
    );
    println!(
        "{}",
        stats_line(
            "Deployment replicas (scale subresource)",
            &of_kind(Kind::DeploymentScale)
        )
    );
    println!("{}", stats_line("(the apply call alone)", &apply));
    println!("{}", stats_line("record first_detected − t0", &first));
    println!();
    println!(
        "missed (no record within {}s): {} {:?}; detected by: {:?}",
        DETECTION_TIMEOUT.as_secs(),
        missed.len(),
        missed,
        sources
    );
    println!();
    println!(
        "## kustomize-controller: edit → restored (ms), interval {}s, {} samples over two intervals",
        b.args.flux_interval,
        samples.len()
    );
    println!();
    println!("| what | n | min | p50 | p90 | p99 | max | mean |");
    println!("|---|---|---|---|---|---|---|---|");
    println!("{}", stats_line("Flux restores the object", &flux_ms));
    println!(
        "{}",
        stats_line(
            "this controller, same edits (first_detected − t0)",
            &same_detect_ms
        )
    );
    println!(
        "{}",
        stats_line(
            "record resolved after Flux's restore",
            &resolve_after_restore_ms
        )
    );
    println!();
    println!(
        "not restored within the deadline: {flux_missed}; expected Flux mean ≈ interval/2 = {:.0} ms \
         (plus part of the reconcile's own duration)",
        b.args.flux_interval as f64 * 500.0
    );
    println!(
        "ratio of medians, Flux restore / detection ({} edits): {:.0}×",
        b.args.edits,
        percentile(&flux_ms, 0.5) / percentile(&all, 0.5)
    );
    println!();
    println!(
        "records: {} objects with records (edited: {}), {} with more than one episode {:?}; \
         still active at the end: {}",
        episodes.len(),
        b.args.edits + flux_n,
        repeated.len(),
        &repeated[..repeated.len().min(10)],
        still_active.len()
    );
    println!();
    println!("## Controller CPU and memory ({objects} watched objects)");
    println!();
    println!(
        "| window | wall s | controller CPU s | controller % of a core | RSS median MiB | RSS max MiB | peak RSS (VmHWM) MiB | others' CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let edits_label = format!("during the {} edits", b.args.edits);
    for (label, w) in [
        ("idle", &idle),
        (edits_label.as_str(), &during),
        ("Flux phase (edits, restores, resolutions)", &flux_window),
    ] {
        let others: Vec<String> = w.cpu[1..]
            .iter()
            .map(|(n, s, p)| format!("{n} {s:.1} ({p:.0}%)"))
            .collect();
        println!(
            "| {label} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            w.wall,
            w.cpu[0].1,
            w.cpu[0].2,
            w.rss_median,
            w.rss_max,
            w.hwm,
            others.join(", ")
        );
    }
    println!();
    println!(
        "at the end: RSS {:.1} MiB, peak RSS {:.1} MiB",
        after.0, after.1
    );
    println!();
    println!("## Controller metrics at the end");
    println!();
    for line in metrics.lines().filter(|l| {
        l.starts_with("confighub_drift_detection_latency_seconds")
            || l.starts_with("confighub_drift_processing_seconds")
            || l.starts_with("confighub_drift_active")
    }) {
        println!("    {line}");
    }
    if !missed.is_empty() || flux_missed > 0 {
        bail!(
            "{} detections and {flux_missed} Flux restores were not seen in time",
            missed.len()
        );
    }
    Ok(())
}
