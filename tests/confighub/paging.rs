//! Lists are read to the end: the hub pages Space and Unit lists with `limit` and `continue` and
//! answers `ConfigHub-Continue` until the last page; the client follows it (empty pages included),
//! reads `null` as an empty list, and refuses a server that repeats a page token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::get;
use confighub_source_controller::confighub::{Client, ClientOptions};

use crate::support::{TOKEN, TestHub, fast_options, raw, space, unit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_pages_lists_and_the_client_reads_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "paged").await;
    for slug in ["e", "a", "d", "b", "c"] {
        unit(&c, &s.space_id, slug).await;
    }

    // Raw: two per page, the header until the last page.
    let http = raw();
    let url = hub.api(&format!("/space/{}/unit", s.space_id));
    let mut slugs = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "2".to_string())];
        if let Some(t) = &token {
            query.push(("continue", t.clone()));
        }
        let resp = http
            .get(&url)
            .bearer_auth(TOKEN)
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        token = resp
            .headers()
            .get("ConfigHub-Continue")
            .map(|v| v.to_str().unwrap().to_string());
        let page: Vec<serde_json::Value> = resp.json().await.unwrap();
        assert!(page.len() <= 2);
        slugs.extend(
            page.iter()
                .map(|u| u["Unit"]["Slug"].as_str().unwrap().to_string()),
        );
        pages += 1;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(slugs, ["a", "b", "c", "d", "e"]);
    for bad in [
        ("limit", "1001"),
        ("limit", "two"),
        ("continue", "bm90LWEtdG9rZW4"),
    ] {
        let resp = http
            .get(&url)
            .bearer_auth(TOKEN)
            .query(&[bad])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad:?}");
    }

    // The client, two per page: every unit, in three requests.
    let paged = Client::new(
        &hub.origin,
        Some(TOKEN.into()),
        ClientOptions {
            page_size: Some(2),
            ..fast_options()
        },
    )
    .unwrap();
    let units = paged
        .list_units(&s.space_id, None, &["Slug"])
        .await
        .unwrap();
    let listed: Vec<&str> = units.iter().map(|u| u.slug.as_str()).collect();
    assert_eq!(listed, ["a", "b", "c", "d", "e"]);
    assert_eq!(paged.stats().requests, 3);
    // A filter applies before paging.
    let some = paged
        .list_units(&s.space_id, Some("Slug IN ('a', 'c', 'e')"), &[])
        .await
        .unwrap();
    assert_eq!(some.len(), 3);
    assert_eq!(paged.list_spaces(None).await.unwrap().len(), 1);
    hub.stop().await;
}

/// A server answering `ListSpaces` from a script of (body, next token), recording each `continue`.
async fn scripted(
    pages: Vec<(&'static str, Option<&'static str>)>,
) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let app = Router::new().route(
        "/api/space",
        get(move |Query(q): Query<HashMap<String, String>>| {
            let seen = seen.clone();
            let pages = pages.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                let n = seen.len().min(pages.len() - 1);
                seen.push(q.get("continue").cloned());
                let (body, next) = pages[n];
                let mut resp = ([("content-type", "application/json")], body).into_response();
                if let Some(next) = next {
                    resp.headers_mut()
                        .insert("ConfigHub-Continue", next.parse().unwrap());
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (origin, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_null_pages_do_not_end_a_list_early() {
    let (origin, asked) = scripted(vec![
        (r#"[{"Space":{"Slug":"one"}}]"#, Some("t1")),
        ("[]", Some("t2")),
        ("null", Some("t3")),
        (r#"[{"Space":{"Slug":"two"}}]"#, None),
    ])
    .await;
    let c = Client::new(&origin, Some("t".into()), fast_options()).unwrap();
    let spaces = c.list_spaces(None).await.unwrap();
    let slugs: Vec<&str> = spaces.iter().map(|s| s.space.slug.as_str()).collect();
    assert_eq!(slugs, ["one", "two"]);
    assert_eq!(
        *asked.lock().unwrap(),
        [
            None,
            Some("t1".into()),
            Some("t2".into()),
            Some("t3".into())
        ]
    );

    let (origin, _) = scripted(vec![("null", None)]).await;
    let c = Client::new(&origin, Some("t".into()), fast_options()).unwrap();
    assert!(
        c.list_spaces(None).await.unwrap().is_empty(),
        "null is an empty list"
    );

    let (origin, _) = scripted(vec![("[]", Some("same"))]).await;
    let c = Client::new(&origin, Some("t".into()), fast_options()).unwrap();
    let err = c.list_spaces(None).await.unwrap_err();
    assert!(err.to_string().contains("repeats"), "{err}");
}
