//! Measures edit → delivery (issue 14, P3) against a hub, the controller and kustomize-controller set up
//! by hack/bench-delivery.sh: a unit is edited in the hub, `reconcile.fluxcd.io/requestedAt` is set on the
//! ConfigHubRepository, and watches timestamp (1) the new ExternalArtifact revision, (2) the edited
//! ConfigMap changing in the cluster and (3) the Kustomization's `lastAppliedRevision` reaching it.
//!
//! Units are the ConfigMaps hack/bench-delivery.sh loads: slug and name `cm-NNNN`, `data.key`.
//!
//! cargo run --release --example delivery_bench -- --hub URL --token T --space S --namespace NS ...

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use confighub_source_controller::api::{ConfigHubRepository, ExternalArtifact};
use confighub_source_controller::confighub::{Client as Hub, ClientOptions};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    hub: String,
    #[arg(long)]
    token: String,
    #[arg(long)]
    space: String,
    /// Namespace of the ConfigHubRepository, ExternalArtifact, Kustomization and ConfigMaps.
    #[arg(long)]
    namespace: String,
    /// Name of the ConfigHubRepository, its ExternalArtifact and the Kustomization.
    #[arg(long, default_value = "bench")]
    name: String,
    #[arg(long, default_value_t = 100)]
    units: usize,
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Pause between samples, so each edit finds everything idle.
    #[arg(long, default_value_t = 1000)]
    pause_ms: u64,
    /// The controller's --http-addr, for its reconcile-duration histogram.
    #[arg(long)]
    http: Option<String>,
}

/// The latest value of one field per object name, with when the watch first showed it.
#[derive(Default)]
struct Seen {
    latest: Mutex<HashMap<String, (String, Instant)>>,
    changed: tokio::sync::Notify,
}

impl Seen {
    fn record(&self, name: String, value: Option<String>) {
        let Some(value) = value else { return };
        let mut latest = self.latest.lock().unwrap();
        if latest.get(&name).map(|(v, _)| v) != Some(&value) {
            latest.insert(name, (value, Instant::now()));
            self.changed.notify_waiters();
        }
    }

    fn get(&self, name: &str) -> Option<(String, Instant)> {
        self.latest.lock().unwrap().get(name).cloned()
    }

    /// Waits until `name`'s value satisfies `ok`; returns it and when it was first seen.
    async fn wait(
        &self,
        name: &str,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<(String, Instant)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some((v, at)) = self.get(name)
                && ok(&v)
            {
                return Ok((v, at));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!("timed out waiting for {name} (last: {:?})", self.get(name));
            }
        }
    }
}

/// Feeds `seen` from a watch of `api`, reading the field with `field`.
fn watch<K>(api: Api<K>, seen: Arc<Seen>, field: fn(&K) -> Option<String>)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    let name = o.meta().name.clone().unwrap_or_default();
                    seen.record(name, field(&o));
                }
                Ok(_) => {}
                Err(err) => eprintln!("watch: {err}"),
            }
        }
    });
}

fn watch_dynamic(api: Api<DynamicObject>, seen: Arc<Seen>, pointer: &'static str) {
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = event {
                let value = o
                    .data
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .map(String::from);
                seen.record(o.metadata.name.clone().unwrap_or_default(), value);
            }
        }
    });
}

fn unit_yaml(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sum and count of the controller's reconcile-duration histogram.
async fn reconcile_totals(http: &str) -> Option<(f64, f64)> {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |suffix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("gotk_reconcile_duration_seconds_{suffix}")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Some((value("sum"), value("count")))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let hub = Hub::new(
        &args.hub,
        Some(args.token.clone()),
        ClientOptions::default(),
    )?;
    let space = hub.resolve_space(&args.space).await?;
    let units: HashMap<String, String> = hub
        .list_units(&space.space_id, None, &[])
        .await?
        .into_iter()
        .map(|u| (u.slug, u.unit_id))
        .collect();

    let kube = kube::Client::try_default().await?;
    let ns = args.namespace.as_str();
    let repositories: Api<ConfigHubRepository> = Api::namespaced(kube.clone(), ns);
    let (artifacts, applied, objects) = (
        Arc::new(Seen::default()),
        Arc::new(Seen::default()),
        Arc::new(Seen::default()),
    );
    watch(
        Api::<ExternalArtifact>::namespaced(kube.clone(), ns),
        artifacts.clone(),
        |ea| Some(ea.status.as_ref()?.artifact.as_ref()?.revision.clone()),
    );
    watch(
        Api::<ConfigMap>::namespaced(kube.clone(), ns),
        objects.clone(),
        |cm| cm.data.as_ref()?.get("key").cloned(),
    );
    let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    let ks = Api::<DynamicObject>::namespaced_with(kube.clone(), ns, &ApiResource::from_gvk(&gvk));
    watch_dynamic(ks, applied.clone(), "/status/lastAppliedRevision");

    // Start from a delivered state: the artifact's revision applied.
    let (revision, _) = artifacts
        .wait(&args.name, |_| true)
        .await
        .context("no ExternalArtifact revision")?;
    applied
        .wait(&args.name, |r| r == revision)
        .await
        .context("the Kustomization has not applied it")?;
    let before = match &args.http {
        Some(http) => reconcile_totals(http).await,
        None => None,
    };

    let run = std::process::id();
    let mut rows = Vec::new();
    for i in 0..args.samples {
        let name = format!("cm-{:04}", (i * 7) % args.units);
        let unit_id = units
            .get(&name)
            .with_context(|| format!("no unit {name}"))?;
        let value = format!("edit-{run}-{i}");
        let previous = artifacts
            .get(&args.name)
            .map(|(r, _)| r)
            .unwrap_or_default();

        let t0 = Instant::now();
        hub.upload_unit_data(
            &space.space_id,
            unit_id,
            unit_yaml(&name, &value),
            None,
            Some("bench edit"),
        )
        .await?;
        let edited = Instant::now();
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let patch =
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}});
        repositories
            .patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let requested = Instant::now();

        let (revision, artifact_at) = artifacts.wait(&args.name, |r| r != previous).await?;
        let (_, object_at) = objects.wait(&name, |v| v == value).await?;
        let (_, applied_at) = applied.wait(&args.name, |r| r == revision).await?;
        rows.push([
            ms(edited - t0),
            ms(requested - edited),
            ms(artifact_at - edited),
            ms(object_at - artifact_at),
            ms(applied_at - artifact_at),
            ms(applied_at - edited),
        ]);
        let r = rows.last().unwrap();
        eprintln!(
            "sample {i:2} {name}: edit {:.1} ms, patch {:.1} ms, → artifact {:.0} ms, → object {:.0} ms, → applied {:.0} ms",
            r[0], r[1], r[2], r[3], r[4]
        );
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
    }

    let columns = [
        "hub edit (PUT unit data), round trip",
        "requestedAt patch, round trip",
        "**requestedAt set → new ExternalArtifact revision** (incl. the patch)",
        "new revision → edited ConfigMap changed in the cluster",
        "new revision → Kustomization lastAppliedRevision",
        "requestedAt set → lastAppliedRevision (end to end)",
    ];
    println!("| ms, {} samples | min | p50 | p90 | max |", rows.len());
    println!("|---|---|---|---|---|");
    for (c, label) in columns.iter().enumerate() {
        let mut v: Vec<f64> = rows.iter().map(|r| r[c]).collect();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        println!(
            "| {label} | {:.0} | {:.0} | {:.0} | {:.0} |",
            v[0],
            q(0.5),
            q(0.9),
            v[v.len() - 1]
        );
    }
    if let (Some(http), Some((s0, c0))) = (&args.http, before)
        && let Some((s1, c1)) = reconcile_totals(http).await
    {
        println!(
            "\ncontroller reconciles during the samples: {:.0}, mean {:.0} ms (gotk_reconcile_duration_seconds)",
            c1 - c0,
            (s1 - s0) / (c1 - c0).max(1.0) * 1000.0
        );
    }
    Ok(())
}
