//! A local ConfigHub-compatible hub: the API subset the controller uses, persisted in SQLite.
//!
//! It exists so the controller can be developed and tested end to end without a ConfigHub account.
//! Shapes, status codes and ETag rules follow `shared/confighub-api.md`; `docs/confighub.md` lists
//! what is supported and where it deliberately differs.

pub mod cli;
mod entities;
mod error;
mod extras;
pub mod import;
mod middleware;
mod revisions;
mod store;
mod units;
pub mod validate;
pub mod where_parser;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use rusqlite::Connection;

pub use error::ApiError;

/// Largest Unit data the hub accepts (ConfigHub's documented 64 MiB cap).
pub const MAX_DATA_BYTES: usize = 64 * 1024 * 1024;
/// The ConfigHub version the hub claims (`ConfigHub-Version`, `ApiInfo.Version`).
pub const CONFIGHUB_VERSION: &str = "v0.4.21";

/// Where the hub keeps its database and which bearer tokens it accepts.
#[derive(Clone)]
pub struct HubConfig {
    pub data_dir: PathBuf,
    pub tokens: Vec<String>,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("data_dir", &self.data_dir)
            .field("tokens", &format_args!("[{} x ***]", self.tokens.len()))
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
    ids: Ids,
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
                ids,
            }),
        })
    }

    pub(crate) fn accepts_token(&self, token: &str) -> bool {
        self.inner.tokens.iter().any(|t| t == token)
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
        .route("/space/{space_id}", get(entities::get_space))
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
        .route("/space/{space_id}/release", post(extras::publish_release));
    Router::new()
        .nest("/api", api)
        .fallback(|| async { ApiError::not_found("No such API route.") })
        .layer(DefaultBodyLimit::max(MAX_DATA_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            middleware::api_layer,
        ))
        .with_state(hub)
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
