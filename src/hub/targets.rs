//! Targets and the Space's release Target: what decides which Units a Release bundles, as in the
//! service (`shared/confighub-api-more.md` §4). The hub keeps a Target's identity only — no provider,
//! worker or OCI registry behind it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::entities::{Params, filtered, now};
use super::error::ApiError;
use super::where_parser::{AttrType, Schema};
use super::{Hub, store, validate};
use crate::confighub::{ExtendedTarget, Space, Target};

const TARGET_SCHEMA: Schema = &[
    ("Slug", AttrType::Str),
    ("TargetID", AttrType::Uuid),
    ("SpaceID", AttrType::Uuid),
    ("DisplayName", AttrType::Str),
    ("ToolchainType", AttrType::Str),
    ("ProviderType", AttrType::Str),
    ("Labels", AttrType::Map),
];

pub async fn create_target(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Result<Json<Target>, ApiError> {
    let sid = validate::uuid("space_id", &space_id)?;
    let allow_exists = validate::flag(&q, "allow_exists")?;
    let req: Target = validate::json_body(&body)?;
    validate::slug(&req.slug)?;
    validate::toolchain(&req.toolchain_type)?;
    validate::labels_and_annotations(&req.labels, &req.annotations)?;
    let target = hub
        .db(move |tx, ids| {
            store::space_or_404(tx, &sid)?;
            if let Some(existing) = store::target_by_slug(tx, &sid, &req.slug)? {
                return if allow_exists {
                    Ok(existing)
                } else {
                    Err(ApiError::conflict(format!(
                        "Target {:?} already exists in this Space",
                        req.slug
                    )))
                };
            }
            let now = now();
            let target = Target {
                target_id: uuid::Uuid::new_v4().to_string(),
                space_id: sid,
                organization_id: ids.org_id.clone(),
                slug: req.slug,
                display_name: req.display_name,
                toolchain_type: req.toolchain_type,
                provider_type: req.provider_type,
                labels: req.labels,
                annotations: req.annotations,
                entity_type: "target".into(),
                created_at: Some(now),
                updated_at: Some(now),
                version: 1,
            };
            store::put_target(tx, &target)?;
            Ok(target)
        })
        .await?;
    Ok(Json(target))
}

pub async fn list_targets(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    let sid = validate::uuid("space_id", &space_id)?;
    let targets = hub
        .db(move |tx, _| {
            store::space_or_404(tx, &sid)?;
            store::list_targets(tx, &sid)
        })
        .await?;
    let (values, _) = filtered(targets, &q, TARGET_SCHEMA)?;
    Ok(Json(Value::Array(
        values.into_iter().map(|t| json!({"Target": t})).collect(),
    )))
}

pub async fn get_target(
    State(hub): State<Hub>,
    Path((space_id, target_id)): Path<(String, String)>,
) -> Result<Json<ExtendedTarget>, ApiError> {
    let sid = validate::uuid("space_id", &space_id)?;
    let tid = validate::uuid("target_id", &target_id)?;
    let target = hub
        .db(move |tx, _| {
            store::space_or_404(tx, &sid)?;
            store::get_target(tx, &tid)?
                .filter(|t| t.space_id == sid)
                .ok_or_else(|| ApiError::not_found(format!("Target {tid} not found")))
        })
        .await?;
    Ok(Json(ExtendedTarget {
        target,
        error: None,
    }))
}

/// Space fields a merge patch may change (those the hub models).
const SPACE_PATCHABLE: &[&str] = &["DisplayName", "Labels", "Annotations", "ReleaseTargetID"];

/// `PATCH /space/{id}` (merge patch; `Version` checked when present). `ReleaseTargetID` must name a
/// Target of this Space.
pub async fn patch_space(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    body: Bytes,
) -> Result<Json<Space>, ApiError> {
    let sid = validate::uuid("space_id", &space_id)?;
    let Value::Object(patch) = validate::json_body::<Value>(&body)? else {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    };
    let space = hub
        .db(move |tx, _| {
            let current = store::space_or_404(tx, &sid)?;
            if let Some(v) = patch.get("Version").filter(|v| !v.is_null()) {
                let v = v
                    .as_i64()
                    .ok_or_else(|| ApiError::bad_request("Version must be an integer"))?;
                if v != current.version {
                    return Err(ApiError::conflict(format!(
                        "Space has changed: Version {v} is stale (current {}).",
                        current.version
                    )));
                }
            }
            let mut doc = serde_json::to_value(&current)?;
            for (key, value) in &patch {
                // A patchable field left out of the stored form when empty (ReleaseTargetID) is
                // still patchable.
                let slot = SPACE_PATCHABLE
                    .contains(&key.as_str())
                    .then(|| doc.as_object_mut())
                    .flatten()
                    .map(|fields| fields.entry(key.clone()).or_insert(Value::Null));
                if let Some(slot) = slot {
                    if value.is_null() {
                        *slot = match slot {
                            Value::Object(_) => json!({}),
                            _ => Value::String(String::new()),
                        };
                    } else {
                        validate::merge_patch(slot, value);
                    }
                }
            }
            let mut space: Space = serde_json::from_value(doc)
                .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
            validate::labels_and_annotations(&space.labels, &space.annotations)?;
            if !space.release_target_id.is_empty() {
                validate::uuid("ReleaseTargetID", &space.release_target_id)?;
                let on_space = store::get_target(tx, &space.release_target_id)?
                    .is_some_and(|t| t.space_id == space.space_id);
                if !on_space {
                    return Err(ApiError::bad_request(
                        "ReleaseTargetID names no Target of this Space",
                    ));
                }
            }
            space.version += 1;
            space.updated_at = Some(now());
            store::put_space(tx, &space)?;
            Ok(space)
        })
        .await?;
    Ok(Json(space))
}
