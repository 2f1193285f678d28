//! The hub's raw JSON and headers, read with plain reqwest + serde_json::Value so the client's own
//! types cannot hide a wrong field name.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TOKEN, TestHub, raw};

/// Unit fields named in the reference (§3); the hub may send a subset but nothing else.
const UNIT_FIELDS: &[&str] = &[
    "UnitID",
    "SpaceID",
    "SpaceSlug",
    "OrganizationID",
    "DisplayName",
    "Slug",
    "ToolchainType",
    "TargetID",
    "TargetOptions",
    "ProviderType",
    "BridgeWorkerID",
    "Labels",
    "Annotations",
    "DeleteGates",
    "DestroyGates",
    "ChangeSetID",
    "LastChangeDescription",
    "DataHash",
    "DataSize",
    "HeadRevisionNum",
    "HeadRevisionID",
    "LastReleasedRevisionNum",
    "HeadMutationNum",
    "HeadUnitActionNum",
    "HeadUnitEventNum",
    "UpstreamUnitID",
    "UpstreamSpaceID",
    "UpstreamRevisionNum",
    "ValidationErrors",
    // confighub-api-more.md §3 (hidden entities).
    "HiddenReason",
    "EntityType",
    "CreatedAt",
    "UpdatedAt",
    "Version",
];
const UNIT_REQUIRED: &[&str] = &[
    "UnitID",
    "SpaceID",
    "Slug",
    "ToolchainType",
    "DataHash",
    "DataSize",
    "HeadRevisionNum",
    "HeadRevisionID",
    "LastReleasedRevisionNum",
    "Labels",
    "Annotations",
    "Version",
    "CreatedAt",
    "UpdatedAt",
];
const SPACE_FIELDS: &[&str] = &[
    "SpaceID",
    "Slug",
    "DisplayName",
    "OrganizationID",
    "Labels",
    "Annotations",
    "DeleteGates",
    "ReleaseTargetID",
    "EntityType",
    "CreatedAt",
    "UpdatedAt",
    "Version",
];
const REVISION_FIELDS: &[&str] = &[
    "RevisionID",
    "RevisionNum",
    "UnitID",
    "UnitSlug",
    "SpaceID",
    "SpaceSlug",
    "OrganizationID",
    "DataHash",
    "DataSize",
    "Description",
    "Source",
    "UserID",
    "UserAgent",
    "ChangeSetID",
    "Tags",
    "Releases",
    "EntityType",
    "CreatedAt",
    "UpdatedAt",
    "Version",
];
const REVISION_REQUIRED: &[&str] = &[
    "RevisionID",
    "RevisionNum",
    "UnitID",
    "DataHash",
    "DataSize",
    "Description",
    "Releases",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

fn assert_shape(v: &Value, allowed: &[&str], required: &[&str], what: &str) {
    let k = keys(v);
    for key in &k {
        assert!(
            allowed.contains(&key.as_str()),
            "{what}: unexpected field {key}"
        );
    }
    for key in required {
        assert!(k.contains(*key), "{what}: missing {key}");
    }
    assert!(!k.contains("Data"), "{what} must not carry Data");
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

/// `{"Code":"<status>","Message":"…"}` with exactly those keys.
pub fn assert_error_body(status: StatusCode, body: &[u8]) {
    let v = json_of(body);
    assert_eq!(
        keys(&v),
        BTreeSet::from(["Code".to_string(), "Message".to_string()])
    );
    assert_eq!(v["Code"], json!(status.as_u16().to_string()));
    assert!(!v["Message"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entity_has_the_reference_shape() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let http = raw();

    let (st, h, body) = send(http.get(hub.api("/info"))).await;
    assert_eq!(st, 200);
    assert_eq!(h["confighub-version"], "v0.4.21");
    assert!(h.contains_key("x-request-id"));
    assert_eq!(json_of(&body)["Version"], "v0.4.21");

    let (st, _, body) = send(
        http.post(hub.api("/space"))
            .bearer_auth(TOKEN)
            .json(&json!({"Slug":"payments-dev","Labels":{"env":"dev"}})),
    )
    .await;
    assert_eq!(st, 200);
    let space = json_of(&body);
    assert_shape(
        &space,
        SPACE_FIELDS,
        &["SpaceID", "Slug", "Labels", "Version"],
        "CreateSpace (bare Space)",
    );
    let sid = space["SpaceID"].as_str().unwrap().to_string();

    let (_, _, body) = send(http.get(hub.api("/space")).bearer_auth(TOKEN)).await;
    let list = json_of(&body);
    assert_shape(
        &list[0]["Space"],
        SPACE_FIELDS,
        &["SpaceID", "Slug"],
        "ListSpaces item",
    );
    let (_, _, body) = send(
        http.get(hub.api(&format!("/space/{sid}")))
            .bearer_auth(TOKEN),
    )
    .await;
    let ext = json_of(&body);
    assert_shape(&ext["Space"], SPACE_FIELDS, &["SpaceID"], "GetSpace");
    assert_eq!(ext["TotalUnitCount"], 0);

    let (st, _, body) = send(
        http.post(hub.api(&format!("/space/{sid}/unit")))
            .bearer_auth(TOKEN)
            .json(&json!({"Slug":"web","ToolchainType":"Kubernetes/YAML","Labels":{"app":"web"}})),
    )
    .await;
    assert_eq!(st, 200);
    let created = json_of(&body);
    assert_eq!(keys(&created), BTreeSet::from(["Unit".to_string()]));
    let unit = &created["Unit"];
    assert_shape(unit, UNIT_FIELDS, UNIT_REQUIRED, "CreateUnit");
    assert_eq!(unit["HeadRevisionNum"], 1);
    assert_eq!(unit["LastReleasedRevisionNum"], 0);
    assert_eq!(unit["DataSize"], 0);
    assert_eq!(unit["Version"], 1);
    assert_eq!(
        unit["DataHash"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let uid = unit["UnitID"].as_str().unwrap().to_string();
    let unit_url = hub.api(&format!("/space/{sid}/unit/{uid}"));

    let (st, h, body) = send(
        http.put(format!(
            "{unit_url}/data?last_change_description=bump%20replicas"
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/octet-stream")
        .header(
            "if-match",
            format!("\"{}\"", unit["DataHash"].as_str().unwrap()),
        )
        .body("replicas: 2\n"),
    )
    .await;
    assert_eq!(st, 200);
    assert!(h.contains_key("x-request-id"));
    let uploaded = json_of(&body);
    assert_shape(
        &uploaded["Unit"],
        UNIT_FIELDS,
        UNIT_REQUIRED,
        "UploadUnitData",
    );
    assert_eq!(uploaded["Unit"]["HeadRevisionNum"], 2);
    assert_eq!(uploaded["Unit"]["DataSize"], 12);
    let hash = uploaded["Unit"]["DataHash"].as_str().unwrap().to_string();

    let (st, h, body) = send(http.get(format!("{unit_url}/data")).bearer_auth(TOKEN)).await;
    assert_eq!(st, 200);
    assert_eq!(h["etag"], format!("\"{hash}\"").as_str());
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(body, b"replicas: 2\n");
    let (st, h, body) = send(
        http.get(format!("{unit_url}/data"))
            .bearer_auth(TOKEN)
            .header("if-none-match", format!("\"{hash}\"")),
    )
    .await;
    assert_eq!(st, 304);
    assert!(body.is_empty());
    assert_eq!(h["etag"], format!("\"{hash}\"").as_str());

    let (_, _, body) = send(http.get(&unit_url).bearer_auth(TOKEN)).await;
    assert_shape(
        &json_of(&body)["Unit"],
        UNIT_FIELDS,
        UNIT_REQUIRED,
        "GetUnit",
    );

    let (_, _, body) = send(
        http.get(hub.api(&format!("/space/{sid}/unit")))
            .bearer_auth(TOKEN)
            .query(&[
                ("select", "HeadRevisionNum,DataHash"),
                ("where", "Labels.app = 'web'"),
            ]),
    )
    .await;
    let list = json_of(&body);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        keys(&list[0]["Unit"]),
        [
            "DataHash",
            "HeadRevisionNum",
            "Labels",
            "OrganizationID",
            "Slug",
            "SpaceID",
            "UnitID"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<BTreeSet<_>>(),
        "select keeps the named fields, the IDs, Slug and what where used"
    );

    let (_, _, body) = send(http.get(format!("{unit_url}/revision")).bearer_auth(TOKEN)).await;
    let revs = json_of(&body);
    assert_eq!(revs.as_array().unwrap().len(), 2);
    for r in revs.as_array().unwrap() {
        assert_shape(
            &r["Revision"],
            REVISION_FIELDS,
            REVISION_REQUIRED,
            "ListRevisions item",
        );
    }
    assert_eq!(revs[1]["Revision"]["Description"], "bump replicas");
    let (_, _, body) = send(
        http.get(format!(
            "{unit_url}/revision?offset=1&limit=1&order_by=DESC:RevisionNum"
        ))
        .bearer_auth(TOKEN),
    )
    .await;
    let page = json_of(&body);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(
        page[0]["Revision"]["RevisionNum"], 1,
        "offset skips the newest"
    );
    let rid = revs[1]["Revision"]["RevisionID"].as_str().unwrap();
    let (_, _, body) = send(
        http.get(format!("{unit_url}/revision/{rid}"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_shape(
        &json_of(&body)["Revision"],
        REVISION_FIELDS,
        REVISION_REQUIRED,
        "GetRevision",
    );

    let (st, _, body) = send(http.delete(&unit_url).bearer_auth(TOKEN)).await;
    assert_eq!(st, 200);
    assert!(json_of(&body)["Message"].is_string());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_documented_body_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let http = raw();
    let cases = [
        (http.get(hub.api("/space")), StatusCode::UNAUTHORIZED),
        (
            http.get(hub.api("/space")).bearer_auth("wrong"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            http.get(hub.api("/space")).header("authorization", TOKEN),
            StatusCode::UNAUTHORIZED,
        ),
        (
            http.get(hub.api("/space/not-a-uuid")).bearer_auth(TOKEN),
            StatusCode::BAD_REQUEST,
        ),
        (
            http.get(hub.api("/space/0d9c7a5e-0000-4000-8000-000000000001"))
                .bearer_auth(TOKEN),
            StatusCode::NOT_FOUND,
        ),
        (
            http.get(hub.api("/nothing-here")).bearer_auth(TOKEN),
            StatusCode::NOT_FOUND,
        ),
        (
            http.delete(hub.api("/space")).bearer_auth(TOKEN),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (req, expected) in cases {
        let (st, h, body) = send(req).await;
        assert_eq!(st, expected);
        assert_error_body(st, &body);
        assert!(h.contains_key("x-request-id"), "{st}: no X-Request-Id");
        assert_eq!(h["confighub-version"], "v0.4.21");
    }
    hub.stop().await;
}
