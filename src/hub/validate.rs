//! Input checks shared by the hub's handlers. Each returns the documented 400 instead of letting bad
//! input reach the database or a panic.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::confighub::StringMap;

pub const MAX_SLUG_LEN: usize = 128;
const TOOLCHAINS: &[&str] = &[
    "Kubernetes/YAML",
    "AppConfig/Properties",
    "AppConfig/YAML",
    "AppConfig/TOML",
    "AppConfig/INI",
    "AppConfig/JSON",
    "AppConfig/Env",
    "AppConfig/Text",
    "ConfigHub/YAML",
];

/// `^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$`, at most 128 characters.
pub fn is_valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    slug.len() <= MAX_SLUG_LEN
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub fn slug(slug: &str) -> Result<(), ApiError> {
    if slug.is_empty() {
        return Err(ApiError::bad_request("Slug is required"));
    }
    if !is_valid_slug(slug) {
        return Err(ApiError::bad_request(format!(
            "Slug {slug:?} is invalid: it must match ^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$ and be at most {MAX_SLUG_LEN} characters"
        )));
    }
    Ok(())
}

pub fn toolchain(t: &str) -> Result<(), ApiError> {
    if t.is_empty() {
        return Err(ApiError::bad_request("ToolchainType is required"));
    }
    if !TOOLCHAINS.contains(&t) {
        return Err(ApiError::bad_request(format!(
            "ToolchainType {t:?} is not supported"
        )));
    }
    Ok(())
}

/// Labels: values ≤ 128 printable characters without surrounding spaces; annotations ≤ 1024.
pub fn labels_and_annotations(labels: &StringMap, annotations: &StringMap) -> Result<(), ApiError> {
    for (k, v) in labels {
        let printable = v.chars().all(|c| !c.is_control());
        if k.is_empty() || v.chars().count() > 128 || !printable || v.trim() != v {
            return Err(ApiError::bad_request(format!(
                "label {k:?} has an invalid key or value"
            )));
        }
    }
    for (k, v) in annotations {
        if k.is_empty() || v.chars().count() > 1024 {
            return Err(ApiError::bad_request(format!(
                "annotation {k:?} has an invalid key or value"
            )));
        }
    }
    Ok(())
}

/// Path IDs are UUIDs; anything else is a 400 (not a 404), as ConfigHub answers.
pub fn uuid(what: &str, value: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::bad_request(format!("{what} {value:?} is not a valid UUID")))
}

/// Decodes a JSON request body into `T`, turning every decoding problem into a 400.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Reads a boolean query flag such as `allow_exists`.
pub fn flag(query: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match query.get(name).map(String::as_str) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name} must be true or false, not {other:?}"
        ))),
    }
}

/// RFC 7386 JSON merge patch: objects merge recursively and `null` deletes.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slugs_follow_the_reference_pattern() {
        for ok in ["a", "web", "web-1", "a.b_c-d", "A9"] {
            assert!(is_valid_slug(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a'b", "é", ".", &"a".repeat(129)] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
        assert!(is_valid_slug(&"a".repeat(128)));
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"Labels":{"a":"1","b":"2"},"DisplayName":"x"});
        merge_patch(
            &mut doc,
            &json!({"Labels":{"b":null,"c":"3"},"DisplayName":null}),
        );
        assert_eq!(doc, json!({"Labels":{"a":"1","c":"3"}}));
    }

    #[test]
    fn uuids_are_checked() {
        assert!(uuid("space_id", "nope").is_err());
        assert!(uuid("space_id", "0d9c7a5e-0000-4000-8000-000000000001").is_ok());
    }
}
