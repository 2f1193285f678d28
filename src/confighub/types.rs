//! ConfigHub entities as the REST API spells them (PascalCase JSON).
//!
//! Every field is `#[serde(default)]` and unknown fields are ignored, because ConfigHub adds fields
//! between releases and documents zero values rather than `null`. Fields that servers have been seen
//! to send as `null` (maps, optional IDs) also accept `null` as their zero value. The local hub
//! serialises these same types, so the client and the hub cannot drift apart.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// A `{string: string}` map such as `Labels` or `Annotations`.
pub type StringMap = BTreeMap<String, String>;
/// A `{string: bool}` map such as `DeleteGates`.
pub type BoolMap = BTreeMap<String, bool>;

/// Reads `null` as the type's zero value; `#[serde(default)]` alone only covers a missing key.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /info`: server version and auth endpoints. Needs no token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ApiInfo {
    pub version: String,
    pub build: String,
    pub built_at: String,
    #[serde(rename = "ClientID")]
    pub client_id: String,
    pub auth_server: String,
    pub auth_issuer: String,
    #[serde(rename = "OCIHost")]
    pub oci_host: String,
    #[serde(rename = "OCIPort")]
    pub oci_port: String,
}

/// `GET /me`: who the token belongs to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OrganizationMember {
    #[serde(rename = "UserID")]
    pub user_id: String,
    #[serde(rename = "OrganizationID")]
    pub organization_id: String,
    pub username: String,
    pub slug: String,
    pub display_name: String,
    #[serde(rename = "ExternalID")]
    pub external_id: String,
}

/// A Space: the namespace Units live in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Space {
    #[serde(rename = "SpaceID", deserialize_with = "nullable")]
    pub space_id: String,
    pub slug: String,
    pub display_name: String,
    #[serde(rename = "OrganizationID", deserialize_with = "nullable")]
    pub organization_id: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: StringMap,
    #[serde(deserialize_with = "nullable")]
    pub annotations: StringMap,
    #[serde(deserialize_with = "nullable")]
    pub delete_gates: BoolMap,
    #[serde(
        rename = "ReleaseTargetID",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub release_target_id: String,
    pub entity_type: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A Unit: one piece of configuration. It has no `Data`; the bytes live behind `…/data`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Unit {
    #[serde(rename = "UnitID", deserialize_with = "nullable")]
    pub unit_id: String,
    #[serde(rename = "SpaceID", deserialize_with = "nullable")]
    pub space_id: String,
    #[serde(rename = "OrganizationID", deserialize_with = "nullable")]
    pub organization_id: String,
    pub slug: String,
    pub display_name: String,
    pub toolchain_type: String,
    #[serde(
        rename = "TargetID",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub target_id: String,
    #[serde(
        rename = "ChangeSetID",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub change_set_id: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: StringMap,
    #[serde(deserialize_with = "nullable")]
    pub annotations: StringMap,
    #[serde(deserialize_with = "nullable")]
    pub delete_gates: BoolMap,
    pub last_change_description: String,
    /// SHA-256 (hex) of the Unit's data; also the ETag of `…/data`.
    pub data_hash: String,
    pub data_size: i64,
    pub head_revision_num: i64,
    #[serde(rename = "HeadRevisionID", deserialize_with = "nullable")]
    pub head_revision_id: String,
    /// 0 until a Release bundles the Unit.
    pub last_released_revision_num: i64,
    /// `"<space>/<trigger>/<function>"` → true for each failing validating Trigger; any entry blocks
    /// the Unit's release (422).
    #[serde(deserialize_with = "nullable")]
    pub validation_errors: BoolMap,
    /// Non-empty for a hidden Unit (e.g. `BackingUnit`): lists leave it out unless asked for
    /// (`include_hidden`, or a `where` naming it or mentioning `HiddenReason`).
    #[serde(deserialize_with = "nullable")]
    pub hidden_reason: String,
    pub entity_type: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// One immutable version of a Unit's data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Revision {
    #[serde(rename = "RevisionID", deserialize_with = "nullable")]
    pub revision_id: String,
    pub revision_num: i64,
    #[serde(rename = "UnitID", deserialize_with = "nullable")]
    pub unit_id: String,
    #[serde(rename = "SpaceID", deserialize_with = "nullable")]
    pub space_id: String,
    #[serde(rename = "OrganizationID", deserialize_with = "nullable")]
    pub organization_id: String,
    pub data_hash: String,
    pub data_size: i64,
    pub description: String,
    pub source: String,
    #[serde(rename = "UserID", deserialize_with = "nullable")]
    pub user_id: String,
    #[serde(
        rename = "ChangeSetID",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub change_set_id: String,
    #[serde(deserialize_with = "nullable")]
    pub tags: StringMap,
    #[serde(deserialize_with = "nullable")]
    pub releases: StringMap,
    pub entity_type: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A named group of changes across Units.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChangeSet {
    #[serde(
        rename = "ChangeSetID",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub change_set_id: String,
    pub slug: String,
    pub display_name: String,
    pub description: String,
    #[serde(rename = "SpaceID", deserialize_with = "nullable")]
    pub space_id: String,
    #[serde(rename = "OrganizationID", deserialize_with = "nullable")]
    pub organization_id: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: StringMap,
    #[serde(deserialize_with = "nullable")]
    pub annotations: StringMap,
    pub entity_type: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A published bundle of a Space's Units at their head revisions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Release {
    #[serde(rename = "ReleaseID", deserialize_with = "nullable")]
    pub release_id: String,
    pub release_num: i64,
    #[serde(rename = "SpaceID", deserialize_with = "nullable")]
    pub space_id: String,
    #[serde(rename = "OrganizationID", deserialize_with = "nullable")]
    pub organization_id: String,
    #[serde(
        rename = "TargetID",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub target_id: String,
    #[serde(rename = "TagID", deserialize_with = "nullable")]
    pub tag_id: String,
    pub digest: String,
    pub published: bool,
    pub unit_count: i64,
    pub data_size: i64,
    pub bundle_base_name: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: StringMap,
    #[serde(deserialize_with = "nullable")]
    pub annotations: StringMap,
    pub entity_type: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// `POST /space/{id}/release` answer: the Release, and what happened (e.g. that the bundle equals the
/// latest Release, which is then returned and nothing new is created).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReleasePublishResponse {
    pub release: Release,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
}

/// Where a Space's Units are delivered; a Release bundles the Units on the Space's `ReleaseTargetID`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Target {
    #[serde(rename = "TargetID", deserialize_with = "nullable")]
    pub target_id: String,
    #[serde(rename = "SpaceID", deserialize_with = "nullable")]
    pub space_id: String,
    #[serde(rename = "OrganizationID", deserialize_with = "nullable")]
    pub organization_id: String,
    pub slug: String,
    pub display_name: String,
    pub toolchain_type: String,
    pub provider_type: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: StringMap,
    #[serde(deserialize_with = "nullable")]
    pub annotations: StringMap,
    pub entity_type: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// `ListTargets` / `GetTarget` item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExtendedTarget {
    pub target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

/// The envelope-level error some responses carry next to the entity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResponseError {
    pub message: String,
    pub status: i64,
    #[serde(rename = "Type")]
    pub kind: String,
    pub error_category: String,
    #[serde(deserialize_with = "nullable")]
    pub details: Vec<String>,
}

/// `GetSpace` / `ListSpaces` item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExtendedSpace {
    pub space: Space,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_unit_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreleased_unit_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

/// `GetUnit` / `ListUnits` item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExtendedUnit {
    pub unit: Unit,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_revision: Option<Revision>,
    /// With `include=LastReleasedRevisionNum`: the Revision last released (absent when none is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_released_revision: Option<Revision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

/// `SearchUnitData` (`GET /unit_data`) row: a Unit's head data. `Data` is the document as a plain JSON
/// string, not base64.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UnitData {
    #[serde(rename = "UnitID", deserialize_with = "nullable")]
    pub unit_id: String,
    #[serde(deserialize_with = "nullable")]
    pub slug: String,
    #[serde(rename = "SpaceID", deserialize_with = "nullable")]
    pub space_id: String,
    #[serde(deserialize_with = "nullable")]
    pub space_slug: String,
    #[serde(deserialize_with = "nullable")]
    pub data: String,
    #[serde(deserialize_with = "nullable")]
    pub data_hash: String,
    pub data_size: i64,
}

/// `SearchRevisionData` (`GET /revision_data`) row: one Revision's data, a plain JSON string.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RevisionData {
    #[serde(rename = "RevisionID", deserialize_with = "nullable")]
    pub revision_id: String,
    pub revision_num: i64,
    #[serde(rename = "UnitID", deserialize_with = "nullable")]
    pub unit_id: String,
    #[serde(rename = "SpaceID", deserialize_with = "nullable")]
    pub space_id: String,
    #[serde(deserialize_with = "nullable")]
    pub data: String,
    #[serde(deserialize_with = "nullable")]
    pub data_hash: String,
    pub data_size: i64,
}

/// `GetExtendedRevision` / `ListExtendedRevisions` item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExtendedRevision {
    pub revision: Revision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

/// `GetChangeSet` / `ListChangeSets` item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExtendedChangeSet {
    pub change_set: ChangeSet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

/// What Unit create, update, patch and data upload return.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UnitCreateOrUpdateResponse {
    pub unit: Unit,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

/// What deletes return.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteResponse {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

/// The body of every 4xx/5xx: `{"Code":"409","Message":"…"}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StandardErrorResponse {
    pub code: String,
    pub message: String,
}

/// The answer of `POST {origin}/auth/worker` (snake_case, unlike the `/api` entities). Clients use
/// `access_token` and `organization_id`; `expires_in` (seconds) is read when a server sends it,
/// otherwise the token's JWT `exp` says when it expires. `Debug` hides the token.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSession {
    pub access_token: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub organization_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSession")
            .field("access_token", &"***")
            .field("organization_id", &self.organization_id)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Body of `POST /space` (only the writable fields, so no empty IDs are sent).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SpaceCreate {
    pub slug: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
    #[serde(skip_serializing_if = "StringMap::is_empty")]
    pub annotations: StringMap,
}

/// Body of `POST /space/{id}/unit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UnitCreate {
    pub slug: String,
    pub toolchain_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
    #[serde(skip_serializing_if = "StringMap::is_empty")]
    pub annotations: StringMap,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_change_description: String,
    /// Non-empty: the Unit is hidden from lists unless asked for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hidden_reason: String,
    /// The Target the Unit is delivered to; a Release bundles the Units on the Space's release Target.
    #[serde(rename = "TargetID", skip_serializing_if = "String::is_empty")]
    pub target_id: String,
}

/// Body of `POST /space/{id}/change_set`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChangeSetCreate {
    pub slug: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A JSON merge patch (RFC 7386) for a Unit: `None` leaves a field alone, and a `None` map value
/// deletes that key.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnitPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Assigns the Unit to a Target (a Release bundles the Units on the Space's release Target).
    #[serde(rename = "TargetID", skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// When set, the server refuses the patch with 409 if the Unit moved on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_nulls_are_tolerated() {
        let json = r#"{"UnitID":"u","Slug":"web","Labels":null,"TargetID":null,"Shiny":1,"HeadRevisionNum":3}"#;
        let unit: Unit = serde_json::from_str(json).unwrap();
        assert_eq!(unit.slug, "web");
        assert!(unit.labels.is_empty());
        assert_eq!(unit.head_revision_num, 3);
    }

    #[test]
    fn unit_serialises_reference_names_and_has_no_data() {
        let v = serde_json::to_value(Unit::default()).unwrap();
        for key in [
            "UnitID",
            "SpaceID",
            "DataHash",
            "DataSize",
            "HeadRevisionNum",
            "HeadRevisionID",
            "LastReleasedRevisionNum",
            "Version",
            "ToolchainType",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v.get("Data").is_none());
    }

    #[test]
    fn patch_null_deletes_a_label() {
        let mut labels = BTreeMap::new();
        labels.insert("tier".to_string(), None);
        let patch = UnitPatch {
            labels: Some(labels),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            r#"{"Labels":{"tier":null}}"#
        );
    }
}
