//! The drift REST API under `/api/v1` (documented in docs/api.md). JSON everywhere; errors are
//! `{"message": ...}` with 400 for bad query values, 404 for unknown ids and paths, 503 while the record
//! database cannot be reached, 500 for other storage failures. Store calls run on the blocking pool.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;

use super::record::{DriftRecord, RecordStatus};
use super::resources::{ResourceQuery, ResourceState, ResourceView};
use super::store::{RecordFilter, RecordStore, StoreError};
use super::types::Severity;

/// What the API needs; cheap to clone.
#[derive(Clone)]
pub struct DriftApiState {
    pub store: Arc<RecordStore>,
    pub resources: Arc<dyn ResourceView>,
    /// Notified by `POST /api/v1/analyze`. The controller waits on it (`notified().await`) and runs a
    /// full comparison; requests made while one is pending coalesce into one.
    pub analyze: Arc<Notify>,
}

impl DriftApiState {
    pub fn new(
        store: Arc<RecordStore>,
        resources: Arc<dyn ResourceView>,
        analyze: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            resources,
            analyze,
        }
    }
}

pub fn drift_api_router(state: DriftApiState) -> Router {
    Router::new()
        .route("/api/v1/drift-records", get(list_records))
        .route("/api/v1/drift-records/active", get(list_active))
        .route("/api/v1/drift-records/resolved", get(list_resolved))
        .route("/api/v1/drift-records/{id}", get(get_record))
        .route("/api/v1/statistics", get(statistics))
        .route("/api/v1/analyze", post(analyze))
        .route("/api/v1/resources", get(resources))
        .route("/api/{*rest}", get(not_found).post(not_found))
        .with_state(state)
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The store logs an unreachable database itself (once, then with backoff).
        if e.is_unavailable() {
            return Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
            };
        }
        tracing::error!(error = %e, "drift API: store failure");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "message": self.message }))).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Serialize)]
struct RecordList {
    count: usize,
    records: Vec<DriftRecord>,
}

#[derive(Serialize)]
struct ResourceList {
    count: usize,
    resources: Vec<ResourceState>,
}

async fn blocking<T: Send + 'static>(
    store: &Arc<RecordStore>,
    f: impl FnOnce(&RecordStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("drift API task failed: {e}"),
        })?
        .map_err(ApiError::from)
}

/// Parses `namespace`, `status`, `severity` and `limit`; other parameters are ignored.
fn filter(q: &HashMap<String, String>) -> Result<RecordFilter, ApiError> {
    let nonempty = |k: &str| q.get(k).filter(|v| !v.is_empty());
    let status = nonempty("status")
        .map(|s| {
            RecordStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("invalid status {s:?}: want active or resolved"))
            })
        })
        .transpose()?;
    let severity = nonempty("severity")
        .map(|s| {
            Severity::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("invalid severity {s:?}: want Low, Medium or High"))
            })
        })
        .transpose()?;
    let limit = nonempty("limit")
        .map(|s| {
            s.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("invalid limit {s:?}: want a non-negative integer"))
            })
        })
        .transpose()?;
    Ok(RecordFilter {
        namespace: nonempty("namespace").cloned(),
        status,
        severity,
        limit,
    })
}

async fn list_with(
    state: DriftApiState,
    q: HashMap<String, String>,
    status: Option<RecordStatus>,
) -> ApiResult<RecordList> {
    let mut f = filter(&q)?;
    if let Some(s) = status {
        if f.status.is_some_and(|given| given != s) {
            return Err(ApiError::bad_request(format!(
                "status {:?} contradicts this endpoint",
                q.get("status")
            )));
        }
        f.status = Some(s);
    }
    let records = blocking(&state.store, move |s| s.list(&f)).await?;
    Ok(Json(RecordList {
        count: records.len(),
        records,
    }))
}

async fn list_records(
    State(state): State<DriftApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<RecordList> {
    list_with(state, q, None).await
}

async fn list_active(
    State(state): State<DriftApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<RecordList> {
    list_with(state, q, Some(RecordStatus::Active)).await
}

async fn list_resolved(
    State(state): State<DriftApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<RecordList> {
    list_with(state, q, Some(RecordStatus::Resolved)).await
}

async fn get_record(
    State(state): State<DriftApiState>,
    Path(id): Path<String>,
) -> ApiResult<DriftRecord> {
    let lookup = id.clone();
    match blocking(&state.store, move |s| s.get(&lookup)).await? {
        Some(r) => Ok(Json(r)),
        None => Err(ApiError::not_found(format!(
            "no drift record {id:?} (ids are <Kind>:<namespace>:<name>)"
        ))),
    }
}

async fn statistics(State(state): State<DriftApiState>) -> ApiResult<super::store::Statistics> {
    Ok(Json(blocking(&state.store, |s| s.statistics()).await?))
}

async fn analyze(State(state): State<DriftApiState>) -> impl IntoResponse {
    state.analyze.notify_one();
    (
        StatusCode::ACCEPTED,
        Json(json!({ "message": "analysis requested" })),
    )
}

async fn resources(
    State(state): State<DriftApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<ResourceList> {
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let query = ResourceQuery {
        namespace: get("namespace"),
        kind: get("kind"),
        name: get("name"),
    };
    let view = Arc::clone(&state.resources);
    let resources = tokio::task::spawn_blocking(move || view.list(&query))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("drift API task failed: {e}"),
        })?;
    Ok(Json(ResourceList {
        count: resources.len(),
        resources,
    }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}

/// One request to a router, for the tests of the API and of the process router that mounts it: the
/// status and the JSON body (`Null` when not JSON).
#[cfg(test)]
pub(crate) async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, serde_json::Value) {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::detect::{Detection, classify_items};
    use crate::drift::record::DetectionSource;
    use crate::drift::resources::ResourceRegistry;
    use crate::drift::types::{DriftItem, ObjectKey};
    use serde_json::Value;

    struct Fixture {
        _dir: tempfile::TempDir,
        app: Router,
        notify: Arc<Notify>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RecordStore::open(&dir.path().join("drift.db")).unwrap());
        let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        for (ns, name, live, resolve) in [
            ("apps", "web", 3, false),
            ("apps", "api", 5, true),
            ("other", "db", 4, false),
        ] {
            let key = ObjectKey::new("Deployment", ns, name);
            let items = vec![DriftItem {
                path: "/spec/replicas".into(),
                desired: Some(json!(4)),
                live: Some(json!(live)),
                actor: Some("kubectl".into()),
            }];
            store
                .upsert_detection(&Detection {
                    items: classify_items(&key, items, &[]),
                    key: key.clone(),
                    source: DetectionSource::Analyze,
                    unit_slug: Some(name.into()),
                    revision: Some("2".into()),
                    repository: None,
                    kustomization: None,
                    detected_at: at,
                })
                .unwrap();
            if resolve {
                store
                    .resolve(&key.id(), at + chrono::Duration::seconds(60))
                    .unwrap();
            }
        }
        let registry = Arc::new(ResourceRegistry::default());
        let desired = json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"}, "spec": {"replicas": 4}});
        let live = json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"}, "spec": {"replicas": 3},
            "status": {"availableReplicas": 3, "updatedReplicas": 3}});
        registry.upsert(ResourceState::new(
            &ObjectKey::new("Deployment", "apps", "web"),
            &desired,
            Some(&live),
            vec![],
        ));
        let notify = Arc::new(Notify::new());
        let app = drift_api_router(DriftApiState::new(store, registry, Arc::clone(&notify)));
        Fixture {
            _dir: dir,
            app,
            notify,
        }
    }

    #[tokio::test]
    async fn record_routes() {
        let f = fixture();
        let (s, body) = call(&f.app, "GET", "/api/v1/drift-records").await;
        assert_eq!((s, body["count"].clone()), (StatusCode::OK, json!(3)));
        let (_, body) = call(
            &f.app,
            "GET",
            "/api/v1/drift-records?namespace=apps&status=active",
        )
        .await;
        assert_eq!(body["records"][0]["id"], json!("Deployment:apps:web"));
        assert_eq!(body["count"], json!(1));
        let (_, body) = call(&f.app, "GET", "/api/v1/drift-records?severity=high").await;
        assert_eq!(body["count"], json!(0));
        let (_, body) = call(&f.app, "GET", "/api/v1/drift-records?severity=Medium").await;
        assert_eq!(body["count"], json!(3));
        let (_, body) = call(&f.app, "GET", "/api/v1/drift-records/active").await;
        assert_eq!(body["count"], json!(2));
        let (_, body) = call(
            &f.app,
            "GET",
            "/api/v1/drift-records/resolved?namespace=apps",
        )
        .await;
        assert_eq!(body["records"][0]["name"], json!("api"));
        let (s, body) = call(&f.app, "GET", "/api/v1/drift-records/Deployment:apps:web").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body["status"], json!("active"));
        assert_eq!(body["items"][0]["path"], json!("/spec/replicas"));
        assert_eq!(body["items"][0]["type"], json!("Scaling"));
        assert_eq!(body["repository"], Value::Null);
        assert!(body["suggestion"].as_str().unwrap().contains("replicas=3"));
        let (s, body) = call(
            &f.app,
            "GET",
            "/api/v1/drift-records/Deployment%3Aapps%3Aweb",
        )
        .await;
        assert_eq!((s, body["name"].clone()), (StatusCode::OK, json!("web")));
    }

    #[tokio::test]
    async fn errors_are_json() {
        let f = fixture();
        let (s, body) = call(&f.app, "GET", "/api/v1/drift-records/Deployment:apps:nope").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Deployment:apps:nope")
        );
        for bad in ["severity=Huge", "status=open", "limit=-1"] {
            let (s, body) = call(&f.app, "GET", &format!("/api/v1/drift-records?{bad}")).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
            assert!(body["message"].is_string());
        }
        let (s, _) = call(
            &f.app,
            "GET",
            "/api/v1/drift-records/active?status=resolved",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, body) = call(&f.app, "GET", "/api/v1/nothing-here").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(body["message"].is_string());
    }

    #[tokio::test]
    async fn statistics_analyze_and_resources() {
        let f = fixture();
        let (s, body) = call(&f.app, "GET", "/api/v1/statistics").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body["total"], json!(3));
        assert_eq!(body["by_type"]["Scaling"], json!(3));
        assert_eq!(body["by_namespace"]["apps"], json!(2));
        assert_eq!(body["mean_time_to_resolve_seconds"], json!(60.0));

        let (s, body) = call(&f.app, "POST", "/api/v1/analyze").await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert!(body["message"].is_string());
        tokio::time::timeout(std::time::Duration::from_secs(1), f.notify.notified())
            .await
            .expect("analyze fires the trigger");

        let (s, body) = call(
            &f.app,
            "GET",
            "/api/v1/resources?namespace=apps&kind=deployment&name=web",
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body["count"], json!(1));
        let r = &body["resources"][0];
        assert_eq!(
            (r["health"].clone(), r["drifted"].clone()),
            (json!("Healthy"), json!(false))
        );
        assert_eq!(r["live"]["spec"]["replicas"], json!(3));
        assert!(r["live"].get("status").is_none());
        let (_, body) = call(&f.app, "GET", "/api/v1/resources?kind=Service").await;
        assert_eq!(body["count"], json!(0));
    }

    #[tokio::test]
    async fn an_unreachable_record_database_is_503() {
        // A PostgreSQL store whose server is not there (a port nothing listens on).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = Arc::new(
            RecordStore::connect_postgres(&format!("postgres://u:pw@127.0.0.1:{port}/d")).unwrap(),
        );
        let app = drift_api_router(DriftApiState::new(
            store,
            Arc::new(ResourceRegistry::default()),
            Arc::new(Notify::new()),
        ));
        for path in [
            "/api/v1/drift-records",
            "/api/v1/drift-records/active",
            "/api/v1/drift-records/Deployment:apps:web",
            "/api/v1/statistics",
        ] {
            let (status, body) = call(&app, "GET", path).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains("unavailable"), "{path}: {message}");
            assert!(!message.contains("pw@"), "{path}: {message}");
        }
        // What does not need the database still answers.
        let (status, _) = call(&app, "GET", "/api/v1/resources").await;
        assert_eq!(status, StatusCode::OK);
    }
}
