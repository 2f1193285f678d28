//! Unit metadata endpoints: list, get, create (revision 1, empty), PUT, merge-PATCH and delete.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::entities::{Params, UNIT_SCHEMA, filtered, list_response, now, page, select};
use super::error::ApiError;
use super::{Hub, store, validate};
use crate::confighub::{
    DeleteResponse, ExtendedUnit, Revision, Unit, UnitCreateOrUpdateResponse, data_hash,
};

fn response(unit: Unit) -> Json<UnitCreateOrUpdateResponse> {
    Json(UnitCreateOrUpdateResponse { unit, error: None })
}

fn ids(space_id: &str, unit_id: &str) -> Result<(String, String), ApiError> {
    Ok((
        validate::uuid("space_id", space_id)?,
        validate::uuid("unit_id", unit_id)?,
    ))
}

fn check_unit_fields(unit: &Unit) -> Result<(), ApiError> {
    validate::slug(&unit.slug)?;
    validate::toolchain(&unit.toolchain_type)?;
    validate::labels_and_annotations(&unit.labels, &unit.annotations)?;
    for (what, id) in [
        ("TargetID", &unit.target_id),
        ("ChangeSetID", &unit.change_set_id),
    ] {
        if !id.is_empty() {
            validate::uuid(what, id)?;
        }
    }
    Ok(())
}

fn ensure_slug_free(tx: &rusqlite::Connection, unit: &Unit) -> Result<(), ApiError> {
    match store::unit_by_slug(tx, &unit.space_id, &unit.slug)? {
        Some(other) if other.unit_id != unit.unit_id => Err(ApiError::conflict(format!(
            "Unit {:?} already exists in this Space",
            unit.slug
        ))),
        _ => Ok(()),
    }
}

pub async fn list_units(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    Query(q): Params,
) -> Result<axum::response::Response, ApiError> {
    let id = validate::uuid("space_id", &space_id)?;
    let units = hub
        .db(move |tx, _| {
            store::space_or_404(tx, &id)?;
            store::list_units(tx, &id)
        })
        .await?;
    let (mut values, named) = filtered(units, &q, UNIT_SCHEMA)?;
    values.retain(|u| shown(u, &q));
    // Every field a unit can have, including the IDs left out while empty.
    let known = serde_json::to_value(Unit {
        target_id: "-".into(),
        change_set_id: "-".into(),
        ..Default::default()
    })?;
    let always = ["UnitID", "SpaceID", "OrganizationID", "Slug"];
    select(&mut values, &q, &known, &always, &named)?;
    let (values, next) = page(values, &q)?;
    let include = includes(&q)?;
    let items = if include.is_empty() {
        values.into_iter().map(|u| json!({"Unit": u})).collect()
    } else {
        hub.db(move |tx, _| {
            values
                .into_iter()
                .map(|u| expand(tx, u, &include))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?
    };
    Ok(list_response(items, next))
}

/// The Unit `include` values the service accepts (`shared/confighub-api-more.md` §1). The hub expands
/// `HeadRevisionNum` → `HeadRevision` and `LastReleasedRevisionNum` → `LastReleasedRevision`; the others
/// name entities it does not model and add nothing.
const INCLUDABLE: &[&str] = &[
    "ChangeSetID",
    "FromLinkID",
    "HeadMutationNum",
    "HeadRevisionNum",
    "LastReleasedRevisionNum",
    "OrganizationID",
    "SpaceID",
    "TargetID",
    "UnitEventID",
    "UpstreamSpaceID",
    "UpstreamUnitID",
];

fn includes(q: &std::collections::HashMap<String, String>) -> Result<Vec<String>, ApiError> {
    let Some(list) = q.get("include") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !INCLUDABLE.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "include: unknown value {name}"
            )));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// `{"Unit": …}` plus the included Revisions the Unit has (the revision number survives `select` only if
/// selected, so it is read from the stored Unit).
fn expand(tx: &rusqlite::Connection, unit: Value, include: &[String]) -> Result<Value, ApiError> {
    let mut item = json!({ "Unit": unit });
    let id = item["Unit"]["UnitID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(stored) = store::get_unit(
        tx,
        item["Unit"]["SpaceID"].as_str().unwrap_or_default(),
        &id,
    )?
    else {
        return Ok(item);
    };
    for (name, key, num) in [
        ("HeadRevisionNum", "HeadRevision", stored.head_revision_num),
        (
            "LastReleasedRevisionNum",
            "LastReleasedRevision",
            stored.last_released_revision_num,
        ),
    ] {
        if num > 0
            && include.iter().any(|i| i == name)
            && let Some(rev) = store::revision_by_num(tx, &id, num)?
        {
            item[key] = serde_json::to_value(rev)?;
        }
    }
    Ok(item)
}

/// Whether a listed Unit is shown, as the service decides: every Unit that is not hidden, and a hidden one
/// when `include_hidden` names its reason (or is `*`), or `where` mentions `HiddenReason` or names Units
/// by `Slug` or `UnitID` with `=` or `IN`.
pub(crate) fn shown(unit: &Value, q: &std::collections::HashMap<String, String>) -> bool {
    let reason = unit["HiddenReason"].as_str().unwrap_or_default();
    if reason.is_empty() {
        return true;
    }
    let listed = q.get("include_hidden").is_some_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|r| r == "*" || r == reason)
    });
    let named = q
        .get("where")
        .and_then(|w| super::where_parser::parse(w).ok())
        .is_some_and(|expr| {
            expr.clauses.iter().any(|c| {
                c.lhs == "HiddenReason"
                    || (matches!(c.lhs.as_str(), "Slug" | "UnitID")
                        && matches!(
                            c.op,
                            super::where_parser::Op::Eq | super::where_parser::Op::In
                        ))
            })
        });
    listed || named
}

pub async fn get_unit(
    State(hub): State<Hub>,
    Path((space_id, unit_id)): Path<(String, String)>,
) -> Result<Json<ExtendedUnit>, ApiError> {
    let (sid, uid) = ids(&space_id, &unit_id)?;
    let unit = hub
        .db(move |tx, _| store::unit_or_404(tx, &sid, &uid))
        .await?;
    Ok(Json(ExtendedUnit {
        unit,
        ..Default::default()
    }))
}

pub async fn create_unit(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Result<Json<UnitCreateOrUpdateResponse>, ApiError> {
    let sid = validate::uuid("space_id", &space_id)?;
    let allow_exists = validate::flag(&q, "allow_exists")?;
    let req: Unit = validate::json_body(&body)?;
    check_unit_fields(&req)?;
    let unit = hub
        .db(move |tx, ids| {
            store::space_or_404(tx, &sid)?;
            store::ensure_target(tx, &req.target_id)?;
            if let Some(existing) = store::unit_by_slug(tx, &sid, &req.slug)? {
                return if allow_exists {
                    Ok(existing)
                } else {
                    Err(ApiError::conflict(format!(
                        "Unit {:?} already exists in this Space",
                        req.slug
                    )))
                };
            }
            let now = now();
            // Backing Units are hidden unless told otherwise, as in the service.
            let hidden_reason =
                if req.hidden_reason.is_empty() && req.toolchain_type == "ConfigHub/YAML" {
                    "BackingUnit".to_string()
                } else {
                    req.hidden_reason.clone()
                };
            let unit_id = uuid::Uuid::new_v4().to_string();
            let revision = Revision {
                revision_id: uuid::Uuid::new_v4().to_string(),
                revision_num: 1,
                unit_id: unit_id.clone(),
                space_id: sid.clone(),
                organization_id: ids.org_id.clone(),
                data_hash: data_hash(b""),
                data_size: 0,
                description: req.last_change_description.clone(),
                source: "CreateUnit".into(),
                user_id: ids.user_id.clone(),
                change_set_id: req.change_set_id.clone(),
                entity_type: "revision".into(),
                created_at: Some(now),
                updated_at: Some(now),
                version: 1,
                ..Default::default()
            };
            let unit = Unit {
                unit_id,
                space_id: sid,
                organization_id: ids.org_id.clone(),
                slug: req.slug,
                display_name: req.display_name,
                toolchain_type: req.toolchain_type,
                target_id: req.target_id,
                change_set_id: req.change_set_id,
                labels: req.labels,
                annotations: req.annotations,
                delete_gates: req.delete_gates,
                last_change_description: req.last_change_description,
                data_hash: revision.data_hash.clone(),
                data_size: 0,
                head_revision_num: 1,
                head_revision_id: revision.revision_id.clone(),
                last_released_revision_num: 0,
                validation_errors: Default::default(),
                hidden_reason,
                entity_type: "unit".into(),
                created_at: Some(now),
                updated_at: Some(now),
                version: 1,
            };
            store::insert_revision(tx, &revision, b"")?;
            store::put_unit(tx, &unit)?;
            Ok(unit)
        })
        .await?;
    Ok(response(unit))
}

/// Copies the writable fields of `from` onto `to`; read-only fields in a request are ignored.
fn apply_writable(to: &mut Unit, from: Unit) {
    to.slug = from.slug;
    to.display_name = from.display_name;
    to.toolchain_type = from.toolchain_type;
    to.target_id = from.target_id;
    to.change_set_id = from.change_set_id;
    to.labels = from.labels;
    to.annotations = from.annotations;
    to.delete_gates = from.delete_gates;
    to.last_change_description = from.last_change_description;
}

/// Refuses a write that carries a stale `Version`.
fn check_version(expected: i64, unit: &Unit) -> Result<(), ApiError> {
    if expected == unit.version {
        return Ok(());
    }
    Err(ApiError::conflict(format!(
        "Unit has changed: Version {expected} is stale (current {}).",
        unit.version
    )))
}

/// Takes `changes`' writable fields into `unit` and stores it as its next version (PUT and PATCH).
fn save_edit(tx: &rusqlite::Connection, mut unit: Unit, changes: Unit) -> Result<Unit, ApiError> {
    apply_writable(&mut unit, changes);
    ensure_slug_free(tx, &unit)?;
    store::ensure_target(tx, &unit.target_id)?;
    unit.version += 1;
    unit.updated_at = Some(now());
    store::put_unit(tx, &unit)?;
    Ok(unit)
}

pub async fn update_unit(
    State(hub): State<Hub>,
    Path((space_id, unit_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<UnitCreateOrUpdateResponse>, ApiError> {
    let (sid, uid) = ids(&space_id, &unit_id)?;
    let req: Unit = validate::json_body(&body)?;
    check_unit_fields(&req)?;
    let unit = hub
        .db(move |tx, _| {
            let unit = store::unit_or_404(tx, &sid, &uid)?;
            check_version(req.version, &unit)?;
            save_edit(tx, unit, req)
        })
        .await?;
    Ok(response(unit))
}

/// Fields a merge patch may touch, as the reference lists them (those this hub models).
const PATCHABLE: &[&str] = &[
    "Annotations",
    "ChangeSetID",
    "DeleteGates",
    "DisplayName",
    "HiddenReason",
    "Labels",
    "LastChangeDescription",
    "Slug",
    "TargetID",
    "ToolchainType",
];

pub async fn patch_unit(
    State(hub): State<Hub>,
    Path((space_id, unit_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<UnitCreateOrUpdateResponse>, ApiError> {
    let (sid, uid) = ids(&space_id, &unit_id)?;
    let patch: Value = validate::json_body(&body)?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    };
    let expected_version = match patch.get("Version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ApiError::bad_request("Version must be an integer"))?,
        ),
    };
    let unit = hub
        .db(move |tx, _| {
            let current = store::unit_or_404(tx, &sid, &uid)?;
            if let Some(v) = expected_version {
                check_version(v, &current)?;
            }
            let mut doc = serde_json::to_value(&current)?;
            for (key, value) in &patch {
                if !PATCHABLE.contains(&key.as_str()) {
                    continue;
                }
                // A field left out of the stored form while empty (TargetID) is still patchable.
                if let Some(slot) = doc
                    .as_object_mut()
                    .map(|fields| fields.entry(key.clone()).or_insert(Value::Null))
                {
                    if value.is_null() {
                        // `null` deletes: the field goes back to its zero value.
                        *slot = match slot {
                            Value::Object(_) => json!({}),
                            _ => Value::String(String::new()),
                        };
                    } else {
                        validate::merge_patch(slot, value);
                    }
                }
            }
            let patched: Unit = serde_json::from_value(doc)
                .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
            check_unit_fields(&patched)?;
            save_edit(tx, current, patched)
        })
        .await?;
    Ok(response(unit))
}

pub async fn delete_unit(
    State(hub): State<Hub>,
    Path((space_id, unit_id)): Path<(String, String)>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let (sid, uid) = ids(&space_id, &unit_id)?;
    hub.db(move |tx, _| {
        let unit = store::unit_or_404(tx, &sid, &uid)?;
        if unit.delete_gates.values().any(|gated| *gated) {
            return Err(ApiError::conflict("Unit is protected by DeleteGates."));
        }
        store::delete_unit(tx, &uid)
    })
    .await?;
    Ok(Json(DeleteResponse {
        message: "Unit deleted".into(),
        error: None,
    }))
}
