//! Fault mode (`hub --fault-rate 0.5 --fault-seed 7`): with probability `rate` an API request gets a
//! fault instead of (or on top of) its answer, so the controller's client can be soaked against the
//! ways a real ConfigHub, proxy or network fails: a 500, a 429 with `Retry-After`, a connection closed
//! without an answer, a body cut short, a body of garbage, or an answer held back longer than client
//! timeouts.
//!
//! The choice comes from a seeded ChaCha RNG drawn once per faultable request, so a seed gives the same
//! sequence of faults in request order. Served faults are counted per kind; `GET /admin/faults` reports
//! them and `PUT /admin/faults` changes the settings at run time (a soak turns faults off with
//! `{"rate":0}`; answers being held back are then released at once). Requests to `/admin/` and those
//! sending `x-hub-fault-exempt` (a test's own edits) are never faulted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{ApiError, Hub};

/// Header a client sends to be spared faults (the soak's unit edits).
pub const EXEMPT_HEADER: &str = "x-hub-fault-exempt";
/// Largest body the truncated and garbage faults read to rewrite it (the hub's own data cap).
const MAX_REWRITE: usize = super::MAX_DATA_BYTES + 1024 * 1024;

/// One way a request can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 500 with a JSON error body.
    ServerError,
    /// 429 with `Retry-After`.
    Throttled,
    /// The connection is closed before any byte of the answer.
    Reset,
    /// The real status and headers (`Content-Length` of the whole body), half the body, then the
    /// connection is closed.
    Truncated,
    /// The real status and headers, but the body replaced by bytes that are neither JSON nor YAML.
    Garbage,
    /// The real answer, after `delay` (or as soon as faults are turned off).
    Slow,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        FaultKind::ServerError,
        FaultKind::Throttled,
        FaultKind::Reset,
        FaultKind::Truncated,
        FaultKind::Garbage,
        FaultKind::Slow,
    ];

    fn index(self) -> usize {
        FaultKind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ServerError => "server_error",
            FaultKind::Throttled => "throttled",
            FaultKind::Reset => "reset",
            FaultKind::Truncated => "truncated",
            FaultKind::Garbage => "garbage",
            FaultKind::Slow => "slow",
        }
    }
}

/// What the fault mode does; the default serves no fault.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultSettings {
    /// Probability in [0, 1] that a faultable request gets a fault.
    pub rate: f64,
    pub seed: u64,
    /// How long a slow answer is held back.
    #[serde(rename = "delay_ms", serialize_with = "as_millis")]
    pub delay: Duration,
    /// The `Retry-After` (seconds) of a 429.
    pub retry_after: u64,
    /// The kinds drawn from, uniformly.
    pub kinds: Vec<FaultKind>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings {
            rate: 0.0,
            seed: 0,
            delay: Duration::from_secs(40),
            retry_after: 1,
            kinds: FaultKind::ALL.to_vec(),
        }
    }
}

/// `PUT /admin/faults`: the fields given replace the current ones; a `seed` restarts the sequence.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    pub rate: Option<f64>,
    pub seed: Option<u64>,
    pub delay_ms: Option<u64>,
    pub retry_after: Option<u64>,
    pub kinds: Option<Vec<FaultKind>>,
}

/// `GET /admin/faults`: the settings and what was served since the hub started.
#[derive(Debug, Serialize, Deserialize)]
pub struct FaultReport {
    pub rate: f64,
    pub seed: u64,
    pub delay_ms: u64,
    pub retry_after: u64,
    pub kinds: Vec<FaultKind>,
    /// Faultable requests seen (faulted or not).
    pub requests: u64,
    /// Faults served, by kind name.
    pub faults: std::collections::BTreeMap<String, u64>,
}

struct State_ {
    settings: FaultSettings,
    rng: ChaCha8Rng,
}

/// The fault mode's state, one per hub.
pub(crate) struct Faults {
    state: Mutex<State_>,
    requests: AtomicU64,
    served: [AtomicU64; 6],
    /// Wakes answers held back by [`FaultKind::Slow`] when the rate drops to 0.
    off: tokio::sync::Notify,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new(FaultSettings::default())
    }
}

impl Faults {
    pub(crate) fn new(settings: FaultSettings) -> Faults {
        Faults {
            state: Mutex::new(State_ {
                rng: ChaCha8Rng::seed_from_u64(settings.seed),
                settings,
            }),
            requests: AtomicU64::new(0),
            served: Default::default(),
            off: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates and applies `update`.
    pub(crate) fn update(&self, update: FaultUpdate) -> Result<(), String> {
        if let Some(rate) = update.rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!("rate {rate} is not within [0, 1]"));
        }
        if update.kinds.as_ref().is_some_and(Vec::is_empty) {
            return Err("kinds must name at least one fault".into());
        }
        let mut state = self.lock();
        let s = &mut state.settings;
        s.rate = update.rate.unwrap_or(s.rate);
        s.delay = update
            .delay_ms
            .map(Duration::from_millis)
            .unwrap_or(s.delay);
        s.retry_after = update.retry_after.unwrap_or(s.retry_after);
        if let Some(kinds) = update.kinds {
            s.kinds = kinds;
        }
        if let Some(seed) = update.seed {
            s.seed = seed;
            state.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let off = state.settings.rate == 0.0;
        drop(state);
        if off {
            self.off.notify_waiters();
        }
        Ok(())
    }

    pub(crate) fn report(&self) -> FaultReport {
        let s = self.lock().settings.clone();
        FaultReport {
            rate: s.rate,
            seed: s.seed,
            delay_ms: s.delay.as_millis() as u64,
            retry_after: s.retry_after,
            kinds: s.kinds,
            requests: self.requests.load(Ordering::Relaxed),
            faults: FaultKind::ALL
                .iter()
                .map(|k| {
                    let n = self.served[k.index()].load(Ordering::Relaxed);
                    (k.name().to_string(), n)
                })
                .collect(),
        }
    }

    /// Draws the fault of the next request (counted when one is chosen), with what serving it needs.
    /// Everything random about a request is drawn here, at once, so the sequence depends on the
    /// order requests arrive in, not on when concurrent answers finish.
    fn draw(&self) -> Option<Drawn> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let State_ { settings, rng } = &mut *state;
        let kind = choose(rng, settings.rate, &settings.kinds);
        let salt: u64 = rng.random();
        let kind = kind?;
        self.served[kind.index()].fetch_add(1, Ordering::Relaxed);
        Some(Drawn {
            kind,
            delay: settings.delay,
            retry_after: settings.retry_after,
            salt,
        })
    }
}

/// A fault drawn for one request.
#[derive(Debug)]
struct Drawn {
    kind: FaultKind,
    delay: Duration,
    retry_after: u64,
    /// Seeds the garbage bytes.
    salt: u64,
}

/// The fault for one request: two draws every time (so changing the rate does not shift which kind
/// later requests get), a fault when the first is under `rate`, its kind picked by the second.
pub(crate) fn choose(rng: &mut ChaCha8Rng, rate: f64, kinds: &[FaultKind]) -> Option<FaultKind> {
    let roll: f64 = rng.random();
    let pick = rng.random_range(0..kinds.len().max(1));
    (roll < rate).then(|| kinds.get(pick).copied()).flatten()
}

/// The middleware: draws a fault for every request but `/admin/` and exempt ones, and serves it.
pub(crate) async fn fault_layer(State(hub): State<Hub>, req: Request, next: Next) -> Response {
    let exempt =
        req.uri().path().starts_with("/admin/") || req.headers().contains_key(EXEMPT_HEADER);
    let drawn = if exempt { None } else { hub.faults().draw() };
    let Some(Drawn {
        kind,
        delay,
        retry_after,
        salt,
    }) = drawn
    else {
        return next.run(req).await;
    };
    tracing::debug!(fault = kind.name(), path = %req.uri().path(), "hub serving a fault");
    match kind {
        FaultKind::ServerError => ApiError::internal("hub fault: internal error").into_response(),
        FaultKind::Throttled => {
            let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "hub fault: slow down")
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
        FaultKind::Reset => cut(Bytes::new()),
        FaultKind::Truncated => {
            let (mut parts, body) = next.run(req).await.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_REWRITE).await else {
                return cut(Bytes::new());
            };
            let full = bytes.len();
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(full));
            let (_, half) = cut(bytes.slice(..full / 2)).into_parts();
            Response::from_parts(parts, half)
        }
        FaultKind::Garbage => {
            let (mut parts, _) = next.run(req).await.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(garbage(salt)))
        }
        FaultKind::Slow => {
            let off = hub.faults().off.notified();
            tokio::pin!(off);
            off.as_mut().enable();
            if hub.faults().lock().settings.rate > 0.0 {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = off => {}
                }
            }
            next.run(req).await
        }
    }
}

/// An answer whose body yields `head` and then fails, which makes hyper close the connection: with
/// nothing sent yet (an empty `head`), the client sees the connection closed with no answer at all.
fn cut(head: Bytes) -> Response {
    let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "hub fault: cut");
    let chunks: Vec<Result<Bytes, std::io::Error>> = if head.is_empty() {
        vec![Err(error)]
    } else {
        vec![Ok(head), Err(error)]
    };
    Response::new(Body::from_stream(futures::stream::iter(chunks)))
}

/// Bytes that are neither JSON nor a YAML mapping: a marker and random bytes seeded by `salt`.
fn garbage(salt: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(salt);
    let mut body = b"<!-- hub fault: garbage -->\n\x00".to_vec();
    let len = rng.random_range(16..256);
    body.extend((0..len).map(|_| rng.random::<u8>()));
    body
}

/// `GET /admin/faults`.
pub(crate) async fn get_faults(State(hub): State<Hub>) -> Json<FaultReport> {
    Json(hub.faults().report())
}

/// `PUT /admin/faults` with a [`FaultUpdate`] (JSON whatever the `Content-Type`, so a bare `curl -d`
/// works); answers the new report.
pub(crate) async fn put_faults(
    State(hub): State<Hub>,
    body: Bytes,
) -> Result<Json<FaultReport>, ApiError> {
    let update: FaultUpdate = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("fault settings: {e}")))?;
    hub.faults().update(update).map_err(ApiError::bad_request)?;
    let report = hub.faults().report();
    tracing::info!(
        rate = report.rate,
        seed = report.seed,
        "hub fault settings changed"
    );
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(seed: u64, rate: f64, kinds: &[FaultKind], n: usize) -> Vec<Option<FaultKind>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| choose(&mut rng, rate, kinds)).collect()
    }

    #[test]
    fn a_seed_gives_the_same_faults_and_another_seed_others() {
        let a = sequence(7, 0.5, &FaultKind::ALL, 500);
        assert_eq!(a, sequence(7, 0.5, &FaultKind::ALL, 500));
        assert_ne!(a, sequence(8, 0.5, &FaultKind::ALL, 500));
    }

    #[test]
    fn the_rate_decides_how_many_and_every_kind_comes_up_evenly() {
        assert!(
            sequence(1, 0.0, &FaultKind::ALL, 1000)
                .iter()
                .all(Option::is_none)
        );
        assert!(
            sequence(1, 1.0, &FaultKind::ALL, 1000)
                .iter()
                .all(Option::is_some)
        );
        let drawn = sequence(3, 0.5, &FaultKind::ALL, 60_000);
        let faults: Vec<FaultKind> = drawn.iter().flatten().copied().collect();
        assert!(
            (28_500..=31_500).contains(&faults.len()),
            "{}",
            faults.len()
        );
        for kind in FaultKind::ALL {
            let n = faults.iter().filter(|k| **k == kind).count();
            assert!((4_500..=5_500).contains(&n), "{kind:?}: {n}");
        }
    }

    #[test]
    fn only_the_kinds_asked_for_are_drawn() {
        let kinds = [FaultKind::Reset, FaultKind::Slow];
        let drawn = sequence(5, 1.0, &kinds, 1000);
        assert!(drawn.iter().flatten().all(|k| kinds.contains(k)));
        assert!(drawn.contains(&Some(FaultKind::Reset)) && drawn.contains(&Some(FaultKind::Slow)));
    }

    #[test]
    fn a_changed_rate_does_not_shift_the_kinds_drawn_later() {
        // Two draws per request whatever the rate: the kinds at rate 1 are those at rate 0.5 where
        // 0.5 drew a fault.
        let all = sequence(9, 1.0, &FaultKind::ALL, 300);
        let half = sequence(9, 0.5, &FaultKind::ALL, 300);
        for (h, a) in half.iter().zip(&all) {
            if h.is_some() {
                assert_eq!(h, a);
            }
        }
    }

    #[test]
    fn garbage_is_neither_json_nor_yaml_and_the_same_for_a_salt() {
        assert_eq!(garbage(3), garbage(3));
        assert_ne!(garbage(3), garbage(4));
        assert!(serde_json::from_slice::<serde_json::Value>(&garbage(3)).is_err());
        assert!(serde_yaml_ng::from_slice::<serde_yaml_ng::Mapping>(&garbage(3)).is_err());
    }

    #[test]
    fn updates_are_checked_and_counted_faults_reported() {
        let faults = Faults::default();
        assert!(faults.draw().is_none(), "no fault by default");
        assert!(
            faults
                .update(FaultUpdate {
                    rate: Some(1.5),
                    ..FaultUpdate::default()
                })
                .is_err()
        );
        assert!(
            faults
                .update(FaultUpdate {
                    kinds: Some(vec![]),
                    ..FaultUpdate::default()
                })
                .is_err()
        );
        faults
            .update(FaultUpdate {
                rate: Some(1.0),
                seed: Some(4),
                kinds: Some(vec![FaultKind::Throttled]),
                retry_after: Some(3),
                ..FaultUpdate::default()
            })
            .unwrap();
        assert_eq!(
            faults.draw().map(|d| (d.kind, d.retry_after)),
            Some((FaultKind::Throttled, 3))
        );
        let report = faults.report();
        assert_eq!((report.requests, report.faults["throttled"]), (2, 1));
        assert_eq!(report.faults["reset"], 0);
    }
}
