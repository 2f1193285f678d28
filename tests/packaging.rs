//! The install paths: the Helm chart (`helm lint`, `helm template` with several values) and config/
//! (`kubectl kustomize`), rendered by the real helm and kubectl that hack/testbin.sh builds. config/ is
//! generated from the chart (hack/render-config.sh); these tests keep the two identical, the RBAC free
//! of wildcards, the CRDs one file, and the Deployment's flags ones the binary has.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

const CHART: &str = "charts/confighub-source-controller";
const RELEASE: &str = "confighub-source-controller";
const CRD: &str = "source.confighub.com_confighubrepositories.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The testbin bin/ folder (helm, kubectl), built or found in the cache by hack/testbin.sh, as the
/// end-to-end tests' hack/dev-cluster.sh does. Fails (never skips) when it cannot be built.
fn bin(name: &str) -> PathBuf {
    static TESTBIN: OnceLock<PathBuf> = OnceLock::new();
    let dir = TESTBIN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("hack/testbin.sh"))
            .output()
            .expect("running hack/testbin.sh");
        assert!(
            out.status.success(),
            "hack/testbin.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(stdout.lines().last().expect("testbin path").trim())
    });
    dir.join("bin").join(name)
}

/// Runs a tool from the repository root; returns (success, stdout, stderr).
fn run(tool: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin(tool))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).expect("rendered YAML parses"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `helm template` with the default values plus `set` (namespace flux-system, CRDs included).
fn helm_template(set: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        RELEASE,
        CHART,
        "--namespace",
        "flux-system",
        "--include-crds",
    ];
    for s in set {
        args.extend(["--set", s]);
    }
    let (ok, out, err) = run("helm", &args);
    assert!(ok, "helm template {set:?} failed: {err}");
    documents(&out)
}

fn kustomize_config() -> Vec<Value> {
    let (ok, out, err) = run("kubectl", &["kustomize", "config/"]);
    assert!(ok, "kubectl kustomize config/ failed: {err}");
    documents(&out)
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}/{}",
        o["kind"].as_str().unwrap_or(""),
        o["metadata"]["namespace"].as_str().unwrap_or(""),
        o["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for o in objects {
        let k = key(&o);
        assert!(map.insert(k.clone(), o).is_none(), "{k} rendered twice");
    }
    map
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn deployment(objects: &[Value]) -> &Value {
    let found = find(objects, "Deployment");
    assert_eq!(found.len(), 1, "one Deployment");
    found[0]
}

fn args(objects: &[Value]) -> Vec<String> {
    deployment(objects)["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// RBAC normalised per role: (kind/name) → sorted set of (group, resource, verb) triples, so rule
/// order and grouping do not matter, only what is granted.
fn granted(objects: &[Value]) -> BTreeMap<String, Vec<(String, String, String)>> {
    let mut out = BTreeMap::new();
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or("");
        if kind != "ClusterRole" && kind != "Role" {
            continue;
        }
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        let mut triples = Vec::new();
        for rule in o["rules"].as_array().into_iter().flatten() {
            for g in strings(&rule["apiGroups"]) {
                for r in strings(&rule["resources"]) {
                    for v in strings(&rule["verbs"]) {
                        triples.push((g.clone(), r.clone(), v));
                    }
                }
            }
        }
        triples.sort();
        triples.dedup();
        out.insert(key(o), triples);
    }
    out
}

#[test]
fn helm_lint_passes_with_default_and_varied_values() {
    for set in [
        "",
        "persistence.enabled=false",
        "serviceMonitor.enabled=true",
        "rbac.drift.rbacKinds=true",
    ] {
        let mut args = vec!["lint", "--strict", CHART];
        if !set.is_empty() {
            args.extend(["--set", set]);
        }
        let (ok, out, err) = run("helm", &args);
        assert!(ok, "helm lint {set:?} failed:\n{out}{err}");
    }
}

#[test]
fn config_renders_exactly_what_the_chart_renders_with_defaults() {
    let chart = by_key(helm_template(&[]));
    let config = by_key(kustomize_config());
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        config.keys().collect::<Vec<_>>(),
        "config/ and the chart render different objects; run hack/render-config.sh"
    );
    // The RBAC first, role by role, for a readable failure.
    let chart_rbac = granted(&chart.values().cloned().collect::<Vec<_>>());
    let config_rbac = granted(&config.values().cloned().collect::<Vec<_>>());
    for (role, rules) in &chart_rbac {
        assert_eq!(
            Some(rules),
            config_rbac.get(role),
            "config/ grants other RBAC than the chart in {role}; run hack/render-config.sh"
        );
    }
    for (k, o) in &chart {
        assert_eq!(o, &config[k], "{k} differs; run hack/render-config.sh");
    }
}

#[test]
fn crds_are_one_file_in_three_places() {
    let canonical = std::fs::read(root().join("crds").join(CRD)).unwrap();
    for copy in [format!("{CHART}/crds/{CRD}"), format!("config/crd/{CRD}")] {
        assert!(
            std::fs::read(root().join(&copy)).unwrap() == canonical,
            "{copy} differs from crds/{CRD}; run hack/render-config.sh"
        );
    }
    // And the chart installs them (helm template --include-crds renders the chart's crds/).
    let crd: Value = documents(&String::from_utf8(canonical).unwrap()).remove(0);
    let rendered = helm_template(&[]);
    assert_eq!(find(&rendered, "CustomResourceDefinition"), vec![&crd]);
}

#[test]
fn rbac_names_every_verb_and_resource() {
    for set in [&[][..], &["rbac.drift.rbacKinds=true"][..]] {
        let rendered = helm_template(set);
        let roles = granted(&rendered);
        assert!(!roles.is_empty());
        for (role, triples) in &roles {
            for (g, r, v) in triples {
                assert!(
                    !g.contains('*') && !r.contains('*') && !v.contains('*'),
                    "{role} grants a wildcard: {g}/{r} {v}"
                );
            }
        }
        // The controller never deletes or creates what Flux applies; it dry-runs patches.
        let common = &roles["ClusterRole//confighub-source-controller-drift-common"];
        assert!(
            common
                .iter()
                .all(|(_, _, v)| ["get", "list", "watch", "patch"].contains(&v.as_str()))
        );
        // Secrets: read-only for the source side.
        assert!(
            roles["ClusterRole//confighub-source-controller"]
                .iter()
                .filter(|(g, r, _)| g.is_empty() && r == "secrets")
                .all(|(_, _, v)| v == "get")
        );
        let escalating = roles
            .values()
            .flatten()
            .any(|(_, _, v)| v == "escalate" || v == "bind");
        assert_eq!(
            escalating,
            !set.is_empty(),
            "escalate/bind only when rbacKinds is on"
        );
    }
    // The drift reader aggregates by label and carries no rules of its own.
    let rendered = helm_template(&[]);
    let reader = find(&rendered, "ClusterRole")
        .into_iter()
        .find(|o| o["metadata"]["name"] == "confighub-source-controller-drift-reader")
        .expect("drift reader");
    assert_eq!(
        reader["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["source.confighub.com/aggregate-to-drift"],
        "true"
    );
}

#[test]
fn deployment_flags_are_flags_of_the_binary() {
    let help = Command::new(env!("CARGO_BIN_EXE_confighub-source-controller"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let rendered = helm_template(&["controller.watchNamespace=team-a"]);
    let args = args(&rendered);
    assert_eq!(args[0], "run");
    for arg in &args[1..] {
        let flag = arg.split('=').next().unwrap();
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "the Deployment passes {flag}, which `run --help` does not list"
        );
    }
    assert!(args.contains(&"--watch-namespace=team-a".to_string()));
    assert!(
        args.contains(
            &"--storage-adv-addr=confighub-source-controller.flux-system.svc.cluster.local."
                .to_string()
        )
    );
}

#[test]
fn the_drift_database_url_comes_from_a_secret_and_is_the_binarys_env() {
    let env_of = |rendered: &[Value]| -> Vec<Value> {
        deployment(rendered)["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    // Default: no DRIFT_DB, so SQLite on /data.
    let default = helm_template(&[]);
    assert!(env_of(&default).iter().all(|e| e["name"] != "DRIFT_DB"));
    let shared = helm_template(&["driftDatabase.secretName=drift-db"]);
    let drift_db: Vec<Value> = env_of(&shared)
        .into_iter()
        .filter(|e| e["name"] == "DRIFT_DB")
        .collect();
    assert_eq!(
        drift_db,
        vec![
            serde_json::json!({"name": "DRIFT_DB", "valueFrom": {"secretKeyRef": {"name": "drift-db", "key": "url"}}})
        ]
    );
    // The binary reads it, and does not print its value in its help.
    let help = Command::new(env!("CARGO_BIN_EXE_confighub-source-controller"))
        .args(["run", "--help"])
        .env("DRIFT_DB", "postgres://u:hunter2@db/drift")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("--drift-db") && help.contains("[env: DRIFT_DB"),
        "{help}"
    );
    assert!(!help.contains("hunter2"), "{help}");
}

#[test]
fn pod_runs_locked_down_like_flux_controllers() {
    let rendered = helm_template(&[]);
    let pod = &deployment(&rendered)["spec"]["template"]["spec"];
    let c = &pod["containers"][0]["securityContext"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["runAsNonRoot"], true);
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["allowPrivilegeEscalation"], false);
    assert_eq!(c["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(c["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["serviceAccountName"], "confighub-source-controller");
    assert!(pod["containers"][0]["resources"]["limits"]["memory"].is_string());
}

#[test]
fn storage_is_a_claim_or_an_empty_dir() {
    let with_pvc = helm_template(&[]);
    assert_eq!(find(&with_pvc, "PersistentVolumeClaim").len(), 1);
    let spec = &deployment(&with_pvc)["spec"];
    assert_eq!(spec["strategy"]["type"], "Recreate");
    assert_eq!(
        spec["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "confighub-source-controller-data"
    );

    let empty_dir = helm_template(&["persistence.enabled=false", "leaderElection.enabled=false"]);
    assert!(find(&empty_dir, "PersistentVolumeClaim").is_empty());
    let spec = &deployment(&empty_dir)["spec"];
    assert!(spec["strategy"].is_null());
    assert!(spec["template"]["spec"]["volumes"][0]["emptyDir"].is_object());

    let existing = helm_template(&["persistence.existingClaim=artifacts"]);
    assert!(find(&existing, "PersistentVolumeClaim").is_empty());
    assert_eq!(
        deployment(&existing)["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "artifacts"
    );
}

#[test]
fn network_policy_admits_only_flux_controllers_to_the_artifact_port() {
    let rendered = helm_template(&["networkPolicy.fluxNamespace=flux"]);
    let policies = find(&rendered, "NetworkPolicy");
    assert_eq!(policies.len(), 1);
    let artifact_rule = &policies[0]["spec"]["ingress"][0];
    assert_eq!(artifact_rule["ports"][0]["port"], "http");
    let peer = &artifact_rule["from"][0];
    assert_eq!(
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "flux"
    );
    assert_eq!(
        peer["podSelector"]["matchExpressions"][0]["values"],
        serde_json::json!(["kustomize-controller", "helm-controller"])
    );
    // The Services name the ports the policy names.
    let services = find(&rendered, "Service");
    assert_eq!(services.len(), 2);
    assert!(
        find(
            &helm_template(&["networkPolicy.enabled=false"]),
            "NetworkPolicy"
        )
        .is_empty()
    );
}

#[test]
fn service_monitor_is_optional() {
    assert!(find(&helm_template(&[]), "ServiceMonitor").is_empty());
    let rendered = helm_template(&["serviceMonitor.enabled=true"]);
    let monitors = find(&rendered, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0]["spec"]["endpoints"][0]["port"], "http-prom");
    // It selects the HTTP Service only.
    let selector = &monitors[0]["spec"]["selector"]["matchLabels"];
    let selected: Vec<_> = find(&rendered, "Service")
        .into_iter()
        .filter(|s| {
            selector
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &s["metadata"]["labels"][k] == v)
        })
        .collect();
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0]["spec"]["ports"][0]["name"], "http-prom");
}

#[test]
fn leader_election_is_on_with_flux_flags_and_recreates_pods() {
    let rendered = helm_template(&[]);
    let spec = &deployment(&rendered)["spec"];
    let args: Vec<String> =
        serde_json::from_value(spec["template"]["spec"]["containers"][0]["args"].clone()).unwrap();
    for flag in [
        "--enable-leader-election",
        "--leader-election-lease-duration=35s",
        "--leader-election-renew-deadline=30s",
        "--leader-election-retry-period=5s",
        "--leader-election-release-on-cancel=true",
        "--leader-election-id=confighub-source-controller-leader-election",
    ] {
        assert!(
            args.contains(&flag.to_string()),
            "{flag} missing from {args:?}"
        );
    }
    // A new pod is a follower (not ready) beside an old leader: a rolling update would stall.
    let no_pvc = helm_template(&["persistence.enabled=false"]);
    assert_eq!(deployment(&no_pvc)["spec"]["strategy"]["type"], "Recreate");
    // The Lease RBAC is in the release namespace.
    let role = find(&rendered, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "confighub-source-controller-leader-election")
        .expect("the leader election Role");
    assert_eq!(role["metadata"]["namespace"], "flux-system");
    assert_eq!(role["rules"][0]["resources"], serde_json::json!(["leases"]));

    let off = helm_template(&["leaderElection.enabled=false"]);
    let args = deployment(&off)["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("leader-election"), "{args}");
}

#[test]
fn more_than_one_replica_needs_leader_election_and_own_storage() {
    let (ok, _, err) = run(
        "helm",
        &[
            "template",
            RELEASE,
            CHART,
            "--set",
            "replicas=2",
            "--set",
            "leaderElection.enabled=false",
        ],
    );
    assert!(!ok);
    assert!(err.contains("leaderElection.enabled"), "{err}");
    let (ok, _, err) = run("helm", &["template", RELEASE, CHART, "--set", "replicas=2"]);
    assert!(!ok);
    assert!(err.contains("persistence.enabled=false"), "{err}");
    let rendered = helm_template(&["replicas=2", "persistence.enabled=false"]);
    assert_eq!(deployment(&rendered)["spec"]["replicas"], 2);
}

#[test]
fn values_schema_refuses_mistyped_values() {
    for set in [
        "persistence.enabled=maybe",
        "controller.logFormat=xml",
        "service.httpPort=0",
        "leaderElection.leaseDuration=soon",
    ] {
        let (ok, _, err) = run("helm", &["template", RELEASE, CHART, "--set", set]);
        assert!(!ok, "--set {set} should be refused");
        assert!(err.contains("schema"), "{set}: {err}");
    }
}
