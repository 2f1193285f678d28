//! The hub's `where` language: a pure parser, a type check against each entity's attributes, and an
//! evaluator over the entity's JSON.
//!
//! Filtering happens in Rust over decoded rows, never in SQL, so an expression cannot reach the
//! database. Anything outside the supported subset is an error (the hub answers 400) rather than
//! being ignored, because silently returning every row is how a filter bug ships.

use std::cmp::Ordering;

use serde_json::Value as Json;

/// A literal on the right of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Int(i64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
    NotLike,
    In,
    NotIn,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Rhs {
    Lit(Lit),
    Attr(String),
    List(Vec<Lit>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    pub lhs: String,
    pub op: Op,
    pub rhs: Rhs,
}

/// A conjunction of clauses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expr {
    pub clauses: Vec<Clause>,
}

/// Why an expression was refused; the message is shown to the user in the 400 body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid where expression: {0}")]
pub struct WhereError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, WhereError> {
    Err(WhereError(msg.into()))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

fn tokenize(input: &str) -> Result<Vec<Tok>, WhereError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '=' => {
                out.push(Tok::Op(Op::Eq));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Op(Op::Ne));
                i += 2;
            }
            '<' | '>' => {
                let or_equal = chars.get(i + 1) == Some(&'=');
                out.push(Tok::Op(match (c, or_equal) {
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    (_, true) => Op::Ge,
                    (_, false) => Op::Gt,
                }));
                i += if or_equal { 2 } else { 1 };
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return err("unterminated string literal"),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if chars.get(i).is_some_and(|&c| is_ident_char(c)) {
                    return err(format!("malformed number near {text:?}"));
                }
                let n = text
                    .parse::<i64>()
                    .map_err(|_| WhereError(format!("integer {text} is out of range")))?;
                out.push(Tok::Int(n));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while chars.get(i).is_some_and(|&c| is_ident_char(c)) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

fn keyword(tok: Option<&Tok>) -> Option<String> {
    match tok {
        Some(Tok::Ident(s)) => Some(s.to_ascii_uppercase()),
        _ => None,
    }
}

const RESERVED: &[&str] = &[
    "AND", "OR", "NOT", "IN", "LIKE", "IS", "NULL", "TRUE", "FALSE", "ILIKE",
];

/// Parses a `where` expression. Supports `= != < > <= >=`, `[NOT] IN (…)`, `[NOT] LIKE`,
/// `Labels.<key>`, attribute-vs-attribute comparisons and `AND`.
pub fn parse(input: &str) -> Result<Expr, WhereError> {
    let toks = tokenize(input)?;
    if toks.is_empty() {
        return err("empty expression");
    }
    let mut p = 0usize;
    let mut clauses = Vec::new();
    loop {
        let lhs = match toks.get(p) {
            Some(Tok::Ident(name)) if !RESERVED.contains(&name.to_ascii_uppercase().as_str()) => {
                name.clone()
            }
            Some(t) => return err(format!("expected an attribute name, found {}", describe(t))),
            None => return err("expected an attribute name at the end"),
        };
        p += 1;
        let op = match (toks.get(p), keyword(toks.get(p)).as_deref()) {
            (Some(Tok::Op(op)), _) => {
                p += 1;
                *op
            }
            (_, Some("IN")) => {
                p += 1;
                Op::In
            }
            (_, Some("LIKE")) => {
                p += 1;
                Op::Like
            }
            (_, Some("NOT")) => match keyword(toks.get(p + 1)).as_deref() {
                Some("IN") => {
                    p += 2;
                    Op::NotIn
                }
                Some("LIKE") => {
                    p += 2;
                    Op::NotLike
                }
                _ => return err("NOT must be followed by IN or LIKE"),
            },
            (Some(t), _) => {
                return err(format!(
                    "expected an operator after {lhs}, found {}",
                    describe(t)
                ));
            }
            (None, _) => return err(format!("expected an operator after {lhs}")),
        };
        let rhs = if matches!(op, Op::In | Op::NotIn) {
            if toks.get(p) != Some(&Tok::LParen) {
                return err("IN must be followed by a parenthesised list");
            }
            p += 1;
            let mut items = Vec::new();
            loop {
                items.push(literal(toks.get(p))?);
                p += 1;
                match toks.get(p) {
                    Some(Tok::Comma) => p += 1,
                    Some(Tok::RParen) => {
                        p += 1;
                        break;
                    }
                    _ => return err("expected ',' or ')' in IN list"),
                }
            }
            Rhs::List(items)
        } else {
            let rhs = match toks.get(p) {
                Some(Tok::Ident(name)) => match name.to_ascii_uppercase().as_str() {
                    "TRUE" => Rhs::Lit(Lit::Bool(true)),
                    "FALSE" => Rhs::Lit(Lit::Bool(false)),
                    up if RESERVED.contains(&up) => {
                        return err(format!("unexpected keyword {name} after operator"));
                    }
                    _ => Rhs::Attr(name.clone()),
                },
                Some(_) => Rhs::Lit(literal(toks.get(p))?),
                None => return err(format!("expected a value after {lhs}")),
            };
            p += 1;
            rhs
        };
        clauses.push(Clause { lhs, op, rhs });
        match keyword(toks.get(p)).as_deref() {
            None if p >= toks.len() => break,
            Some("AND") => p += 1,
            Some("OR") => return err("OR is not supported (only AND)"),
            _ => {
                let found = toks.get(p).map(describe).unwrap_or_default();
                return err(format!("expected AND or the end, found {found}"));
            }
        }
    }
    Ok(Expr { clauses })
}

fn literal(tok: Option<&Tok>) -> Result<Lit, WhereError> {
    match tok {
        Some(Tok::Str(s)) => Ok(Lit::Str(s.clone())),
        Some(Tok::Int(n)) => Ok(Lit::Int(*n)),
        Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
        Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
        Some(t) => err(format!("expected a literal, found {}", describe(t))),
        None => err("expected a literal at the end"),
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => s.clone(),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Int(n) => n.to_string(),
        Tok::Op(op) => format!("{op:?}"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
    }
}

/// The type of a filterable attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    Str,
    Int,
    Uuid,
    Bool,
    /// `{string:string}`, addressed as `Name.<key>`.
    Map,
}

/// The filterable attributes of one entity type.
pub type Schema = &'static [(&'static str, AttrType)];

fn attr_type(schema: Schema, name: &str) -> Result<AttrType, WhereError> {
    if let Some((map, key)) = name.split_once('.') {
        return match schema.iter().find(|(n, _)| *n == map) {
            Some((_, AttrType::Map)) if !key.is_empty() => Ok(AttrType::Str),
            Some(_) => err(format!("attribute {map} has no keys")),
            None => err(format!("unknown attribute {map}")),
        };
    }
    match schema.iter().find(|(n, _)| *n == name) {
        Some((_, AttrType::Map)) => err(format!("{name} needs a key, as in {name}.<key>")),
        Some((_, t)) => Ok(*t),
        None => err(format!("unknown attribute {name}")),
    }
}

fn check_lit(attr: &str, ty: AttrType, lit: &Lit) -> Result<(), WhereError> {
    match (ty, lit) {
        (AttrType::Str, Lit::Str(_))
        | (AttrType::Int, Lit::Int(_))
        | (AttrType::Bool, Lit::Bool(_)) => Ok(()),
        (AttrType::Uuid, Lit::Str(s)) if uuid::Uuid::parse_str(s).is_ok() => Ok(()),
        (AttrType::Uuid, Lit::Str(s)) => err(format!("{attr} needs a UUID, not '{s}'")),
        _ => err(format!("{attr} cannot be compared with {lit:?}")),
    }
}

/// Checks attribute names, operator/type compatibility and literal types against `schema`.
pub fn check(expr: &Expr, schema: Schema) -> Result<(), WhereError> {
    for c in &expr.clauses {
        let ty = attr_type(schema, &c.lhs)?;
        let op_ok = match ty {
            AttrType::Str => true,
            AttrType::Int => !matches!(c.op, Op::Like | Op::NotLike),
            AttrType::Uuid => matches!(c.op, Op::Eq | Op::Ne | Op::In | Op::NotIn),
            AttrType::Bool => matches!(c.op, Op::Eq | Op::Ne),
            AttrType::Map => false,
        };
        if !op_ok {
            return err(format!("operator {:?} is not allowed on {}", c.op, c.lhs));
        }
        match &c.rhs {
            Rhs::Lit(lit) => check_lit(&c.lhs, ty, lit)?,
            Rhs::List(items) => {
                for lit in items {
                    check_lit(&c.lhs, ty, lit)?;
                }
            }
            Rhs::Attr(other) => {
                let other_ty = attr_type(schema, other)?;
                if other_ty != ty || matches!(c.op, Op::Like | Op::NotLike) {
                    return err(format!("{} cannot be compared with {other}", c.lhs));
                }
            }
        }
    }
    Ok(())
}

/// Names every attribute the expression mentions (for `select`, which must keep them).
pub fn attributes(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    for c in &expr.clauses {
        out.push(c.lhs.split('.').next().unwrap_or_default().to_string());
        if let Rhs::Attr(a) = &c.rhs {
            out.push(a.split('.').next().unwrap_or_default().to_string());
        }
    }
    out
}

fn field(record: &Json, name: &str) -> Option<Lit> {
    let value = match name.split_once('.') {
        Some((map, key)) => record.get(map)?.get(key)?,
        None => record.get(name)?,
    };
    match value {
        Json::String(s) => Some(Lit::Str(s.clone())),
        Json::Number(n) => n.as_i64().map(Lit::Int),
        Json::Bool(b) => Some(Lit::Bool(*b)),
        _ => None,
    }
}

fn compare(a: &Lit, b: &Lit) -> Option<Ordering> {
    match (a, b) {
        (Lit::Str(x), Lit::Str(y)) => Some(x.cmp(y)),
        (Lit::Int(x), Lit::Int(y)) => Some(x.cmp(y)),
        (Lit::Bool(x), Lit::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// SQL `LIKE`: `%` is any run, `_` any one character; everything else is literal.
pub fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

/// Whether `record` (an entity's JSON object) satisfies every clause. A missing field or label
/// never matches, whatever the operator.
pub fn matches(expr: &Expr, record: &Json) -> bool {
    expr.clauses.iter().all(|c| {
        let Some(value) = field(record, &c.lhs) else {
            return false;
        };
        let rhs = match &c.rhs {
            Rhs::Lit(l) => l.clone(),
            Rhs::Attr(a) => match field(record, a) {
                Some(v) => v,
                None => return false,
            },
            Rhs::List(items) => {
                let found = items
                    .iter()
                    .any(|i| compare(&value, i) == Some(Ordering::Equal));
                return (c.op == Op::In) == found;
            }
        };
        match c.op {
            Op::Like | Op::NotLike => match (&value, &rhs) {
                (Lit::Str(s), Lit::Str(pat)) => like(pat, s) == (c.op == Op::Like),
                _ => false,
            },
            op => match compare(&value, &rhs) {
                Some(ord) => match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Lt => ord == Ordering::Less,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Le => ord != Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                    _ => false,
                },
                None => false,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: Schema = &[
        ("Slug", AttrType::Str),
        ("UnitID", AttrType::Uuid),
        ("HeadRevisionNum", AttrType::Int),
        ("LastReleasedRevisionNum", AttrType::Int),
        ("Labels", AttrType::Map),
    ];

    fn eval(w: &str, rec: &Json) -> Result<bool, WhereError> {
        let e = parse(w)?;
        check(&e, SCHEMA)?;
        Ok(matches(&e, rec))
    }

    fn unit() -> Json {
        json!({"Slug":"web-1","UnitID":"0d9c7a5e-0000-4000-8000-000000000001","HeadRevisionNum":4,
               "LastReleasedRevisionNum":2,"Labels":{"app":"web","it's":"x"}})
    }

    #[test]
    fn comparisons_and_conjunctions() {
        let u = unit();
        assert!(eval("Slug = 'web-1'", &u).unwrap());
        assert!(!eval("Slug != 'web-1'", &u).unwrap());
        assert!(eval("HeadRevisionNum > LastReleasedRevisionNum", &u).unwrap());
        assert!(!eval("HeadRevisionNum <= LastReleasedRevisionNum", &u).unwrap());
        assert!(eval("HeadRevisionNum >= 4 AND HeadRevisionNum < 5", &u).unwrap());
        assert!(eval("Slug LIKE 'web-%' and Labels.app = 'web'", &u).unwrap());
        assert!(eval("Slug NOT LIKE 'db%'", &u).unwrap());
        assert!(eval("Slug IN ('a', 'web-1')", &u).unwrap());
        assert!(eval("HeadRevisionNum NOT IN (1, 2)", &u).unwrap());
        assert!(eval("UnitID IN ('0d9c7a5e-0000-4000-8000-000000000001')", &u).unwrap());
        assert!(
            eval("Labels.it's = 'x'", &u).is_err(),
            "quote in a bare name is refused"
        );
    }

    #[test]
    fn missing_labels_never_match() {
        let u = unit();
        assert!(!eval("Labels.team = 'core'", &u).unwrap());
        assert!(!eval("Labels.team != 'core'", &u).unwrap());
        assert!(!eval("Labels.team NOT IN ('core')", &u).unwrap());
    }

    #[test]
    fn quotes_are_escaped_by_doubling() {
        let rec = json!({"Slug":"a' OR '1'='1"});
        assert!(eval("Slug = 'a'' OR ''1''=''1'", &rec).unwrap());
        assert!(!eval("Slug = 'a'' OR ''1''=''1'", &unit()).unwrap());
        // `'''…'` is one literal that starts with a quote: it parses and matches nothing.
        let e = parse("Slug = ''' OR ''1''=''1'").unwrap();
        assert_eq!(e.clauses.len(), 1);
        assert_eq!(e.clauses[0].rhs, Rhs::Lit(Lit::Str("' OR '1'='1".into())));
        assert!(!matches(&e, &unit()));
    }

    #[test]
    fn injection_and_garbage_are_refused() {
        for bad in [
            "Slug = 'a' OR 1=1",
            "Slug = 'a'; DROP TABLE units",
            "Slug = 'unterminated",
            "1 = 1",
            "Slug =",
            "Slug",
            "",
            "Slug = 'a' AND",
            "(Slug = 'a')",
            "Nope = 'a'",
            "HeadRevisionNum = 'four'",
            "Slug = 3",
            "HeadRevisionNum LIKE '4%'",
            "UnitID = 'not-a-uuid'",
            "UnitID > '0d9c7a5e-0000-4000-8000-000000000001'",
            "Labels = 'x'",
            "Slug = HeadRevisionNum",
            "HeadRevisionNum > 99999999999999999999",
            "Slug IS NULL",
            "Slug IN ()",
        ] {
            assert!(eval(bad, &unit()).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn like_wildcards() {
        assert!(like("web-%", "web-1"));
        assert!(like("w_b", "web"));
        assert!(like("%", ""));
        assert!(like("%a%b", "xxaxxb"));
        assert!(!like("web", "web-1"));
        assert!(!like("a_", "a"));
    }
}
