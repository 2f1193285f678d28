//! What the drift engine cannot see. Every refused or failed call on a managed kind (discovery, list,
//! watch, get, the server-side-apply dry run) is remembered per kind and verb until the same verb works
//! again, so the repository's `Drifted` condition can say `Unknown` instead of a stale "no drift", and the
//! log says it once per kind with backoff instead of once per retry. Pure: the engine feeds it outcomes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

/// A managed kind, as the inventory names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KindId {
    pub group: String,
    pub kind: String,
}

impl KindId {
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
        }
    }
}

impl fmt::Display for KindId {
    /// `Deployment.apps`, or `ConfigMap` for the core group (as `kubectl` names kinds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// The call that failed. `Discover` covers a kind the API server does not serve (CRD missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Discover,
    List,
    Watch,
    Get,
    Patch,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Discover => "discover",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Get => "get",
            Verb::Patch => "patch",
        }
    }
}

/// First repeat of a log line after this long, then twice as long each time, up to [`LOG_BACKOFF_MAX`].
pub const LOG_BACKOFF_MIN: Duration = Duration::from_secs(60);
pub const LOG_BACKOFF_MAX: Duration = Duration::from_secs(3600);

struct State {
    /// Short cause, e.g. `Forbidden` or `NotFound` (the API's reason), never a secret.
    cause: String,
    failures: u64,
    next_log: Instant,
    backoff: Duration,
}

/// What happened to the engine's sight of a kind, and whether to say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// It just went blind (or the cause changed): log, and update the conditions that depend on it.
    Started,
    /// Still blind: log only when `log` (backoff), conditions are already right.
    Continues { log: bool },
    /// It can see again: log once, update conditions, check what was missed.
    Recovered,
    /// Nothing to do.
    Unchanged,
}

#[derive(Default)]
pub struct Blindness {
    kinds: BTreeMap<(KindId, Verb), State>,
}

impl Blindness {
    /// Records a failure of `verb` on `kind`.
    pub fn fail(&mut self, kind: &KindId, verb: Verb, cause: &str, now: Instant) -> Change {
        match self.kinds.get_mut(&(kind.clone(), verb)) {
            Some(state) if state.cause == cause => {
                state.failures += 1;
                let log = now >= state.next_log;
                if log {
                    state.next_log = now + state.backoff;
                    state.backoff = (state.backoff * 2).min(LOG_BACKOFF_MAX);
                }
                Change::Continues { log }
            }
            _ => {
                self.kinds.insert(
                    (kind.clone(), verb),
                    State {
                        cause: cause.to_string(),
                        failures: 1,
                        next_log: now + LOG_BACKOFF_MIN,
                        backoff: LOG_BACKOFF_MIN * 2,
                    },
                );
                Change::Started
            }
        }
    }

    /// Records that `verbs` worked on `kind`.
    pub fn ok(&mut self, kind: &KindId, verbs: &[Verb]) -> Change {
        let mut recovered = false;
        for verb in verbs {
            recovered |= self.kinds.remove(&(kind.clone(), *verb)).is_some();
        }
        if recovered {
            Change::Recovered
        } else {
            Change::Unchanged
        }
    }

    /// Whether every managed kind is seen.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Whether anything about `kind` is failing.
    pub fn is_blind(&self, kind: &KindId) -> bool {
        self.kinds.keys().any(|(k, _)| k == kind)
    }

    /// The failures among `kinds`, as one sentence for a condition message (`None` when all is seen):
    /// `Deployment.apps (list, watch: Forbidden); ConfigMap (patch: Forbidden)`.
    pub fn describe<'a>(&self, kinds: impl IntoIterator<Item = &'a KindId>) -> Option<String> {
        let mut wanted: Vec<&KindId> = kinds.into_iter().collect();
        wanted.sort();
        wanted.dedup();
        let parts: Vec<String> = wanted
            .into_iter()
            .filter_map(|kind| {
                let mut by_cause: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for ((k, verb), state) in &self.kinds {
                    if k == kind {
                        by_cause
                            .entry(&state.cause)
                            .or_default()
                            .push(verb.as_str());
                    }
                }
                (!by_cause.is_empty()).then(|| {
                    let causes: Vec<String> = by_cause
                        .into_iter()
                        .map(|(cause, verbs)| format!("{}: {cause}", verbs.join(", ")))
                        .collect();
                    format!("{kind} ({})", causes.join("; "))
                })
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// How many failures of `verb` on `kind` were seen in the current spell (0 when it works).
    pub fn failures(&self, kind: &KindId, verb: Verb) -> u64 {
        self.kinds
            .get(&(kind.clone(), verb))
            .map_or(0, |s| s.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_said_once_then_with_backoff_and_ends_when_the_verb_works() {
        let mut b = Blindness::default();
        let deploy = KindId::new("apps", "Deployment");
        let t0 = Instant::now();
        assert_eq!(
            b.fail(&deploy, Verb::List, "Forbidden", t0),
            Change::Started
        );
        // Retries every second do not log again until the backoff has passed.
        for s in 1..60 {
            let now = t0 + Duration::from_secs(s);
            assert_eq!(
                b.fail(&deploy, Verb::List, "Forbidden", now),
                Change::Continues { log: false }
            );
        }
        assert_eq!(
            b.fail(&deploy, Verb::List, "Forbidden", t0 + LOG_BACKOFF_MIN),
            Change::Continues { log: true }
        );
        // The next line waits twice as long.
        let later = t0 + LOG_BACKOFF_MIN + LOG_BACKOFF_MIN;
        assert_eq!(
            b.fail(&deploy, Verb::List, "Forbidden", later),
            Change::Continues { log: false }
        );
        assert_eq!(b.failures(&deploy, Verb::List), 62);
        // Another cause is news.
        assert_eq!(
            b.fail(&deploy, Verb::List, "InternalError", later),
            Change::Started
        );
        assert!(b.is_blind(&deploy));
        // A working get says nothing about list.
        assert_eq!(b.ok(&deploy, &[Verb::Get]), Change::Unchanged);
        assert_eq!(b.ok(&deploy, &[Verb::List, Verb::Watch]), Change::Recovered);
        assert!(!b.is_blind(&deploy));
        assert!(b.is_empty());
        assert_eq!(b.ok(&deploy, &[Verb::List]), Change::Unchanged);
    }

    #[test]
    fn the_description_names_only_the_kinds_asked_about() {
        let mut b = Blindness::default();
        let now = Instant::now();
        let deploy = KindId::new("apps", "Deployment");
        let cm = KindId::new("", "ConfigMap");
        let other = KindId::new("example.com", "Widget");
        b.fail(&deploy, Verb::List, "Forbidden", now);
        b.fail(&deploy, Verb::Watch, "Forbidden", now);
        b.fail(&cm, Verb::Patch, "Forbidden", now);
        b.fail(&other, Verb::Discover, "NotFound", now);
        assert_eq!(
            b.describe([&deploy, &cm, &deploy]).as_deref(),
            Some("ConfigMap (patch: Forbidden); Deployment.apps (list, watch: Forbidden)")
        );
        assert_eq!(b.describe([&KindId::new("", "Service")]), None);
        assert_eq!(
            b.describe([&other]).as_deref(),
            Some("Widget.example.com (discover: NotFound)")
        );
    }
}
