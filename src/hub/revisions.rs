//! Unit data (ETag/If-None-Match/If-Match) and Revisions. Every data write whose bytes changed
//! creates revision `HeadRevisionNum + 1`; an identical re-upload creates none.

use std::cmp::Ordering;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::entities::{Params, REVISION_SCHEMA, filtered, now};
use super::error::ApiError;
use super::{Hub, store, validate};
use crate::confighub::{
    ExtendedRevision, Revision, UnitCreateOrUpdateResponse, data_hash, normalize_etag,
};

/// Whether an `If-None-Match` / `If-Match` header value names `hash` (lists and `*` included).
fn etag_matches(header_value: &str, hash: &str) -> bool {
    header_value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || normalize_etag(tag) == hash)
}

/// 304 when the client's copy is current, else the bytes; both carry `ETag: "<DataHash>"`.
fn data_response(headers: &HeaderMap, hash: &str, data: Vec<u8>) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{hash}\"")).ok();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, hash));
    let mut response = if not_modified {
        (StatusCode::NOT_MODIFIED, Body::empty()).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Body::from(data),
        )
            .into_response()
    };
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn ids(space_id: &str, unit_id: &str) -> Result<(String, String), ApiError> {
    Ok((
        validate::uuid("space_id", space_id)?,
        validate::uuid("unit_id", unit_id)?,
    ))
}

pub async fn download_unit_data(
    State(hub): State<Hub>,
    Path((space_id, unit_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (sid, uid) = ids(&space_id, &unit_id)?;
    let (hash, data) = hub
        .db(move |tx, _| {
            let unit = store::unit_or_404(tx, &sid, &uid)?;
            let data = store::revision_data(tx, &unit.head_revision_id)?
                .ok_or_else(|| ApiError::internal("head revision data is missing"))?;
            Ok((unit.data_hash, data))
        })
        .await?;
    Ok(data_response(&headers, &hash, data))
}

pub async fn upload_unit_data(
    State(hub): State<Hub>,
    Path((space_id, unit_id)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<UnitCreateOrUpdateResponse>, ApiError> {
    let (sid, uid) = ids(&space_id, &unit_id)?;
    let if_match = match headers.get(header::IF_MATCH) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("If-Match is not valid text"))?
                .to_string(),
        ),
        None => None,
    };
    let description = q.get("last_change_description").cloned();
    let change_set_id = match q.get("change_set_id").filter(|s| !s.is_empty()) {
        Some(c) => Some(validate::uuid("change_set_id", c)?),
        None => None,
    };
    let unit = hub
        .db(move |tx, ids| {
            let mut unit = store::unit_or_404(tx, &sid, &uid)?;
            if let Some(expected) = &if_match
                && !etag_matches(expected, &unit.data_hash)
            {
                return Err(ApiError::conflict(
                    "Unit data conflict. Data has changed since last read.",
                ));
            }
            let hash = data_hash(&body);
            if hash == unit.data_hash {
                return Ok(unit);
            }
            let now = now();
            let description = description.unwrap_or_default();
            let revision = Revision {
                revision_id: uuid::Uuid::new_v4().to_string(),
                revision_num: unit.head_revision_num + 1,
                unit_id: unit.unit_id.clone(),
                space_id: unit.space_id.clone(),
                organization_id: ids.org_id.clone(),
                data_hash: hash,
                data_size: body.len() as i64,
                description: description.clone(),
                source: "UploadUnitData".into(),
                user_id: ids.user_id.clone(),
                change_set_id: change_set_id.unwrap_or_else(|| unit.change_set_id.clone()),
                entity_type: "revision".into(),
                created_at: Some(now),
                updated_at: Some(now),
                version: 1,
                ..Default::default()
            };
            store::insert_revision(tx, &revision, &body)?;
            unit.head_revision_num = revision.revision_num;
            unit.head_revision_id = revision.revision_id.clone();
            unit.data_hash = revision.data_hash.clone();
            unit.data_size = revision.data_size;
            let space = store::space_or_404(tx, &unit.space_id)?;
            unit.validation_errors =
                super::vet::validation_errors(&space.slug, &unit.toolchain_type, &body);
            unit.last_change_description = description;
            unit.updated_at = Some(now);
            unit.version += 1;
            store::put_unit(tx, &unit)?;
            Ok(unit)
        })
        .await?;
    Ok(Json(UnitCreateOrUpdateResponse { unit, error: None }))
}

/// `order_by=DESC:RevisionNum,ASC:CreatedAt` → `[(field, descending)]`.
fn order_by(spec: Option<&String>) -> Result<Vec<(String, bool)>, ApiError> {
    let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else {
        return Ok(vec![("RevisionNum".into(), false)]);
    };
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let (desc, field) = match part.split_once(':') {
            Some(("ASC", f)) => (false, f),
            Some(("DESC", f)) => (true, f),
            Some((dir, _)) => {
                return Err(ApiError::bad_request(format!(
                    "order_by: unknown direction {dir:?}"
                )));
            }
            None => (false, part),
        };
        if !REVISION_SCHEMA.iter().any(|(name, _)| *name == field) {
            return Err(ApiError::bad_request(format!(
                "order_by: unknown field {field:?}"
            )));
        }
        out.push((field.to_string(), desc));
    }
    Ok(out)
}

fn cmp_json(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_i64()
            .unwrap_or_default()
            .cmp(&y.as_i64().unwrap_or_default()),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn number_param(
    q: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<usize, ApiError> {
    match q.get(name).filter(|s| !s.is_empty()) {
        None => Ok(0),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("{name} must be a non-negative integer"))),
    }
}

pub async fn list_revisions(
    State(hub): State<Hub>,
    Path((space_id, unit_id)): Path<(String, String)>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    let (sid, uid) = ids(&space_id, &unit_id)?;
    let limit = number_param(&q, "limit")?;
    if limit > 1000 {
        return Err(ApiError::bad_request("limit must be at most 1000"));
    }
    let offset = number_param(&q, "offset")?;
    let order = order_by(q.get("order_by"))?;
    let revisions = hub
        .db(move |tx, _| {
            store::unit_or_404(tx, &sid, &uid)?;
            store::list_revisions(tx, &uid)
        })
        .await?;
    let (mut values, _) = filtered(revisions, &q, REVISION_SCHEMA)?;
    values.sort_by(|a, b| {
        order
            .iter()
            .map(|(field, desc)| {
                let o = cmp_json(a.get(field), b.get(field));
                if *desc { o.reverse() } else { o }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    let take = if limit == 0 { usize::MAX } else { limit };
    let page = values
        .into_iter()
        .skip(offset)
        .take(take)
        .map(|r| json!({"Revision": r}))
        .collect();
    Ok(Json(Value::Array(page)))
}

async fn revision_and_data(
    hub: &Hub,
    space_id: &str,
    unit_id: &str,
    revision_id: &str,
) -> Result<(Revision, Vec<u8>), ApiError> {
    let (sid, uid) = ids(space_id, unit_id)?;
    let rid = validate::uuid("revision_id", revision_id)?;
    hub.db(move |tx, _| {
        store::unit_or_404(tx, &sid, &uid)?;
        let revision = store::get_revision(tx, &uid, &rid)?
            .ok_or_else(|| ApiError::not_found(format!("Revision {rid} not found")))?;
        let data = store::revision_data(tx, &rid)?.unwrap_or_default();
        Ok((revision, data))
    })
    .await
}

pub async fn get_revision(
    State(hub): State<Hub>,
    Path((space_id, unit_id, revision_id)): Path<(String, String, String)>,
) -> Result<Json<ExtendedRevision>, ApiError> {
    let (revision, _) = revision_and_data(&hub, &space_id, &unit_id, &revision_id).await?;
    Ok(Json(ExtendedRevision {
        revision,
        error: None,
    }))
}

pub async fn download_revision_data(
    State(hub): State<Hub>,
    Path((space_id, unit_id, revision_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (revision, data) = revision_and_data(&hub, &space_id, &unit_id, &revision_id).await?;
    Ok(data_response(&headers, &revision.data_hash, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching_strips_weak_prefix_and_quotes() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("W/\"abc\"", "abc"));
        assert!(etag_matches("\"x\", \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }

    #[test]
    fn order_by_parses_directions_and_refuses_unknown_fields() {
        assert_eq!(
            order_by(Some(&"DESC:RevisionNum".to_string())).unwrap(),
            vec![("RevisionNum".to_string(), true)]
        );
        assert!(order_by(Some(&"DESC:Nope".to_string())).is_err());
        assert!(order_by(Some(&"SIDEWAYS:RevisionNum".to_string())).is_err());
    }
}
