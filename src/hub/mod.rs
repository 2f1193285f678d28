//! A local ConfigHub-compatible hub: the API subset the controller uses, persisted in SQLite.
//!
//! It exists so the controller can be developed and tested end to end without a ConfigHub account.
//! Shapes, status codes and ETag rules follow `shared/confighub-api.md`; `docs/confighub.md` lists
//! what is supported and where it deliberately differs.

mod auth;
mod bulk;
pub mod cli;
mod client_ops;
pub(crate) mod entities;
mod error;
mod extras;
pub mod faults;
pub mod import;
mod middleware;
mod revisions;
mod store;
mod targets;
mod units;
pub mod validate;
mod vet;
pub mod where_parser;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use rusqlite::Connection;

pub use error::ApiError;

use crate::confighub::Token;

/// Largest Unit data the hub accepts (ConfigHub's documented 64 MiB cap).
pub const MAX_DATA_BYTES: usize = 64 * 1024 * 1024;
/// The ConfigHub version the hub claims (`ConfigHub-Version`, `ApiInfo.Version`).
pub const CONFIGHUB_VERSION: &str = "v0.4.21";

/// Where the hub keeps its database and whom it lets in.
#[derive(Clone)]
pub struct HubConfig {
    pub data_dir: PathBuf,
    /// Static bearer tokens, accepted until the hub stops.
    pub tokens: Vec<String>,
    /// Worker IDs and their secrets, exchanged at `POST /auth/worker` for access tokens.
    pub workers: Vec<(String, Token)>,
    /// How long issued access tokens last (`None`: as long as the hub runs). Static tokens never
    /// expire.
    pub token_ttl: Option<Duration>,
}

impl HubConfig {
    /// A hub accepting `tokens`, with no workers.
    pub fn new(data_dir: PathBuf, tokens: Vec<String>) -> HubConfig {
        HubConfig {
            data_dir,
            tokens,
            workers: Vec::new(),
            token_ttl: None,
        }
    }
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let workers: Vec<&str> = self.workers.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("HubConfig")
            .field("data_dir", &self.data_dir)
            .field("tokens", &format_args!("[{} x ***]", self.tokens.len()))
            .field("workers", &workers)
            .field("token_ttl", &self.token_ttl)
            .finish()
    }
}

/// Fixed identities of this hub, created once and persisted.
#[derive(Clone, Debug)]
pub(crate) struct Ids {
    pub org_id: String,
    pub user_id: String,
}

struct Inner {
    conn: Mutex<Connection>,
    tokens: Vec<String>,
    workers: Vec<(String, Token)>,
    token_ttl: Option<Duration>,
    issued: auth::Issued,
    ids: Ids,
    faults: faults::Faults,
}

/// A running hub's state; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// Opens (or creates) the database under `config.data_dir`.
    pub fn open(config: HubConfig) -> anyhow::Result<Hub> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let path = config.data_dir.join("hub.sqlite3");
        let conn = store::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let new_id = || uuid::Uuid::new_v4().to_string();
        let ids = Ids {
            org_id: store::meta_or_init(&conn, "organization_id", new_id)?,
            user_id: store::meta_or_init(&conn, "user_id", new_id)?,
        };
        Ok(Hub {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                tokens: config
                    .tokens
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect(),
                workers: config
                    .workers
                    .into_iter()
                    .filter(|(id, secret)| !id.is_empty() && !secret.expose().is_empty())
                    .collect(),
                token_ttl: config.token_ttl,
                issued: auth::Issued::default(),
                ids,
                faults: faults::Faults::default(),
            }),
        })
    }

    /// A configured static token, or an access token the hub issued that has not expired.
    pub(crate) fn accepts_token(&self, token: &str) -> bool {
        self.inner.tokens.iter().any(|t| t == token) || self.inner.issued.accepts(token)
    }

    pub(crate) fn accepts_worker(&self, id: &str, secret: &str) -> bool {
        self.inner
            .workers
            .iter()
            .any(|(i, s)| i == id && s.expose() == secret)
    }

    pub(crate) fn issued(&self) -> &auth::Issued {
        &self.inner.issued
    }

    pub(crate) fn token_ttl(&self) -> Option<Duration> {
        self.inner.token_ttl
    }

    pub(crate) fn faults(&self) -> &faults::Faults {
        &self.inner.faults
    }

    /// Changes the fault mode (see [`faults`]); the hub starts with none.
    pub fn set_faults(&self, update: faults::FaultUpdate) -> Result<(), String> {
        self.inner.faults.update(update)
    }

    pub(crate) fn ids(&self) -> &Ids {
        &self.inner.ids
    }

    /// Runs `f` against the database on the blocking pool, so SQLite never stalls the async runtime.
    /// The whole closure runs in one transaction: either every write lands or none does.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &Ids) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction()?;
            let out = f(&tx, &inner.ids)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| ApiError::internal(format!("hub worker failed: {e}")))?
    }
}

/// The hub's routes under `/api`, with auth, response headers and error shaping applied.
pub fn router(hub: Hub) -> Router {
    let api = Router::new()
        .route("/info", get(extras::info))
        .route("/me", get(extras::me))
        .route(
            "/space",
            get(entities::list_spaces).post(entities::create_space),
        )
        .route(
            "/space/{space_id}",
            get(entities::get_space).patch(targets::patch_space),
        )
        .route(
            "/space/{space_id}/target",
            get(targets::list_targets).post(targets::create_target),
        )
        .route(
            "/space/{space_id}/target/{target_id}",
            get(targets::get_target),
        )
        .route(
            "/space/{space_id}/unit",
            get(units::list_units).post(units::create_unit),
        )
        .route(
            "/space/{space_id}/unit/{unit_id}",
            get(units::get_unit)
                .put(units::update_unit)
                .patch(units::patch_unit)
                .delete(units::delete_unit),
        )
        .route(
            "/space/{space_id}/unit/{unit_id}/data",
            get(revisions::download_unit_data).put(revisions::upload_unit_data),
        )
        .route(
            "/space/{space_id}/unit/{unit_id}/revision",
            get(revisions::list_revisions),
        )
        .route(
            "/space/{space_id}/unit/{unit_id}/revision/{revision_id}",
            get(revisions::get_revision),
        )
        .route(
            "/space/{space_id}/unit/{unit_id}/revision/{revision_id}/data",
            get(revisions::download_revision_data),
        )
        .route(
            "/space/{space_id}/change_set",
            get(entities::list_change_sets).post(entities::create_change_set),
        )
        .route(
            "/space/{space_id}/change_set/{change_set_id}",
            get(entities::get_change_set),
        )
        .route("/space/{space_id}/release", post(extras::publish_release))
        .route("/unit_data", get(bulk::search_unit_data))
        .route("/revision_data", get(bulk::search_revision_data));
    Router::new()
        .nest("/api", api)
        .route("/auth/worker", post(auth::worker_login))
        .route(
            "/admin/faults",
            get(faults::get_faults).put(faults::put_faults),
        )
        .fallback(|| async { ApiError::not_found("No such API route.") })
        .layer(DefaultBodyLimit::max(MAX_DATA_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            middleware::api_layer,
        ))
        // Outermost, so a fault replaces or cuts the whole answer, headers included.
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            faults::fault_layer,
        ))
        .with_state(hub)
}

/// How long connections still open at shutdown may finish their requests (TLS serving).
const TLS_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves the hub over TLS on `listener` with the PEM certificate chain `cert_pem` and its private
/// key `key_pem` (HTTP/1.1 and HTTP/2 by ALPN) until `shutdown` resolves.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    hub: Hub,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem, key_pem).await?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(TLS_SHUTDOWN_GRACE));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, config)?
        .handle(handle)
        .serve(router(hub).into_make_service())
        .await
}

/// Serves the hub on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Hub,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(hub))
        .with_graceful_shutdown(shutdown)
        .await
}
