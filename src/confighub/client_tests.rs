//! Tests of [`super`] (client.rs).

use super::*;

#[test]
fn etags_are_normalised() {
    assert_eq!(normalize_etag("W/\"abc\""), "abc");
    assert_eq!(normalize_etag("\"abc\""), "abc");
    assert_eq!(quoted("abc"), "\"abc\"");
    assert_eq!(quoted("\"abc\""), "\"abc\"");
}

#[test]
fn origin_gets_api_appended_and_segments_are_escaped() {
    let c = Client::new("http://127.0.0.1:8090/", None, ClientOptions::default()).unwrap();
    assert_eq!(c.base_url().as_str(), "http://127.0.0.1:8090/api");
    assert_eq!(
        c.url(&["space", "a/b?c"]).as_str(),
        "http://127.0.0.1:8090/api/space/a%2Fb%3Fc"
    );
    assert!(Client::new("ftp://x", None, ClientOptions::default()).is_err());
    assert!(Client::new("not a url", None, ClientOptions::default()).is_err());
}

#[test]
fn query_values_are_percent_encoded() {
    let base = Url::parse("http://h/api/space").unwrap();
    let url = with_query(&base, &[("where", "Slug = 'a+b'".to_string())]);
    assert_eq!(
        url.as_str(),
        "http://h/api/space?where=Slug%20%3D%20%27a%2Bb%27"
    );
}

#[test]
fn debug_hides_the_token() {
    let c = Client::new(
        "http://127.0.0.1:1",
        Some("tok-abcdef".into()),
        ClientOptions::default(),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("tok-abcdef"));
}

#[test]
fn non_json_error_bodies_become_api_errors() {
    let err = api_error(
        "GetUnit",
        StatusCode::BAD_GATEWAY,
        None,
        b"<html>bad gateway</html>",
    );
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().contains("bad gateway"));
    let err = api_error(
        "GetUnit",
        StatusCode::NOT_FOUND,
        Some("r1".into()),
        br#"{"Code":"404","Message":"Unit not found"}"#,
    );
    assert!(err.is_not_found());
    assert_eq!(err.request_id(), Some("r1"));
    assert!(err.to_string().contains("Unit not found"));
}
