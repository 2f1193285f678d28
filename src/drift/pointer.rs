//! JSON pointers (RFC 6901): building, splitting and segment-wise prefix matching.

/// Escapes one reference token (`~` → `~0`, `/` → `~1`).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `parent` + `/segment`, escaping the segment.
pub fn join(parent: &str, segment: &str) -> String {
    format!("{parent}/{}", escape(segment))
}

/// The unescaped segments of a pointer; `""` (the whole document) has none.
pub fn segments(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .strip_prefix('/')
        .unwrap_or(pointer)
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Whether `prefix` names `path` or one of its ancestors, on whole segments (`/spec/replicas` does not
/// prefix `/spec/replicasX`). A `*` segment in `prefix` matches any one segment.
pub fn is_prefix(prefix: &str, path: &str) -> bool {
    let p = segments(prefix.trim_end_matches('/'));
    let s = segments(path);
    p.len() <= s.len() && p.iter().zip(&s).all(|(a, b)| a == "*" || a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_segments_round_trip() {
        let p = join(&join("", "metadata"), "app.kubernetes.io/name");
        assert_eq!(p, "/metadata/app.kubernetes.io~1name");
        assert_eq!(segments(&p), vec!["metadata", "app.kubernetes.io/name"]);
        assert!(segments("").is_empty());
        assert_eq!(escape("a~b"), "a~0b");
    }

    #[test]
    fn prefixes_match_whole_segments_and_wildcards() {
        assert!(is_prefix("/spec/replicas", "/spec/replicas"));
        assert!(is_prefix("/spec", "/spec/replicas"));
        assert!(is_prefix("", "/spec"));
        assert!(is_prefix("/spec/", "/spec/replicas"));
        assert!(!is_prefix("/spec/replicas", "/spec/replicasX"));
        assert!(!is_prefix("/spec/replicas", "/spec"));
        assert!(is_prefix(
            "/spec/template/spec/containers/*/image",
            "/spec/template/spec/containers/1/image"
        ));
    }
}
