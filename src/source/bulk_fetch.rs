//! Gets the data the cache does not have with ConfigHub's bulk reads (`shared/confighub-api-more.md` §1),
//! so a first sync of 10,000 units costs a few requests, not 10,000:
//!
//! 1. units wanted at their head: `GET /unit_data` — by `UnitID IN (…)` when a few chunks name them all,
//!    else everything the unit list selected (one request, or pages of `ClientOptions::page_size`);
//! 2. units wanted at another revision (LastReleased), and heads that moved between the list and the
//!    read when the list gave their revision ID (LastReleased mode asks for it; Head mode keeps its list
//!    small): `GET /revision_data` by `RevisionID IN (…)` — revisions never change, so this is exact;
//! 3. what is left (no revision ID known, or a server without the bulk endpoints — a 404, said once in the
//!    log): one unit at a time, as before.
//!
//! Every row is checked against the DataHash the unit list gave before it is used or cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{StreamExt, TryStreamExt};

use super::cache::{UnitDataCache, data_hash};
use super::conditions::Failure;
use super::fetch::{fetch_failure, unit_data};
use crate::artifact::UnitInput;
use crate::confighub::{self, BulkQuery, Error, Space, Unit, id_chunks, where_expr::quote};

/// Data downloads in flight at once on the one-by-one path (the client bounds this too).
const DOWNLOAD_CONCURRENCY: usize = 8;
/// At most this many `UnitID IN` chunks before reading the whole selection instead: a chunk holds
/// about 160 IDs, so more than this means most of the space is missing anyway.
const MAX_ID_CHUNKS: usize = 2;
/// Room left in the query string for the parameters besides `where`.
const OTHER_PARAMS: usize = 64;

/// Whether the one-time log line about a server without bulk reads has been written.
static BULK_UNAVAILABLE_LOGGED: AtomicBool = AtomicBool::new(false);

/// A unit at the revision wanted, with what is known about that revision without asking.
#[derive(Debug)]
pub(super) struct Wanted {
    pub unit: Unit,
    pub revision: i64,
    /// Whether `revision` is the unit's head.
    pub head: bool,
    pub revision_id: Option<String>,
    /// The revision's DataHash (lowercase), when known.
    pub hash: Option<String>,
}

impl Wanted {
    pub fn input(&self, data: Vec<u8>) -> UnitInput {
        UnitInput::new(
            self.unit.slug.clone(),
            self.unit.toolchain_type.clone(),
            self.revision,
            data,
        )
    }

    /// Whether `data` is this revision's (by hash, when the hash is known).
    fn accepts(&self, data: &[u8]) -> Option<String> {
        let hash = data_hash(data);
        self.hash
            .as_deref()
            .is_none_or(|h| h == hash)
            .then_some(hash)
    }
}

/// The data of every unit in `missing`, downloaded (and cached).
pub(super) async fn get_missing(
    client: &confighub::Client,
    cache: &UnitDataCache,
    space: &Space,
    where_: Option<&str>,
    include_hidden: Option<&str>,
    missing: Vec<Wanted>,
) -> Result<Vec<UnitInput>, Failure> {
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let mut pending: HashMap<String, Wanted> = missing
        .into_iter()
        .map(|w| (w.unit.unit_id.clone(), w))
        .collect();
    let mut got: Vec<Got> = Vec::new();
    let in_space = format!("SpaceID = {}", quote(&space.space_id));

    let bulk = async {
        heads(
            client,
            &in_space,
            where_,
            include_hidden,
            &mut pending,
            &mut got,
        )
        .await?;
        revisions(client, &in_space, &mut pending, &mut got).await
    };
    match bulk.await {
        Ok(()) => {}
        Err(e) if e.status() == Some(404) => {
            if !BULK_UNAVAILABLE_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    space = %space.slug,
                    error = %e,
                    "ConfigHub has no bulk data reads (404); downloading unit data one unit at a time"
                );
            }
        }
        Err(e) => return Err(fetch_failure("reading unit data in bulk", &e)),
    }

    let mut inputs = store_all(cache, got).await;

    // One by one: what bulk reads could not serve.
    let space_id = space.space_id.clone();
    let rest: Vec<(UnitInput, bool)> = futures::stream::iter(pending.into_values())
        .map(|w| unit_data(client, cache, &space_id, w.unit, w.revision))
        .buffer_unordered(DOWNLOAD_CONCURRENCY)
        .try_collect()
        .await?;
    inputs.extend(rest.into_iter().map(|(input, _)| input));
    Ok(inputs)
}

/// A unit read in bulk: what was wanted, its data and the data's hash.
type Got = (Wanted, Vec<u8>, String);

/// Threads writing the cache at once: 20,000 small files (data and revision notes) for a first sync of
/// 10,000 units are bound by file-system latency, not CPU.
const CACHE_WRITERS: usize = 4;

/// Caches what bulk reads brought (in parallel, off the async runtime) and returns the units.
async fn store_all(cache: &UnitDataCache, got: Vec<Got>) -> Vec<UnitInput> {
    let per_writer = got.len().div_ceil(CACHE_WRITERS).max(1);
    let mut batches = Vec::new();
    let mut rest = got;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(per_writer));
        batches.push(std::mem::replace(&mut rest, tail));
    }
    let writers = batches.into_iter().map(|batch| {
        let cache = cache.clone();
        tokio::task::spawn_blocking(move || {
            let mut failed = 0usize;
            let inputs: Vec<UnitInput> = batch
                .into_iter()
                .map(|(wanted, data, hash)| {
                    if cache.put(&data).is_err() {
                        failed += 1;
                    }
                    let _ = cache.put_revision_hash(&wanted.unit.unit_id, wanted.revision, &hash);
                    wanted.input(data)
                })
                .collect();
            (inputs, failed)
        })
    });
    let mut inputs = Vec::new();
    for writer in futures::future::join_all(writers).await {
        match writer {
            Ok((batch, failed)) => {
                if failed > 0 {
                    tracing::warn!(
                        units = failed,
                        "could not cache unit data; it will be downloaded again"
                    );
                }
                inputs.extend(batch);
            }
            Err(e) => tracing::error!(error = %e, "a cache writer failed"),
        }
    }
    inputs
}

/// Step 1: heads through `GET /unit_data`.
async fn heads(
    client: &confighub::Client,
    in_space: &str,
    where_: Option<&str>,
    include_hidden: Option<&str>,
    pending: &mut HashMap<String, Wanted>,
    got: &mut Vec<Got>,
) -> Result<(), Error> {
    let mut ids: Vec<String> = pending
        .values()
        .filter(|w| w.head)
        .map(|w| w.unit.unit_id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort();
    let chunks = id_chunks(in_space, "UnitID", &ids, OTHER_PARAMS);
    let page = client.options.page_size.map(|n| n as usize);
    let read = |where_: String| {
        let query = BulkQuery {
            where_,
            include_hidden: include_hidden.map(str::to_string),
        };
        async move { client.search_unit_data(&query, page).await }
    };
    let mut rows = Vec::new();
    if chunks.len() <= MAX_ID_CHUNKS {
        for chunk in chunks {
            rows.push(read(chunk).await?);
        }
    } else {
        // The same selection the unit list made; rows of cached units are skipped below. A selection
        // too large for one response is read by UnitID chunks instead.
        let all = match where_ {
            Some(w) => format!("{in_space} AND {w}"),
            None => in_space.to_string(),
        };
        match read(all).await {
            Ok(page) => rows.push(page),
            Err(Error::TooLarge { .. }) => {
                tracing::debug!("bulk read too large for one response; reading by UnitID chunks");
                for chunk in chunks {
                    rows.push(read(chunk).await?);
                }
            }
            Err(e) => return Err(e),
        }
    }
    for row in rows.into_iter().flatten() {
        let data = row.data.into_bytes();
        let Some(wanted) = pending.get(&row.unit_id).filter(|w| w.head) else {
            continue;
        };
        // A head that moved since the list is read by its listed revision in step 2.
        if let Some(hash) = wanted.accepts(&data) {
            let wanted = pending.remove(&row.unit_id).expect("present");
            got.push((wanted, data, hash));
        }
    }
    Ok(())
}

/// Step 2: other revisions, and heads step 1 could not serve, through `GET /revision_data`.
async fn revisions(
    client: &confighub::Client,
    in_space: &str,
    pending: &mut HashMap<String, Wanted>,
    got: &mut Vec<Got>,
) -> Result<(), Error> {
    let by_revision: HashMap<String, String> = pending
        .values()
        .filter_map(|w| Some((w.revision_id.clone()?, w.unit.unit_id.clone())))
        .collect();
    if by_revision.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<String> = by_revision.keys().cloned().collect();
    ids.sort();
    for where_ in id_chunks(in_space, "RevisionID", &ids, OTHER_PARAMS) {
        for row in client
            .search_revision_data(&where_, confighub::MAX_PAGE)
            .await?
        {
            let Some(unit_id) = by_revision.get(&row.revision_id) else {
                continue;
            };
            let data = row.data.into_bytes();
            let Some(wanted) = pending.get(unit_id) else {
                continue;
            };
            if let Some(hash) = wanted.accepts(&data) {
                let wanted = pending.remove(unit_id).expect("present");
                got.push((wanted, data, hash));
            }
        }
    }
    Ok(())
}
