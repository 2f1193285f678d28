//! `GET /info`, `GET /me` and `POST /space/{id}/release`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use sha2::Digest;

use super::entities::now;
use super::error::ApiError;
use super::{CONFIGHUB_VERSION, Hub, store, validate};
use crate::confighub::{ApiInfo, OrganizationMember, Release};

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

/// Publishes every Unit of the Space at its head: sets `LastReleasedRevisionNum`, records the
/// Release on each bundled Revision, and returns the `Release`. The hub has no Targets or OCI
/// registry, so all Units are bundled and `Digest` covers the Units' slugs and DataHashes.
pub async fn publish_release(
    State(hub): State<Hub>,
    Path(space_id): Path<String>,
    body: Bytes,
) -> Result<Json<Release>, ApiError> {
    let sid = validate::uuid("space_id", &space_id)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: serde_json::Value = validate::json_body(&body)?;
    }
    let release = hub
        .db(move |tx, ids| {
            store::space_or_404(tx, &sid)?;
            let now = now();
            let num = store::next_release_num(tx, &sid)?;
            let release_id = uuid::Uuid::new_v4().to_string();
            let mut hasher = sha2::Sha256::new();
            let mut data_size = 0;
            let units = store::list_units(tx, &sid)?;
            for mut unit in units.clone() {
                hasher.update(format!("{}\0{}\n", unit.slug, unit.data_hash));
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
                digest: format!("sha256:{}", hex::encode(hasher.finalize())),
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
            Ok(release)
        })
        .await?;
    Ok(Json(release))
}
