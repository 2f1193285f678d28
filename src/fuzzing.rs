//! The fuzz targets' bodies (`fuzz/fuzz_targets/*.rs` call them under libFuzzer) and the corpus replay
//! CI runs on stable (`tests/fuzz_corpora.rs`). Each takes arbitrary bytes and panics only when an
//! invariant breaks; an `Err` on hostile input is the expected answer, a panic never is.

use std::io::Read;

pub mod mutants;

use serde_json::Value;

use crate::artifact::manifest::test_support::{parse_back, stamp};
use crate::artifact::{BuildContext, UnitInput, build};

/// Unit parsing, validation and stamping: the textual fast path against the full parser. Whatever the
/// fast path takes, the full parser takes too, with the same objects and the same documents.
pub fn unit(data: &[u8]) {
    let stamp = stamp();
    let processed = crate::artifact::process::process_unit(data, &stamp);
    let Some(fast) = crate::artifact::textual::try_process(data, &stamp) else {
        return;
    };
    let full = crate::artifact::manifest::parse_and_stamp(data, &stamp)
        .unwrap_or_else(|e| panic!("the fast path took what the full parser refuses: {e}"));
    assert_eq!(fast.objects, full.objects);
    assert_eq!(
        parse_back(&fast.text.to_vec(data)),
        parse_back(&full.text.to_vec(data))
    );
    assert!(processed.is_ok());
}

/// How the controller reads a unit: the objects (group, kind, namespace, name) it would pack, or why
/// it refuses the unit. For the differential tests against other readers (tests/kustomize_reads.rs).
pub fn read_unit(data: &[u8]) -> Result<Vec<[String; 4]>, String> {
    crate::artifact::process::process_unit(data, &stamp())
        .map(|unit| {
            unit.objects
                .into_iter()
                .map(|o| [o.group, o.kind, o.namespace, o.name])
                .collect()
        })
        .map_err(|e| e.to_string())
}

/// `pack`: units split from the input on 0xFF bytes; a build is deterministic, its digest is the
/// sha256 of its bytes, and the archive extracts to one file per unit that defines objects.
pub fn pack(data: &[u8]) {
    let units: Vec<UnitInput> = data
        .split(|b| *b == 0xFF)
        .take(16)
        .enumerate()
        .map(|(i, chunk)| UnitInput {
            slug: format!("u{i}"),
            toolchain_type: "Kubernetes/YAML".into(),
            revision_num: i as i64,
            data: chunk.to_vec(),
        })
        .collect();
    let ctx = BuildContext {
        space_name: "fuzz".into(),
        space_id: "00000000-0000-0000-0000-000000000000".into(),
        mode_prefix: "head",
    };
    let Ok(first) = build(&units, &ctx) else {
        return;
    };
    let again = build(&units, &ctx).expect("the same units build again");
    assert_eq!(first.bytes, again.bytes, "builds are reproducible");
    assert_eq!(
        first.digest_hex(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&first.bytes))
    );
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&first.bytes[..])
        .read_to_end(&mut tar)
        .expect("the archive decompresses");
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().expect("a tar stream") {
        let entry = entry.expect("a whole entry");
        let path = entry.path().expect("a path").to_string_lossy().to_string();
        assert!(
            crate::artifact::names::is_safe_entry_name(&path),
            "unsafe entry {path:?}"
        );
    }
}

/// The hub's `where` parser, type check and evaluator never panic; what parses names attributes.
pub fn where_clause(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    use crate::hub::where_parser::{attributes, check, matches, parse};
    let Ok(expr) = parse(text) else {
        return;
    };
    assert!(!attributes(&expr).is_empty());
    let unit = serde_json::json!({
        "Slug": "web", "SpaceID": "s", "HeadRevisionNum": 3, "Labels": {"app": "web"},
        "HiddenReason": "", "LastReleasedRevisionNum": 0
    });
    for schema in [
        crate::hub::entities::UNIT_SCHEMA,
        crate::hub::entities::SPACE_SCHEMA,
        crate::hub::entities::REVISION_SCHEMA,
    ] {
        if check(&expr, schema).is_ok() {
            let _ = matches(&expr, &unit);
        }
    }
}

/// Drift normalisation and diff: two JSON objects from the input (split on the first 0xFF). Neither
/// panics, and an object compared with itself has no drift.
pub fn drift_diff(data: &[u8]) {
    let mut parts = data.splitn(2, |b| *b == 0xFF);
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(desired), Ok(live)) = (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    ) else {
        return;
    };
    use crate::drift::{diff, fields::FieldOwners, normalize};
    let owners = FieldOwners::default();
    let (d, l) = normalize::normalize_pair(&desired, Some(&live));
    let _ = diff::diff(&d, l.as_ref(), &owners);
    let _ = diff::policy(&desired, Some(&live));
    let (d, l) = normalize::normalize_pair(&desired, Some(&desired));
    assert!(
        diff::diff(&d, l.as_ref(), &owners).is_empty(),
        "an object drifts from itself"
    );
}

/// The artifact server's request paths: whatever is accepted is a plain relative path of visible
/// segments that cannot leave the storage root.
pub fn artifact_path(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Some(relative) = crate::http::artifact_server::safe_relative_path(raw) else {
        return;
    };
    assert!(!relative.is_empty() && !relative.starts_with('/'));
    for segment in relative.split('/') {
        assert!(!segment.is_empty(), "{relative:?}");
        assert!(!segment.starts_with('.'), "{relative:?}");
        assert!(
            !segment.contains('\\') && !segment.contains('\0'),
            "{relative:?}"
        );
    }
    let joined = std::path::Path::new("/root").join(&relative);
    assert!(joined.starts_with("/root"), "{relative:?}");
    assert!(
        joined.components().all(|c| matches!(
            c,
            std::path::Component::RootDir | std::path::Component::Normal(_)
        )),
        "{relative:?}"
    );
}
