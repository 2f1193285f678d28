//! The leader election flags, named and defaulted as fluxcd/pkg's `runtime/leaderelection` names them,
//! plus `--leader-elect` (controller-runtime's and kube-controller-manager's name) as an alias.

use std::time::Duration;

use super::ElectionConfig;

/// Where a pod's ServiceAccount namespace is mounted.
const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

#[derive(clap::Args, Debug, Clone)]
pub struct LeaderElectionArgs {
    /// Enable leader election: of several instances only the leader reconciles, remediates drift and
    /// serves artifacts.
    #[arg(long = "enable-leader-election", visible_alias = "leader-elect")]
    pub enable: bool,
    /// Step down on shutdown (SIGTERM), so another instance takes over at once instead of after the
    /// lease duration.
    #[arg(long = "leader-election-release-on-cancel", default_value_t = true,
          num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub release_on_cancel: bool,
    /// How long a candidate waits, after it last saw the Lease change, before taking it over.
    #[arg(long = "leader-election-lease-duration", default_value = "35s", value_parser = duration)]
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up (and exits).
    #[arg(long = "leader-election-renew-deadline", default_value = "30s", value_parser = duration)]
    pub renew_deadline: Duration,
    /// How long candidates wait between tries.
    #[arg(long = "leader-election-retry-period", default_value = "5s", value_parser = duration)]
    pub retry_period: Duration,
    /// Namespace of the Lease (default: the pod's own namespace; required outside a cluster).
    #[arg(long = "leader-election-namespace", default_value = "")]
    pub namespace: String,
    /// Name of the Lease.
    #[arg(
        long = "leader-election-id",
        default_value = "confighub-source-controller-leader-election"
    )]
    pub id: String,
}

fn duration(text: &str) -> Result<Duration, String> {
    crate::source::duration::parse_duration(text)
}

impl LeaderElectionArgs {
    /// The election's configuration, `None` when it is off. Errors name the flag to fix.
    pub fn config(&self) -> Result<Option<ElectionConfig>, String> {
        if !self.enable {
            return Ok(None);
        }
        let namespace = if self.namespace.is_empty() {
            std::fs::read_to_string(POD_NAMESPACE_FILE)
                .map(|n| n.trim().to_string())
                .ok()
                .filter(|n| !n.is_empty())
                .ok_or("not running in a pod: set --leader-election-namespace")?
        } else {
            self.namespace.clone()
        };
        validate_timing(self.lease_duration, self.renew_deadline, self.retry_period)?;
        Ok(Some(ElectionConfig {
            namespace,
            name: self.id.clone(),
            identity: identity(),
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
            release_on_cancel: self.release_on_cancel,
        }))
    }
}

/// client-go's checks: a leader must give up (renew deadline) before others may take over (lease
/// duration), and must get more than one try (with jitter) within its deadline.
pub(crate) fn validate_timing(
    lease: Duration,
    renew: Duration,
    retry: Duration,
) -> Result<(), String> {
    if lease < Duration::from_secs(1) {
        return Err("--leader-election-lease-duration must be at least 1s".into());
    }
    if lease <= renew {
        return Err(format!(
            "--leader-election-lease-duration ({lease:?}) must be greater than --leader-election-renew-deadline ({renew:?})"
        ));
    }
    if retry.is_zero() || renew <= retry.mul_f64(1.2) {
        return Err(format!(
            "--leader-election-renew-deadline ({renew:?}) must be greater than 1.2 x --leader-election-retry-period ({retry:?})"
        ));
    }
    Ok(())
}

/// `<hostname>_<uuid>`, as controller-runtime names candidates: the pod name says who, the UUID tells a
/// restarted container from its previous life.
fn identity() -> String {
    format!("{}_{}", crate::process::hostname(), uuid::Uuid::new_v4())
}
