//! Writing a unit's file: its own bytes, with the provenance lines inserted where the scan says.

use super::scan::DocInfo;
use crate::artifact::manifest::{
    ANNOTATION_REVISION_NUM, ANNOTATION_SPACE_ID, ANNOTATION_SPACE_NAME, LABEL_UNIT_SLUG, Part,
    Spliced, Stamp,
};
use crate::artifact::yaml::scalar;

/// Appends bytes written by `write` to `extra` and a part pointing at them.
pub(super) fn push_extra(text: &mut Spliced, write: impl FnOnce(&mut Vec<u8>)) {
    let from = text.extra.len();
    write(&mut text.extra);
    text.parts.push(Part::Extra(from, text.extra.len()));
}

/// The provenance values, formatted once per unit.
pub(super) struct StampLines {
    pub(super) slug: String,
    pub(super) space_name: String,
    pub(super) space_id: String,
    pub(super) revision: String,
}

impl StampLines {
    pub(super) fn new(stamp: &Stamp<'_>) -> Self {
        StampLines {
            slug: scalar(stamp.unit_slug),
            space_name: scalar(stamp.space_name),
            space_id: scalar(stamp.space_id),
            revision: scalar(&stamp.revision_num.to_string()),
        }
    }

    /// Bytes [`emit`] adds to one document (at most: indentation is bounded by the line it follows).
    pub(super) fn size(&self, info: &DocInfo<'_>) -> usize {
        let (_, md_indent) = info.metadata;
        let line = |indent: usize, key: &str, value: &str| indent + key.len() + 2 + value.len() + 1;
        let labels_indent = info.labels.map_or(md_indent + 2, |(_, i)| i);
        let annotations_indent = info.annotations.map_or(md_indent + 2, |(_, i)| i);
        let mut n = line(labels_indent, LABEL_UNIT_SLUG, &self.slug)
            + line(annotations_indent, ANNOTATION_SPACE_NAME, &self.space_name)
            + line(annotations_indent, ANNOTATION_SPACE_ID, &self.space_id)
            + line(annotations_indent, ANNOTATION_REVISION_NUM, &self.revision);
        if info.labels.is_none() {
            n += md_indent + "labels:\n".len();
        }
        if info.annotations.is_none() {
            n += md_indent + "annotations:\n".len();
        }
        n
    }

    pub(super) fn labels(&self, indent: usize, out: &mut Vec<u8>) {
        entry(out, indent, LABEL_UNIT_SLUG, &self.slug);
    }

    pub(super) fn annotations(&self, indent: usize, out: &mut Vec<u8>) {
        entry(out, indent, ANNOTATION_SPACE_NAME, &self.space_name);
        entry(out, indent, ANNOTATION_SPACE_ID, &self.space_id);
        entry(out, indent, ANNOTATION_REVISION_NUM, &self.revision);
    }
}

pub(super) fn entry(out: &mut Vec<u8>, indent: usize, key: &str, value: &str) {
    spaces(out, indent);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

pub(super) fn spaces(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, b' ');
}

/// Splices one document, `data[base..end]`: its own bytes, with the provenance lines inserted where
/// [`DocInfo`] says.
pub(super) fn splice(
    data: &[u8],
    base: usize,
    end: usize,
    info: &DocInfo<'_>,
    lines: &StampLines,
    text: &mut Spliced,
) {
    let (md_at, md_indent) = info.metadata;
    // (offset in the unit, which insertion); labels before annotations at the same offset.
    let labels_at = info.labels.map_or(md_at, |(at, _)| at);
    let annotations_at = info.annotations.map_or(md_at, |(at, _)| at);
    let mut cuts = [(labels_at, 0u8), (annotations_at, 1u8)];
    cuts.sort();
    let mut from = base;
    for (at, which) in cuts {
        if at > from {
            text.parts.push(Part::Input(from, at));
        }
        from = at;
        push_extra(text, |out| match (which, info.labels, info.annotations) {
            (0, Some((_, indent)), _) => lines.labels(indent, out),
            (0, None, _) => {
                spaces(out, md_indent);
                out.extend_from_slice(b"labels:\n");
                lines.labels(md_indent + 2, out);
            }
            (_, _, Some((_, indent))) => lines.annotations(indent, out),
            (_, _, None) => {
                spaces(out, md_indent);
                out.extend_from_slice(b"annotations:\n");
                lines.annotations(md_indent + 2, out);
            }
        });
    }
    if end > from {
        text.parts.push(Part::Input(from, end));
    }
    if !data[base..end].ends_with(b"\n") {
        push_extra(text, |out| out.push(b'\n'));
    }
}
