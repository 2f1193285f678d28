//! The HTTP side of the controller on `--http-addr`: health probes, Prometheus metrics and, merged in
//! with [`router_with_api`], the drift REST API ([`crate::drift::api`]).

pub mod artifact_server;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub metrics: Metrics,
    ready: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Readiness flips to true once the controller can do its job (caches synced, servers bound).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// [`router`] plus another router's routes, e.g. `crate::drift::api::drift_api_router(..)`.
pub fn router_with_api(state: AppState, api: Router) -> Router {
    router(state).merge(api)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `app` behind a gate: while `open` is false every request gets 503. The artifact server of a
/// follower (leader election): it reconciles nothing, so it has nothing current to serve.
pub fn gated(app: Router, open: Arc<AtomicBool>, closed: &'static str) -> Router {
    app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let open = open.load(Ordering::SeqCst);
            async move {
                if open {
                    next.run(request).await
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, closed).into_response()
                }
            }
        },
    ))
}

/// Serves `app` on `listener` until `shutdown` resolves. Every connection gets TCP_NODELAY: a small
/// response on a kept-alive connection otherwise waits for the client's delayed ACK (Nagle), ~40 ms a
/// request (measured on the artifact server with one keep-alive client: about half the requests of a
/// 245-byte file took > 30 ms; with it, none).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::api::call;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::json;
    use tower::ServiceExt;

    #[tokio::test]
    async fn merges_into_the_main_router_and_serves_drift_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = crate::telemetry::Metrics::default();
        let drift = {
            let mut registry = metrics.registry.lock().unwrap();
            crate::drift::DriftHandles::open(
                &crate::drift::DriftDb::parse("", dir.path()).unwrap(),
                &mut registry,
            )
            .unwrap()
        };
        let app = router_with_api(
            AppState::new(metrics),
            crate::drift::api::drift_api_router(drift.api_state()),
        );
        let (s, _) = call(&app, "GET", "/healthz").await;
        assert_eq!(s, StatusCode::OK);
        let (s, body) = call(&app, "GET", "/api/v1/drift-records").await;
        assert_eq!((s, body["count"].clone()), (StatusCode::OK, json!(0)));
        let req = Request::builder()
            .uri("/metrics")
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let text = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&text).contains("confighub_drift_active 0"));
        assert!(dir.path().join(crate::drift::DATABASE_FILE).exists());
    }
}
