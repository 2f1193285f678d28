//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's rules and Flux's flags, so that
//! of several replicas only one reconciles, remediates drift and writes fix units.
//!
//! Written here rather than taken from a crate: the crates that fit kube 5 keep a leader that cannot
//! reach the API server believing it still leads after its Lease expired (a second leader), and none
//! has client-go's renew deadline and retry period, which Flux's flags configure.
//!
//! The rules (client-go's `leaderelection` package): a candidate takes the Lease when it has no holder,
//! or when its record has not changed for the record's lease duration *as measured on this candidate's
//! own clock* (no clock skew between nodes matters); every write carries the resourceVersion read, so of
//! two candidates racing only one wins (409 Conflict for the other). The leader renews every retry
//! period; when it cannot renew for the renew deadline, or finds another holder, it has lost, and the
//! process exits (as controller-runtime's managers do): a restart is the one way to be sure nothing of
//! the old term is still writing.

mod args;
#[cfg(test)]
mod elector_tests;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use args::LeaderElectionArgs;

/// Where the Lease is and how the election is timed (validated flags).
#[derive(Clone, Debug, PartialEq)]
pub struct ElectionConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    pub release_on_cancel: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    name: String,
}

/// `leader_election_master_status{name}` as controller-runtime exports it (1 on the leader, 0
/// elsewhere), and `confighub_leader_election_errors_total{name}`: Lease reads/writes that failed.
#[derive(Clone)]
pub struct ElectionMetrics {
    status: Family<NameLabel, Gauge>,
    errors: Family<NameLabel, Counter>,
    label: NameLabel,
}

impl ElectionMetrics {
    pub fn register(registry: &mut Registry, lease_name: &str) -> Self {
        let metrics = Self {
            status: Family::default(),
            errors: Family::default(),
            label: NameLabel {
                name: lease_name.to_string(),
            },
        };
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporter is master of the Lease `name` (1) or not (0)",
            metrics.status.clone(),
        );
        registry.register(
            "confighub_leader_election_errors",
            "Reads or writes of the leader election Lease that failed",
            metrics.errors.clone(),
        );
        metrics.set_leader(false);
        metrics
    }

    fn set_leader(&self, leader: bool) {
        self.status
            .get_or_create(&self.label)
            .set(i64::from(leader));
    }
}

/// What a candidate does with the Lease it just read.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// No Lease yet: create it, holding it.
    Create(LeaseSpec),
    /// Take or renew it: replace the record (with the resourceVersion read).
    Write(LeaseSpec),
    /// Someone else holds a live Lease.
    Wait { holder: String },
}

/// The decision of one try, given the Lease's record (`None`: no Lease), whether that record has stayed
/// the same for its lease duration on this candidate's clock, and the time now.
pub(crate) fn next_step(
    current: Option<&LeaseSpec>,
    identity: &str,
    expired: bool,
    lease_duration: Duration,
    now: Timestamp,
) -> Step {
    let seconds = i32::try_from(lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let mine = |acquire: Timestamp, transitions: i32| LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(seconds),
        acquire_time: Some(MicroTime(acquire)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    };
    let Some(current) = current else {
        return Step::Create(mine(now, 0));
    };
    let holder = current.holder_identity.clone().unwrap_or_default();
    let transitions = current.lease_transitions.unwrap_or(0);
    if holder == identity {
        let acquired = current.acquire_time.as_ref().map_or(now, |t| t.0);
        return Step::Write(mine(acquired, transitions));
    }
    if !holder.is_empty() && !expired {
        return Step::Wait { holder };
    }
    Step::Write(mine(now, transitions.saturating_add(1)))
}

/// Why a leader stopped leading.
#[derive(Debug, thiserror::Error)]
pub enum LostLeadership {
    #[error("Lease {lease} is now held by {holder}")]
    Taken { lease: String, holder: String },
    #[error("could not renew Lease {lease} within the renew deadline ({deadline:?}): {last_error}")]
    NotRenewed {
        lease: String,
        deadline: Duration,
        last_error: String,
    },
}

/// One candidate of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    config: ElectionConfig,
    metrics: ElectionMetrics,
    /// The last record read and when (this process's clock) it was first seen as it is.
    observed: Option<(LeaseSpec, Instant)>,
    /// The last error logged at warn; the same error again is logged at debug only.
    last_logged_error: Option<String>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: ElectionConfig, metrics: ElectionMetrics) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            metrics,
            observed: None,
            last_logged_error: None,
        }
    }

    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// Returns once this candidate leads; tries every retry period (with jitter, as client-go does).
    pub async fn acquire(&mut self) {
        tracing::info!(lease = %self.lease(), identity = %self.config.identity, "waiting to become the leader");
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Ok(())) => break,
                Ok(Err(holder)) => {
                    tracing::debug!(lease = %self.lease(), %holder, "another instance leads")
                }
                Err(err) => self.log_error("acquiring", &err),
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
        self.last_logged_error = None;
        self.metrics.set_leader(true);
        tracing::info!(lease = %self.lease(), identity = %self.config.identity, "became the leader");
    }

    /// Renews every retry period while leading; returns when leadership is lost.
    pub async fn hold(&mut self) -> LostLeadership {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            // A renewal that hangs must not outlive the deadline.
            let left = self.config.renew_deadline.saturating_sub(renewed.elapsed());
            let result = tokio::time::timeout(left, self.try_acquire_or_renew()).await;
            let error = match result {
                Ok(Ok(Ok(()))) => {
                    renewed = Instant::now();
                    self.last_logged_error = None;
                    continue;
                }
                Ok(Ok(Err(holder))) => {
                    self.metrics.set_leader(false);
                    return LostLeadership::Taken {
                        lease: self.lease(),
                        holder,
                    };
                }
                Ok(Err(err)) => {
                    self.log_error("renewing", &err);
                    err.to_string()
                }
                Err(_) => "the renewal timed out".to_string(),
            };
            if renewed.elapsed() >= self.config.renew_deadline {
                self.metrics.set_leader(false);
                return LostLeadership::NotRenewed {
                    lease: self.lease(),
                    deadline: self.config.renew_deadline,
                    last_error: error,
                };
            }
        }
    }

    /// Steps down (`--leader-election-release-on-cancel`): clears the holder, so that another candidate
    /// takes over at its next try instead of after the lease duration. Only after everything that
    /// writes has stopped.
    pub async fn release(&mut self) {
        self.metrics.set_leader(false);
        let lease = match self.api.get_opt(&self.config.name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(err) => {
                self.log_error("releasing", &err);
                return;
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let released = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                acquire_time: None,
                renew_time: Some(MicroTime(Timestamp::now())),
                ..spec
            }),
        };
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.lease(), "released the leader Lease"),
            Err(err) => self.log_error("releasing", &err),
        }
    }

    /// One try: `Ok(Ok(()))` when this candidate now holds the Lease, `Ok(Err(holder))` when another
    /// does, `Err` when the API server could not be asked or refused.
    async fn try_acquire_or_renew(&mut self) -> Result<Result<(), String>, kube::Error> {
        let current = match self.api.get_opt(&self.config.name).await {
            Ok(lease) => lease,
            Err(err) => return Err(self.count(err)),
        };
        let spec = current.as_ref().map(|l| l.spec.clone().unwrap_or_default());
        let expired = match (&spec, &self.observed) {
            (Some(spec), Some((seen, at))) if seen == spec => {
                let seconds = spec.lease_duration_seconds.unwrap_or(0).max(0) as u64;
                at.elapsed() >= Duration::from_secs(seconds)
            }
            (Some(spec), _) => {
                self.observed = Some((spec.clone(), Instant::now()));
                false
            }
            (None, _) => false,
        };
        let step = next_step(
            spec.as_ref(),
            &self.config.identity,
            expired,
            self.config.lease_duration,
            Timestamp::now(),
        );
        let written = match step {
            Step::Wait { holder } => return Ok(Err(holder)),
            Step::Create(spec) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Step::Write(spec) => {
                let mut lease = current.expect("a Write step follows a read Lease");
                lease.spec = Some(spec);
                // metadata.resourceVersion is the one read: a concurrent write makes this a 409.
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                self.observed = Some((lease.spec.unwrap_or_default(), Instant::now()));
                Ok(Ok(()))
            }
            // Someone else wrote first (or created it first): they hold it, for now.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Err("another candidate (write conflict)".into()))
            }
            Err(err) => Err(self.count(err)),
        }
    }

    fn count(&self, err: kube::Error) -> kube::Error {
        self.metrics.errors.get_or_create(&self.metrics.label).inc();
        err
    }

    /// Logs an error at warn the first time it is seen, and at debug while it repeats.
    fn log_error(&mut self, action: &str, err: &kube::Error) {
        let text = err.to_string();
        if self.last_logged_error.as_deref() == Some(text.as_str()) {
            tracing::debug!(lease = %self.lease(), error = %text, "leader election: {action} the Lease failed again");
        } else {
            tracing::warn!(lease = %self.lease(), error = %text, "leader election: {action} the Lease failed");
            self.last_logged_error = Some(text);
        }
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }
}

/// client-go waits `period * (1 + rand[0, 1.2))` between tries so candidates do not move in lockstep.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + rand::random::<f64>() * 1.2)
}
