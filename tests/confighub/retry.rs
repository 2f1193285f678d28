//! Retry, timeout and decoding behaviour against tiny scripted servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use confighub_source_controller::confighub::{Client, ClientOptions, Error, SpaceCreate};
use tokio::io::AsyncWriteExt;

use crate::support::fast_options;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    origin
}

fn counted<F, R>(hits: &Arc<AtomicUsize>, respond: F) -> Router
where
    F: Fn(usize) -> R + Clone + Send + Sync + 'static,
    R: IntoResponse,
{
    let hits = hits.clone();
    let handler = move || {
        let hits = hits.clone();
        let respond = respond.clone();
        async move { respond(hits.fetch_add(1, Ordering::SeqCst)).into_response() }
    };
    Router::new()
        .route("/api/info", get(handler.clone()))
        .route("/api/space", axum::routing::post(handler))
}

fn client(origin: &str, options: ClientOptions) -> Client {
    Client::new(origin, Some("retry-token".into()), options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_honours_retry_after_then_succeeds() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = counted(&hits, |n| {
        if n == 0 {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "1")],
                r#"{"Code":"503","Message":"busy"}"#,
            )
                .into_response()
        } else {
            axum::Json(serde_json::json!({"Version":"v9.9.9"})).into_response()
        }
    });
    let origin = serve(app).await;
    let c = client(&origin, fast_options());
    let started = Instant::now();
    assert_eq!(c.info().await.unwrap().version, "v9.9.9");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // The backoff alone is at most 50 ms here, so waiting ~1 s proves Retry-After was honoured.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.stats().requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_never_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = counted(&hits, |_| {
        (
            StatusCode::BAD_REQUEST,
            [("x-request-id", "req-400")],
            r#"{"Code":"400","Message":"malformed where"}"#,
        )
    });
    let origin = serve(app).await;
    let err = client(&origin, fast_options()).info().await.unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    match &err {
        Error::Api {
            status,
            code,
            message,
            request_id,
            operation,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code, "400");
            assert_eq!(message, "malformed where");
            assert_eq!(request_id.as_deref(), Some("req-400"));
            assert_eq!(*operation, "GetInfo");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert!(!err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_within_budget_but_not_for_post() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = counted(&hits, |_| {
        (StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>")
    });
    let origin = serve(app).await;
    let c = client(&origin, fast_options());
    let err = c.info().await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(
        err.to_string().contains("oops"),
        "non-JSON error bodies are kept as text: {err}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3, "1 try + max_retries 2");

    hits.store(0, Ordering::SeqCst);
    let req = SpaceCreate {
        slug: "x".into(),
        ..Default::default()
    };
    assert_eq!(
        c.create_space(&req, false).await.unwrap_err().status(),
        Some(500)
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a POST the server may have applied is not repeated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_then_reported_as_transport_errors() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let accepts = Arc::new(AtomicUsize::new(0));
    let counter = accepts.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let err = client(&origin, fast_options()).info().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.metric_label(), "transport");
    assert_eq!(accepts.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_undecodable_bodies_are_errors_not_panics() {
    let app = Router::new().route("/api/info", get(|| async { "this is not json" }));
    let origin = serve(app).await;
    let err = client(&origin, fast_options()).info().await.unwrap_err();
    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
    assert_eq!(err.metric_label(), "decode");

    // Promises 100 bytes, sends 10, hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ncontent-type: application/json\r\n\r\n{\"Version\"")
                .await;
            let _ = socket.shutdown().await;
        }
    });
    let mut options = fast_options();
    options.max_retries = 0;
    let err = client(&origin, options).info().await.unwrap_err();
    assert!(
        matches!(err, Error::Transport { .. } | Error::Decode { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_servers_time_out() {
    let app = Router::new().route(
        "/api/info",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "{}"
        }),
    );
    let origin = serve(app).await;
    let options = ClientOptions {
        timeout: Duration::from_millis(200),
        max_retries: 0,
        ..Default::default()
    };
    let started = Instant::now();
    let err = client(&origin, options).info().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_responses_are_refused_without_reading_them_whole() {
    let options = || ClientOptions {
        max_response_bytes: 1024,
        ..fast_options()
    };
    // Declared too large (Content-Length): refused before reading, and not retried.
    let hits = Arc::new(AtomicUsize::new(0));
    let big = format!("{{\"Version\":\"{}\"}}", "v".repeat(4096));
    let app = counted(&hits, move |_| {
        (
            [("x-request-id", "req-big")],
            axum::Json(serde_json::json!({"Version": big.clone()})),
        )
    });
    let origin = serve(app).await;
    let err = client(&origin, options()).info().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                limit: 1024,
                status: 200,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.operation(), Some("GetInfo"));
    assert_eq!(err.request_id(), Some("req-big"));
    assert_eq!(err.metric_label(), "too_large");
    assert!(err.to_string().contains("larger than 1024 bytes"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "not retried");

    // No length declared (chunked) and endless: reading stops at the limit.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request before answering, as a server does.
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n";
                if socket.write_all(head).await.is_err() {
                    return;
                }
                let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let err = client(&origin, options()).info().await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    // Within the limit, everything still works.
    let app = Router::new().route(
        "/api/info",
        get(|| async { axum::Json(serde_json::json!({"Version": "v1"})) }),
    );
    let origin = serve(app).await;
    assert_eq!(
        client(&origin, options()).info().await.unwrap().version,
        "v1"
    );
}

/// `--confighub-concurrent-requests`: clients sharing one limit (every repository's client in the
/// controller) never have more requests in flight together than it allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_a_limit_never_exceed_it_together() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    // Each request waits for a partner: the limit of two must let pairs through, and a third never.
    let pairs = Arc::new(tokio::sync::Barrier::new(2));
    let handler = {
        let (in_flight, most) = (in_flight.clone(), most.clone());
        move || {
            let (in_flight, most, pairs) = (in_flight.clone(), most.clone(), pairs.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                pairs.wait().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"Version": "v1"}))
            }
        }
    };
    let origin = serve(Router::new().route("/api/info", get(handler))).await;
    let options = ClientOptions {
        in_flight: Some(Arc::new(tokio::sync::Semaphore::new(2))),
        ..fast_options()
    };
    let clients = [client(&origin, options.clone()), client(&origin, options)];
    let calls = (0..8).map(|i| {
        let c = clients[i % 2].clone();
        async move { c.info().await.unwrap() }
    });
    futures::future::join_all(calls).await;
    assert_eq!(most.load(Ordering::SeqCst), 2);
}
