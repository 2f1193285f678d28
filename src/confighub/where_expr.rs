//! Builds ConfigHub `where` expressions with correctly quoted literals.
//!
//! Values are quoted as `'…'` with `'` doubled, so a slug or label value containing a quote cannot end
//! the literal and inject another clause. Attribute names are checked against a conservative
//! character set because they cannot be quoted at all.

use std::fmt::Write as _;

/// A conjunction of clauses (ConfigHub's `where` has `AND` only).
#[derive(Clone, Debug, Default)]
pub struct Where {
    clauses: Vec<String>,
    problem: Option<String>,
}

/// Why a `where` could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid where expression: {0}")]
pub struct WhereBuildError(pub String);

/// Quotes a string literal: `it's` → `'it''s'`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn valid_attr(name: &str) -> bool {
    let mut parts = name.split('.');
    let head_ok = parts
        .next()
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric()));
    // Label keys may contain `-`, `_`, `/` and `.` as in Kubernetes (`app.kubernetes.io/name`).
    let rest_ok = parts.all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
    });
    head_ok && rest_ok
}

impl Where {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, attr: &str, rest: String) -> Self {
        if !valid_attr(attr) {
            self.problem
                .get_or_insert_with(|| format!("attribute {attr:?} is not a plain name"));
        }
        self.clauses.push(format!("{attr} {rest}"));
        self
    }

    /// `attr = 'value'`.
    pub fn eq(self, attr: &str, value: &str) -> Self {
        self.push(attr, format!("= {}", quote(value)))
    }

    /// `attr != 'value'`.
    pub fn ne(self, attr: &str, value: &str) -> Self {
        self.push(attr, format!("!= {}", quote(value)))
    }

    /// `attr LIKE 'pattern'` (`%` and `_` are wildcards).
    pub fn like(self, attr: &str, pattern: &str) -> Self {
        self.push(attr, format!("LIKE {}", quote(pattern)))
    }

    /// `Labels.key = 'value'`; a Unit without the label never matches.
    pub fn label_eq(self, key: &str, value: &str) -> Self {
        self.push(&format!("Labels.{key}"), format!("= {}", quote(value)))
    }

    /// `attr <op> n` for integer attributes such as `HeadRevisionNum`.
    pub fn int(self, attr: &str, op: CmpOp, value: i64) -> Self {
        self.push(attr, format!("{} {value}", op.as_str()))
    }

    /// `lhs <op> rhs` comparing two attributes, e.g. `HeadRevisionNum > LastReleasedRevisionNum`.
    pub fn attrs(mut self, lhs: &str, op: CmpOp, rhs: &str) -> Self {
        if !valid_attr(rhs) {
            self.problem
                .get_or_insert_with(|| format!("attribute {rhs:?} is not a plain name"));
        }
        self.push(lhs, format!("{} {rhs}", op.as_str()))
    }

    /// `attr IN ('a', 'b')`. An empty list is an error: the grammar has no empty `IN ()`.
    pub fn and_in<I, S>(self, attr: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.list(attr, "IN", values)
    }

    /// `attr NOT IN ('a', 'b')`.
    pub fn not_in<I, S>(self, attr: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.list(attr, "NOT IN", values)
    }

    fn list<I, S>(mut self, attr: &str, keyword: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut body = String::new();
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                body.push_str(", ");
            }
            let _ = write!(body, "{}", quote(v.as_ref()));
        }
        if body.is_empty() {
            self.problem
                .get_or_insert_with(|| format!("{attr} {keyword} () has no values"));
        }
        self.push(attr, format!("{keyword} ({body})"))
    }

    /// The expression text (not URL-encoded: the HTTP client encodes query values).
    pub fn build(self) -> Result<String, WhereBuildError> {
        if let Some(problem) = self.problem {
            return Err(WhereBuildError(problem));
        }
        if self.clauses.is_empty() {
            return Err(WhereBuildError("no clauses".into()));
        }
        Ok(self.clauses.join(" AND "))
    }
}

/// Comparison operators for integer and attribute clauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Ge => ">=",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_so_literals_cannot_be_escaped() {
        assert_eq!(quote("it's"), "'it''s'");
        let w = Where::new().eq("Slug", "a' OR '1'='1").build().unwrap();
        assert_eq!(w, "Slug = 'a'' OR ''1''=''1'");
    }

    #[test]
    fn builds_conjunctions() {
        let w = Where::new()
            .eq("Slug", "web")
            .and_in("UnitID", ["u1", "u2"])
            .label_eq("app.kubernetes.io/name", "web")
            .int("HeadRevisionNum", CmpOp::Ge, 2)
            .attrs("HeadRevisionNum", CmpOp::Gt, "LastReleasedRevisionNum")
            .build()
            .unwrap();
        assert_eq!(
            w,
            "Slug = 'web' AND UnitID IN ('u1', 'u2') AND Labels.app.kubernetes.io/name = 'web' \
             AND HeadRevisionNum >= 2 AND HeadRevisionNum > LastReleasedRevisionNum"
        );
    }

    #[test]
    fn rejects_empty_lists_and_odd_attribute_names() {
        assert!(
            Where::new()
                .and_in("UnitID", Vec::<String>::new())
                .build()
                .is_err()
        );
        assert!(Where::new().eq("Slug = 'x' OR Slug", "y").build().is_err());
        assert!(Where::new().label_eq("a b", "y").build().is_err());
        assert!(Where::new().build().is_err());
    }
}
