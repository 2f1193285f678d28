//! Bulk data reads, as the service has them (`shared/confighub-api-more.md` §1):
//! `GET /unit_data` (op `SearchUnitData`: each selected Unit's head data) and `GET /revision_data`
//! (op `SearchRevisionData`: Revisions' data, by default only each Unit's latest match). Both are
//! organization-wide, page like every list (`limit` ≤ 1000, `ConfigHub-Continue`), come in ID order, and
//! carry `Data` as a plain JSON string. The hub refuses what the service refuses (`select=Data`,
//! `distinct_on=Off` without `limit` or `where`, a bad `distinct_on`) and, with 400, the parameters it
//! does not model (stored filters, free text, data and trigger filters, `order_by`).

use std::collections::HashMap;

use axum::extract::{Query, State};
use serde_json::json;

use super::entities::{Params, REVISION_SCHEMA, UNIT_SCHEMA, filtered, list_response, page};
use super::error::ApiError;
use super::{Hub, store};

/// Parameters the service takes on these endpoints that the hub does not implement: refused, never
/// ignored, so a client relying on them finds out here rather than in production.
const UNMODELLED: &[&str] = &[
    "filter",
    "contains",
    "include",
    "order_by",
    "offset",
    "resource_type",
    "where_data",
    "where_data_engine",
    "where_trigger",
    "trigger_filter",
    "triggers_passed",
    "view",
];

fn refuse_unmodelled(q: &HashMap<String, String>) -> Result<(), ApiError> {
    if let Some(name) = UNMODELLED.iter().find(|n| q.contains_key(**n)) {
        return Err(ApiError::bad_request(format!(
            "the local hub does not support the {name} parameter on bulk data reads"
        )));
    }
    if let Some(select) = q.get("select")
        && select.split(',').any(|f| f.trim() == "Data")
    {
        return Err(ApiError::bad_request("select=Data is not allowed"));
    }
    Ok(())
}

/// The data as the JSON string the service returns (the hub stores bytes; invalid UTF-8 is replaced,
/// so such data no longer matches its `DataHash`).
fn text(data: Vec<u8>) -> String {
    String::from_utf8(data).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub async fn search_unit_data(
    State(hub): State<Hub>,
    Query(q): Params,
) -> Result<axum::response::Response, ApiError> {
    refuse_unmodelled(&q)?;
    let units = hub.db(|tx, _| store::list_all_units(tx)).await?;
    let (mut values, _) = filtered(units, &q, UNIT_SCHEMA)?;
    values.retain(|u| super::units::shown(u, &q));
    let (values, next) = page(values, &q)?;
    let rows = hub
        .db(move |tx, _| {
            let mut spaces: HashMap<String, String> = HashMap::new();
            let mut rows = Vec::with_capacity(values.len());
            for unit in values {
                let str_of = |k: &str| unit[k].as_str().unwrap_or_default().to_string();
                let space_id = str_of("SpaceID");
                if !spaces.contains_key(&space_id) {
                    let slug = store::get_space(tx, &space_id)?
                        .map(|s| s.slug)
                        .unwrap_or_default();
                    spaces.insert(space_id.clone(), slug);
                }
                let data = store::revision_data(tx, &str_of("HeadRevisionID"))?
                    .ok_or_else(|| ApiError::internal("head revision data is missing"))?;
                rows.push(json!({
                    "UnitID": str_of("UnitID"),
                    "Slug": str_of("Slug"),
                    "SpaceID": space_id,
                    "SpaceSlug": spaces[&space_id],
                    "DataSize": data.len(),
                    "DataHash": str_of("DataHash"),
                    "Data": text(data),
                }));
            }
            Ok(rows)
        })
        .await?;
    Ok(list_response(rows, next))
}

pub async fn search_revision_data(
    State(hub): State<Hub>,
    Query(q): Params,
) -> Result<axum::response::Response, ApiError> {
    refuse_unmodelled(&q)?;
    let distinct = match q.get("distinct_on").map(|d| d.trim()) {
        None | Some("") | Some("Unit") => true,
        Some("Off") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "distinct_on must be Unit or Off, not {other:?}"
            )));
        }
    };
    if !distinct {
        let limited = q
            .get("limit")
            .is_some_and(|l| l.trim().parse::<usize>().is_ok_and(|n| n > 0));
        if !limited {
            return Err(ApiError::bad_request("distinct_on=Off requires a limit"));
        }
        if q.get("where").is_none_or(|w| w.trim().is_empty()) {
            return Err(ApiError::bad_request(
                "distinct_on=Off requires a non-empty where",
            ));
        }
    }
    let revisions = hub.db(|tx, _| store::list_all_revisions(tx)).await?;
    let (mut values, _) = filtered(revisions, &q, REVISION_SCHEMA)?;
    if distinct {
        // Each Unit's latest matching Revision only, still in ID order.
        let mut latest: HashMap<String, i64> = HashMap::new();
        for v in &values {
            let num = v["RevisionNum"].as_i64().unwrap_or_default();
            let unit = v["UnitID"].as_str().unwrap_or_default().to_string();
            let slot = latest.entry(unit).or_insert(num);
            *slot = (*slot).max(num);
        }
        values.retain(|v| {
            latest.get(v["UnitID"].as_str().unwrap_or_default())
                == Some(&v["RevisionNum"].as_i64().unwrap_or_default())
        });
    }
    let (values, next) = page(values, &q)?;
    let rows = hub
        .db(move |tx, _| {
            let mut rows = Vec::with_capacity(values.len());
            for rev in values {
                let id = rev["RevisionID"].as_str().unwrap_or_default().to_string();
                let data = store::revision_data(tx, &id)?
                    .ok_or_else(|| ApiError::internal("revision data is missing"))?;
                rows.push(json!({
                    "RevisionID": id,
                    "RevisionNum": rev["RevisionNum"],
                    "UnitID": rev["UnitID"],
                    "SpaceID": rev["SpaceID"],
                    "DataSize": data.len(),
                    "DataHash": rev["DataHash"],
                    "Data": text(data),
                }));
            }
            Ok::<_, ApiError>(rows)
        })
        .await?;
    Ok(list_response(rows, next))
}
