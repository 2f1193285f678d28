//! Which action applies to a drift: the repository's default mode or its most specific override.

use crate::api::{DriftMode, DriftSpec};

use super::types::{DriftType, Severity};

/// The mode for drift of `drift_type` at `severity`. An override naming both the type and the severity
/// beats one naming only the type, which beats one naming only the severity; among equals the first
/// listed wins. No spec means `Report`. Expected drift is never acted on whatever this returns.
pub fn effective_mode(
    spec: Option<&DriftSpec>,
    drift_type: DriftType,
    severity: Severity,
) -> DriftMode {
    let Some(spec) = spec else {
        return DriftMode::Report;
    };
    spec.overrides
        .iter()
        .filter(|o| {
            o.drift_type.is_none_or(|t| t == drift_type) && o.severity.is_none_or(|s| s == severity)
        })
        .enumerate()
        .max_by_key(|(i, o)| {
            let specificity = match (o.drift_type.is_some(), o.severity.is_some()) {
                (true, true) => 3,
                (true, false) => 2,
                (false, true) => 1,
                (false, false) => 0,
            };
            (specificity, std::cmp::Reverse(*i))
        })
        .map_or(spec.mode, |(_, o)| o.mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DriftOverride;

    fn o(t: Option<DriftType>, s: Option<Severity>, mode: DriftMode) -> DriftOverride {
        DriftOverride {
            drift_type: t,
            severity: s,
            mode,
        }
    }

    #[test]
    fn most_specific_override_wins() {
        assert_eq!(
            effective_mode(None, DriftType::Scaling, Severity::High),
            DriftMode::Report
        );
        let spec = DriftSpec {
            mode: DriftMode::Report,
            overrides: vec![
                o(None, Some(Severity::High), DriftMode::Revert),
                o(Some(DriftType::Scaling), None, DriftMode::Propose),
                o(
                    Some(DriftType::Scaling),
                    Some(Severity::Medium),
                    DriftMode::Report,
                ),
                o(Some(DriftType::Scaling), None, DriftMode::Revert),
            ],
            ..Default::default()
        };
        let m = |t, s| effective_mode(Some(&spec), t, s);
        assert_eq!(
            m(DriftType::VersionChange, Severity::High),
            DriftMode::Revert
        );
        assert_eq!(m(DriftType::Scaling, Severity::High), DriftMode::Propose);
        assert_eq!(m(DriftType::Scaling, Severity::Medium), DriftMode::Report);
        assert_eq!(m(DriftType::LabelChange, Severity::Low), DriftMode::Report);
    }

    #[test]
    fn spec_json_shape() {
        let spec: DriftSpec = serde_json::from_value(serde_json::json!({
            "mode": "Propose", "fixSpace": "fixes",
            "overrides": [{"type": "SecretChange", "mode": "Revert"}],
            "ignore": [{"paths": ["/spec/replicas"], "kind": "Deployment"}]
        }))
        .unwrap();
        assert_eq!(spec.fix_space.as_deref(), Some("fixes"));
        assert_eq!(
            effective_mode(Some(&spec), DriftType::SecretChange, Severity::High),
            DriftMode::Revert
        );
        assert_eq!(
            effective_mode(Some(&spec), DriftType::Other, Severity::Low),
            DriftMode::Propose
        );
        let default: DriftSpec = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(default.mode, DriftMode::Report);
    }
}
