//! One unit from bytes to stamped text: the textual fast path when it can decide, the full parser
//! ([`super::manifest`]) otherwise. The only place that knows both paths.

use super::error::BuildError;
use super::manifest::{MAX_UNIT_BYTES, ProcessedUnit, Stamp, parse_and_stamp};
use super::textual;

/// Parses, validates and stamps one unit. Never panics on any input.
pub fn process_unit(data: &[u8], stamp: &Stamp<'_>) -> Result<ProcessedUnit, BuildError> {
    let unit = stamp.unit_slug;
    if data.len() > MAX_UNIT_BYTES {
        return Err(BuildError::UnitTooLarge {
            unit: unit.to_string(),
            size: data.len(),
            limit: MAX_UNIT_BYTES,
        });
    }
    if let Some(line) = marker_like_line(data) {
        return Err(BuildError::NotADocumentMarker {
            unit: unit.to_string(),
            line,
        });
    }
    // Most units are plain block YAML: stamped in their own text, without building a tree.
    if let Some(processed) = textual::try_process(data, stamp) {
        return Ok(processed);
    }
    parse_and_stamp(data, stamp)
}

/// The 1-based number of the first line that starts with `---` followed by something other than
/// whitespace, which YAML and kustomize read differently.
fn marker_like_line(data: &[u8]) -> Option<usize> {
    data.split(|b| *b == b'\n')
        .position(|line| {
            line.starts_with(b"---") && line.get(3).is_some_and(|c| !c.is_ascii_whitespace())
        })
        .map(|i| i + 1)
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
