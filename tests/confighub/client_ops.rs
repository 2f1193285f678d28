//! Every client operation against the hub, including the documented failure statuses.

use std::collections::BTreeMap;

use confighub_source_controller::confighub::{
    ChangeSetCreate, CmpOp, DataDownload, DownloadRequest, SpaceCreate, UnitPatch, Where, data_hash,
};

use crate::support::{TOKEN, TestHub, space, unit};

const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn data(d: DataDownload) -> (Vec<u8>, Option<String>) {
    match d {
        DataDownload::Data { bytes, etag } => (bytes.to_vec(), etag),
        DataDownload::NotModified => panic!("expected data, got 304"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_is_public_and_me_checks_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;

    let anonymous = hub.client_with_token(None);
    assert_eq!(anonymous.info().await.unwrap().version, "v0.4.21");
    let err = anonymous.list_spaces(None).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");

    let me = hub.client().me().await.unwrap();
    assert!(!me.user_id.is_empty() && !me.organization_id.is_empty());

    let secret = "definitely-wrong-token-8812";
    let err = hub.client_with_token(Some(secret)).me().await.unwrap_err();
    assert!(err.is_unauthorized());
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.operation(), Some("GetMe"));
    assert!(err.request_id().is_some(), "hub errors carry X-Request-Id");
    assert_eq!(err.metric_label(), "unauthorized");
    let shown = format!("{err} {err:?} {:?}", hub.client_with_token(Some(secret)));
    assert!(!shown.contains(secret), "token leaked: {shown}");
    assert!(!shown.contains(TOKEN));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaces_create_find_and_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();

    let created = space(&c, "payments-dev").await;
    assert_eq!(created.slug, "payments-dev");
    assert_eq!(created.version, 1);
    let _other = space(&c, "other").await;

    let dup = SpaceCreate {
        slug: "payments-dev".into(),
        ..Default::default()
    };
    assert!(c.create_space(&dup, false).await.unwrap_err().is_conflict());
    assert_eq!(
        c.create_space(&dup, true).await.unwrap().space_id,
        created.space_id
    );

    let found = c.find_space_by_slug("payments-dev").await.unwrap().unwrap();
    assert_eq!(found.space_id, created.space_id);
    assert_eq!(
        c.resolve_space("payments-dev").await.unwrap().space_id,
        created.space_id
    );
    assert_eq!(
        c.resolve_space(&created.space_id).await.unwrap().slug,
        "payments-dev"
    );
    assert_eq!(c.get_space(&created.space_id).await.unwrap(), created);

    // A quote in the slug stays inside the literal: nothing matches, nothing leaks.
    assert!(
        c.find_space_by_slug("x' OR '1'='1")
            .await
            .unwrap()
            .is_none()
    );
    let missing = c.resolve_space("nope").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    let missing = c
        .resolve_space("0d9c7a5e-0000-4000-8000-000000000001")
        .await
        .unwrap_err();
    assert!(missing.is_not_found());
    assert_eq!(c.list_spaces(None).await.unwrap().len(), 2);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_data_revisions_and_etags() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "apps").await;
    let u = unit(&c, &s.space_id, "web").await;
    assert_eq!(u.head_revision_num, 1);
    assert_eq!(u.last_released_revision_num, 0);
    assert_eq!(u.version, 1);
    assert_eq!(u.data_size, 0);
    assert_eq!(u.data_hash, EMPTY_HASH);

    let (bytes, etag) = data(
        c.download_unit_data(&s.space_id, &u.unit_id, None)
            .await
            .unwrap(),
    );
    assert!(bytes.is_empty());
    assert_eq!(etag.as_deref(), Some(EMPTY_HASH));
    assert_eq!(
        c.download_unit_data(&s.space_id, &u.unit_id, Some(EMPTY_HASH))
            .await
            .unwrap(),
        DataDownload::NotModified
    );

    let v1 = b"apiVersion: v1\nkind: ConfigMap\n".to_vec();
    let after = c
        .upload_unit_data(
            &s.space_id,
            &u.unit_id,
            v1.clone(),
            Some(EMPTY_HASH),
            Some("first"),
        )
        .await
        .unwrap();
    assert_eq!(after.head_revision_num, 2);
    assert_eq!(after.data_hash, data_hash(&v1));
    assert_eq!(after.data_size, v1.len() as i64);
    assert_eq!(after.version, 2);
    assert_ne!(after.head_revision_id, u.head_revision_id);

    let (bytes, etag) = data(
        c.download_unit_data(&s.space_id, &u.unit_id, Some(EMPTY_HASH))
            .await
            .unwrap(),
    );
    assert_eq!(bytes, v1);
    assert_eq!(etag.as_deref(), Some(after.data_hash.as_str()));
    assert_eq!(
        c.download_unit_data(
            &s.space_id,
            &u.unit_id,
            Some(&format!("W/\"{}\"", after.data_hash))
        )
        .await
        .unwrap(),
        DataDownload::NotModified
    );

    // Stale If-Match: 409, and the data is untouched.
    let stale = c
        .upload_unit_data(
            &s.space_id,
            &u.unit_id,
            b"other".to_vec(),
            Some(EMPTY_HASH),
            None,
        )
        .await
        .unwrap_err();
    assert!(stale.is_conflict(), "{stale}");
    assert_eq!(stale.status(), Some(409));
    let (bytes, _) = data(
        c.download_unit_data(&s.space_id, &u.unit_id, None)
            .await
            .unwrap(),
    );
    assert_eq!(bytes, v1);

    // Identical re-upload: no new revision.
    let same = c
        .upload_unit_data(&s.space_id, &u.unit_id, v1.clone(), None, Some("again"))
        .await
        .unwrap();
    assert_eq!(same.head_revision_num, 2);

    let v2 = b"apiVersion: v1\nkind: Secret\n".to_vec();
    let third = c
        .upload_unit_data(
            &s.space_id,
            &u.unit_id,
            v2.clone(),
            Some(&after.data_hash),
            Some("second"),
        )
        .await
        .unwrap();
    assert_eq!(third.head_revision_num, 3);

    let revs = c
        .list_revisions(&s.space_id, &u.unit_id, None, None, None)
        .await
        .unwrap();
    let nums: Vec<i64> = revs.iter().map(|r| r.revision_num).collect();
    assert_eq!(nums, [1, 2, 3]);
    assert_eq!(revs[1].description, "first");
    assert_eq!(revs[2].description, "second");
    assert_eq!(revs[0].data_hash, EMPTY_HASH);

    let desc = c
        .list_revisions(
            &s.space_id,
            &u.unit_id,
            None,
            Some(2),
            Some("DESC:RevisionNum"),
        )
        .await
        .unwrap();
    assert_eq!(
        desc.iter().map(|r| r.revision_num).collect::<Vec<_>>(),
        [3, 2]
    );

    let w = Where::new()
        .int("RevisionNum", CmpOp::Eq, 2)
        .build()
        .unwrap();
    let r2 = c
        .list_revisions(&s.space_id, &u.unit_id, Some(&w), None, None)
        .await
        .unwrap();
    assert_eq!(r2.len(), 1);
    let r2 = &r2[0];
    assert_eq!(
        c.get_revision(&s.space_id, &u.unit_id, &r2.revision_id)
            .await
            .unwrap(),
        *r2
    );
    let (bytes, etag) = data(
        c.download_revision_data(&s.space_id, &u.unit_id, &r2.revision_id, None)
            .await
            .unwrap(),
    );
    assert_eq!(bytes, v1);
    assert_eq!(etag.as_deref(), Some(r2.data_hash.as_str()));
    assert_eq!(
        c.download_revision_data(
            &s.space_id,
            &u.unit_id,
            &r2.revision_id,
            Some(&r2.data_hash)
        )
        .await
        .unwrap(),
        DataDownload::NotModified
    );

    let too_many = c
        .list_revisions(&s.space_id, &u.unit_id, None, Some(1001), None)
        .await
        .unwrap_err();
    assert_eq!(too_many.status(), Some(400), "{too_many}");
    let bad_where = c
        .list_revisions(
            &s.space_id,
            &u.unit_id,
            Some("RevisionNum = 'x'"),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(bad_where.status(), Some(400));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_patch_enforce_version() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "apps").await;
    let u = unit(&c, &s.space_id, "web").await;

    let mut edit = u.clone();
    edit.labels.insert("app".into(), "web".into());
    edit.labels.insert("tier".into(), "frontend".into());
    let updated = c.update_unit(&s.space_id, &edit).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(
        updated.labels.get("tier").map(String::as_str),
        Some("frontend")
    );
    assert_eq!(
        updated.head_revision_num, 1,
        "metadata changes make no revision"
    );

    let stale = c.update_unit(&s.space_id, &edit).await.unwrap_err();
    assert!(stale.is_conflict(), "{stale}");
    assert_eq!(stale.operation(), Some("UpdateUnit"));

    let mut labels = BTreeMap::new();
    labels.insert("tier".to_string(), None);
    labels.insert("channel".to_string(), Some("stable".to_string()));
    let patch = UnitPatch {
        labels: Some(labels),
        last_change_description: Some("relabel".into()),
        version: Some(updated.version),
        ..Default::default()
    };
    let patched = c.patch_unit(&s.space_id, &u.unit_id, &patch).await.unwrap();
    assert_eq!(patched.version, 3);
    assert_eq!(patched.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        patched.labels.get("channel").map(String::as_str),
        Some("stable")
    );
    assert!(!patched.labels.contains_key("tier"));
    assert_eq!(patched.last_change_description, "relabel");

    let stale = c
        .patch_unit(&s.space_id, &u.unit_id, &patch)
        .await
        .unwrap_err();
    assert!(stale.is_conflict());
    let unversioned = UnitPatch {
        display_name: Some("Web".into()),
        ..Default::default()
    };
    assert_eq!(
        c.patch_unit(&s.space_id, &u.unit_id, &unversioned)
            .await
            .unwrap()
            .display_name,
        "Web"
    );
    assert_eq!(
        c.get_unit(&s.space_id, &u.unit_id).await.unwrap().version,
        4
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_sets_delete_and_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "apps").await;
    let req = ChangeSetCreate {
        slug: "cs-replicas".into(),
        description: "scale web tier".into(),
        ..Default::default()
    };
    let cs = c.create_change_set(&s.space_id, &req).await.unwrap();
    assert_eq!(cs.slug, "cs-replicas");
    assert_eq!(
        c.get_change_set(&s.space_id, &cs.change_set_id)
            .await
            .unwrap(),
        cs
    );
    assert_eq!(
        c.list_change_sets(&s.space_id).await.unwrap(),
        vec![cs.clone()]
    );
    assert!(
        c.create_change_set(&s.space_id, &req)
            .await
            .unwrap_err()
            .is_conflict()
    );
    let unknown = "0d9c7a5e-0000-4000-8000-000000000009";
    assert!(
        c.get_change_set(&s.space_id, unknown)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let u = unit(&c, &s.space_id, "web").await;
    let deleted = c.delete_unit(&s.space_id, &u.unit_id).await.unwrap();
    assert!(!deleted.message.is_empty());
    assert!(
        c.get_unit(&s.space_id, &u.unit_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        c.download_unit_data(&s.space_id, &u.unit_id, None)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        c.delete_unit(&s.space_id, &u.unit_id)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let bad = c.get_unit(&s.space_id, "not-a-uuid").await.unwrap_err();
    assert_eq!(bad.status(), Some(400));
    assert!(
        c.get_unit(unknown, unknown)
            .await
            .unwrap_err()
            .is_not_found()
    );
    // A Unit is only found through its own Space.
    let other = space(&c, "other").await;
    let u2 = unit(&c, &s.space_id, "db").await;
    assert!(
        c.get_unit(&other.space_id, &u2.unit_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_many_fetches_everything_and_counts_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "bulk").await;
    let mut expected = BTreeMap::new();
    for i in 0..12 {
        let u = unit(&c, &s.space_id, &format!("u{i}")).await;
        let body = format!("index: {i}\n").repeat(i + 1).into_bytes();
        c.upload_unit_data(&s.space_id, &u.unit_id, body.clone(), None, None)
            .await
            .unwrap();
        expected.insert(u.unit_id, body);
    }
    let before = c.stats();
    let reqs: Vec<DownloadRequest> = expected
        .keys()
        .map(|id| DownloadRequest {
            unit_id: id.clone(),
            if_none_match: None,
        })
        .collect();
    let results = c.download_many(&s.space_id, reqs).await;
    assert_eq!(results.len(), 12);
    let mut etags = Vec::new();
    for (id, result) in results {
        let (bytes, etag) = data(result.unwrap());
        assert_eq!(&bytes, expected.get(&id).unwrap());
        etags.push(DownloadRequest {
            unit_id: id,
            if_none_match: etag,
        });
    }
    let after = c.stats();
    assert_eq!(after.requests - before.requests, 12);
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(
        after.bytes_downloaded - before.bytes_downloaded,
        total as u64
    );

    let again = c.download_many(&s.space_id, etags).await;
    assert!(
        again
            .iter()
            .all(|(_, r)| matches!(r, Ok(DataDownload::NotModified)))
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_hub_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let me = c.me().await.unwrap();
    let s = space(&c, "durable").await;
    let u = unit(&c, &s.space_id, "web").await;
    let written = c
        .upload_unit_data(
            &s.space_id,
            &u.unit_id,
            b"kept: true\n".to_vec(),
            None,
            Some("keep"),
        )
        .await
        .unwrap();
    hub.stop().await;

    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    assert_eq!(c.me().await.unwrap().organization_id, me.organization_id);
    assert_eq!(
        c.resolve_space("durable").await.unwrap().space_id,
        s.space_id
    );
    assert_eq!(c.get_unit(&s.space_id, &u.unit_id).await.unwrap(), written);
    let (bytes, etag) = data(
        c.download_unit_data(&s.space_id, &u.unit_id, None)
            .await
            .unwrap(),
    );
    assert_eq!(bytes, b"kept: true\n");
    assert_eq!(etag.as_deref(), Some(written.data_hash.as_str()));
    let revs = c
        .list_revisions(&s.space_id, &u.unit_id, None, None, None)
        .await
        .unwrap();
    assert_eq!(revs.len(), 2);
    assert_eq!(revs[1].description, "keep");
    hub.stop().await;
}
