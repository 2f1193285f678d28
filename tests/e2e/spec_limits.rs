//! Spec values that cannot hurt: what the schema can refuse, the API server refuses, with a message
//! naming the field, before the controller ever sees it.

use crate::support::*;

fn repository(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: source.confighub.com/v1beta1\nkind: ConfigHubRepository\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  space: demo\n  suspend: true\n{spec}"
    )
}

#[tokio::test]
async fn the_api_server_refuses_specs_that_could_hurt() {
    let client = client().await;
    let ns = namespace(&client, "limits").await;
    let cp = control_plane();

    let (ok, _, err) = cp.kubectl_apply(&repository(&ns, "fine", "  interval: 1m\n"));
    assert!(ok, "a plain spec is accepted: {err}");

    let enormous_where = format!(
        "  interval: 1m\n  where: \"{}\"\n",
        "Slug = 'x' OR ".repeat(400) + "Slug = 'y'"
    );
    let refusals = [
        ("where", enormous_where, "spec.where: Too long"),
        (
            "interval",
            "  interval: 5\n".to_string(),
            "spec.interval: Invalid value",
        ),
        (
            "huge-interval",
            format!("  interval: {}h\n", "9".repeat(40)),
            "spec.interval: Too long",
        ),
        (
            "timeout",
            "  interval: 1m\n  timeout: forever\n".to_string(),
            "spec.timeout: Invalid value",
        ),
        (
            "ignore",
            format!(
                "  interval: 1m\n  drift:\n    ignore:\n{}",
                "    - {paths: [/data]}\n".repeat(300)
            ),
            "spec.drift.ignore: Too many",
        ),
        (
            "url",
            "  interval: 1m\n  url: \"ftp://example.invalid\"\n".to_string(),
            "spec.url: Invalid value",
        ),
    ];
    for (name, spec, expected) in refusals {
        let (ok, _, err) = cp.kubectl_apply(&repository(&ns, name, &spec));
        assert!(!ok, "{name}: the API server accepted it");
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in:\n{err}"
        );
    }
}
