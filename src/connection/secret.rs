//! Reading a repository's Secrets: one Secret by name, and one key of it, as `data` (or `stringData`,
//! for objects not yet round-tripped through the API server). Errors name the Secret and key, never a
//! value.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

/// Why a Secret could not be used; `reason` is a condition reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsError {
    pub reason: &'static str,
    pub message: String,
}

/// The Secret `name` in `namespace`: `SecretNotFound` when it does not exist, `SecretReadFailed` when
/// it cannot be read (e.g. RBAC).
pub async fn get_secret(
    kube: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Secret, CredentialsError> {
    Api::<Secret>::namespaced(kube.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| CredentialsError {
            reason: "SecretReadFailed",
            message: format!("reading Secret '{name}': {e}"),
        })?
        .ok_or_else(|| CredentialsError {
            reason: "SecretNotFound",
            message: format!("Secret '{name}' not found in namespace '{namespace}'"),
        })
}

/// The bytes under `key`, from `data` or else `stringData`; `None` when absent or only whitespace.
pub fn secret_value(
    data: Option<&BTreeMap<String, ByteString>>,
    string_data: Option<&BTreeMap<String, String>>,
    key: &str,
) -> Option<Vec<u8>> {
    data.and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            string_data
                .and_then(|d| d.get(key))
                .map(|s| s.as_bytes().to_vec())
        })
        .filter(|v| !v.iter().all(u8::is_ascii_whitespace))
}

/// [`secret_value`] as trimmed text.
pub fn secret_text(
    data: Option<&BTreeMap<String, ByteString>>,
    string_data: Option<&BTreeMap<String, String>>,
    key: &str,
) -> Option<String> {
    secret_value(data, string_data, key).map(|v| String::from_utf8_lossy(&v).trim().to_string())
}
