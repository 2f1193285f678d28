//! Flux/Go duration strings (`1h30m`, `1.5s`, `500ms`) as the CRD's pattern admits them.

use std::time::Duration;

/// Parses a duration matching `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {text:?}: expected e.g. 30s, 5m, 1h30m, 500ms");
    if text.is_empty() {
        return Err(err());
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total = 0f64;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number: f64 = text[start..i].parse().map_err(|_| err())?;
        if start == i || text[start..i].starts_with('.') || text[start..i].ends_with('.') {
            return Err(err());
        }
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let seconds = match &text[unit_start..i] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += number * seconds;
    }
    if !total.is_finite() || total > u32::MAX as f64 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flux_durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn refuses_what_the_pattern_refuses() {
        for bad in ["", "5", "m", "5 m", "-5m", "5d", ".5s", "5.s", "1e3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
