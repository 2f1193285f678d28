//! Archive file names from unit slugs.
//!
//! ConfigHub slugs are normally DNS-label-like, but the archive must stay safe whatever a slug holds:
//! Flux refuses entry names that are empty, contain `\`, start with `/` or contain `../`, and
//! kustomize-controller treats a root `kustomization.yaml` as the build recipe instead of generating one.
//! A slug that is already safe maps to `<slug>.yaml` unchanged; any other slug is cleaned up and gets a
//! short hash of the original slug appended, so two different slugs can only collide if someone crafts
//! a slug equal to another's cleaned-and-hashed form (reported as [`BuildError::FileNameCollision`]).

use sha2::{Digest, Sha256};

use super::error::BuildError;

/// Extension every unit file gets: kustomize-controller only generates a kustomization from `*.yaml`/`*.yml`.
pub const FILE_EXTENSION: &str = ".yaml";

/// Longest file name we emit. 100 bytes is the plain ustar name field, so no entry ever needs a GNU
/// long-name or PAX extension record (simpler for every tar reader, and one less thing to differ).
pub const MAX_FILE_NAME: usize = 100;

const HASH_SUFFIX_HEX: usize = 8;

/// The archive file name for a unit slug. Pure and deterministic.
pub fn file_name_for(slug: &str) -> String {
    let max_base = MAX_FILE_NAME - FILE_EXTENSION.len();
    let mut clean = String::with_capacity(slug.len());
    for c in slug.chars() {
        let keep = c.is_ascii_alphanumeric() || c == '-' || c == '_';
        // A dot is fine inside a name, but never first (hidden file) and never doubled (`..`).
        let dot_ok = c == '.' && !clean.is_empty() && !clean.ends_with('.');
        clean.push(if keep || dot_ok { c } else { '_' });
    }
    let unchanged = clean == slug
        && !clean.is_empty()
        && clean.len() <= max_base
        && !is_reserved(&clean)
        && !clean.ends_with('.');
    if unchanged {
        return format!("{clean}{FILE_EXTENSION}");
    }
    let digest = Sha256::digest(slug.as_bytes());
    let suffix = &hex::encode(digest)[..HASH_SUFFIX_HEX];
    // `clean` is ASCII only, so byte truncation is a char boundary.
    clean.truncate(max_base - HASH_SUFFIX_HEX - 1);
    if clean.is_empty() {
        clean.push_str("unit");
    }
    format!("{clean}-{suffix}{FILE_EXTENSION}")
}

/// Names kustomize-controller would read as a kustomization rather than as resources.
fn is_reserved(base: &str) -> bool {
    base.eq_ignore_ascii_case("kustomization")
}

/// Whether `name` obeys Flux's archive entry rules plus ours (no separators, no leading dot). Used by
/// tests and as a last-line assertion in the build.
pub fn is_safe_entry_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.contains("..")
        && !name.chars().any(|c| c.is_control())
}

/// Assigns file names to slugs (already sorted and unique), reporting collisions deterministically.
pub(crate) fn assign(slugs: &[&str]) -> Result<Vec<String>, BuildError> {
    let mut seen: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(slugs.len());
    let mut names = Vec::with_capacity(slugs.len());
    for (i, slug) in slugs.iter().enumerate() {
        let name = file_name_for(slug);
        if let Some(&j) = seen.get(&name) {
            return Err(BuildError::FileNameCollision {
                file: name,
                first_unit: slugs[j].to_string(),
                second_unit: slug.to_string(),
            });
        }
        seen.insert(name.clone(), i);
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_slugs_are_kept() {
        assert_eq!(file_name_for("web-frontend"), "web-frontend.yaml");
        assert_eq!(file_name_for("app.v2_x"), "app.v2_x.yaml");
    }

    #[test]
    fn hostile_slugs_become_safe_and_distinct() {
        let hostile = [
            "",
            ".",
            "..",
            "../../etc/passwd",
            "/abs",
            "a\\b",
            ".hidden",
            "a/../b",
            "tab\there",
            "nul\0byte",
            "ünïcödé",
            "kustomization",
            "Kustomization",
            "trailing.",
            "a..b",
            &"x".repeat(300),
        ];
        let mut names = std::collections::HashSet::new();
        for slug in hostile {
            let name = file_name_for(slug);
            assert!(is_safe_entry_name(&name), "{slug:?} -> {name:?}");
            assert!(name.ends_with(".yaml"));
            assert!(name.len() <= MAX_FILE_NAME);
            assert!(names.insert(name.clone()), "duplicate name {name}");
        }
        assert_ne!(file_name_for("kustomization"), "kustomization.yaml");
    }

    #[test]
    fn sanitised_names_do_not_collide_with_their_clean_twin() {
        assert_ne!(file_name_for("a b"), file_name_for("a_b"));
        assert_ne!(file_name_for("a/b"), file_name_for("a_b"));
    }

    #[test]
    fn crafted_collision_is_reported() {
        let crafted = file_name_for("a b");
        let crafted_slug = crafted.trim_end_matches(".yaml").to_string();
        let err = assign(&["a b", &crafted_slug]).unwrap_err();
        assert!(matches!(err, BuildError::FileNameCollision { .. }), "{err}");
    }
}
