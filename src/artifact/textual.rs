//! Provenance stamped into the unit's own text, for the common shape of Kubernetes YAML.
//!
//! Why: parsing every object into a tree and writing it out again was about 70 % of `pack`'s CPU, while
//! almost every unit is plain block-style YAML of the kind `kubectl` and ConfigHub write. For those,
//! a strict line scanner checks everything the full path checks (each document a mapping with string
//! `apiVersion`, `kind` and `metadata.name`; no repeated keys; valid indentation and scalars) and the
//! provenance lines are inserted under `metadata`, leaving every other byte as the unit wrote it.
//!
//! It never reports an error. Whatever it is not certain about (anchors, aliases, tags, tabs, CRLF,
//! directives, multi-line plain or quoted scalars, multi-line flow collections, explicit indentation
//! indicators, keys that are not simple strings, flow-style `metadata`/`labels`/`annotations`, our
//! own keys already present, anything malformed) makes [`try_process`] return `None`, and the caller
//! runs the full parser, which accepts or refuses the unit exactly as before. A differential test
//! (`tests` below) checks that whenever this accepts a unit, the full path accepts it too and both
//! outputs read back as the same objects.

use super::manifest::{
    ANNOTATION_REVISION_NUM, ANNOTATION_SPACE_ID, ANNOTATION_SPACE_NAME, LABEL_UNIT_SLUG,
    ObjectKey, Part, ProcessedUnit, Spliced, Stamp,
};
use super::yaml::{RESERVED, emit_double_quoted, plain_ok, printable};

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

/// Appends bytes written by `write` to `extra` and a part pointing at them.
fn push_extra(text: &mut Spliced, write: impl FnOnce(&mut Vec<u8>)) {
    let from = text.extra.len();
    write(&mut text.extra);
    text.parts.push(Part::Extra(from, text.extra.len()));
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

/// The provenance values, formatted once per unit.
struct StampLines {
    slug: String,
    space_name: String,
    space_id: String,
    revision: String,
}

impl StampLines {
    fn new(stamp: &Stamp<'_>) -> Self {
        let scalar = |s: &str| {
            if plain_ok(s) {
                s.to_string()
            } else {
                let mut out = String::with_capacity(s.len() + 2);
                emit_double_quoted(s, &mut out);
                out
            }
        };
        StampLines {
            slug: scalar(stamp.unit_slug),
            space_name: scalar(stamp.space_name),
            space_id: scalar(stamp.space_id),
            revision: scalar(&stamp.revision_num.to_string()),
        }
    }

    /// Bytes [`emit`] adds to one document (at most: indentation is bounded by the line it follows).
    fn size(&self, info: &DocInfo<'_>) -> usize {
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

    fn labels(&self, indent: usize, out: &mut Vec<u8>) {
        entry(out, indent, LABEL_UNIT_SLUG, &self.slug);
    }

    fn annotations(&self, indent: usize, out: &mut Vec<u8>) {
        entry(out, indent, ANNOTATION_SPACE_NAME, &self.space_name);
        entry(out, indent, ANNOTATION_SPACE_ID, &self.space_id);
        entry(out, indent, ANNOTATION_REVISION_NUM, &self.revision);
    }
}

fn entry(out: &mut Vec<u8>, indent: usize, key: &str, value: &str) {
    spaces(out, indent);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

fn spaces(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, b' ');
}

/// Splices one document, `data[base..end]`: its own bytes, with the provenance lines inserted where
/// [`DocInfo`] says.
fn splice(
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

/// What a mapping is, for the keys the build reads or writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Root,
    Metadata,
    Labels,
    Annotations,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Map,
    Seq,
}

/// An open block collection.
struct Level {
    kind: Kind,
    /// Column of its keys or dashes.
    indent: usize,
    /// Where its keys start in [`DocScan::keys`].
    keys_from: usize,
    role: Role,
}

/// A `key:` or `-` whose value starts on a later line (or is null).
struct Pending {
    role: Role,
    owner: Kind,
    owner_indent: usize,
    /// Offset just past the line that opened it: where a first child line can be inserted.
    after_line: usize,
}

/// The parts of one object the build needs. Offsets are into the whole unit text.
#[derive(Default)]
struct DocInfo<'a> {
    api_version: Option<&'a str>,
    kind: Option<&'a str>,
    /// (insert offset, indentation of its keys)
    metadata: (usize, usize),
    name: Option<&'a str>,
    namespace: Option<&'a str>,
    labels: Option<(usize, usize)>,
    annotations: Option<(usize, usize)>,
}

impl DocInfo<'_> {
    fn key(&self) -> Option<ObjectKey> {
        let api_version = self.api_version?;
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Some(ObjectKey {
            group: group.to_string(),
            kind: self.kind?.to_string(),
            namespace: self.namespace.unwrap_or("").to_string(),
            name: self.name?.to_string(),
        })
    }
}

/// One line without its newline, and where the next one starts.
struct Line<'a> {
    text: &'a str,
    next: usize,
}

fn line_at(text: &str, pos: usize) -> Line<'_> {
    let rest = &text[pos..];
    match memchr::memchr(b'\n', rest.as_bytes()) {
        Some(i) => Line {
            text: &rest[..i],
            next: pos + i + 1,
        },
        None => Line {
            text: rest,
            next: text.len(),
        },
    }
}

fn leading_spaces(s: &str) -> usize {
    s.bytes().take_while(|&b| b == b' ').count()
}

/// `-` followed by a space or the end of the line: a block sequence entry.
fn is_seq_item(content: &str) -> bool {
    let b = content.as_bytes();
    b.first() == Some(&b'-') && (b.len() == 1 || b[1] == b' ')
}

/// Nothing but spaces and maybe a comment (which needs a space before it).
fn is_blank_or_comment(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

/// A key the fast path can compare as a string: letters, digits and `._-/`, starting with a letter or
/// `_`, and not a word some reader resolves to a boolean or null.
fn key_ok(k: &str) -> bool {
    let b = k.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/'))
        && !(k.len() <= 5 && RESERVED.iter().any(|r| r.eq_ignore_ascii_case(k)))
}

/// A one-line quoted scalar at the start of `s`: (decoded value when it has no escapes, bytes used).
fn quoted(s: &str) -> Option<(Option<&str>, usize)> {
    let b = s.as_bytes();
    let q = *b.first()?;
    let mut i = 1;
    let mut escapes = false;
    while i < b.len() {
        let c = b[i];
        if q == b'\'' && c == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                escapes = true;
                i += 2;
                continue;
            }
            return Some(((!escapes).then(|| &s[1..i]), i + 1));
        }
        if q == b'"' {
            match c {
                b'"' => return Some(((!escapes).then(|| &s[1..i]), i + 1)),
                b'\\' => {
                    escapes = true;
                    i += 1 + escape_len(&b[i + 1..])?;
                    continue;
                }
                _ => {}
            }
        }
        i += 1;
    }
    // Not closed on this line: a multi-line scalar.
    None
}

/// Length of a valid double-quoted escape after the backslash; `None` for anything else (including a
/// backslash at the end of the line, which continues the scalar on the next line).
fn escape_len(b: &[u8]) -> Option<usize> {
    let hex =
        |n: usize| (b.len() > n && b[1..=n].iter().all(u8::is_ascii_hexdigit)).then_some(n + 1);
    match b.first()? {
        b'0' | b'a' | b'b' | b't' | b'n' | b'v' | b'f' | b'r' | b'e' | b' ' | b'"' | b'/'
        | b'\\' | b'N' | b'_' | b'L' | b'P' => Some(1),
        b'x' => hex(2),
        b'u' => hex(4),
        b'U' => hex(8),
        _ => None,
    }
}

/// Where a block-context plain scalar starting at `s` may begin: not an indicator.
fn plain_start_ok(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        None => false,
        Some(b'-' | b'?' | b':') => b.get(1).is_some_and(|&c| c != b' '),
        Some(
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
            | b'"' | b'%' | b'@' | b'`' | b' ',
        ) => false,
        Some(_) => true,
    }
}

/// A mapping key at the start of `content`: (key, bytes up to and including the `:`), when `content`
/// is a `key: ...` entry whose key the fast path can compare as a string.
fn mapping_key(content: &str) -> Option<(&str, usize)> {
    let b = content.as_bytes();
    let (key, used) = match b.first()? {
        b'"' | b'\'' => {
            let (key, used) = quoted(content)?;
            (key?, used)
        }
        _ => {
            let colon = memchr::memchr(b':', b)?;
            (&content[..colon], colon)
        }
    };
    let after = b.get(used + 1);
    if b.get(used) != Some(&b':') || !(after.is_none() || after == Some(&b' ')) {
        return None;
    }
    let quoted_key = matches!(b[0], b'"' | b'\'');
    if !(key_ok(key) || (quoted_key && !key.is_empty() && key != "<<" && !key.contains('\\'))) {
        return None;
    }
    Some((key, used + 1))
}

/// Whether `content` (at a node's start, not after `key:`) is a `key: ...` entry rather than a scalar.
fn looks_like_key(content: &str) -> bool {
    let b = content.as_bytes();
    match b.first() {
        Some(b'"' | b'\'') => quoted(content).is_some_and(|(_, used)| b.get(used) == Some(&b':')),
        Some(b'[' | b'{') => false,
        _ => {
            // A `:` followed by a space or the end, before any comment.
            let end = comment_start(b).unwrap_or(b.len());
            b[..end]
                .iter()
                .enumerate()
                .any(|(i, &c)| c == b':' && (i + 1 == end || b[i + 1] == b' '))
        }
    }
}

/// Index of ` #` (a comment) in a plain-scalar line, if any.
fn comment_start(b: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'#', b)
        .find(|&i| i > 0 && b[i - 1] == b' ')
        .map(|i| i - 1)
}

/// The result of reading an inline value.
enum Inline<'a> {
    /// A scalar: its value when it is certainly a string.
    Scalar(Option<&'a str>),
    /// A flow collection or a block scalar.
    Other,
}

/// Scans one document. `None` from any method means "leave this unit to the full parser".
struct DocScan<'a> {
    text: &'a str,
    has_tabs: bool,
    levels: Vec<Level>,
    keys: Vec<&'a str>,
    pending: Option<Pending>,
    started: bool,
    info: DocInfo<'a>,
    saw_metadata: bool,
    block_scalar_at_end: bool,
}

impl<'a> DocScan<'a> {
    fn new(text: &'a str, has_tabs: bool) -> Self {
        DocScan {
            text,
            has_tabs,
            levels: Vec::with_capacity(16),
            keys: Vec::with_capacity(64),
            pending: None,
            started: false,
            info: DocInfo::default(),
            saw_metadata: false,
            block_scalar_at_end: false,
        }
    }

    /// Ready for the next document (keeps the allocations).
    fn reset(&mut self) {
        self.levels.clear();
        self.keys.clear();
        self.pending = None;
        self.started = false;
        self.info = DocInfo::default();
        self.saw_metadata = false;
        self.block_scalar_at_end = false;
    }

    /// Scans from `pos` to the end of the document: (its end, where the next document starts).
    fn run(&mut self, mut pos: usize) -> Option<(usize, Option<usize>)> {
        let len = self.text.len();
        while pos < len {
            let line = line_at(self.text, pos);
            let t = line.text;
            if let Some(rest) = t.strip_prefix("---") {
                if !is_blank_or_comment(rest) && !rest.is_empty() {
                    return None;
                }
                return Some((pos, Some(line.next)));
            }
            if t.starts_with("...") || t.starts_with('%') {
                return None;
            }
            let ind = leading_spaces(t);
            let content = &t[ind..];
            if content.is_empty() || content.starts_with('#') {
                pos = line.next;
                continue;
            }
            if self.has_tabs && content.contains('\t') {
                return None;
            }
            self.block_scalar_at_end = false;
            pos = self.structural(content, ind, line.next)?;
        }
        Some((len, None))
    }

    /// One line that holds structure (not blank, not a comment); returns where the next line starts.
    fn structural(&mut self, content: &'a str, ind: usize, next: usize) -> Option<usize> {
        let item = is_seq_item(content);
        if let Some(p) = self.pending.take() {
            if ind > p.owner_indent || (ind == p.owner_indent && p.owner == Kind::Map && item) {
                return self.open(content, ind, next, p.role, p.after_line);
            }
            self.null_value(p.role)?;
        }
        if !self.started {
            // The root: a block mapping starting at column 0.
            if ind != 0 || item {
                return None;
            }
            self.started = true;
            return self.open(content, 0, next, Role::Root, 0);
        }
        while let Some(top) = self.levels.last() {
            let indentless_seq_ends = top.kind == Kind::Seq
                && top.indent == ind
                && !item
                && self.levels.len() >= 2
                && self.levels[self.levels.len() - 2].indent == ind;
            if top.indent > ind || indentless_seq_ends {
                self.pop()?;
            } else {
                break;
            }
        }
        let top = self.levels.last()?;
        if top.indent != ind {
            return None;
        }
        match top.kind {
            Kind::Map => self.map_entry(content, ind, next),
            Kind::Seq if item => self.seq_entry(content, ind, next),
            Kind::Seq => None,
        }
    }

    /// A block collection whose first line is `content` at column `col`.
    fn open(
        &mut self,
        content: &'a str,
        col: usize,
        next: usize,
        role: Role,
        after_line: usize,
    ) -> Option<usize> {
        if self.levels.len() >= MAX_DEPTH {
            return None;
        }
        if is_seq_item(content) {
            if role != Role::Other {
                return None;
            }
            self.push(Kind::Seq, col, role);
            return self.seq_entry(content, col, next);
        }
        match role {
            Role::Metadata => {
                self.info.metadata = (after_line, col);
                self.saw_metadata = true;
            }
            Role::Labels => self.info.labels = Some((after_line, col)),
            Role::Annotations => self.info.annotations = Some((after_line, col)),
            Role::Root | Role::Other => {}
        }
        self.push(Kind::Map, col, role);
        self.map_entry(content, col, next)
    }

    fn push(&mut self, kind: Kind, indent: usize, role: Role) {
        self.levels.push(Level {
            kind,
            indent,
            keys_from: self.keys.len(),
            role,
        });
    }

    /// Closes the innermost collection, refusing repeated keys.
    fn pop(&mut self) -> Option<()> {
        let level = self.levels.pop()?;
        if level.kind == Kind::Map {
            let keys = &mut self.keys[level.keys_from..];
            if has_duplicates(keys) {
                return None;
            }
            self.keys.truncate(level.keys_from);
        }
        Some(())
    }

    /// A pending value that turned out to be null: fine for ordinary keys, not for the ones we need.
    fn null_value(&mut self, role: Role) -> Option<()> {
        match role {
            Role::Other => Some(()),
            _ => None,
        }
    }

    /// `key: value` (or `key:`) at column `col`, inside the innermost mapping.
    fn map_entry(&mut self, content: &'a str, col: usize, next: usize) -> Option<usize> {
        let (key, used) = mapping_key(content)?;
        let role = self.levels.last()?.role;
        self.keys.push(key);
        let child = match (role, key) {
            (Role::Root, "metadata") => Role::Metadata,
            (Role::Metadata, "labels") => Role::Labels,
            (Role::Metadata, "annotations") => Role::Annotations,
            (Role::Labels, LABEL_UNIT_SLUG) => return None,
            (
                Role::Annotations,
                ANNOTATION_SPACE_NAME | ANNOTATION_SPACE_ID | ANNOTATION_REVISION_NUM,
            ) => return None,
            _ => Role::Other,
        };
        let wants_string = matches!(
            (role, key),
            (Role::Root, "apiVersion" | "kind") | (Role::Metadata, "name" | "namespace")
        );
        let after = &content[used..];
        if is_blank_or_comment(after) {
            if wants_string {
                return None;
            }
            self.pending = Some(Pending {
                role: child,
                owner: Kind::Map,
                owner_indent: self.levels.last()?.indent,
                after_line: next,
            });
            return Some(next);
        }
        if child != Role::Other {
            // metadata, labels or annotations in flow style (or a scalar): the full path decides.
            return None;
        }
        let (value, next) = self.inline_value(&after[leading_spaces(after)..], col, next)?;
        if wants_string {
            let Inline::Scalar(Some(s)) = value else {
                return None;
            };
            if s.is_empty() {
                return None;
            }
            match key {
                "apiVersion" => self.info.api_version = Some(s),
                "kind" => self.info.kind = Some(s),
                "name" => self.info.name = Some(s),
                _ => self.info.namespace = Some(s),
            }
        }
        Some(next)
    }

    /// `- ...` with the dash at column `dash`, inside the innermost sequence.
    fn seq_entry(&mut self, content: &'a str, dash: usize, next: usize) -> Option<usize> {
        let after = &content[1..];
        if is_blank_or_comment(after) {
            self.pending = Some(Pending {
                role: Role::Other,
                owner: Kind::Seq,
                owner_indent: dash,
                after_line: next,
            });
            return Some(next);
        }
        let gap = leading_spaces(after);
        let col = dash + 1 + gap;
        let item = &after[gap..];
        if self.levels.len() >= MAX_DEPTH {
            return None;
        }
        if is_seq_item(item) {
            self.push(Kind::Seq, col, Role::Other);
            return self.seq_entry(item, col, next);
        }
        if looks_like_key(item) {
            self.push(Kind::Map, col, Role::Other);
            return self.map_entry(item, col, next);
        }
        self.inline_value(item, dash, next).map(|(_, n)| n)
    }

    /// A value that starts on this line at column `col`, in a collection whose entries are at
    /// `owner_indent`. Returns the value and where the next line starts (after a block scalar's body).
    fn inline_value(
        &mut self,
        v: &'a str,
        owner_indent: usize,
        next: usize,
    ) -> Option<(Inline<'a>, usize)> {
        let b = v.as_bytes();
        match *b.first()? {
            b'|' | b'>' => {
                let end = self.block_scalar(&v[1..], owner_indent, next)?;
                Some((Inline::Other, end))
            }
            b'"' | b'\'' => {
                let (value, used) = quoted(v)?;
                if !is_blank_or_comment(&v[used..]) {
                    return None;
                }
                Some((Inline::Scalar(value), next))
            }
            b'[' | b'{' => {
                let used = flow(v, 0, self.levels.len())?;
                if !is_blank_or_comment(&v[used..]) {
                    return None;
                }
                Some((Inline::Other, next))
            }
            _ => {
                if !plain_start_ok(v) {
                    return None;
                }
                let end = comment_start(b).unwrap_or(b.len());
                let value = v[..end].trim_end_matches(' ');
                let vb = value.as_bytes();
                // `a: b: c` is an error, and a trailing `:` would make this a key.
                let key_like =
                    memchr::memchr_iter(b':', vb).any(|i| i + 1 == vb.len() || vb[i + 1] == b' ');
                if key_like {
                    return None;
                }
                Some((Inline::Scalar(plain_ok(value).then_some(value)), next))
            }
        }
    }

    /// A literal or folded block scalar whose header follows the indicator; its body lines must be
    /// indented more than `owner_indent`. Returns where the next line after the body starts.
    fn block_scalar(&mut self, header: &str, owner_indent: usize, mut pos: usize) -> Option<usize> {
        let h = header.as_bytes();
        let chomp = usize::from(matches!(h.first(), Some(b'+' | b'-')));
        if !is_blank_or_comment(&header[chomp..]) && !header[chomp..].is_empty() {
            // Explicit indentation indicators and anything else unusual.
            return None;
        }
        let len = self.text.len();
        let mut body_indent: Option<usize> = None;
        let mut blank_spaces = 0;
        while pos < len {
            let line = line_at(self.text, pos);
            let sp = leading_spaces(line.text);
            let rest = &line.text[sp..];
            if rest.is_empty() {
                if body_indent.is_none() {
                    blank_spaces = blank_spaces.max(sp);
                }
                pos = line.next;
                continue;
            }
            match body_indent {
                None => {
                    if sp <= owner_indent {
                        // An empty scalar; leading lines of spaces are left to the full parser.
                        return (blank_spaces == 0).then_some(pos);
                    }
                    if rest.starts_with('\t') || blank_spaces > sp {
                        return None;
                    }
                    body_indent = Some(sp);
                }
                Some(indent) if sp < indent => return Some(pos),
                Some(_) => {}
            }
            pos = line.next;
        }
        self.block_scalar_at_end = true;
        Some(len)
    }

    /// Ends the document: `Some(None)` when it held nothing, `Some(Some(info))` for an object.
    fn finish(&mut self) -> Option<Option<DocInfo<'a>>> {
        if let Some(p) = self.pending.take() {
            self.null_value(p.role)?;
        }
        while !self.levels.is_empty() {
            self.pop()?;
        }
        if !self.started {
            return Some(None);
        }
        let info = std::mem::take(&mut self.info);
        if info.api_version.is_none()
            || info.kind.is_none()
            || !self.saw_metadata
            || info.name.is_none()
        {
            return None;
        }
        Some(Some(info))
    }
}

/// Whether two keys are equal. Small mappings (the usual case) compare pairwise; large ones sort, so a
/// hostile mapping with a million keys costs n log n, not n².
fn has_duplicates<K: Ord + ?Sized>(keys: &mut [&K]) -> bool {
    if keys.len() <= 16 {
        return (1..keys.len()).any(|i| keys[..i].contains(&keys[i]));
    }
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

/// A one-line flow collection starting at byte `i` of `s` (`[` or `{`): returns the index after its
/// close. Items are quoted scalars, nested collections or simple plain scalars; mapping entries are
/// `key: value` with string keys, checked for repeats. Every index handed on follows an ASCII byte, so
/// it is a char boundary.
fn flow(s: &str, mut i: usize, depth: usize) -> Option<usize> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let b = s.as_bytes();
    let open = b[i];
    let close = if open == b'[' { b']' } else { b'}' };
    let mut keys: Vec<&str> = Vec::new();
    i += 1;
    let skip = |mut i: usize| {
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        i
    };
    i = skip(i);
    if b.get(i) == Some(&close) {
        return Some(i + 1);
    }
    loop {
        if open == b'{' {
            let (key, after) = flow_key(s, i)?;
            keys.push(key);
            i = skip(after);
        }
        i = flow_item(s, i, depth)?;
        i = skip(i);
        match b.get(i) {
            Some(&c) if c == close => {
                return (!has_duplicates(&mut keys)).then_some(i + 1);
            }
            Some(b',') => {
                i = skip(i + 1);
                if b.get(i) == Some(&close) {
                    // A trailing comma: valid, but leave it to the full parser.
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// `key: ` inside a flow mapping at byte `i` of `line`: (the key, index after `: `).
fn flow_key(line: &str, i: usize) -> Option<(&str, usize)> {
    let s = line.get(i..)?;
    let (key, used) = match s.as_bytes().first()? {
        b'"' | b'\'' => {
            let (key, used) = quoted(s)?;
            let key = key?;
            (key, used)
        }
        _ => {
            let end = s.find(':')?;
            let key = &s[..end];
            if !key_ok(key) {
                return None;
            }
            (key, end)
        }
    };
    if key.is_empty() || key == "<<" || s.as_bytes().get(used) != Some(&b':') {
        return None;
    }
    if s.as_bytes().get(used + 1) != Some(&b' ') {
        return None;
    }
    Some((key, i + used + 2))
}

/// One flow item at byte `i` of `s`: returns the index after it.
fn flow_item(s: &str, i: usize, depth: usize) -> Option<usize> {
    let b = s.as_bytes();
    match *b.get(i)? {
        b'[' | b'{' => flow(s, i, depth + 1),
        b'"' | b'\'' => {
            let (_, used) = quoted(s.get(i..)?)?;
            Some(i + used)
        }
        first => {
            let safe_dash = first == b'-'
                && b.get(i + 1)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'-');
            if !(first.is_ascii_alphanumeric() || safe_dash || matches!(first, b'_' | b'/' | b'.'))
            {
                return None;
            }
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b',' | b']' | b'}' => break,
                    b'[' | b'{' | b'#' | b':' | b'\t' => return None,
                    _ => j += 1,
                }
            }
            if j == b.len() {
                // Not closed on this line.
                return None;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::manifest::parse_and_stamp;
    use crate::artifact::manifest::test_support::{parse_back as documents, stamp};

    /// When the fast path takes `data`, the full parser must take it too, find the same objects, and
    /// its output must read back as the same documents. Returns whether the fast path took it.
    fn agrees(data: &[u8]) -> bool {
        let Some(fast) = try_process(data, &stamp()) else {
            return false;
        };
        let shown = String::from_utf8_lossy(data);
        let full = parse_and_stamp(data, &stamp()).unwrap_or_else(|e| {
            panic!("fast path took what the full parser refuses ({e}):\n{shown}")
        });
        assert_eq!(fast.objects, full.objects, "{shown}");
        assert_eq!(
            documents(&fast.text.to_vec(data)),
            documents(&full.text.to_vec(data)),
            "input:\n{shown}\nfast:\n{}\nfull:\n{}",
            String::from_utf8_lossy(&fast.text.to_vec(data)),
            String::from_utf8_lossy(&full.text.to_vec(data))
        );
        true
    }

    /// Shapes Kubernetes tools write; every one must take the fast path.
    const COMMON: &[&str] = &[
        // kubectl / ConfigHub style: indentless sequences, labels present.
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\n  labels:\n    app: web\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n        args:\n        - --port=8080\n        - -v\n        env:\n        - name: A\n          value: \"1\"\n        ports:\n        - containerPort: 80\n          name: http\n",
        // Indented sequences, four-space indentation, comments everywhere, annotations present.
        "# leading comment\napiVersion: v1   # trailing\nkind: ConfigMap\nmetadata:\n    name: 'cfg'\n    annotations:\n        note: \"a: b # not a comment\"\n        other: it's fine\n    # between keys\ndata:\n    list:\n        - a\n        -   b\n        - c: d\n          e: f\n",
        // Block scalars of every chomping, nested compact sequences, flow collections, empty values.
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: scripts\ndata:\n  run.sh: |\n    #!/bin/sh\n    set -eu\n\n      indented: line\n    echo \"done\" # still text\n  keep: |+\n    kept\n\n  strip: >-\n    folded\n    text\n  empty: \"\"\n  nothing:\n  none: ~\n  flow: {a: 1, \"b\": [x, 'y', \"z\"], c: {}}\n  seq: [1, 2.5, -3, true, null, --flag]\n  nested:\n  - - a\n    - b\n  - -\n    - c\nbinaryData: {}\n",
        // Several documents, empty ones, a last line without newline.
        "---\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n  labels: \n    a: b\nspec:\n  ports:\n  - port: 80\n---\n---\napiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: \"quoted-name\"\n  namespace: ns\nspec:\n  \"quoted key\": 1\n  'single': 2\n  url: http://example.com:8080/path?q=1#frag\n  time: 12:30:00\n  unicode: ünï 🚀\n  end: true",
        // A mapping with more than 16 keys (repeats are found by sorting), a kept block before `---`,
        // deep nesting.
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  annotations:\n    a: |+\n      kept\n\ndata:\n  k01: a\n  k02: b\n  k03: c\n  k04: d\n  k05: e\n  k06: f\n  k07: g\n  k08: h\n  k09: i\n  k10: j\n  k11: k\n  k12: l\n  k13: m\n  k14: n\n  k15: o\n  k16: p\n  k17: q\n  k18: r\n  tail: |+\n    kept\n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  a:\n    b:\n      c:\n      - d:\n          e:\n          - - f\n            - g: h\n",
        // A sequence item whose value starts on the next line; a key whose mapping is a sequence item.
        "apiVersion: v1\nkind: List\nmetadata:\n  name: l\nitems:\n-\n  a: 1\n- b:\n    c: 2\n-\n  - x\n",
    ];

    #[test]
    fn common_shapes_take_the_fast_path_and_agree_with_the_full_parser() {
        for src in COMMON {
            assert!(agrees(src.as_bytes()), "fell back:\n{src}");
        }
    }

    #[test]
    fn the_units_own_text_is_kept_and_stamps_go_under_metadata() {
        let src = "# header kept\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c   # why\n  labels:\n    app: c\ndata:\n  a: 'x'  # note\n";
        let out = try_process(src.as_bytes(), &stamp()).unwrap();
        let text = String::from_utf8(out.text.to_vec(src.as_bytes())).unwrap();
        assert_eq!(
            text,
            "# header kept\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n    confighub.com/SpaceName: prod\n    confighub.com/SpaceID: \"1111-2222\"\n    confighub.com/RevisionNum: \"7\"\n  name: c   # why\n  labels:\n    confighub.com/UnitSlug: web\n    app: c\ndata:\n  a: 'x'  # note\n"
        );
        assert_eq!(out.objects[0].to_string(), "ConfigMap c");
    }

    #[test]
    fn huge_mappings_are_checked_for_repeats_without_quadratic_work() {
        let head = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
        let keys: Vec<String> = (0..200_000).map(|i| format!("k{i}: v")).collect();
        let flow = format!("{head}data: {{{}}}\n", keys.join(", "));
        assert!(try_process(flow.as_bytes(), &stamp()).is_some());
        let repeated = format!("{head}data: {{{}, k7: w}}\n", keys.join(", "));
        assert!(try_process(repeated.as_bytes(), &stamp()).is_none());
        let block = format!("{head}data:\n  {}\n  k7: w\n", keys.join("\n  "));
        assert!(try_process(block.as_bytes(), &stamp()).is_none());
    }

    #[test]
    fn unusual_or_invalid_input_is_left_to_the_full_parser() {
        let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
        let cases: &[&str] = &[
            "a: &x 1\nb: *x\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: !!str c\n",
            "apiVersion: v1\nkind: A\nmetadata:\n\tname: c\n",
            "apiVersion: v1\r\nkind: A\r\nmetadata:\r\n  name: c\r\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: multi\n    line\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: \"multi\n    line\"\n",
            "apiVersion: v1\nkind: A\nmetadata: {name: c}\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  labels: {}\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  labels:\n    confighub.com/UnitSlug: x\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  annotations:\n    confighub.com/RevisionNum: \"1\"\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  labels:\n  annotations:\n    a: b\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: 1\n\"spec\": 2\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec:\n  a: 1\n  a: 2\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: {a: 1, a: 2}\n",
            "%YAML 1.2\n---\napiVersion: v1\nkind: A\nmetadata:\n  name: c\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n...\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: |2\n      x\n",
            "- a\n- b\n",
            "just text\n",
            "~\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: - a\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec:\n  a: 1\n   b: 2\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: [a, b, ]\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: 123\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: \"\"\n",
            "apiVersion: v1\nkind: true\nmetadata:\n  name: c\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  namespace: n\n",
            "kind: A\nmetadata:\n  name: c\n",
            "\u{feff}apiVersion: v1\nkind: A\nmetadata:\n  name: c\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  a: x\u{85}y\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: [a, b\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec: a: b\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\nspec:\n  \"a\\x\": 1\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n  labels:\n  - a\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\ndata:\n  s: |\n    end without newline",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n? complex\n: key\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\non: push\n",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: c\n<<: {a: 1}\n",
            "  apiVersion: v1\n  kind: A\n  metadata:\n    name: c\n",
        ];
        assert!(try_process(ok.as_bytes(), &stamp()).is_some());
        for src in cases {
            assert!(
                try_process(src.as_bytes(), &stamp()).is_none(),
                "fast path took:\n{src}"
            );
        }
    }

    /// Every YAML file under `dir` (recursively): (path, bytes).
    fn yaml_files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                yaml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && let Ok(bytes) = std::fs::read(&path)
            {
                out.push((path, bytes));
            }
        }
    }

    /// Real manifests: the project's own (CRD, RBAC, Deployment, demo units), plus any folder named by
    /// FAST_PATH_CORPUS (e.g. a Go module cache full of Kubernetes YAML) for a wider local check.
    #[test]
    fn real_manifests_agree_with_the_full_parser() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["crds", "config", "examples/demo"] {
            yaml_files(&root.join(dir), &mut files);
        }
        let own = files.len();
        if let Ok(extra) = std::env::var("FAST_PATH_CORPUS") {
            yaml_files(std::path::Path::new(&extra), &mut files);
        }
        let mut taken = Vec::new();
        let mut objects = 0;
        for (path, bytes) in &files {
            if bytes.len() > crate::artifact::MAX_UNIT_BYTES {
                continue;
            }
            objects += usize::from(parse_and_stamp(bytes, &stamp()).is_ok());
            if agrees(bytes) {
                taken.push(path.clone());
            }
        }
        eprintln!(
            "fast path took {} of the {objects} files that are valid units ({} files)",
            taken.len(),
            files.len()
        );
        assert!(own >= 5, "the project's manifests were not found");
        let demo = root.join("examples/demo/units");
        assert!(
            files
                .iter()
                .filter(|(p, _)| p.starts_with(&demo))
                .all(|(p, _)| taken.contains(p)),
            "a demo unit fell back to the full parser"
        );
    }

    /// Tiny deterministic generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// One random edit of the kind that breaks YAML: a significant character inserted or removed, a line
    /// re-indented, duplicated or dropped.
    fn mutate(src: &str, rng: &mut Rng) -> String {
        const INSERTS: &[&str] = &[
            " ",
            "  ",
            ":",
            ": ",
            "-",
            "- ",
            "#",
            " #",
            "'",
            "\"",
            "|",
            ">",
            "{",
            "}",
            "[",
            "]",
            ",",
            "&a ",
            "*a",
            "!",
            "\n",
            "\t",
            "a",
            "0",
            "?",
            "%",
            "@",
            "\\",
            "---\n",
            "é",
            "~",
            "name: x\n",
            "labels:\n",
            "  ",
        ];
        let mut lines: Vec<String> = src.split_inclusive('\n').map(str::to_string).collect();
        if lines.is_empty() {
            return src.to_string();
        }
        let i = rng.below(lines.len());
        match rng.below(6) {
            0 | 1 => {
                let line = &mut lines[i];
                let at = rng.below(line.len() + 1);
                if line.is_char_boundary(at) {
                    line.insert_str(at, INSERTS[rng.below(INSERTS.len())]);
                }
            }
            2 => {
                let line = &mut lines[i];
                if !line.is_empty() {
                    let at = rng.below(line.len());
                    if line.is_char_boundary(at) && line.is_char_boundary(at + 1) {
                        line.remove(at);
                    }
                }
            }
            3 => {
                let line = &mut lines[i];
                if rng.below(2) == 0 {
                    line.insert_str(0, if rng.below(2) == 0 { " " } else { "  " });
                } else if line.starts_with(' ') {
                    line.remove(0);
                }
            }
            4 => {
                let copy = lines[i].clone();
                lines.insert(rng.below(lines.len() + 1), copy);
            }
            _ => {
                lines.remove(i);
            }
        }
        lines.concat()
    }

    #[test]
    fn whatever_the_fast_path_takes_the_full_parser_reads_the_same() {
        let seed = std::env::var("FAST_PATH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        let mut rng = Rng(seed);
        let mut taken = 0;
        let mut total = 0;
        // A longer local search: FAST_PATH_MUTANTS=200000 FAST_PATH_SEED=<n> cargo test --release ...
        let rounds: usize = std::env::var("FAST_PATH_MUTANTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400);
        for src in COMMON {
            let mut current = src.to_string();
            for round in 0..rounds {
                // Mostly single edits of the original, sometimes an accumulation of edits.
                if round % 4 == 0 {
                    current = src.to_string();
                }
                current = mutate(&current, &mut rng);
                total += 1;
                if agrees(current.as_bytes()) {
                    taken += 1;
                }
            }
        }
        // The check above only means something if many mutants still take the fast path.
        assert!(
            taken * 10 > total,
            "only {taken} of {total} mutants took the fast path"
        );
    }
}
