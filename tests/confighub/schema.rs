//! Response shapes from ConfigHub's public OpenAPI document (the subset in
//! `testdata/openapi-subset.json`, with its source commit): for every operation the client calls, the
//! client decodes a response built field by field from the schema — only the required fields, every
//! field, and every list and map `null` — and the hub's own responses validate against the same
//! schema. The checker is small and knows the OpenAPI 3.0 dialect the document uses (`nullable`,
//! `$ref`, `format`), which off-the-shelf JSON Schema validators read differently.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use confighub_source_controller::confighub::{Client, Error, SpaceCreate, UnitCreate, UnitPatch};
use serde_json::{Map, Value, json};

use crate::support::{TOKEN, TestHub, fast_options, raw};

const SUBSET: &str = include_str!("testdata/openapi-subset.json");
const A_UUID: &str = "248df4b7-aa70-47b8-a036-33ac447e668d";
/// The document's own example timestamp: a non-UTC offset with fractional seconds.
const A_TIME: &str = "2025-04-04T11:50:02.95102-07:00";

struct Doc(Value);

impl Doc {
    fn load() -> Doc {
        Doc(serde_json::from_str(SUBSET).expect("the subset is JSON"))
    }

    fn response(&self, op: &str) -> Value {
        self.0["operations"][op]["response"].clone()
    }

    /// `schema` with its `$ref` followed.
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.strip_prefix("#/components/schemas/").expect("local $ref");
                let target = &self.0["components"]["schemas"][name];
                assert!(!target.is_null(), "unknown schema {name}");
                self.resolve(target)
            }
            None => schema,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Required fields only.
    Minimal,
    /// Every field, lists and maps with one element.
    Full,
    /// Every field, every list and map `null` (as Go encodes a nil slice or map).
    NullLists,
}

/// A value of `schema` built field by field.
fn instance(doc: &Doc, schema: &Value, mode: Mode, depth: usize) -> Value {
    let schema = doc.resolve(schema);
    if let Some(kind) = schema["x-not-extracted"].as_str() {
        return match (kind, mode) {
            (_, Mode::NullLists) => Value::Null,
            ("array", _) => json!([]),
            _ => json!({}),
        };
    }
    match schema["type"].as_str() {
        Some("object") => {
            if let Some(props) = schema["properties"].as_object() {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut out = Map::new();
                for (name, prop) in props {
                    let wanted = mode != Mode::Minimal || required.contains(&name.as_str());
                    // Entities nest entities (ExtendedUnit -> Unit): stop after a few levels.
                    let is_entity = doc.resolve(prop)["properties"].is_object();
                    if wanted && (depth < 3 || !is_entity) {
                        out.insert(name.clone(), instance(doc, prop, mode, depth + 1));
                    }
                }
                Value::Object(out)
            } else if mode == Mode::NullLists {
                Value::Null
            } else if mode == Mode::Full {
                let value = instance(doc, &schema["additionalProperties"], mode, depth + 1);
                json!({ "key": value })
            } else {
                json!({})
            }
        }
        Some("array") => match mode {
            Mode::NullLists => Value::Null,
            Mode::Minimal => json!([]),
            Mode::Full => json!([instance(doc, &schema["items"], mode, depth + 1)]),
        },
        Some("string") => match schema["format"].as_str() {
            Some("uuid") => json!(A_UUID),
            Some("date-time") => json!(A_TIME),
            _ => json!("value-1"),
        },
        Some("integer") => json!(7),
        Some("boolean") => json!(true),
        _ => json!({}),
    }
}

/// Where `value` breaks `schema`, as `path: what` lines.
fn violations(doc: &Doc, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = doc.resolve(schema);
    if let Some(kind) = schema["x-not-extracted"].as_str() {
        let ok = value.is_null()
            || (kind == "array" && value.is_array())
            || (kind == "object" && value.is_object());
        if !ok {
            out.push(format!("{path}: expected {kind}, got {value}"));
        }
        return;
    }
    if value.is_null() {
        if schema["nullable"] != json!(true) && schema.get("type").is_some() {
            out.push(format!("{path}: null, but the schema does not allow null"));
        }
        return;
    }
    match schema["type"].as_str() {
        Some("object") => {
            let Some(object) = value.as_object() else {
                out.push(format!("{path}: expected object, got {value}"));
                return;
            };
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !object.contains_key(name) {
                    out.push(format!("{path}: required field {name} missing"));
                }
            }
            for (name, field) in object {
                let at = format!("{path}.{name}");
                if let Some(prop) = schema["properties"].get(name) {
                    violations(doc, prop, field, &at, out);
                } else if let Some(extra) = schema.get("additionalProperties") {
                    violations(doc, extra, field, &at, out);
                }
            }
        }
        Some("array") => match value.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    violations(doc, &schema["items"], item, &format!("{path}[{i}]"), out);
                }
            }
            None => out.push(format!("{path}: expected array, got {value}")),
        },
        Some("string") => match value.as_str() {
            Some(text) => {
                let bad_format = match schema["format"].as_str() {
                    Some("uuid") => uuid::Uuid::parse_str(text).is_err(),
                    Some("date-time") => chrono::DateTime::parse_from_rfc3339(text).is_err(),
                    _ => false,
                };
                if bad_format {
                    out.push(format!("{path}: {text:?} is not a {}", schema["format"]));
                }
                if let Some(max) = schema["maxLength"].as_u64()
                    && text.chars().count() as u64 > max
                {
                    out.push(format!("{path}: longer than {max}"));
                }
            }
            None => out.push(format!("{path}: expected string, got {value}")),
        },
        Some("integer") if !value.is_i64() && !value.is_u64() => {
            out.push(format!("{path}: expected integer, got {value}"));
        }
        Some("boolean") if !value.is_boolean() => {
            out.push(format!("{path}: expected boolean, got {value}"));
        }
        _ => {}
    }
}

fn check(doc: &Doc, op: &str, value: &Value) {
    let mut out = Vec::new();
    violations(doc, &doc.response(op), value, op, &mut out);
    assert!(
        out.is_empty(),
        "{op} does not match the public schema:\n{}\n{value:#}",
        out.join("\n")
    );
}

/// A server answering every request with the status and body set last.
async fn scripted() -> (String, Arc<Mutex<(u16, Value)>>) {
    let answer = Arc::new(Mutex::new((200u16, json!(null))));
    let shared = answer.clone();
    let app = Router::new().fallback(move || {
        let shared = shared.clone();
        async move {
            let (status, body) = shared.lock().unwrap().clone();
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (origin, answer)
}

#[test]
fn the_checker_refuses_what_the_schema_refuses() {
    let doc = Doc::load();
    for mode in [Mode::Minimal, Mode::Full] {
        for op in [
            "ListSpaces",
            "ListUnits",
            "CreateUnit",
            "ListRevisions",
            "error",
        ] {
            check(&doc, op, &instance(&doc, &doc.response(op), mode, 0));
        }
    }
    let schema = doc.response("ListUnits");
    let mut out = Vec::new();
    let bad =
        json!([{"Unit": {"Slug": 5, "UnitID": "not-a-uuid", "DataSize": "12", "Labels": null}}]);
    violations(&doc, &schema, &bad, "ListUnits", &mut out);
    let text = out.join("\n");
    for expected in [
        "Unit.Slug: expected string",
        "Unit.UnitID: \"not-a-uuid\" is not",
        "Unit.DataSize: expected integer",
        "Unit.Labels: null",
        "required field ToolchainType missing",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_decodes_every_response_shape_of_the_public_schema() {
    let doc = Doc::load();
    let (origin, answer) = scripted().await;
    let client = Client::new(&origin, Some(TOKEN.into()), fast_options()).unwrap();
    let set = |op: &str, mode| {
        *answer.lock().unwrap() = (200, instance(&doc, &doc.response(op), mode, 0));
    };
    for mode in [Mode::Minimal, Mode::Full, Mode::NullLists] {
        let ctx = format!("{mode:?}");
        set("ListSpaces", mode);
        let spaces = client.list_spaces(None).await.expect(&ctx);
        set("GetSpace", mode);
        client.get_space(A_UUID).await.expect(&ctx);
        // resolve_space by UUID is GetSpace too.
        client.resolve_space(A_UUID).await.expect(&ctx);
        set("CreateSpace", mode);
        let created = client
            .create_space(
                &SpaceCreate {
                    slug: "value-1".into(),
                    ..Default::default()
                },
                true,
            )
            .await
            .expect(&ctx);
        set("ListUnits", mode);
        let units = client.list_units(A_UUID, None, &[]).await.expect(&ctx);
        set("CreateUnit", mode);
        let unit = UnitCreate {
            slug: "u".into(),
            toolchain_type: "Kubernetes/YAML".into(),
            ..Default::default()
        };
        client.create_unit(A_UUID, &unit, true).await.expect(&ctx);
        set("PatchUnit", mode);
        client
            .patch_unit(A_UUID, A_UUID, &UnitPatch::default())
            .await
            .expect(&ctx);
        set("UploadUnitData", mode);
        let uploaded = client
            .upload_unit_data(A_UUID, A_UUID, b"a: 1\n".to_vec(), None, None)
            .await
            .expect(&ctx);
        set("ListRevisions", mode);
        let revisions = client
            .list_revisions(A_UUID, A_UUID, None, None, None)
            .await
            .expect(&ctx);

        if mode == Mode::Full {
            // What the schema sends arrives in the client's types.
            assert_eq!(spaces.len(), 1);
            assert_eq!(spaces[0].space.space_id, A_UUID);
            assert_eq!(spaces[0].total_unit_count, Some(7));
            assert_eq!(created.slug, "value-1");
            assert_eq!(units.len(), 1);
            let u = &units[0];
            assert_eq!(
                (u.unit_id.as_str(), u.data_hash.as_str()),
                (A_UUID, "value-1")
            );
            assert_eq!((u.data_size, u.head_revision_num, u.version), (7, 7, 7));
            assert_eq!(u.labels.get("key").map(String::as_str), Some("value-1"));
            let created_at = u.created_at.expect("CreatedAt decoded");
            assert_eq!(created_at.to_rfc3339(), "2025-04-04T18:50:02.951020+00:00");
            assert_eq!(uploaded.toolchain_type, "value-1");
            assert_eq!(revisions.len(), 1);
            assert_eq!(revisions[0].revision_num, 7);
            assert_eq!(
                revisions[0].tags.get("key").map(String::as_str),
                Some("value-1")
            );
        }
        if mode == Mode::Minimal {
            assert!(spaces.is_empty() && units.is_empty() && revisions.is_empty());
        }
    }

    // Errors: the StandardErrorResponse with its fields, and without any (the body is then the
    // message, so a condition still says something).
    for (body, code, message) in [
        (
            json!({"Code": "404", "Message": "Space not found."}),
            "404",
            "Space not found.",
        ),
        (json!({}), "", "{}"),
    ] {
        *answer.lock().unwrap() = (404, body);
        let err = client.get_space(A_UUID).await.unwrap_err();
        match err {
            Error::Api {
                status: 404,
                code: c,
                message: m,
                ..
            } => {
                assert_eq!((c.as_str(), m.as_str()), (code, message));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_responses_validate_against_the_public_schema() {
    let doc = Doc::load();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let http = raw();
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.bearer_auth(TOKEN).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value =
            serde_json::from_slice(&resp.bytes().await.unwrap()).expect("the hub answers JSON");
        (status, body)
    };

    let (status, space) = send(
        http.post(hub.api("/space"))
            .json(&json!({"Slug": "schema"})),
    )
    .await;
    assert_eq!(status, 200);
    check(&doc, "CreateSpace", &space);
    let sid = space["SpaceID"].as_str().unwrap().to_string();
    let (_, spaces) = send(http.get(hub.api("/space"))).await;
    check(&doc, "ListSpaces", &spaces);
    let (_, one) = send(http.get(hub.api(&format!("/space/{sid}")))).await;
    check(&doc, "GetSpace", &one);

    let (status, created) = send(http.post(hub.api(&format!("/space/{sid}/unit"))).json(
        &json!({"Slug": "web", "ToolchainType": "Kubernetes/YAML", "Labels": {"app": "web"}}),
    ))
    .await;
    assert_eq!(status, 200);
    check(&doc, "CreateUnit", &created);
    let uid = created["Unit"]["UnitID"].as_str().unwrap().to_string();
    let (status, uploaded) = send(
        http.put(hub.api(&format!("/space/{sid}/unit/{uid}/data")))
            .header("content-type", "application/octet-stream")
            .body("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"),
    )
    .await;
    assert_eq!(status, 200);
    check(&doc, "UploadUnitData", &uploaded);
    let (status, patched) = send(
        http.patch(hub.api(&format!("/space/{sid}/unit/{uid}")))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"Labels":{"tier":"front"}}"#),
    )
    .await;
    assert_eq!(status, 200);
    check(&doc, "PatchUnit", &patched);
    let (_, units) = send(http.get(hub.api(&format!("/space/{sid}/unit")))).await;
    check(&doc, "ListUnits", &units);
    // With the fields the source reconciler selects (src/source/fetch.rs).
    let select = "Slug,UnitID,ToolchainType,HeadRevisionNum,LastReleasedRevisionNum,DataHash";
    let (_, units) = send(http.get(hub.api(&format!("/space/{sid}/unit?select={select}")))).await;
    check(&doc, "ListUnits", &units);
    let (_, revisions) =
        send(http.get(hub.api(&format!("/space/{sid}/unit/{uid}/revision")))).await;
    assert!(revisions.as_array().is_some_and(|r| !r.is_empty()));
    check(&doc, "ListRevisions", &revisions);

    let (status, missing) = send(http.get(hub.api(&format!("/space/{A_UUID}")))).await;
    assert_eq!(status, 404);
    check(&doc, "error", &missing);
    let (status, refused) = send(
        http.post(hub.api("/space"))
            .json(&json!({"Slug": "schema"})),
    )
    .await;
    assert_eq!(status, 409);
    check(&doc, "error", &refused);
    hub.stop().await;
}
