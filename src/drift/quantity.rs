//! Kubernetes resource quantities (`500m`, `1Gi`, `0.5`, `1e3`), parsed just enough to compare them:
//! the API server canonicalises them (`0.5` → `500m`, `1000m` → `1`), so string equality would report
//! drift that is not there.

use serde_json::Value;

/// The numeric value of a quantity string or number; `None` when it is not a quantity.
pub fn parse(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_str(s.trim()),
        _ => None,
    }
}

fn parse_str(s: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 16] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("", 1.0),
    ];
    if s.is_empty() {
        return None;
    }
    for (suffix, factor) in SUFFIXES {
        if let Some(num) = s.strip_suffix(suffix)
            && let Some(x) = number(num)
        {
            return Some(x * factor);
        }
    }
    None
}

/// A plain decimal, optionally with an exponent (`1e3`); no sign tricks beyond a leading `+`/`-`.
fn number(s: &str) -> Option<f64> {
    let valid = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'));
    if !valid {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Whether two quantities denote the same amount (relative tolerance for float rounding).
pub fn same(a: &Value, b: &Value) -> bool {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-9),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_forms_compare_equal() {
        assert!(same(&json!("0.5"), &json!("500m")));
        assert!(same(&json!("1000m"), &json!("1")));
        assert!(same(&json!(1), &json!("1")));
        assert!(same(&json!("1Gi"), &json!("1024Mi")));
        assert!(same(&json!("1e3"), &json!("1k")));
        assert!(!same(&json!("128Mi"), &json!("256Mi")));
        assert!(!same(&json!("abc"), &json!("abc")));
        assert_eq!(parse(&json!("")), None);
        assert_eq!(parse(&json!("Mi")), None);
    }
}
