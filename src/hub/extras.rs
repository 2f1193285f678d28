//! `GET /info`, `GET /me` and `POST /space/{id}/release`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use sha2::Digest;

use super::entities::now;
use super::error::ApiError;
use super::{CONFIGHUB_VERSION, Hub, store, validate};
use crate::confighub::{ApiInfo, OrganizationMember, Release, ReleasePublishResponse};

pub async fn info() -> Json<ApiInfo> {
    Json(ApiInfo {
        version: CONFIGHUB_VERSION.into(),
        build: "local-hub".into(),
        client_id: "dev".into(),
        ..Default::default()
    })
}

pub async fn me(State(hub): State<Hub>) -> Json<OrganizationMember> {
    let ids = hub.ids();
    Json(OrganizationMember {
        user_id: ids.user_id.clone(),
        organization_id: ids.org_id.clone(),
        username: "dev".into(),
        slug: "dev".into(),
        display_name: "Local Dev".into(),
        external_id: String::new(),
    })
}

/// Publishes the Units on the Space's release Target at their heads, as the service does
/// (`shared/confighub-api-more.md` §4): sets their `LastReleasedRevisionNum`, records the Release on each
/// bundled Revision, and answers `{Release, Message}`. A Space without `ReleaseTargetID` releases
/// nothing (400); a bundled Unit with `ValidationErrors` refuses the whole Release (422); a bundle equal
/// to the latest Release creates nothing and returns that one. The hub has no OCI registry, so `Digest`
/// covers the bundled Units' slugs and DataHashes.
pub async fn publish_release(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    body: Bytes,
) -> Result<Json<ReleasePublishResponse>, ApiError> {
    let sid = validate::uuid("space_id", &space_id)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: serde_json::Value = validate::json_body(&body)?;
    }
    let response = hub
        .db(move |tx, ids| {
            let space = store::space_or_404(tx, &sid)?;
            if space.release_target_id.is_empty() {
                return Err(ApiError::bad_request(
                    "Space has no ReleaseTargetID: no Units can be released",
                ));
            }
            let units: Vec<_> = store::list_units(tx, &sid)?
                .into_iter()
                .filter(|u| u.target_id == space.release_target_id)
                .collect();
            let blocked: Vec<&str> = units
                .iter()
                .filter(|u| u.validation_errors.values().any(|e| *e))
                .map(|u| u.slug.as_str())
                .collect();
            if !blocked.is_empty() {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "A Unit to be bundled has outstanding validation errors: {}",
                        blocked.join(", ")
                    ),
                ));
            }
            let mut hasher = sha2::Sha256::new();
            for unit in &units {
                hasher.update(format!("{}\0{}\n", unit.slug, unit.data_hash));
            }
            let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
            if let Some(latest) = store::latest_release(tx, &sid)?
                .filter(|r| r.digest == digest && r.target_id == space.release_target_id)
            {
                return Ok(ReleasePublishResponse {
                    release: latest,
                    message:
                        "The bundle is identical to the latest Release; nothing was published."
                            .into(),
                });
            }
            let now = now();
            let num = store::next_release_num(tx, &sid)?;
            let release_id = uuid::Uuid::new_v4().to_string();
            let mut data_size = 0;
            for unit in &units {
                let mut unit = unit.clone();
                data_size += unit.data_size;
                if let Some(mut rev) =
                    store::get_revision(tx, &unit.unit_id, &unit.head_revision_id)?
                {
                    rev.releases
                        .insert(release_id.clone(), format!("release-{num}"));
                    store::update_revision_body(tx, &rev)?;
                }
                unit.last_released_revision_num = unit.head_revision_num;
                unit.version += 1;
                unit.updated_at = Some(now);
                store::put_unit(tx, &unit)?;
            }
            let release = Release {
                release_id,
                release_num: num,
                space_id: sid,
                organization_id: ids.org_id.clone(),
                target_id: space.release_target_id.clone(),
                digest,
                published: true,
                unit_count: units.len() as i64,
                data_size,
                bundle_base_name: format!("release-{num}"),
                entity_type: "release".into(),
                created_at: Some(now),
                updated_at: Some(now),
                version: 1,
                ..Default::default()
            };
            store::insert_release(tx, &release)?;
            Ok(ReleasePublishResponse {
                release,
                message: format!("Published Release {num} with {} Units.", units.len()),
            })
        })
        .await?;
    Ok(Json(response))
}
