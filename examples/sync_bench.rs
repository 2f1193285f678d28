//! Measures the source pipeline (fetch → build → store) against a running hub, as the controller runs it:
//! a first full sync with an empty cache, then a reconcile of the unchanged space. Prints wall time,
//! ConfigHub requests and bytes downloaded for each. Run by hack/bench-sync.sh, which also records peak RSS.
//!
//! cargo run --release --example sync_bench -- <hub-url> <token> <space>

use std::time::Instant;

use confighub_source_controller::api::RevisionMode;
use confighub_source_controller::artifact::{self, BuildContext, Storage};
use confighub_source_controller::confighub::{Client, ClientOptions};
use confighub_source_controller::source::cache::UnitDataCache;
use confighub_source_controller::source::fetch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, token, space] = args.as_slice() else {
        anyhow::bail!("usage: sync_bench <hub-url> <token> <space>");
    };
    let dir = tempfile::tempdir()?;
    let cache = UnitDataCache::new(dir.path().join("cache"))?;
    let storage = Storage::new(dir.path().join("artifacts"), "127.0.0.1:9090".into());
    let client = Client::new(url, Some(token.clone()), ClientOptions::default())?;
    let space = fetch::resolve_space(&client, space)
        .await
        .map_err(|f| anyhow::anyhow!(f.message))?;

    let mut last: Option<([u8; 32], artifact::BuiltArtifact)> = None;
    for pass in ["first sync (empty cache)", "unchanged space (warm cache)"] {
        let before = client.stats();
        let started = Instant::now();
        let fetched = fetch::fetch(
            &client,
            &cache,
            space.clone(),
            None,
            false,
            RevisionMode::Head,
        )
        .await
        .map_err(|f| anyhow::anyhow!(f.message))?;
        let fetched_at = started.elapsed();
        let ctx = BuildContext {
            space_name: space.slug.clone(),
            space_id: space.space_id.clone(),
            mode_prefix: RevisionMode::Head.revision_prefix(),
        };
        // As the reconciler does: the same inputs as the last build and an intact stored file → reuse.
        let inputs = artifact::input_fingerprint(&fetched.units, &ctx);
        let reuse = match &last {
            Some((known, built)) if *known == inputs => storage
                .artifact_for("confighubrepository", "bench", "sync", &built.digest)?
                .filter(|s| storage.verify(&s.path, &s.digest).unwrap_or(false))
                .map(|s| (s, built.clone())),
            _ => None,
        };
        let reused = reuse.is_some();
        let (stored, built) = match reuse {
            Some(found) => found,
            None => {
                let built = artifact::build(&fetched.units, &ctx)?;
                let stored = storage.store("confighubrepository", "bench", "sync", &built)?;
                (stored, built)
            }
        };
        let total = started.elapsed();
        let after = client.stats();
        println!(
            "{pass}: units={} requests={} bytes_downloaded={} downloads={} cache_hits={} fetch={:.3}s total={:.3}s build={} artifact={} bytes revision={}",
            fetched.units.len(),
            after.requests - before.requests,
            after.bytes_downloaded - before.bytes_downloaded,
            fetched.downloads,
            fetched.cache_hits,
            fetched_at.as_secs_f64(),
            total.as_secs_f64(),
            if reused { "reused" } else { "built" },
            stored.size,
            built.revision,
        );
        last = Some((inputs, built));
    }
    Ok(())
}
