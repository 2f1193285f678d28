//! Text (a tree, one line per level, then the drift section and the closing line) and JSON output (pure).

use super::model::{FindingType, Mark, Trace};

fn json_scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "(absent)".to_string(),
        serde_json::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The text form: the tree, detail lines under levels that need them, drift, and the closing line.
pub fn text(t: &Trace) -> String {
    let prefixes: Vec<String> = (0..t.levels.len())
        .map(|i| match i {
            0 => String::new(),
            _ => format!("{}└─▶ ", "    ".repeat(i - 1) + "  "),
        })
        .collect();
    let heads: Vec<String> = t
        .levels
        .iter()
        .zip(&prefixes)
        .map(|(l, p)| format!("{p}{}", l.display()))
        .collect();
    let width = heads.iter().map(|h| h.chars().count()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (i, (level, head)) in t.levels.iter().zip(&heads).enumerate() {
        let pad = width - head.chars().count();
        out.push_str(&format!(
            "{head}{}{} {}\n",
            " ".repeat(pad),
            level.mark.symbol(),
            level.summary
        ));
        // Under the level's own name, where its child's arrow starts.
        let indent = " ".repeat(if i == 0 { 2 } else { 4 * i + 2 });
        let mut details = Vec::new();
        if let Some(path) = level.details.get("path").and_then(|p| p.as_str())
            && level.kind == "Kustomization"
        {
            details.push(format!("path {path}"));
        }
        if let Some(images) = level.details.get("images").and_then(|i| i.as_array()) {
            let list: Vec<&str> = images.iter().filter_map(|i| i.as_str()).collect();
            details.push(format!("image {}", list.join(", ")));
        }
        if level.mark != Mark::Ok
            && let Some(m) = &level.message
        {
            details.push(m.clone());
        }
        for d in details {
            out.push_str(&format!("{indent}· {d}\n"));
        }
    }
    if let Some(r) = &t.drift.record {
        out.push('\n');
        let since = r.first_detected.as_deref().unwrap_or("?");
        out.push_str(&format!(
            "Drift ({}): {} — severity {}, by {}, since {since}\n",
            t.drift.state,
            if r.types.is_empty() {
                "changed".to_string()
            } else {
                r.types.join(", ")
            },
            r.severity.as_deref().unwrap_or("?"),
            r.actor.as_deref().unwrap_or("unknown"),
        ));
        for item in &r.items {
            out.push_str(&format!(
                "  {}: desired {}, live {}{}\n",
                item.path,
                json_scalar(&item.desired),
                json_scalar(&item.live),
                item.actor
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default()
            ));
        }
        if let Some(u) = &r.fix_unit {
            out.push_str(&format!("  fix unit: {u}\n"));
        }
        if let Some(s) = &r.suggestion {
            out.push_str(&format!("  {s}\n"));
        }
    } else if t.drift.state == "unavailable" {
        out.push_str(&format!(
            "\nDrift: not checked, the drift API is unavailable ({}); --drift-url names the controller's --http-addr\n",
            t.drift.message.as_deref().unwrap_or("?")
        ));
    }
    let notes: Vec<&str> = t
        .findings
        .iter()
        .filter(|f| f.type_ == FindingType::Unverified)
        .map(|f| f.message.as_str())
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&format!("note: {n}\n"));
        }
    }
    out.push_str(&format!("\n{} {}\n", t.worst().symbol(), t.summary));
    out
}

/// The JSON form: the [`Trace`] as documented in docs/trace.md.
pub fn json(t: &Trace) -> String {
    serde_json::to_string_pretty(t).expect("a trace always serialises") + "\n"
}

/// `--all` as text: one line per object (mark, kind/name, its own state, who delivers it, the first
/// problem), then the counts.
pub fn all_text(traces: &[Trace], notes: &[String]) -> String {
    let rows: Vec<(String, String, String, String, String)> = traces
        .iter()
        .map(|t| {
            let own = t.levels.last();
            let problem = t
                .findings
                .iter()
                .find(|f| f.type_ != FindingType::Unverified)
                .map(|f| {
                    let word = format!("{:?}", f.type_).to_lowercase();
                    format!("{word}: {}", f.message)
                })
                .unwrap_or_default();
            (
                t.worst().symbol().to_string(),
                format!("{}/{}", t.object.kind, t.object.name),
                own.map(|l| l.summary.clone()).unwrap_or_default(),
                super::index::owner_chain(t),
                problem,
            )
        })
        .collect();
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    let w3 = rows.iter().map(|r| r.3.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (mark, name, state, chain, problem) in &rows {
        let line = format!(
            "{mark} {name}{}  {state}{}  {chain}{}  {problem}",
            " ".repeat(w1 - name.chars().count()),
            " ".repeat(w2 - state.chars().count()),
            " ".repeat(w3 - chain.chars().count()),
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let count = |m: Mark| traces.iter().filter(|t| t.worst() == m).count();
    out.push_str(&format!(
        "\n{} objects: {} ok, {} with warnings, {} broken\n",
        traces.len(),
        count(Mark::Ok),
        count(Mark::Warn),
        count(Mark::Fail)
    ));
    for n in notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// `--all` as JSON: `{"schemaVersion", "namespace", "traces": [<trace>...], "notes": [...]}`.
pub fn all_json(namespace: &str, traces: &[Trace], notes: &[String]) -> String {
    let v = serde_json::json!({
        "schemaVersion": super::model::SCHEMA_VERSION,
        "namespace": namespace,
        "traces": traces,
        "notes": notes,
    });
    serde_json::to_string_pretty(&v).expect("traces always serialise") + "\n"
}
