//! One-line flow collections (`[a, b]`, `{k: v}`).

use super::MAX_DEPTH;
use super::lexical::{has_duplicates, key_ok, quoted};

/// A one-line flow collection starting at byte `i` of `s` (`[` or `{`): returns the index after its
/// close. Items are quoted scalars, nested collections or simple plain scalars; mapping entries are
/// `key: value` with string keys, checked for repeats. Every index handed on follows an ASCII byte, so
/// it is a char boundary.
pub(super) fn flow(s: &str, mut i: usize, depth: usize) -> Option<usize> {
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
pub(super) fn flow_key(line: &str, i: usize) -> Option<(&str, usize)> {
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
pub(super) fn flow_item(s: &str, i: usize, depth: usize) -> Option<usize> {
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
