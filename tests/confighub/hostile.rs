//! Hostile input: each gets the documented 4xx, the hub keeps serving, and stored data is unchanged.

use reqwest::StatusCode;
use serde_json::json;

use confighub_source_controller::confighub::{DataDownload, data_hash};
use confighub_source_controller::hub::MAX_DATA_BYTES;

use crate::shapes::assert_error_body;
use crate::support::{TOKEN, TestHub, raw, space, unit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "target").await;
    let u = unit(&c, &s.space_id, "web").await;
    let stored = b"secret: keep-me\n".to_vec();
    let before = c
        .upload_unit_data(&s.space_id, &u.unit_id, stored.clone(), None, Some("seed"))
        .await
        .unwrap();

    let http = raw();
    let units_url = hub.api(&format!("/space/{}/unit", s.space_id));
    let unit_url = format!("{units_url}/{}", u.unit_id);
    let oversized = vec![b'a'; MAX_DATA_BYTES + 1];
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode)> = vec![
        (
            "garbage JSON",
            http.post(&units_url).body("{\"Slug\": \"x\", "),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON at all",
            http.post(hub.api("/space")).body("\u{0}\u{1}binary"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong JSON type",
            http.post(&units_url).json(&json!({"Slug": 7})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing ToolchainType",
            http.post(&units_url).json(&json!({"Slug":"x"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad slug",
            http.post(&units_url)
                .json(&json!({"Slug":"../etc","ToolchainType":"Kubernetes/YAML"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "long slug",
            http.post(hub.api("/space"))
                .json(&json!({"Slug": "a".repeat(129)})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "patch not an object",
            http.patch(&unit_url)
                .header("content-type", "application/merge-patch+json")
                .body("[1,2]"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "patch bad Labels",
            http.patch(&unit_url).json(&json!({"Labels": "x"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "oversized data",
            http.put(format!("{unit_url}/data")).body(oversized),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "OR injection",
            http.get(&units_url)
                .query(&[("where", "Slug = 'a' OR 1=1")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            "statement injection",
            http.get(&units_url)
                .query(&[("where", "Slug = 'web'; DELETE FROM units")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown attribute",
            http.get(&units_url).query(&[("where", "Data = 'x'")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unterminated literal",
            http.get(&units_url).query(&[("where", "Slug = 'web")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            "non-UUID space",
            http.get(hub.api("/space/'%20OR%201=1/unit")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "non-UUID unit",
            http.put(format!("{units_url}/..%2F..%2Fetc/data"))
                .body("x"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "non-UUID revision",
            http.get(format!("{unit_url}/revision/1")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad limit",
            http.get(format!("{unit_url}/revision?limit=-1")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "limit over 1000",
            http.get(format!("{unit_url}/revision?limit=1001")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad allow_exists",
            http.post(hub.api("/space?allow_exists=maybe"))
                .json(&json!({"Slug":"z"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown unit",
            http.get(format!(
                "{units_url}/0d9c7a5e-0000-4000-8000-000000000001/data"
            )),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, req, expected) in cases {
        let resp = req
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status();
        let body = resp.bytes().await.unwrap();
        assert_eq!(
            status,
            expected,
            "{what}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_error_body(status, &body);
    }

    // The doubled-quote form is one harmless literal: 200, nothing matches.
    let resp = http
        .get(&units_url)
        .bearer_auth(TOKEN)
        .query(&[("where", "Slug = ''' OR ''1''=''1'")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap(), json!([]));

    // Still serving, and nothing changed.
    let units = c.list_units(&s.space_id, None, &[]).await.unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0], before);
    match c
        .download_unit_data(&s.space_id, &u.unit_id, None)
        .await
        .unwrap()
    {
        DataDownload::Data { bytes, etag } => {
            assert_eq!(bytes.as_ref(), stored.as_slice());
            assert_eq!(etag.as_deref(), Some(data_hash(&stored).as_str()));
        }
        DataDownload::NotModified => panic!("unconditional GET returned 304"),
    }
    assert_eq!(c.list_spaces(None).await.unwrap().len(), 1);
    let revs = c
        .list_revisions(&s.space_id, &u.unit_id, None, None, None)
        .await
        .unwrap();
    assert_eq!(revs.len(), 2);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_at_the_size_limit_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "big").await;
    let u = unit(&c, &s.space_id, "blob").await;
    let data = vec![b'z'; MAX_DATA_BYTES];
    let after = c
        .upload_unit_data(&s.space_id, &u.unit_id, data.clone(), None, None)
        .await
        .unwrap();
    assert_eq!(after.data_size, MAX_DATA_BYTES as i64);
    assert_eq!(after.data_hash, data_hash(&data));
    hub.stop().await;
}
