//! Single lines and scalars: what a line holds, keys, quoted scalars, comments, repeated keys.

use crate::artifact::yaml::RESERVED;

/// One line without its newline, and where the next one starts.
pub(super) struct Line<'a> {
    pub(super) text: &'a str,
    pub(super) next: usize,
}

pub(super) fn line_at(text: &str, pos: usize) -> Line<'_> {
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

pub(super) fn leading_spaces(s: &str) -> usize {
    s.bytes().take_while(|&b| b == b' ').count()
}

/// `-` followed by a space or the end of the line: a block sequence entry.
pub(super) fn is_seq_item(content: &str) -> bool {
    let b = content.as_bytes();
    b.first() == Some(&b'-') && (b.len() == 1 || b[1] == b' ')
}

/// Nothing but spaces and maybe a comment (which needs a space before it).
pub(super) fn is_blank_or_comment(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

/// A key the fast path can compare as a string: letters, digits and `._-/`, starting with a letter or
/// `_`, and not a word some reader resolves to a boolean or null.
pub(super) fn key_ok(k: &str) -> bool {
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
pub(super) fn quoted(s: &str) -> Option<(Option<&str>, usize)> {
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
pub(super) fn escape_len(b: &[u8]) -> Option<usize> {
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
pub(super) fn plain_start_ok(s: &str) -> bool {
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
pub(super) fn mapping_key(content: &str) -> Option<(&str, usize)> {
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
pub(super) fn looks_like_key(content: &str) -> bool {
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
pub(super) fn comment_start(b: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'#', b)
        .find(|&i| i > 0 && b[i - 1] == b' ')
        .map(|i| i - 1)
}

/// Whether two keys are equal. Small mappings (the usual case) compare pairwise; large ones sort, so a
/// hostile mapping with a million keys costs n log n, not n².
pub(super) fn has_duplicates<K: Ord + ?Sized>(keys: &mut [&K]) -> bool {
    if keys.len() <= 16 {
        return (1..keys.len()).any(|i| keys[..i].contains(&keys[i]));
    }
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}
