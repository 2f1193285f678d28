//! Provenance stamped into the unit's own text, for the common shape of Kubernetes YAML.
//!
//! Why: parsing every object into a tree and writing it out again was about 70 % of `pack`'s CPU, while
//! almost every unit is plain block-style YAML of the kind `kubectl` and ConfigHub write. For those,
//! a strict line scanner checks everything the full path checks (each document a mapping with string
//! `apiVersion`, `kind` and `metadata.name`; no repeated keys; valid indentation and scalars) and the
//! provenance lines are inserted under `metadata`, leaving every other byte as the unit wrote it.
//!
//! It never reports an error. Whatever it is not certain about (anchors, aliases, tags, tabs, CRLF,
//! directives, multi-line flow collections, explicit indentation indicators, keys that are not simple
//! strings, scalar continuation lines that could be read as structure, flow-style
//! `metadata`/`labels`/`annotations`, our own keys already present, anything malformed) makes
//! [`try_process`] return `None`, and the caller
//! runs the full parser, which accepts or refuses the unit exactly as before. A differential test
//! (`tests.rs`) checks that whenever this accepts a unit, the full path accepts it too and both
//! outputs read back as the same objects.
//!
//! Layout: [`scan`] walks a document's block structure (with [`lexical`] for lines and scalars and
//! [`flow`] for one-line flow collections) and finds where `metadata` and its `labels`/`annotations`
//! are; [`splice`] writes the file as ranges of the unit plus the inserted lines.

mod flow;
mod lexical;
mod scan;
mod splice;
#[cfg(test)]
mod tests;

use super::manifest::{ProcessedUnit, Spliced, Stamp};
use super::yaml::printable;
use scan::{DocInfo, DocScan};
use splice::{StampLines, push_extra, splice};

/// Deeper nesting goes to the full parser (serde_yaml_ng stops at 128).
const MAX_DEPTH: usize = 100;

/// Stamps `data` textually, or `None` when the full parser must decide.
pub fn try_process(data: &[u8], stamp: &Stamp<'_>) -> Option<ProcessedUnit> {
    let text = std::str::from_utf8(data).ok()?;
    if !characters_ok(text) {
        return None;
    }
    let lines = StampLines::new(stamp);
    let has_tabs = memchr::memchr(b'\t', data).is_some();
    // Scan every document first, so the output is allocated once at its exact size.
    let mut documents: Vec<(usize, usize, DocInfo<'_>)> = Vec::new();
    let mut pos = 0;
    let mut scan = DocScan::new(text, has_tabs);
    loop {
        scan.reset();
        let (end, next) = scan.run(pos)?;
        if let Some(info) = scan.finish()? {
            if !text[pos..end].ends_with('\n') && scan.block_scalar_at_end {
                // A final newline would change the block scalar's value.
                return None;
            }
            documents.push((pos, end, info));
        }
        match next {
            Some(n) => pos = n,
            None => break,
        }
    }
    let extra_size: usize = documents
        .iter()
        .map(|(_, _, info)| 5 + lines.size(info))
        .sum();
    let mut text = Spliced {
        extra: Vec::with_capacity(extra_size),
        parts: Vec::with_capacity(6 * documents.len()),
    };
    let mut objects = Vec::with_capacity(documents.len());
    for (start, end, info) in &documents {
        if !objects.is_empty() {
            push_extra(&mut text, |out| out.extend_from_slice(b"---\n"));
        }
        objects.push(info.key()?);
        splice(data, *start, *end, info, &lines, &mut text);
    }
    debug_assert!(text.extra.len() <= extra_size);
    Some(ProcessedUnit { text, objects })
}

/// Only characters libyaml takes as they are: no control characters but tab and line feed (so no
/// CRLF), nothing it would normalise as a line break (NEL, LS, PS) and no BOM.
fn characters_ok(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes()
            .all(|b| (b >= 0x20 && b != 0x7F) || b == b'\n' || b == b'\t')
    } else {
        text.chars().all(|c| c == '\n' || c == '\t' || printable(c))
    }
}
