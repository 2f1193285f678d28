//! Measures the drift record store on both backends in one run, side by side: what one check costs the
//! store (`upsert_detection` of a new episode, of the same drift again, and `get`), and a full list.
//! SQLite is a file in a temp folder; PostgreSQL is the server at `--postgres` (a loopback server: the
//! figures are the store's own cost plus one local round trip per statement, not a network's).
//!
//! cargo run --release --example drift_store_bench -- --postgres postgres://u:p@127.0.0.1:5432/db [--objects 2000]

use std::time::Instant;

use clap::Parser;
use confighub_source_controller::drift::{
    DetectionContext, DetectionSource, ObjectKey, RecordFilter, RecordStore, detect,
};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// A PostgreSQL database to write into (its drift tables are emptied first).
    #[arg(long)]
    postgres: String,
    /// Objects, each given one new episode, one repeat sighting and one read.
    #[arg(long, default_value_t = 2000)]
    objects: usize,
}

struct Figures {
    start: f64,
    repeat: f64,
    get: f64,
    list_ms: f64,
}

fn run(store: &RecordStore, objects: usize) -> Figures {
    let ctx = DetectionContext {
        ignore: &[],
        source: DetectionSource::Watch,
        unit_slug: Some("web".into()),
        revision: Some("1".into()),
        repository: None,
        at: chrono::Utc::now(),
    };
    let detections: Vec<_> = (0..objects)
        .map(|i| {
            let key = ObjectKey::new("Deployment", "bench", format!("web-{i:05}"));
            let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": key.name, "namespace": "bench"}, "spec": {"replicas": 1}});
            let mut live = desired.clone();
            live["spec"]["replicas"] = json!(3);
            detect(&key, &desired, Some(&live), &ctx).expect("drift")
        })
        .collect();
    let per_second = |started: Instant| objects as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for d in &detections {
        store.upsert_detection(d).unwrap();
    }
    let start = per_second(started);
    let started = Instant::now();
    for d in &detections {
        store.upsert_detection(d).unwrap();
    }
    let repeat = per_second(started);
    let started = Instant::now();
    for d in &detections {
        store.get(&d.key.id()).unwrap().unwrap();
    }
    let get = per_second(started);
    let started = Instant::now();
    assert_eq!(store.list(&RecordFilter::default()).unwrap().len(), objects);
    let list_ms = started.elapsed().as_secs_f64() * 1000.0;
    Figures {
        start,
        repeat,
        get,
        list_ms,
    }
}

fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = RecordStore::open(&dir.path().join("drift.db")).unwrap();
    {
        let mut client = postgres::Client::connect(&args.postgres, postgres::NoTls).unwrap();
        client
            .batch_execute(
                "DROP TABLE IF EXISTS drift_records; DROP TABLE IF EXISTS schema_version;",
            )
            .unwrap();
    }
    let pg = RecordStore::connect_postgres(&args.postgres).unwrap();
    let s = run(&sqlite, args.objects);
    let p = run(&pg, args.objects);
    println!(
        "| operation ({} objects) | SQLite | PostgreSQL (loopback) | PostgreSQL / SQLite |",
        args.objects
    );
    println!("|---|---|---|---|");
    for (what, a, b) in [
        ("new episode (upsert_detection), ops/s", s.start, p.start),
        (
            "same drift again (upsert_detection), ops/s",
            s.repeat,
            p.repeat,
        ),
        ("get, ops/s", s.get, p.get),
    ] {
        println!("| {what} | {a:.0} | {b:.0} | {:.2} |", b / a);
    }
    println!(
        "| list all, ms | {:.1} | {:.1} | {:.2} |",
        s.list_ms,
        p.list_ms,
        p.list_ms / s.list_ms
    );
}
