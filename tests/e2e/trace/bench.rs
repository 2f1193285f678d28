//! `trace --all` timed on many delivered objects (docs/benchmarks.md).

use super::*;

/// `trace --all` on a namespace of `TRACE_BENCH_OBJECTS` (default 200 in the suite; 5,000 for the figures)
/// ConfigMaps, every one delivered
/// by one Kustomization over a ConfigHubRepository's ExternalArtifact (objects and owner statuses written by
/// the test, both owners suspended so no controller touches them). Prints the wall time of the whole
/// command; docs/benchmarks.md quotes it. Run with
/// `TRACE_BENCH_OBJECTS=5000 cargo test --release --test e2e trace::bench::trace_all_benchmark -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_all_benchmark() {
    use futures::StreamExt;
    let n: usize = std::env::var("TRACE_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        // In the suite: a namespace of 200 delivered objects, all traced as `ok`.
        .unwrap_or(200);
    let client = client().await;
    let ns = namespace(&client, "trace-bench").await;
    let hub = TestHub::start().await;
    let space_id = hub.space("bench").await;
    for i in 0..10 {
        hub.put_unit(
            &space_id,
            &format!("cm-{i}"),
            &config_map(&format!("cm-{i}"), "x"),
        )
        .await;
    }
    token_secret(&client, &ns, "confighub", &hub.token).await;
    apply_repository(
        &client,
        &ns,
        "bench",
        json!({"url": hub.url, "space": "bench", "interval": "1h", "suspend": true, "secretRef": {"name": "confighub"}}),
    )
    .await;
    let revision = format!("head@sha256:{}", "ab".repeat(32));
    let chrs = dynamic(
        &client,
        &ns,
        "source.confighub.com",
        "v1beta1",
        "ConfigHubRepository",
    );
    chrs.patch_status(
        "bench",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored",
                            "lastTransitionTime": "2026-12-01T00:00:00Z"}],
            "artifact": {"revision": revision, "digest": "sha256:x", "path": "p", "url": "http://x/p",
                         "lastUpdateTime": "2026-12-01T00:00:00Z"}}})),
    )
    .await
    .unwrap();
    let eas = dynamic(
        &client,
        &ns,
        "source.toolkit.fluxcd.io",
        "v1",
        "ExternalArtifact",
    );
    eas.patch(
        "bench",
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
            "metadata": {"name": "bench"},
            "spec": {"sourceRef": {"apiVersion": "source.confighub.com/v1beta1", "kind": "ConfigHubRepository", "name": "bench"}}})),
    )
    .await
    .unwrap();
    eas.patch_status(
        "bench",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"artifact": {"revision": revision, "digest": "sha256:x", "path": "p",
            "url": "http://x/p", "lastUpdateTime": "2026-12-01T00:00:00Z"}}}),
        ),
    )
    .await
    .unwrap();
    let ks = kustomizations(&client, &ns);
    ks.patch(
        "bench",
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "bench"},
            "spec": {"interval": "1h", "prune": false, "suspend": true, "path": "./",
                     "sourceRef": {"kind": "ExternalArtifact", "name": "bench"}}}),
        ),
    )
    .await
    .unwrap();
    let entries: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("{ns}_cm-{i}__ConfigMap"), "v": "v1"}))
        .collect();
    ks.patch_status(
        "bench",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"lastAppliedRevision": revision,
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                            "message": "Applied", "lastTransitionTime": "2026-12-01T00:00:00Z"}],
            "inventory": {"entries": entries}}})),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let created = std::time::Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let cms = cms.clone();
            let (ns, space_id) = (ns.clone(), space_id.clone());
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}"),
                    "labels": {"kustomize.toolkit.fluxcd.io/name": "bench", "kustomize.toolkit.fluxcd.io/namespace": ns,
                               "confighub.com/UnitSlug": format!("cm-{i}")},
                    "annotations": {"confighub.com/SpaceName": "bench", "confighub.com/SpaceID": space_id,
                                    "confighub.com/RevisionNum": "2"}},
                    "data": {"color": "x"}}))
                .unwrap();
                cms.create(&PostParams::default(), &cm).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!("created {n} ConfigMaps in {:?}", created.elapsed());
    let args = ["--all", "-n", ns.as_str(), "--drift-url", &drift_url()];
    let json_args = [&args[..], &["-o", "json"]].concat();
    let mut text_times = Vec::new();
    let mut json_times = Vec::new();
    let mut json_out = String::new();
    let mut text_out = String::new();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let (code, out, _) = trace(&args).await;
        text_times.push(start.elapsed());
        assert!(code == 0 || code == 3, "{code}");
        text_out = out;
        let start = std::time::Instant::now();
        let (_, out, _) = trace(&json_args).await;
        json_times.push(start.elapsed());
        json_out = out;
    }
    let mut single_times = Vec::new();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let (code, _, _) = trace(&["cm/cm-0", "-n", &ns, "--drift-url", &drift_url()]).await;
        single_times.push(start.elapsed());
        assert_eq!(code, 0);
    }
    println!("trace of one of them: {single_times:?}");
    let last: Value = serde_json::from_str(&json_out).unwrap();
    let traces = last["traces"].as_array().unwrap();
    let cm0 = traces
        .iter()
        .find(|t| t["object"]["name"] == "cm-0")
        .unwrap();
    assert_eq!(cm0["owner"], "confighub", "{cm0:#}");
    assert_eq!(cm0["status"], "ok", "{cm0:#}");
    assert!(traces.len() >= n, "{}", traces.len());
    println!(
        "trace --all over {} objects: text {:?}, json {:?} ({} bytes); {}",
        traces.len(),
        text_times,
        json_times,
        json_out.len(),
        text_out
            .lines()
            .rev()
            .find(|l| l.contains("objects:"))
            .unwrap_or_default()
    );
}
