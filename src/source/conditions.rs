//! Summarises one reconcile into Flux-style conditions, in one place (as source-controller's summarize
//! helper does). Pure: previous conditions + what happened + now → new conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::conditions::*;

/// The step of the reconcile that failed, named by its Flux condition type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FailedStep {
    Fetch,
    Build,
    Storage,
}

impl FailedStep {
    pub fn condition_type(self) -> &'static str {
        match self {
            FailedStep::Fetch => FETCH_FAILED,
            FailedStep::Build => BUILD_FAILED,
            FailedStep::Storage => STORAGE_OPERATION_FAILED,
        }
    }
}

/// A failure a person can act on: `reason` is a CamelCase word, `message` says what and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub step: FailedStep,
    pub reason: String,
    pub message: String,
    /// Retrying cannot help until the spec changes (Flux's Stalled).
    pub stalled: bool,
}

/// What one reconcile ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub generation: i64,
    /// Revision of the artifact being served after this reconcile (new, or the last good one).
    pub served_revision: Option<String>,
    pub failure: Option<Failure>,
    /// Extra words for the Ready message on success (skipped or unreleased units).
    pub notes: Vec<String>,
}

const FAILURE_TYPES: [&str; 3] = [FETCH_FAILED, BUILD_FAILED, STORAGE_OPERATION_FAILED];

/// New conditions for `outcome`, keeping `lastTransitionTime` of conditions whose status did not change.
pub fn summarize(previous: &[Condition], outcome: &Outcome, now: &Time) -> Vec<Condition> {
    let mut next: Vec<Condition> = Vec::new();
    let set =
        |next: &mut Vec<Condition>, type_: &str, status: &str, reason: &str, message: String| {
            let transition = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            next.push(Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message,
                observed_generation: Some(outcome.generation),
                last_transition_time: transition,
            });
        };

    match &outcome.failure {
        None => {
            let revision = outcome.served_revision.clone().unwrap_or_default();
            let mut message = format!("stored artifact for revision '{revision}'");
            for note in &outcome.notes {
                message.push_str("; ");
                message.push_str(note);
            }
            set(&mut next, READY, "True", REASON_SUCCEEDED, message);
        }
        Some(failure) => {
            let mut message = failure.message.clone();
            if let Some(revision) = &outcome.served_revision {
                message.push_str(&format!(" (still serving revision '{revision}')"));
            }
            // As Flux's summarize does: Ready carries the reason of the failure condition (e.g.
            // AuthenticationFailed, ConfigHubUnavailable), which names the step it belongs to.
            set(&mut next, READY, "False", &failure.reason, message);
            if failure.stalled {
                set(
                    &mut next,
                    STALLED,
                    "True",
                    &failure.reason,
                    failure.message.clone(),
                );
            }
        }
    }
    if let Some(revision) = &outcome.served_revision {
        set(
            &mut next,
            ARTIFACT_IN_STORAGE,
            "True",
            REASON_SUCCEEDED,
            format!("stored artifact for revision '{revision}'"),
        );
    }
    if let Some(failure) = &outcome.failure {
        set(
            &mut next,
            failure.step.condition_type(),
            "True",
            &failure.reason,
            failure.message.clone(),
        );
    }
    // Drifted belongs to the drift engine, which applies it under its own field manager: a reconcile
    // neither copies nor rewrites it.
    debug_assert!(
        next.iter()
            .filter(|c| FAILURE_TYPES.contains(&c.type_.as_str()))
            .count()
            <= 1
    );
    next
}

/// The single condition written when a reconcile starts on a new generation, so kstatus and
/// `kubectl wait` see work in progress.
pub fn reconciling(previous: &[Condition], generation: i64, now: &Time) -> Vec<Condition> {
    let mut next: Vec<Condition> = previous
        .iter()
        .filter(|c| c.type_ != RECONCILING && c.type_ != DRIFTED)
        .cloned()
        .collect();
    next.push(Condition {
        type_: RECONCILING.to_string(),
        status: "True".to_string(),
        reason: REASON_PROGRESSING.to_string(),
        message: format!("reconciliation in progress for generation {generation}"),
        observed_generation: Some(generation),
        last_transition_time: now.clone(),
    });
    next
}

pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn success(revision: &str) -> Outcome {
        Outcome {
            generation: 2,
            served_revision: Some(revision.into()),
            failure: None,
            notes: vec![],
        }
    }

    #[test]
    fn success_is_ready_with_the_revision_and_clears_failures() {
        let failed = Outcome {
            failure: Some(Failure {
                step: FailedStep::Fetch,
                reason: "ConfigHubUnavailable".into(),
                message: "connection refused".into(),
                stalled: false,
            }),
            ..success("head@sha256:aa")
        };
        let before = summarize(&[], &failed, &at(1));
        let after = summarize(&before, &success("head@sha256:bb"), &at(2));
        let ready = find(&after, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Succeeded")
        );
        assert!(ready.message.contains("head@sha256:bb"));
        assert!(find(&after, FETCH_FAILED).is_none());
        assert_eq!(find(&after, ARTIFACT_IN_STORAGE).unwrap().status, "True");
        assert_eq!(ready.observed_generation, Some(2));
    }

    #[test]
    fn failure_keeps_the_served_artifact_and_names_the_step() {
        let outcome = Outcome {
            failure: Some(Failure {
                step: FailedStep::Build,
                reason: "InvalidUnit".into(),
                message: "unit 'web': line 3: mapping values are not allowed".into(),
                stalled: false,
            }),
            ..success("head@sha256:aa")
        };
        let conditions = summarize(&[], &outcome, &at(1));
        let ready = find(&conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidUnit")
        );
        assert!(ready.message.contains("unit 'web'") && ready.message.contains("head@sha256:aa"));
        let build = find(&conditions, BUILD_FAILED).unwrap();
        assert_eq!(
            (build.status.as_str(), build.reason.as_str()),
            ("True", "InvalidUnit")
        );
        assert_eq!(
            find(&conditions, ARTIFACT_IN_STORAGE).unwrap().status,
            "True"
        );
        assert!(find(&conditions, STALLED).is_none());
    }

    #[test]
    fn stalled_only_when_retrying_cannot_help() {
        let outcome = Outcome {
            generation: 1,
            served_revision: None,
            failure: Some(Failure {
                step: FailedStep::Fetch,
                reason: "InvalidFilter".into(),
                message: "where: unknown attribute".into(),
                stalled: true,
            }),
            notes: vec![],
        };
        let conditions = summarize(&[], &outcome, &at(1));
        assert_eq!(find(&conditions, STALLED).unwrap().status, "True");
        assert!(find(&conditions, ARTIFACT_IN_STORAGE).is_none());
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = summarize(&[], &success("head@sha256:aa"), &at(1));
        let second = summarize(&first, &success("head@sha256:bb"), &at(5));
        assert_eq!(find(&second, READY).unwrap().last_transition_time, at(1));
        let failed = Outcome {
            failure: Some(Failure {
                step: FailedStep::Storage,
                reason: "WriteFailed".into(),
                message: "disk full".into(),
                stalled: false,
            }),
            ..success("head@sha256:bb")
        };
        let third = summarize(&second, &failed, &at(9));
        assert_eq!(find(&third, READY).unwrap().last_transition_time, at(9));
    }

    #[test]
    fn the_reconciler_never_writes_drifted() {
        let with_drift = vec![Condition {
            type_: DRIFTED.into(),
            status: "True".into(),
            reason: "DriftDetected".into(),
            message: "1 object(s) drifted".into(),
            observed_generation: Some(1),
            last_transition_time: at(1),
        }];
        let after = summarize(&with_drift, &success("head@sha256:bb"), &at(2));
        assert_eq!(find(&after, DRIFTED), None);
        assert_eq!(find(&reconciling(&with_drift, 2, &at(3)), DRIFTED), None);
    }

    #[test]
    fn reconciling_is_added_once() {
        let start = reconciling(&reconciling(&[], 3, &at(1)), 3, &at(2));
        assert_eq!(start.iter().filter(|c| c.type_ == RECONCILING).count(), 1);
    }
}
