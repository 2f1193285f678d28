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
    // Most units are plain block YAML: stamped in their own text, without building a tree.
    if let Some(processed) = textual::try_process(data, stamp) {
        return Ok(processed);
    }
    parse_and_stamp(data, stamp)
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
