//! Replays every fuzz corpus under fuzz/corpus/<target>/ through the target's checks on stable Rust, so
//! CI keeps every input the fuzzers found interesting (and every crash they found, once fixed) passing.

use std::path::Path;

use confighub_source_controller::fuzzing;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn unit_corpus() {
    replay("unit", fuzzing::unit);
}

#[test]
fn pack_corpus() {
    replay("pack", fuzzing::pack);
}

#[test]
fn where_clause_corpus() {
    replay("where_clause", fuzzing::where_clause);
}

#[test]
fn drift_diff_corpus() {
    replay("drift_diff", fuzzing::drift_diff);
}

#[test]
fn artifact_path_corpus() {
    replay("artifact_path", fuzzing::artifact_path);
}
