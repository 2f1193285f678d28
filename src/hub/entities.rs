//! Spaces and ChangeSets, plus the list plumbing (`where`, `select`) every list endpoint shares.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::where_parser::{self, AttrType, Schema};
use super::{Hub, store, validate};
use crate::confighub::{
    ChangeSet, ChangeSetCreate, ExtendedChangeSet, ExtendedSpace, Space, SpaceCreate,
};

pub(crate) const SPACE_SCHEMA: Schema = &[
    ("Slug", AttrType::Str),
    ("SpaceID", AttrType::Uuid),
    ("OrganizationID", AttrType::Uuid),
    ("DisplayName", AttrType::Str),
    ("ReleaseTargetID", AttrType::Uuid),
    ("Labels", AttrType::Map),
    ("Annotations", AttrType::Map),
    ("CreatedAt", AttrType::Str),
    ("UpdatedAt", AttrType::Str),
];

pub(crate) const UNIT_SCHEMA: Schema = &[
    ("Slug", AttrType::Str),
    ("UnitID", AttrType::Uuid),
    ("SpaceID", AttrType::Uuid),
    ("OrganizationID", AttrType::Uuid),
    ("TargetID", AttrType::Uuid),
    ("ChangeSetID", AttrType::Uuid),
    ("HeadRevisionID", AttrType::Uuid),
    ("DisplayName", AttrType::Str),
    ("ToolchainType", AttrType::Str),
    ("DataHash", AttrType::Str),
    ("LastChangeDescription", AttrType::Str),
    ("HeadRevisionNum", AttrType::Int),
    ("LastReleasedRevisionNum", AttrType::Int),
    ("HiddenReason", AttrType::Str),
    ("Labels", AttrType::Map),
    ("Annotations", AttrType::Map),
    ("CreatedAt", AttrType::Str),
    ("UpdatedAt", AttrType::Str),
];

pub(crate) const REVISION_SCHEMA: Schema = &[
    ("RevisionNum", AttrType::Int),
    ("RevisionID", AttrType::Uuid),
    ("UnitID", AttrType::Uuid),
    ("SpaceID", AttrType::Uuid),
    ("ChangeSetID", AttrType::Uuid),
    ("DataHash", AttrType::Str),
    ("Description", AttrType::Str),
    ("Source", AttrType::Str),
    ("CreatedAt", AttrType::Str),
];

const CHANGE_SET_SCHEMA: Schema = &[
    ("Slug", AttrType::Str),
    ("ChangeSetID", AttrType::Uuid),
    ("SpaceID", AttrType::Uuid),
    ("DisplayName", AttrType::Str),
    ("Labels", AttrType::Map),
];

pub(crate) type Params = Query<HashMap<String, String>>;

pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Serialises `items` and keeps those matching the `where` query parameter. Also returns the
/// attributes the expression named, which `select` must keep.
pub(crate) fn filtered<T: Serialize>(
    items: Vec<T>,
    query: &HashMap<String, String>,
    schema: Schema,
) -> Result<(Vec<Value>, Vec<String>), ApiError> {
    let expr = match query
        .get("where")
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
    {
        Some(w) => {
            let expr = where_parser::parse(w).map_err(|e| ApiError::bad_request(e.to_string()))?;
            where_parser::check(&expr, schema).map_err(|e| ApiError::bad_request(e.to_string()))?;
            Some(expr)
        }
        None => None,
    };
    let mut out = Vec::new();
    for item in items {
        let value = serde_json::to_value(item)?;
        if expr
            .as_ref()
            .is_none_or(|e| where_parser::matches(e, &value))
        {
            out.push(value);
        }
    }
    let named = expr
        .as_ref()
        .map(where_parser::attributes)
        .unwrap_or_default();
    Ok((out, named))
}

/// Response header naming the next page; absent on the last one.
pub(crate) const CONTINUE_HEADER: &str = "confighub-continue";

/// Applies `limit` (at most 1000; 0 or absent: everything) and `continue` (the token of the previous
/// page) to a filtered list, as ConfigHub pages every List (`shared/confighub-api-more.md` §2). Returns
/// the page and the token of the next one, if any. Tokens are opaque to clients.
pub(crate) fn page(
    values: Vec<Value>,
    query: &HashMap<String, String>,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let limit = match query
        .get("limit")
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
    {
        Some(l) => {
            let n: usize = l
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?;
            if n > 1000 {
                return Err(ApiError::bad_request("limit must be at most 1000"));
            }
            (n > 0).then_some(n)
        }
        None => None,
    };
    let start = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => crate::confighub::base64url_decode(token)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix("offset:")?.parse::<usize>().ok())
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?,
        None => 0,
    };
    let rest: Vec<Value> = values.into_iter().skip(start).collect();
    match limit {
        Some(n) if rest.len() > n => {
            let next =
                crate::confighub::base64url_encode(format!("offset:{}", start + n).as_bytes());
            Ok((rest.into_iter().take(n).collect(), Some(next)))
        }
        _ => Ok((rest, None)),
    }
}

/// A list response: the JSON array, and `ConfigHub-Continue` when there is a next page.
pub(crate) fn list_response(items: Vec<Value>, next: Option<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = Json(Value::Array(items)).into_response();
    if let Some(next) = next.and_then(|n| axum::http::HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(CONTINUE_HEADER, next);
    }
    response
}

/// Applies `select=A,B`: keeps those fields, the IDs in `always`, and the attributes `where` named.
pub(crate) fn select(
    values: &mut [Value],
    query: &HashMap<String, String>,
    known: &Value,
    always: &[&str],
    named: &[String],
) -> Result<(), ApiError> {
    let Some(list) = query.get("select").filter(|s| !s.trim().is_empty()) else {
        return Ok(());
    };
    let mut keep: HashSet<String> = always.iter().map(|s| s.to_string()).collect();
    keep.extend(named.iter().cloned());
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if known.get(name).is_none() {
            return Err(ApiError::bad_request(format!(
                "select: unknown field {name}"
            )));
        }
        keep.insert(name.to_string());
    }
    for value in values {
        if let Value::Object(map) = value {
            map.retain(|k, _| keep.contains(k));
        }
    }
    Ok(())
}

pub async fn list_spaces(
    State(hub): State<Hub>,
    Query(q): Params,
) -> Result<axum::response::Response, ApiError> {
    let spaces = hub.db(|tx, _| store::list_spaces(tx)).await?;
    let (mut values, named) = filtered(spaces, &q, SPACE_SCHEMA)?;
    // Every field a space can have, including the ID left out while empty.
    let known = serde_json::to_value(Space {
        release_target_id: "-".into(),
        ..Default::default()
    })?;
    select(
        &mut values,
        &q,
        &known,
        &["SpaceID", "OrganizationID", "Slug"],
        &named,
    )?;
    let (values, next) = page(values, &q)?;
    Ok(list_response(
        values.into_iter().map(|s| json!({"Space": s})).collect(),
        next,
    ))
}

pub async fn get_space(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
) -> Result<Json<ExtendedSpace>, ApiError> {
    let id = validate::uuid("space_id", &space_id)?;
    let out = hub
        .db(move |tx, _| {
            let space = store::space_or_404(tx, &id)?;
            let units = store::list_units(tx, &id)?;
            let unreleased = units
                .iter()
                .filter(|u| u.head_revision_num > u.last_released_revision_num)
                .count();
            Ok(ExtendedSpace {
                space,
                total_unit_count: Some(units.len() as i64),
                unreleased_unit_count: Some(unreleased as i64),
                error: None,
            })
        })
        .await?;
    Ok(Json(out))
}

pub async fn create_space(
    State(hub): State<Hub>,
    Query(q): Params,
    body: Bytes,
) -> Result<Json<Space>, ApiError> {
    let req: SpaceCreate = validate::json_body(&body)?;
    let allow_exists = validate::flag(&q, "allow_exists")?;
    validate::slug(&req.slug)?;
    validate::labels_and_annotations(&req.labels, &req.annotations)?;
    let space = hub
        .db(move |tx, ids| {
            if let Some(existing) = store::space_by_slug(tx, &req.slug)? {
                return if allow_exists {
                    Ok(existing)
                } else {
                    Err(ApiError::conflict(format!(
                        "Space {:?} already exists",
                        req.slug
                    )))
                };
            }
            let now = now();
            let space = Space {
                space_id: uuid::Uuid::new_v4().to_string(),
                slug: req.slug,
                display_name: req.display_name,
                organization_id: ids.org_id.clone(),
                labels: req.labels,
                annotations: req.annotations,
                entity_type: "space".into(),
                created_at: Some(now),
                updated_at: Some(now),
                version: 1,
                ..Default::default()
            };
            store::put_space(tx, &space)?;
            Ok(space)
        })
        .await?;
    Ok(Json(space))
}

pub async fn list_change_sets(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    let id = validate::uuid("space_id", &space_id)?;
    let sets = hub
        .db(move |tx, _| {
            store::space_or_404(tx, &id)?;
            store::list_change_sets(tx, &id)
        })
        .await?;
    let (values, _) = filtered(sets, &q, CHANGE_SET_SCHEMA)?;
    Ok(Json(Value::Array(
        values
            .into_iter()
            .map(|c| json!({"ChangeSet": c}))
            .collect(),
    )))
}

pub async fn create_change_set(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Result<Json<ChangeSet>, ApiError> {
    let id = validate::uuid("space_id", &space_id)?;
    let req: ChangeSetCreate = validate::json_body(&body)?;
    let allow_exists = validate::flag(&q, "allow_exists")?;
    validate::slug(&req.slug)?;
    let set = hub
        .db(move |tx, ids| {
            store::space_or_404(tx, &id)?;
            if let Some(existing) = store::change_set_by_slug(tx, &id, &req.slug)? {
                return if allow_exists {
                    Ok(existing)
                } else {
                    Err(ApiError::conflict(format!(
                        "ChangeSet {:?} already exists",
                        req.slug
                    )))
                };
            }
            let now = now();
            let set = ChangeSet {
                change_set_id: uuid::Uuid::new_v4().to_string(),
                slug: req.slug,
                display_name: req.display_name,
                description: req.description,
                space_id: id,
                organization_id: ids.org_id.clone(),
                entity_type: "changeset".into(),
                created_at: Some(now),
                updated_at: Some(now),
                version: 1,
                ..Default::default()
            };
            store::put_change_set(tx, &set)?;
            Ok(set)
        })
        .await?;
    Ok(Json(set))
}

pub async fn get_change_set(
    State(hub): State<Hub>,
    Path((space_id, change_set_id)): Path<(String, String)>,
) -> Result<Json<ExtendedChangeSet>, ApiError> {
    let sid = validate::uuid("space_id", &space_id)?;
    let cid = validate::uuid("change_set_id", &change_set_id)?;
    let set = hub
        .db(move |tx, _| {
            store::space_or_404(tx, &sid)?;
            store::get_change_set(tx, &sid, &cid)?
                .ok_or_else(|| ApiError::not_found(format!("ChangeSet {cid} not found")))
        })
        .await?;
    Ok(Json(ExtendedChangeSet {
        change_set: set,
        error: None,
    }))
}
