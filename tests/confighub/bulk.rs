//! Bulk data reads (`GET /unit_data`, `GET /revision_data`): the hub serves and refuses them as the
//! service does, and the source fetch gets a whole space's data in a few requests — falling back to one
//! unit at a time against a server without them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use confighub_source_controller::api::RevisionMode;
use confighub_source_controller::confighub::{
    BulkQuery, Client, MAX_QUERY_CHARS, UnitCreate, UnitPatch, data_hash, id_chunks,
    where_expr::quote,
};
use confighub_source_controller::hub::{self, Hub, HubConfig};
use confighub_source_controller::source::cache::UnitDataCache;
use confighub_source_controller::source::fetch;
use reqwest::StatusCode;

use crate::support::{TOKEN, TestHub, fast_options, raw, space};

fn config_map(name: &str, n: usize) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  n: \"{n}\"\n")
}

/// Creates `n` units `u-000…` with data on `target` (if any); returns their ids in slug order.
async fn units(c: &Client, space_id: &str, n: usize, target: Option<&str>) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let slug = format!("u-{i:03}");
        let req = UnitCreate {
            slug: slug.clone(),
            toolchain_type: "Kubernetes/YAML".into(),
            target_id: target.unwrap_or_default().into(),
            ..Default::default()
        };
        let u = c.create_unit(space_id, &req, false).await.unwrap();
        c.upload_unit_data(space_id, &u.unit_id, config_map(&slug, 0), None, None)
            .await
            .unwrap();
        ids.push(u.unit_id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_data_reads_a_space_in_pages_and_refuses_what_the_service_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "bulk").await;
    let other = space(&c, "other").await;
    let ids = units(&c, &s.space_id, 5, None).await;
    units(&c, &other.space_id, 2, None).await;
    let hidden = c
        .create_unit(
            &s.space_id,
            &UnitCreate {
                slug: "backing".into(),
                toolchain_type: "Kubernetes/YAML".into(),
                hidden_reason: "BackingUnit".into(),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();

    let in_space = format!("SpaceID = {}", quote(&s.space_id));
    let query = BulkQuery {
        where_: in_space.clone(),
        include_hidden: None,
    };
    // Pages of two, read to the end; only this space's visible units, in ID order, data as text.
    let rows = c.search_unit_data(&query, Some(2)).await.unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        rows.iter().map(|r| r.unit_id.clone()).collect::<Vec<_>>(),
        sorted
    );
    for row in &rows {
        assert_eq!(row.data, config_map(&row.slug, 0));
        assert_eq!(row.data_hash, data_hash(row.data.as_bytes()));
        assert_eq!(row.data_size, row.data.len() as i64);
        assert_eq!(row.space_slug, "bulk");
    }
    let with_hidden = BulkQuery {
        where_: in_space.clone(),
        include_hidden: Some("*".into()),
    };
    let all = c.search_unit_data(&with_hidden, None).await.unwrap();
    assert!(all.iter().any(|r| r.unit_id == hidden.unit_id));
    assert_eq!(all.len(), 6);

    // The refusals, raw.
    let http = raw();
    let get = |path: &str, query: Vec<(&str, String)>| {
        http.get(hub.api(path))
            .bearer_auth(TOKEN)
            .query(&query)
            .send()
    };
    let over_limit = get("/unit_data", vec![("limit", "1001".into())])
        .await
        .unwrap();
    assert_eq!(over_limit.status(), StatusCode::BAD_REQUEST);
    let select_data = get("/unit_data", vec![("select", "Slug,Data".into())])
        .await
        .unwrap();
    assert_eq!(select_data.status(), StatusCode::BAD_REQUEST);
    let bad_where = get("/unit_data", vec![("where", "Nope = 1".into())])
        .await
        .unwrap();
    assert_eq!(bad_where.status(), StatusCode::BAD_REQUEST);
    let long = format!("Slug = '{}'", "a".repeat(MAX_QUERY_CHARS));
    let too_long = get("/unit_data", vec![("where", long.clone())])
        .await
        .unwrap();
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = too_long.json().await.unwrap();
    assert!(body["Message"].as_str().unwrap().contains("8192"), "{body}");
    // The client refuses to send it at all.
    let err = c
        .search_unit_data(
            &BulkQuery {
                where_: long,
                include_hidden: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("8192"), "{err}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_data_is_distinct_per_unit_unless_off_with_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "revs").await;
    let ids = units(&c, &s.space_id, 3, None).await;
    c.upload_unit_data(&s.space_id, &ids[0], config_map("u-000", 1), None, None)
        .await
        .unwrap();
    let in_space = format!("SpaceID = {}", quote(&s.space_id));

    let http = raw();
    let get = |query: Vec<(&str, String)>| {
        http.get(hub.api("/revision_data"))
            .bearer_auth(TOKEN)
            .query(&query)
            .send()
    };
    // Default: each unit's latest row only.
    let latest: Vec<serde_json::Value> = get(vec![("where", in_space.clone())])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(latest.len(), 3);
    let first = latest.iter().find(|r| r["UnitID"] == ids[0]).unwrap();
    assert_eq!(first["RevisionNum"], 3);
    assert_eq!(first["Data"], config_map("u-000", 1));
    for (query, why) in [
        (
            vec![("where", in_space.clone()), ("distinct_on", "Off".into())],
            "Off without limit",
        ),
        (
            vec![("distinct_on", "Off".into()), ("limit", "10".into())],
            "Off without where",
        ),
        (
            vec![("where", in_space.clone()), ("distinct_on", "Space".into())],
            "unknown distinct_on",
        ),
    ] {
        let resp = get(query).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{why}");
    }

    // Off: every revision selected (3 of the first unit: empty, v0, v1), paged by the limit.
    let unit0 = format!("{in_space} AND UnitID = {}", quote(&ids[0]));
    let every = c.search_revision_data(&unit0, 2).await.unwrap();
    assert_eq!(
        every
            .iter()
            .map(|r| r.revision_num)
            .collect::<std::collections::BTreeSet<_>>(),
        [1, 2, 3].into()
    );
    // By RevisionID: exactly those.
    let head = c.get_unit(&s.space_id, &ids[0]).await.unwrap();
    let chunks = id_chunks(
        &in_space,
        "RevisionID",
        std::slice::from_ref(&head.head_revision_id),
        0,
    );
    let exact = c.search_revision_data(&chunks[0], 1000).await.unwrap();
    assert_eq!(exact.len(), 1);
    assert_eq!(exact[0].data_hash, head.data_hash);
    hub.stop().await;
}

/// Counts a client's requests by operation.
#[derive(Default)]
struct Ops {
    unit_data: AtomicU64,
    revision_data: AtomicU64,
    one_by_one: AtomicU64,
    other: AtomicU64,
}

impl confighub_source_controller::confighub::RequestObserver for Ops {
    fn observe(&self, operation: &'static str, _code: &str) {
        let slot = match operation {
            "SearchUnitData" => &self.unit_data,
            "SearchRevisionData" => &self.revision_data,
            "DownloadUnitData" | "DownloadRevisionData" | "ListRevisions" => &self.one_by_one,
            _ => &self.other,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

fn counted(origin: &str) -> (Client, Arc<Ops>) {
    let ops = Arc::new(Ops::default());
    let client = Client::new(origin, Some(TOKEN.into()), fast_options())
        .unwrap()
        .observed(ops.clone());
    (client, ops)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_reads_in_bulk_and_an_unchanged_space_costs_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "sync").await;
    let ids = units(&c, &s.space_id, 400, None).await;

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = UnitDataCache::new(cache_dir.path()).unwrap();
    let (client, ops) = counted(&hub.origin);
    let head = |client: Client,
                cache: UnitDataCache,
                s: confighub_source_controller::confighub::Space| async move {
        fetch::fetch(&client, &cache, s, None, false, RevisionMode::Head)
            .await
            .unwrap()
    };
    let first = head(client.clone(), cache.clone(), s.clone()).await;
    assert_eq!(first.units.len(), 400);
    assert_eq!(first.downloads, 400);
    assert_eq!(ops.unit_data.load(Ordering::Relaxed), 1, "one bulk read");
    assert_eq!(ops.one_by_one.load(Ordering::Relaxed), 0);
    assert_eq!(ops.other.load(Ordering::Relaxed), 1, "the unit list");
    let unit = first.units.iter().find(|u| u.slug == "u-007").unwrap();
    assert_eq!(unit.data, config_map("u-007", 0).into_bytes());

    let before = client.stats();
    let again = head(client.clone(), cache.clone(), s.clone()).await;
    let after = client.stats();
    assert_eq!(again.cache_hits, 400);
    assert_eq!(again.downloads, 0);
    assert_eq!(after.requests - before.requests, 1, "only the unit list");

    // A few edits: read by UnitID, in one request.
    for id in &ids[..3] {
        c.upload_unit_data(&s.space_id, id, config_map("edited", 1), None, None)
            .await
            .unwrap();
    }
    let before = client.stats();
    let edited = head(client.clone(), cache.clone(), s.clone()).await;
    assert_eq!(edited.downloads, 3);
    assert_eq!(client.stats().requests - before.requests, 2);
    assert_eq!(ops.unit_data.load(Ordering::Relaxed), 2);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_released_reads_released_revisions_in_bulk() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "released").await;
    let target = c
        .create_target(&s.space_id, "flux", "Kubernetes/YAML", "FluxOCI")
        .await
        .unwrap();
    c.patch_space(
        &s.space_id,
        &serde_json::json!({"ReleaseTargetID": target.target_id}),
    )
    .await
    .unwrap();
    let ids = units(&c, &s.space_id, 50, Some(&target.target_id)).await;
    let off_target = units(&c, &s.space_id, 0, None).await;
    assert!(off_target.is_empty());
    c.publish_release(&s.space_id).await.unwrap();
    // Edit 20 heads after the release; LastReleased must still read the released text.
    for id in &ids[..20] {
        c.upload_unit_data(&s.space_id, id, config_map("unreleased", 9), None, None)
            .await
            .unwrap();
    }
    // One unit taken off the target after the release keeps its released revision.
    let moved = UnitPatch {
        target_id: Some(String::new()),
        ..Default::default()
    };
    c.patch_unit(&s.space_id, &ids[49], &moved).await.unwrap();

    let space = c.get_space(&s.space_id).await.unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = UnitDataCache::new(cache_dir.path()).unwrap();
    let (client, ops) = counted(&hub.origin);
    let got = fetch::fetch(
        &client,
        &cache,
        space,
        None,
        false,
        RevisionMode::LastReleased,
    )
    .await
    .unwrap();
    assert_eq!(got.units.len(), 50);
    assert!(got.unreleased.is_empty());
    for u in &got.units {
        assert_eq!(u.data, config_map(&u.slug, 0).into_bytes(), "{}", u.slug);
    }
    assert_eq!(
        ops.one_by_one.load(Ordering::Relaxed),
        0,
        "no per-unit reads"
    );
    assert_eq!(ops.unit_data.load(Ordering::Relaxed), 1);
    assert_eq!(ops.revision_data.load(Ordering::Relaxed), 1);
    hub.stop().await;
}

/// A hub whose bulk endpoints answer 404, as an older ConfigHub would.
async fn hub_without_bulk(dir: &std::path::Path) -> (String, tokio::task::JoinHandle<()>) {
    let hub = Hub::open(HubConfig::new(dir.to_path_buf(), vec![TOKEN.into()])).unwrap();
    let app = hub::router(hub).layer(axum::middleware::from_fn(
        |req: axum::extract::Request, next: axum::middleware::Next| async move {
            if matches!(req.uri().path(), "/api/unit_data" | "/api/revision_data") {
                return axum::response::IntoResponse::into_response((
                    StatusCode::NOT_FOUND,
                    axum::Json(serde_json::json!({"Code": "404", "Message": "Not Found"})),
                ));
            }
            next.run(req).await
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (origin, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bulk_reads_the_fetch_falls_back_to_one_unit_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, task) = hub_without_bulk(dir.path()).await;
    let (client, ops) = counted(&origin);
    let s = space(&client, "old").await;
    units(&client, &s.space_id, 5, None).await;
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = UnitDataCache::new(cache_dir.path()).unwrap();
    let got = fetch::fetch(&client, &cache, s, None, false, RevisionMode::Head)
        .await
        .unwrap();
    assert_eq!(got.units.len(), 5);
    assert_eq!(got.downloads, 5);
    assert_eq!(ops.unit_data.load(Ordering::Relaxed), 1, "tried once");
    assert_eq!(
        ops.one_by_one.load(Ordering::Relaxed),
        5,
        "one download per unit"
    );
    task.abort();
}
