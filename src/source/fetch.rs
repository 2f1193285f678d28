//! Fetch: resolve the space, list the selected units (one request), and get the data of each at the
//! revision the mode asks for — from the content-addressed cache when possible, from ConfigHub's bulk
//! data reads otherwise ([`super::bulk_fetch`]).

use super::bulk_fetch::{self, Wanted};
use super::cache::UnitDataCache;
use super::conditions::{FailedStep, Failure};
use crate::api::RevisionMode;
use crate::artifact::UnitInput;
use crate::confighub::{self, DataDownload, ExtendedUnit, Space, Unit};
use crate::connection::INVALID_RESPONSE;

/// Fields of a unit the controller needs; everything else is trimmed by the server (the unit list is
/// the whole cost of an unchanged space, ~350 bytes a unit).
const HEAD_FIELDS: &[&str] = &[
    "Slug",
    "UnitID",
    "ToolchainType",
    "HeadRevisionNum",
    "LastReleasedRevisionNum",
    "DataHash",
];
/// LastReleased mode also needs the head's revision ID (for a bulk read by revision) and what decides
/// whether a unit can be released.
const RELEASED_FIELDS: &[&str] = &[
    "Slug",
    "UnitID",
    "ToolchainType",
    "HeadRevisionNum",
    "HeadRevisionID",
    "LastReleasedRevisionNum",
    "DataHash",
    "TargetID",
    "ValidationErrors",
];

/// Why a unit has never been released, as the service decides what a Release bundles
/// (`shared/confighub-api-more.md` §4, §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NeverReleased {
    /// The space has no `ReleaseTargetID`, so publishing bundles nothing.
    SpaceHasNoReleaseTarget,
    /// The unit's `TargetID` is not the space's release target.
    NotOnReleaseTarget,
    /// The unit has `ValidationErrors`, which make a release refuse it (422).
    ValidationErrors,
    /// Releasable, but no release has been published since.
    NotYetReleased,
}

impl NeverReleased {
    /// Words for the Ready message.
    pub fn why(self) -> &'static str {
        match self {
            NeverReleased::SpaceHasNoReleaseTarget => "in a space without a release target",
            NeverReleased::NotOnReleaseTarget => "not on the space's release target",
            NeverReleased::ValidationErrors => "with validation errors, which block a release",
            NeverReleased::NotYetReleased => "releasable but not released yet",
        }
    }

    fn of(space: &Space, unit: &Unit) -> NeverReleased {
        if space.release_target_id.is_empty() {
            NeverReleased::SpaceHasNoReleaseTarget
        } else if unit.target_id != space.release_target_id {
            NeverReleased::NotOnReleaseTarget
        } else if unit.validation_errors.values().any(|e| *e) {
            NeverReleased::ValidationErrors
        } else {
            NeverReleased::NotYetReleased
        }
    }
}

/// Units at the revisions chosen, plus what was left out and why.
#[derive(Debug, Default)]
pub struct Fetched {
    pub space: Space,
    pub units: Vec<UnitInput>,
    /// Units never released (LastReleased mode), left out of the artifact, sorted by slug.
    pub unreleased: Vec<(String, NeverReleased)>,
    /// Units whose data came from ConfigHub (bulk or one by one) rather than the cache.
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
/// gets their data at the revision `mode` asks for: from the cache when possible, the rest in bulk. An
/// unchanged space costs that one request and no data.
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
    // LastReleased: the released Revision (its ID and DataHash) comes with the list.
    let (fields, include): (&[&str], &[&str]) = match mode {
        RevisionMode::Head => (HEAD_FIELDS, &[]),
        RevisionMode::LastReleased => (RELEASED_FIELDS, &["LastReleasedRevisionNum"]),
    };
    let units = client
        .list_units_extended(&space.space_id, where_, fields, hidden, include)
        .await
        .map_err(|e| {
            let mut f = fetch_failure(&format!("listing units of space '{}'", space.slug), &e);
            if e.status() == Some(400) {
                f.reason = "InvalidFilter".into();
            }
            f
        })?;

    let mut unreleased = Vec::new();
    let mut inputs = Vec::new();
    let mut missing = Vec::new();
    for extended in units {
        let revision = match mode {
            RevisionMode::Head => extended.unit.head_revision_num,
            RevisionMode::LastReleased => extended.unit.last_released_revision_num,
        };
        if revision <= 0 {
            let why = NeverReleased::of(&space, &extended.unit);
            unreleased.push((extended.unit.slug, why));
            continue;
        }
        let wanted = wanted(extended, revision, cache);
        match wanted.hash.as_deref().and_then(|h| cache.get(h)) {
            Some(data) => inputs.push(wanted.input(data)),
            None => missing.push(wanted),
        }
    }
    unreleased.sort();
    let cache_hits = inputs.len();
    let downloaded =
        bulk_fetch::get_missing(client, cache, &space, where_, hidden, missing).await?;
    let downloads = downloaded.len();
    inputs.extend(downloaded);
    Ok(Fetched {
        space,
        units: inputs,
        unreleased,
        downloads,
        cache_hits,
    })
}

/// A listed unit at `revision` (≥ 1), with the revision's ID and DataHash when known without asking.
fn wanted(extended: ExtendedUnit, revision: i64, cache: &UnitDataCache) -> Wanted {
    let unit = extended.unit;
    let non_empty = |s: String| Some(s).filter(|s| !s.is_empty());
    let (revision_id, hash) = if revision == unit.head_revision_num {
        (
            non_empty(unit.head_revision_id.clone()),
            non_empty(unit.data_hash.to_ascii_lowercase()),
        )
    } else if let Some(r) = extended
        .last_released_revision
        .filter(|r| r.revision_num == revision)
    {
        (
            non_empty(r.revision_id),
            non_empty(r.data_hash.to_ascii_lowercase()),
        )
    } else {
        (None, cache.revision_hash(&unit.unit_id, revision))
    };
    Wanted {
        head: revision == unit.head_revision_num,
        unit,
        revision,
        revision_id,
        hash,
    }
}

/// One unit's data at `revision`, one request or two (the fallback when bulk reads cannot serve it);
/// the bool says whether it had to be downloaded.
pub(super) async fn unit_data(
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

    // What the downloaded bytes must hash to when no ETag says otherwise.
    let mut listed = known_hash.clone().filter(|h| !h.is_empty());
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
        listed = Some(found.data_hash.to_ascii_lowercase()).filter(|h| !h.is_empty());
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
    let (bytes, etag) =
        match download.map_err(|e| fetch_failure(&context("downloading data"), &e))? {
            DataDownload::Data { bytes, etag } => (bytes.to_vec(), etag),
            DataDownload::NotModified => {
                return Err(Failure {
                    step: FailedStep::Fetch,
                    reason: "FetchFailed".into(),
                    message: context("ConfigHub answered 304 to an unconditional download"),
                    stalled: false,
                });
            }
        };
    let hash = super::cache::data_hash(&bytes);
    // The ETag is the DataHash of what was sent (a head may have moved since the list, so it wins
    // over the listed hash). Bytes that match neither are not the unit's data — a body mangled on the
    // way — and must never be built, cached or remembered as this revision's.
    let expected = etag.map(|e| e.to_ascii_lowercase()).or(listed.clone());
    if let Some(expected) = expected.filter(|e| *e != hash) {
        return Err(Failure {
            step: FailedStep::Fetch,
            reason: INVALID_RESPONSE.into(),
            message: format!(
                "{}: ConfigHub sent bytes with sha256 {hash}, not the DataHash {expected} it announced; not used",
                context("downloading data")
            ),
            stalled: false,
        });
    }
    if let Err(err) = cache.put(&bytes) {
        tracing::warn!(error = %err, "could not cache unit data; it will be downloaded again");
    }
    // A head that moved since the list is newer data, not `revision`'s: use it, do not record it.
    if listed.as_deref().is_none_or(|h| h == hash) {
        let _ = cache.put_revision_hash(&unit.unit_id, revision, &hash);
    }
    Ok((input(bytes), true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confighub::{ClientOptions, SpaceCreate, UnitCreate};
    use crate::hub::faults::{FaultKind, FaultUpdate};

    /// A mangled body (the hub's garbage fault keeps the real status and ETag) is refused, never
    /// built, cached or remembered as the revision's; the real data is taken once it arrives.
    #[tokio::test]
    async fn downloaded_data_that_does_not_match_its_data_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let token = "fetch-test-token".to_string();
        let hub = crate::hub::Hub::open(crate::hub::HubConfig::new(
            dir.path().join("hub"),
            vec![token.clone()],
        ))
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(crate::hub::serve(
            listener,
            hub.clone(),
            std::future::pending(),
        ));
        let options = ClientOptions {
            max_retries: 0,
            ..ClientOptions::default()
        };
        let client = confighub::Client::new(&origin, Some(token), options).unwrap();
        let space = SpaceCreate {
            slug: "s".into(),
            ..Default::default()
        };
        let space = client.create_space(&space, true).await.unwrap();
        let create = UnitCreate {
            slug: "web".into(),
            toolchain_type: "Kubernetes/YAML".into(),
            ..Default::default()
        };
        let unit = client
            .create_unit(&space.space_id, &create, true)
            .await
            .unwrap();
        let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n".to_vec();
        let unit = client
            .upload_unit_data(&space.space_id, &unit.unit_id, yaml.clone(), None, None)
            .await
            .unwrap();
        let cache = UnitDataCache::new(dir.path().join("cache")).unwrap();

        let garbage = |rate: f64| FaultUpdate {
            rate: Some(rate),
            kinds: Some(vec![FaultKind::Garbage]),
            ..FaultUpdate::default()
        };
        hub.set_faults(garbage(1.0)).unwrap();
        let revision = unit.head_revision_num;
        let failure = unit_data(&client, &cache, &space.space_id, unit.clone(), revision)
            .await
            .unwrap_err();
        assert_eq!(failure.reason, INVALID_RESPONSE, "{failure:?}");
        assert!(
            failure.message.contains("unit 'web'"),
            "{}",
            failure.message
        );
        assert_eq!(cache.revision_hash(&unit.unit_id, revision), None);

        hub.set_faults(garbage(0.0)).unwrap();
        let (input, downloaded) =
            unit_data(&client, &cache, &space.space_id, unit.clone(), revision)
                .await
                .unwrap();
        assert!(downloaded);
        assert_eq!(input.data, yaml);
        assert_eq!(
            cache.revision_hash(&unit.unit_id, revision),
            Some(unit.data_hash.to_ascii_lowercase())
        );
    }

    #[test]
    fn never_released_units_get_the_service_reason() {
        let mut space = Space::default();
        let mut unit = Unit::default();
        assert_eq!(
            NeverReleased::of(&space, &unit),
            NeverReleased::SpaceHasNoReleaseTarget
        );
        space.release_target_id = "t1".into();
        unit.target_id = "t2".into();
        assert_eq!(
            NeverReleased::of(&space, &unit),
            NeverReleased::NotOnReleaseTarget
        );
        unit.target_id = "t1".into();
        assert_eq!(
            NeverReleased::of(&space, &unit),
            NeverReleased::NotYetReleased
        );
        unit.validation_errors.insert("s/t/f".into(), true);
        assert_eq!(
            NeverReleased::of(&space, &unit),
            NeverReleased::ValidationErrors
        );
    }
}
