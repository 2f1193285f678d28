//! Worker credentials: the hub's `POST /auth/worker` and expiring access tokens (`--token-ttl`), and
//! the client's exchange, renewal before expiry, renewal once on a 401, and typed refusals — with the
//! secret and the access token never in `Debug` or errors.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use confighub_source_controller::confighub::{
    AUTH_WORKER_OPERATION, Client, Credentials, Error, RequestObserver, Token,
};
use confighub_source_controller::hub::HubConfig;

use crate::support::{TOKEN, TestHub, fast_options, raw};

const WORKER: &str = "worker-7d1c";
const SECRET: &str = "worker-secret-91ab3f";

/// Counts requests by (operation, code), as the controller's metric does.
#[derive(Default)]
struct Seen(Mutex<BTreeMap<(String, String), u64>>);

impl RequestObserver for Seen {
    fn observe(&self, operation: &'static str, code: &str) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((operation.to_string(), code.to_string()))
            .or_default() += 1;
    }
}

impl Seen {
    fn count(&self, operation: &str, code: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(&(operation.to_string(), code.to_string()))
            .copied()
            .unwrap_or_default()
    }
}

fn config(dir: &std::path::Path, ttl: Option<Duration>) -> HubConfig {
    HubConfig {
        data_dir: dir.to_path_buf(),
        tokens: vec![TOKEN.to_string()],
        workers: vec![(WORKER.to_string(), Token::new(SECRET))],
        token_ttl: ttl,
    }
}

fn worker_client(origin: &str, secret: &str) -> (Client, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let client = Client::with_credentials(
        origin,
        Some(Credentials::worker(WORKER, secret)),
        fast_options(),
    )
    .unwrap()
    .observed(seen.clone());
    (client, seen)
}

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT-shaped token");
    let mut bytes = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {payload}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_exchanges_worker_credentials_for_expiring_access_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_with(config(dir.path(), Some(Duration::from_secs(2)))).await;
    let http = raw();
    let login = |secret: &'static str| {
        http.post(format!("{}/auth/worker", hub.origin))
            .json(&serde_json::json!({"worker_id": WORKER, "worker_secret": secret}))
            .send()
    };

    let ok = login(SECRET).await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    assert!(!body["organization_id"].as_str().unwrap().is_empty());
    let c = claims(&token);
    assert_eq!(c["sub"], WORKER);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        2,
        "{c}"
    );

    let me = || http.get(hub.api("/me")).bearer_auth(&token).send();
    assert_eq!(me().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = me().await.unwrap();
    assert_eq!(expired.status(), 401, "an expired access token is refused");
    let body: serde_json::Value = expired.json().await.unwrap();
    assert_eq!(body["Code"], "401");
    assert!(body["Message"].as_str().is_some());
    // Static tokens never expire.
    let stat = http
        .get(hub.api("/me"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stat.status(), 200);

    let wrong = login("not-the-secret").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let text = wrong.text().await.unwrap();
    assert!(text.contains(r#""Code":"401""#), "{text}");
    assert!(!text.contains("not-the-secret"));
    let garbage = http
        .post(format!("{}/auth/worker", hub.origin))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_exchanges_once_and_shares_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_with(config(dir.path(), None)).await;
    let (client, seen) = worker_client(&hub.origin, SECRET);
    // Concurrent first calls wait for one exchange.
    let calls: Vec<_> = (0..8).map(|_| client.me()).collect();
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    client.list_spaces(None).await.unwrap();
    assert_eq!(client.stats().token_exchanges, 1);
    assert_eq!(seen.count(AUTH_WORKER_OPERATION, "200"), 1);
    assert_eq!(seen.count("GetMe", "200"), 8);
    assert_eq!(seen.count("ListSpaces", "200"), 1);
    let debug = format!("{client:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains(WORKER));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_renews_before_the_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_with(config(dir.path(), Some(Duration::from_secs(2)))).await;
    let (client, seen) = worker_client(&hub.origin, SECRET);
    // Calls every 300 ms for three token lifetimes: renewed at 80% (1.6 s), never refused.
    for _ in 0..20 {
        client.me().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let exchanges = client.stats().token_exchanges;
    assert!((3..=6).contains(&exchanges), "{exchanges} exchanges");
    assert_eq!(seen.count("GetMe", "401"), 0, "no call was refused");
    assert_eq!(seen.count("GetMe", "200"), 20);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_renewed_once_and_the_call_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_with(config(dir.path(), None)).await;
    let (client, seen) = worker_client(&hub.origin, SECRET);
    client.me().await.unwrap();
    // A restarted hub has forgotten the tokens it issued: the cached one now gets 401.
    let origin = hub.origin.clone();
    hub.stop().await;
    let port: u16 = origin.rsplit(':').next().unwrap().parse().unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let hub = confighub_source_controller::hub::Hub::open(config(dir.path(), None)).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(confighub_source_controller::hub::serve(
        listener,
        hub,
        async move {
            let _ = rx.await;
        },
    ));

    client.me().await.expect("renewed after one 401");
    assert_eq!(seen.count("GetMe", "401"), 1);
    assert_eq!(seen.count(AUTH_WORKER_OPERATION, "200"), 2);
    assert_eq!(client.stats().token_exchanges, 2);
    let _ = tx.send(());
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_that_persists_after_renewal_is_returned() {
    // A server that issues tokens but refuses every one of them.
    let app = Router::new()
        .route(
            "/auth/worker",
            post(|| async { axum::Json(serde_json::json!({"access_token": "opaque-token"})) }),
        )
        .route(
            "/api/me",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    r#"{"Code":"401","Message":"token revoked"}"#,
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (client, seen) = worker_client(&origin, SECRET);
    let err = client.me().await.unwrap_err();
    assert!(
        err.is_unauthorized() && !err.is_credentials_rejected(),
        "{err}"
    );
    assert_eq!(seen.count("GetMe", "401"), 2, "one renewal, one retry");
    assert_eq!(seen.count(AUTH_WORKER_OPERATION, "200"), 2);
    assert!(!err.to_string().contains("opaque-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_worker_secret_is_a_typed_error_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_with(config(dir.path(), None)).await;
    let (client, seen) = worker_client(&hub.origin, "wrong-secret-5e2d");
    let err = client.list_spaces(None).await.unwrap_err();
    assert!(
        matches!(&err, Error::CredentialsRejected { status: 401, worker_id, .. } if worker_id == WORKER),
        "{err:?}"
    );
    assert!(err.is_unauthorized());
    assert!(!err.is_transient());
    let text = format!("{err} {err:?} {client:?}");
    assert!(!text.contains("wrong-secret-5e2d"), "{text}");
    assert!(text.contains(WORKER) && text.contains("401"), "{text}");
    assert_eq!(seen.count(AUTH_WORKER_OPERATION, "401"), 1, "not retried");
    assert_eq!(
        seen.count("ListSpaces", "200") + seen.count("ListSpaces", "401"),
        0
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_token_is_not_exchanged_or_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_with(config(dir.path(), Some(Duration::from_secs(1)))).await;
    let seen = Arc::new(Seen::default());
    let bad = Client::with_credentials(
        &hub.origin,
        Some(Credentials::token("bad-static-token")),
        fast_options(),
    )
    .unwrap()
    .observed(seen.clone());
    let err = bad.me().await.unwrap_err();
    assert!(err.is_unauthorized());
    assert_eq!(
        seen.count("GetMe", "401"),
        1,
        "a static token is tried once"
    );
    assert_eq!(seen.count(AUTH_WORKER_OPERATION, "200"), 0);
    assert!(!format!("{err} {bad:?}").contains("bad-static-token"));
    hub.stop().await;
}
