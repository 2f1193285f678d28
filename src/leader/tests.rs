use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

use super::args::validate_timing;
use super::*;

const ME: &str = "pod-a_1";
const LEASE: Duration = Duration::from_secs(15);

fn held_by(holder: Option<&str>, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: holder.map(str::to_string),
        lease_duration_seconds: Some(15),
        acquire_time: Some(MicroTime(Timestamp::from_second(1_000).unwrap())),
        renew_time: Some(MicroTime(Timestamp::from_second(1_010).unwrap())),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(2_000).unwrap()
}

#[test]
fn no_lease_is_created_held_by_this_candidate() {
    let Step::Create(spec) = next_step(None, ME, false, LEASE, now()) else {
        panic!("expected Create");
    };
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert_eq!(spec.lease_transitions, Some(0));
    assert_eq!(spec.acquire_time, Some(MicroTime(now())));
    assert_eq!(spec.renew_time, Some(MicroTime(now())));
}

#[test]
fn a_live_lease_of_another_holder_is_left_alone() {
    let current = held_by(Some("pod-b_2"), 3);
    assert_eq!(
        next_step(Some(&current), ME, false, LEASE, now()),
        Step::Wait {
            holder: "pod-b_2".into()
        }
    );
}

#[test]
fn an_expired_lease_is_taken_over_counting_a_transition() {
    let current = held_by(Some("pod-b_2"), 3);
    let Step::Write(spec) = next_step(Some(&current), ME, true, LEASE, now()) else {
        panic!("expected Write");
    };
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.lease_transitions, Some(4));
    assert_eq!(spec.acquire_time, Some(MicroTime(now())));
}

#[test]
fn a_released_lease_is_taken_at_once() {
    let current = held_by(None, 3);
    let Step::Write(spec) = next_step(Some(&current), ME, false, LEASE, now()) else {
        panic!("expected Write");
    };
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.lease_transitions, Some(4));
}

#[test]
fn the_holder_renews_keeping_its_acquire_time_and_transitions() {
    let current = held_by(Some(ME), 3);
    let Step::Write(spec) = next_step(Some(&current), ME, false, LEASE, now()) else {
        panic!("expected Write");
    };
    assert_eq!(spec.lease_transitions, Some(3));
    assert_eq!(spec.acquire_time, current.acquire_time);
    assert_eq!(spec.renew_time, Some(MicroTime(now())));
}

#[test]
fn timing_follows_client_go_rules() {
    let s = Duration::from_secs;
    assert!(validate_timing(s(35), s(30), s(5)).is_ok());
    assert!(validate_timing(s(5), s(3), s(1)).is_ok());
    let err = validate_timing(s(30), s(30), s(5)).unwrap_err();
    assert!(err.contains("--leader-election-lease-duration"), "{err}");
    let err = validate_timing(s(35), s(6), s(5)).unwrap_err();
    assert!(err.contains("--leader-election-retry-period"), "{err}");
    assert!(validate_timing(Duration::from_millis(500), s(0), s(0)).is_err());
}

#[test]
fn flags_parse_with_flux_names_and_defaults() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        le: LeaderElectionArgs,
    }
    let cli = Cli::parse_from(["x"]);
    assert!(!cli.le.enable);
    assert!(cli.le.release_on_cancel);
    assert_eq!(cli.le.lease_duration, Duration::from_secs(35));
    assert_eq!(cli.le.renew_deadline, Duration::from_secs(30));
    assert_eq!(cli.le.retry_period, Duration::from_secs(5));
    assert_eq!(cli.le.config(), Ok(None));

    let cli = Cli::parse_from([
        "x",
        "--leader-elect",
        "--leader-election-release-on-cancel=false",
        "--leader-election-lease-duration=6s",
        "--leader-election-renew-deadline=4s",
        "--leader-election-retry-period=1s",
        "--leader-election-namespace=flux-system",
        "--leader-election-id=my-lease",
    ]);
    let config = cli.le.config().unwrap().unwrap();
    assert_eq!(config.namespace, "flux-system");
    assert_eq!(config.name, "my-lease");
    assert!(!config.release_on_cancel);
    assert_eq!(config.lease_duration, Duration::from_secs(6));
    assert!(config.identity.contains('_'));
    assert!(Cli::try_parse_from(["x", "--enable-leader-election"]).is_ok());
    let bad = Cli::parse_from([
        "x",
        "--leader-elect",
        "--leader-election-namespace=ns",
        "--leader-election-renew-deadline=40s",
    ]);
    assert!(bad.le.config().unwrap_err().contains("renew-deadline"));
}

#[test]
fn metrics_say_whether_this_instance_leads() {
    let mut registry = Registry::default();
    let metrics = ElectionMetrics::register(&mut registry, "my-lease");
    let render = |registry: &Registry| {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    };
    assert!(render(&registry).contains("leader_election_master_status{name=\"my-lease\"} 0"));
    metrics.set_leader(true);
    assert!(render(&registry).contains("leader_election_master_status{name=\"my-lease\"} 1"));
}
