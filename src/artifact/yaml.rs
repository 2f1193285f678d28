//! A lean YAML tree for the full path (bounded parsing, duplicate keys, stamping; written out again by
//! serde_yaml_ng, the one emitter of the project), and the scalar rules the textual path writes its
//! inserted values with. (The plain-scalar rules were checked once against Go's gopkg.in/yaml.v2
//! (YAML 1.1) and yaml.v3 readers on 20,000 random strings: all read back unchanged.)

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt::{self, Write as _};

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Value};

/// A parsed YAML value.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Tagged(String, Box<Node>),
}

impl Node {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::UInt(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a sequence",
            Node::Map(_) => "a mapping",
            Node::Tagged(..) => "a tagged value",
        }
    }

    /// The value under string key `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Node::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Mutable access to the value under string key `key`, inserting `Null` at the end when absent.
    pub fn entry<'e>(entries: &'e mut Vec<(Node, Node)>, key: &str) -> &'e mut Node {
        let pos = entries
            .iter()
            .position(|(k, _)| matches!(k, Node::Str(s) if s == key));
        let index = match pos {
            Some(i) => i,
            None => {
                entries.push((Node::Str(key.to_string()), Node::Null));
                entries.len() - 1
            }
        };
        &mut entries[index].1
    }

    /// Sets `key` to `value`, replacing an existing entry in place (keeps the key's position).
    pub fn set(entries: &mut Vec<(Node, Node)>, key: &str, value: Node) {
        *Node::entry(entries, key) = value;
    }

    /// The equivalent serde_yaml_ng value, for the reference emitter.
    pub fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Number((*i).into()),
            Node::UInt(u) => Value::Number((*u).into()),
            Node::Float(f) => Value::Number((*f).into()),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Sequence(items.iter().map(Node::to_value).collect()),
            Node::Map(entries) => {
                let mut m = Mapping::with_capacity(entries.len());
                for (k, v) in entries {
                    m.insert(k.to_value(), v.to_value());
                }
                Value::Mapping(m)
            }
            Node::Tagged(tag, value) => Value::Tagged(Box::new(TaggedValue {
                tag: Tag::new(tag.clone()),
                value: value.to_value(),
            })),
        }
    }
}

/// Expansion budget shared by one document's whole tree (see `manifest` for the numbers).
pub struct Budget {
    remaining: Cell<u64>,
    exceeded: Cell<bool>,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Self {
            remaining: Cell::new(limit),
            exceeded: Cell::new(false),
        }
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded.get()
    }

    fn charge<E: de::Error>(&self, cost: usize) -> Result<(), E> {
        let cost = (cost as u64).saturating_add(1);
        match self.remaining.get().checked_sub(cost) {
            Some(left) => {
                self.remaining.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("alias expansion limit exceeded"))
            }
        }
    }
}

/// Builds a [`Node`] the way serde_yaml_ng builds its `Value`, charging the budget for every node
/// (aliases are replayed by serde_yaml_ng, so they are charged each time they expand). Duplicate
/// mapping keys are refused, as serde_yaml_ng's `Mapping` does.
#[derive(Clone, Copy)]
pub struct BoundedNode<'b> {
    pub budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for BoundedNode<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedNode<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Int(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::UInt(u))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Float(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node, E> {
        self.budget.charge(s.len())?;
        Ok(Node::Str(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Node, E> {
        self.budget.charge(s.len())?;
        Ok(Node::Str(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        self.budget.charge(0)?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        self.budget.charge(0)?;
        let mut entries: Vec<(Node, Node)> =
            Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            entries.push((key, value));
        }
        if let Some(dup) = duplicate_key(&entries) {
            return Err(de::Error::custom(format_args!(
                "duplicate mapping key {dup}"
            )));
        }
        Ok(Node::Map(entries))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        // serde_yaml_ng presents `!tag value` as an enum whose variant is the tag.
        let (tag, contents): (String, _) = data.variant()?;
        self.budget.charge(tag.len())?;
        let value = contents.newtype_variant_seed(self)?;
        Ok(Node::Tagged(tag, Box::new(value)))
    }
}

/// A description of the first repeated key, if any. Small mappings (the usual case) are compared
/// pairwise, which beats hashing; large ones hash their string keys.
fn duplicate_key(entries: &[(Node, Node)]) -> Option<String> {
    let show = |k: &Node| match k {
        Node::Str(s) => format!("{s:?}"),
        other => other.kind_name().to_string(),
    };
    if entries.len() <= 16 {
        for (i, (k, _)) in entries.iter().enumerate() {
            if entries[..i].iter().any(|(other, _)| other == k) {
                return Some(show(k));
            }
        }
        return None;
    }
    let mut seen = HashSet::with_capacity(entries.len());
    let mut others: Vec<&Node> = Vec::new();
    for (k, _) in entries {
        match k {
            Node::Str(s) => {
                if !seen.insert(s.as_str()) {
                    return Some(show(k));
                }
            }
            other => {
                if others.contains(&other) {
                    return Some(show(k));
                }
                others.push(other);
            }
        }
    }
    None
}

/// `s` as a YAML scalar any 1.1/1.2 reader reads back unchanged: plain when [`plain_ok`], else
/// double-quoted. How the textual path writes the provenance values it inserts.
pub(super) fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        let mut out = String::with_capacity(s.len() + 2);
        emit_double_quoted(s, &mut out);
        out
    }
}

/// Words some YAML reader (1.1 or 1.2, any case) would resolve to null or a boolean.
pub(super) const RESERVED: &[&str] = &[
    "null", "true", "false", "yes", "no", "on", "off", "y", "n", "~",
];

/// Whether `s` can be written as a plain scalar and read back as the same string by any YAML 1.1/1.2
/// reader. Deliberately conservative: anything starting with a digit, sign or dot (numbers, floats,
/// octals, sexagesimals, `.inf`) and anything with an indicator is quoted instead.
pub(super) fn plain_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    // A leading `-` is an indicator unless followed by a letter or another dash (`--port`), and
    // `---` starts a document.
    let dash_ok = first == b'-'
        && bytes
            .get(1)
            .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'-')
        && !s.starts_with("---");
    if !(first.is_ascii_alphabetic() || first == b'/' || first == b'_' || dash_ok) {
        return false;
    }
    let last = bytes[bytes.len() - 1];
    if last == b' ' || last == b':' {
        return false;
    }
    for (i, &b) in bytes.iter().enumerate() {
        let ok = match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'.'
            | b'/'
            | b'_'
            | b'-'
            | b'+'
            | b'='
            | b'@' => true,
            // `: ` starts a mapping value and ` #` a comment; alone they are ordinary characters.
            b':' => bytes.get(i + 1).is_some_and(|&n| n != b' '),
            b' ' => bytes.get(i + 1).is_some_and(|&n| n != b'#' && n != b' '),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    if s.len() <= 5 && RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s)) {
        return false;
    }
    // YAML 1.1 timestamps and the like all start with a digit, so are already excluded.
    true
}

/// Printable in YAML's sense and not a line break libyaml would normalise (NEL, LS, PS) or a BOM.
pub(super) fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

pub(super) fn emit_double_quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
