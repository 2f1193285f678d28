//! Fetch: resolve the space, list the selected units (one request), and get each unit's data at the
//! revision the mode asks for — from the content-addressed cache when possible, from ConfigHub otherwise.

use futures::{StreamExt, TryStreamExt};

use super::cache::{UnitDataCache, data_hash};
use super::conditions::{FailedStep, Failure};
use crate::api::RevisionMode;
use crate::artifact::UnitInput;
use crate::confighub::{self, DataDownload, Space, Unit};

/// Fields of a unit the controller needs; everything else is trimmed by the server.
const UNIT_FIELDS: [&str; 6] = [
    "Slug",
    "UnitID",
    "ToolchainType",
    "HeadRevisionNum",
    "LastReleasedRevisionNum",
    "DataHash",
];
/// Data downloads in flight at once (the client bounds this too).
const DOWNLOAD_CONCURRENCY: usize = 8;

/// Units at the revisions chosen, plus what was left out and why.
#[derive(Debug, Default)]
pub struct Fetched {
    pub space: Space,
    pub units: Vec<UnitInput>,
    /// Units never released (LastReleased mode), left out of the artifact.
    pub unreleased: Vec<String>,
    pub downloads: usize,
    pub cache_hits: usize,
}

/// Turns a client error into a condition a person can act on.
pub fn fetch_failure(what: &str, err: &confighub::Error) -> Failure {
    let (reason, stalled) = crate::connection::classify(err);
    Failure {
        step: FailedStep::Fetch,
        reason: reason.into(),
        message: format!("{what}: {err}"),
        stalled,
    }
}

/// Resolves a space slug or UUID (one request). The reconciler goes through
/// `connection::Connections::connect`, which remembers the answer; benchmarks call this directly.
pub async fn resolve_space(client: &confighub::Client, space_ref: &str) -> Result<Space, Failure> {
    client.resolve_space(space_ref).await.map_err(|e| {
        let mut f = fetch_failure(&format!("resolving space '{space_ref}'"), &e);
        if e.is_not_found() {
            f.reason = "SpaceNotFound".into();
        }
        f
    })
}

/// Lists the units of `space` matching `where_` (one request; hidden units only with `include_hidden`) and
/// gets their data at the revision `mode` asks for, from the cache when possible. An unchanged space
/// costs that one request and no downloads.
pub async fn fetch(
    client: &confighub::Client,
    cache: &UnitDataCache,
    space: Space,
    where_: Option<&str>,
    include_hidden: bool,
    mode: RevisionMode,
) -> Result<Fetched, Failure> {
    let where_ = where_.map(str::trim).filter(|w| !w.is_empty());
    let hidden = include_hidden.then_some("*");
    let units = client
        .list_units_hidden(&space.space_id, where_, &UNIT_FIELDS, hidden)
        .await
        .map_err(|e| {
            let mut f = fetch_failure(&format!("listing units of space '{}'", space.slug), &e);
            if e.status() == Some(400) {
                f.reason = "InvalidFilter".into();
            }
            f
        })?;

    let mut unreleased = Vec::new();
    let mut wanted = Vec::new();
    for unit in units {
        let revision = match mode {
            RevisionMode::Head => unit.head_revision_num,
            RevisionMode::LastReleased => unit.last_released_revision_num,
        };
        if revision <= 0 {
            unreleased.push(unit.slug.clone());
        } else {
            wanted.push((unit, revision));
        }
    }
    unreleased.sort();

    let space_id = space.space_id.clone();
    let results: Vec<(UnitInput, bool)> = futures::stream::iter(wanted)
        .map(|(unit, revision)| unit_data(client, cache, &space_id, unit, revision))
        .buffer_unordered(DOWNLOAD_CONCURRENCY)
        .try_collect()
        .await?;
    let downloads = results.iter().filter(|(_, downloaded)| *downloaded).count();
    let cache_hits = results.len() - downloads;
    let units = results.into_iter().map(|(u, _)| u).collect();
    Ok(Fetched {
        space,
        units,
        unreleased,
        downloads,
        cache_hits,
    })
}

/// One unit's data at `revision`; the bool says whether it had to be downloaded.
async fn unit_data(
    client: &confighub::Client,
    cache: &UnitDataCache,
    space_id: &str,
    unit: Unit,
    revision: i64,
) -> Result<(UnitInput, bool), Failure> {
    let context = |what: &str| format!("{what} of unit '{}' (revision {revision})", unit.slug);
    let input = |data: Vec<u8>| {
        UnitInput::new(
            unit.slug.clone(),
            unit.toolchain_type.clone(),
            revision,
            data,
        )
    };

    // The hash we expect, if known without asking: the head's DataHash, or a remembered revision's.
    let known_hash = if revision == unit.head_revision_num {
        Some(unit.data_hash.to_ascii_lowercase())
    } else {
        cache.revision_hash(&unit.unit_id, revision)
    };
    if let Some(data) = known_hash.as_deref().and_then(|h| cache.get(h)) {
        return Ok((input(data), false));
    }

    let download = if revision == unit.head_revision_num {
        client
            .download_unit_data(space_id, &unit.unit_id, None)
            .await
    } else {
        let revisions = client
            .list_revisions(
                space_id,
                &unit.unit_id,
                Some(&format!("RevisionNum = {revision}")),
                Some(1),
                None,
            )
            .await
            .map_err(|e| fetch_failure(&context("finding revision"), &e))?;
        let found = revisions
            .into_iter()
            .find(|r| r.revision_num == revision)
            .ok_or_else(|| Failure {
                step: FailedStep::Fetch,
                reason: "RevisionNotFound".into(),
                message: context("ConfigHub has no such revision"),
                stalled: false,
            })?;
        if let Some(data) = cache.get(&found.data_hash.to_ascii_lowercase()) {
            let _ = cache.put_revision_hash(
                &unit.unit_id,
                revision,
                &found.data_hash.to_ascii_lowercase(),
            );
            return Ok((input(data), false));
        }
        client
            .download_revision_data(space_id, &unit.unit_id, &found.revision_id, None)
            .await
    };
    let bytes = match download.map_err(|e| fetch_failure(&context("downloading data"), &e))? {
        DataDownload::Data { bytes, .. } => bytes.to_vec(),
        DataDownload::NotModified => {
            return Err(Failure {
                step: FailedStep::Fetch,
                reason: "FetchFailed".into(),
                message: context("ConfigHub answered 304 to an unconditional download"),
                stalled: false,
            });
        }
    };
    let hash = data_hash(&bytes);
    if let Err(err) = cache.put(&bytes) {
        tracing::warn!(error = %err, "could not cache unit data; it will be downloaded again");
    }
    let _ = cache.put_revision_hash(&unit.unit_id, revision, &hash);
    Ok((input(bytes), true))
}
