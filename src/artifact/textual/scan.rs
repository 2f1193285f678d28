//! The line scanner: one document at a time, block structure, and the parts of the object the build
//! needs. Every method returns `None` for "leave this unit to the full parser".

use super::MAX_DEPTH;
use super::flow::flow;
use super::lexical::{
    comment_start, escape_len, has_duplicates, is_blank_or_comment, is_seq_item, leading_spaces,
    line_at, looks_like_key, mapping_key, plain_start_ok, quoted,
};
use crate::artifact::manifest::{
    ANNOTATION_REVISION_NUM, ANNOTATION_SPACE_ID, ANNOTATION_SPACE_NAME, LABEL_UNIT_SLUG, ObjectKey,
};
use crate::artifact::yaml::plain_ok;

/// What a mapping is, for the keys the build reads or writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Role {
    Root,
    Metadata,
    Labels,
    Annotations,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Map,
    Seq,
}

/// An open block collection.
pub(super) struct Level {
    pub(super) kind: Kind,
    /// Column of its keys or dashes.
    pub(super) indent: usize,
    /// Where its keys start in [`DocScan::keys`].
    pub(super) keys_from: usize,
    pub(super) role: Role,
}

/// A `key:` or `-` whose value starts on a later line (or is null).
pub(super) struct Pending {
    pub(super) role: Role,
    pub(super) owner: Kind,
    pub(super) owner_indent: usize,
    /// Offset just past the line that opened it: where a first child line can be inserted.
    pub(super) after_line: usize,
}

/// The parts of one object the build needs. Offsets are into the whole unit text.
#[derive(Default)]
pub(super) struct DocInfo<'a> {
    pub(super) api_version: Option<&'a str>,
    pub(super) kind: Option<&'a str>,
    /// (insert offset, indentation of its keys)
    pub(super) metadata: (usize, usize),
    pub(super) name: Option<&'a str>,
    pub(super) namespace: Option<&'a str>,
    pub(super) labels: Option<(usize, usize)>,
    pub(super) annotations: Option<(usize, usize)>,
}

impl DocInfo<'_> {
    pub(super) fn key(&self) -> Option<ObjectKey> {
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

/// The result of reading an inline value.
pub(super) enum Inline<'a> {
    /// A scalar: its value when it is certainly a string.
    Scalar(Option<&'a str>),
    /// A flow collection, a block scalar, or a scalar over several lines (never decoded).
    Other,
}

/// Scans one document. `None` from any method means "leave this unit to the full parser".
pub(super) struct DocScan<'a> {
    pub(super) text: &'a str,
    pub(super) has_tabs: bool,
    pub(super) levels: Vec<Level>,
    pub(super) keys: Vec<&'a str>,
    pub(super) pending: Option<Pending>,
    pub(super) started: bool,
    pub(super) info: DocInfo<'a>,
    pub(super) saw_metadata: bool,
    pub(super) block_scalar_at_end: bool,
}

impl<'a> DocScan<'a> {
    pub(super) fn new(text: &'a str, has_tabs: bool) -> Self {
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
    pub(super) fn reset(&mut self) {
        self.levels.clear();
        self.keys.clear();
        self.pending = None;
        self.started = false;
        self.info = DocInfo::default();
        self.saw_metadata = false;
        self.block_scalar_at_end = false;
    }

    /// Scans from `pos` to the end of the document: (its end, where the next document starts).
    pub(super) fn run(&mut self, mut pos: usize) -> Option<(usize, Option<usize>)> {
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
    pub(super) fn structural(
        &mut self,
        content: &'a str,
        ind: usize,
        next: usize,
    ) -> Option<usize> {
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
    pub(super) fn open(
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

    pub(super) fn push(&mut self, kind: Kind, indent: usize, role: Role) {
        self.levels.push(Level {
            kind,
            indent,
            keys_from: self.keys.len(),
            role,
        });
    }

    /// Closes the innermost collection, refusing repeated keys.
    pub(super) fn pop(&mut self) -> Option<()> {
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
    pub(super) fn null_value(&mut self, role: Role) -> Option<()> {
        match role {
            Role::Other => Some(()),
            _ => None,
        }
    }

    /// `key: value` (or `key:`) at column `col`, inside the innermost mapping.
    pub(super) fn map_entry(&mut self, content: &'a str, col: usize, next: usize) -> Option<usize> {
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
    pub(super) fn seq_entry(
        &mut self,
        content: &'a str,
        dash: usize,
        next: usize,
    ) -> Option<usize> {
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
    pub(super) fn inline_value(
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
                if let Some((value, used)) = quoted(v) {
                    if !is_blank_or_comment(&v[used..]) {
                        return None;
                    }
                    return Some((Inline::Scalar(value), next));
                }
                // Not closed on this line: a quoted scalar over several lines (or invalid).
                let start = v.as_ptr() as usize - self.text.as_ptr() as usize;
                let end = self.multi_line_quoted(start, owner_indent)?;
                let line = line_at(self.text, end);
                let rest = &self.text[end..end + line.text.len()];
                if !is_blank_or_comment(rest) {
                    return None;
                }
                Some((Inline::Other, line.next))
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
                // A comment ends a plain scalar; without one, more-indented lines continue it.
                if end == b.len()
                    && let Some(after) = self.plain_continuation(owner_indent, next)?
                {
                    return Some((Inline::Other, after));
                }
                Some((Inline::Scalar(plain_ok(value).then_some(value)), next))
            }
        }
    }

    /// Continuation lines of a plain scalar starting at `pos`: `Some(None)` when there are none,
    /// `Some(Some(end))` when lines up to `end` continue it. Continuations are indented more than
    /// `owner_indent` (as libyaml requires) and hold plain text only: anything that could be read as
    /// structure (`: `, a trailing `:`, a comment, an indicator first, a tab) leaves the unit to the
    /// full parser.
    fn plain_continuation(&self, owner_indent: usize, mut pos: usize) -> Option<Option<usize>> {
        let len = self.text.len();
        let mut end = None;
        while pos < len {
            let line = line_at(self.text, pos);
            let sp = leading_spaces(line.text);
            let content = &line.text[sp..];
            if content.is_empty() {
                pos = line.next;
                continue;
            }
            if sp <= owner_indent || content.starts_with('#') {
                break;
            }
            let b = content.as_bytes();
            let indicator = b"-?:,[]{}&*!|>'\"%@`".contains(&b[0]);
            let key_like =
                memchr::memchr_iter(b':', b).any(|i| i + 1 == b.len() || b[i + 1] == b' ');
            if indicator
                || key_like
                || comment_start(b).is_some()
                || b.ends_with(b" ")
                || (self.has_tabs && content.contains('\t'))
            {
                return None;
            }
            pos = line.next;
            end = Some(pos);
        }
        Some(end)
    }

    /// A quoted scalar over several lines, its opening quote at offset `start` of the unit: the offset
    /// just past its closing quote. Continuation lines (but blank ones) must be indented more than
    /// `owner_indent`; escapes are checked as on one line, plus `\` at a line end.
    fn multi_line_quoted(&self, start: usize, owner_indent: usize) -> Option<usize> {
        if self.has_tabs {
            return None;
        }
        let b = self.text.as_bytes();
        let q = b[start];
        let mut i = start + 1;
        while i < b.len() {
            match b[i] {
                b'\n' => {
                    let line = line_at(self.text, i + 1);
                    let sp = leading_spaces(line.text);
                    if sp < line.text.len() && sp <= owner_indent {
                        return None;
                    }
                    i += 1;
                }
                b'\'' if q == b'\'' => {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                    } else {
                        return Some(i + 1);
                    }
                }
                b'"' if q == b'"' => return Some(i + 1),
                b'\\' if q == b'"' => {
                    if b.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    } else {
                        i += 1 + escape_len(&b[i + 1..])?;
                    }
                }
                _ => i += 1,
            }
        }
        None
    }

    /// A literal or folded block scalar whose header follows the indicator; its body lines must be
    /// indented more than `owner_indent`. Returns where the next line after the body starts.
    pub(super) fn block_scalar(
        &mut self,
        header: &str,
        owner_indent: usize,
        mut pos: usize,
    ) -> Option<usize> {
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
    pub(super) fn finish(&mut self) -> Option<Option<DocInfo<'a>>> {
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
