//! Listing units: filters, and the bookkeeping of releases the list reports.

use std::collections::BTreeMap;

use confighub_source_controller::confighub::{CmpOp, UnitPatch, Where};

use crate::support::{TestHub, space, unit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_units_filters_and_release_bookkeeping() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "apps").await;
    let mut ids = Vec::new();
    for (slug, app) in [("web-1", Some("web")), ("web-2", Some("web")), ("db", None)] {
        let u = unit(&c, &s.space_id, slug).await;
        if let Some(app) = app {
            let mut labels = BTreeMap::new();
            labels.insert("app".to_string(), Some(app.to_string()));
            let patch = UnitPatch {
                labels: Some(labels),
                ..Default::default()
            };
            c.patch_unit(&s.space_id, &u.unit_id, &patch).await.unwrap();
        }
        ids.push(u.unit_id);
    }
    let slugs = |units: Vec<confighub_source_controller::confighub::Unit>| {
        units.into_iter().map(|u| u.slug).collect::<Vec<_>>()
    };
    let w = Where::new().label_eq("app", "web").build().unwrap();
    assert_eq!(
        slugs(c.list_units(&s.space_id, Some(&w), &[]).await.unwrap()),
        ["web-1", "web-2"]
    );
    let w = Where::new().ne("Labels.app", "web").build().unwrap();
    assert!(
        c.list_units(&s.space_id, Some(&w), &[])
            .await
            .unwrap()
            .is_empty(),
        "missing label never matches"
    );
    let w = Where::new()
        .and_in("UnitID", [&ids[0], &ids[2]])
        .build()
        .unwrap();
    assert_eq!(
        slugs(c.list_units(&s.space_id, Some(&w), &[]).await.unwrap()),
        ["db", "web-1"]
    );
    let w = Where::new()
        .like("Slug", "web-%")
        .eq("ToolchainType", "Kubernetes/YAML")
        .build()
        .unwrap();
    assert_eq!(
        c.list_units(&s.space_id, Some(&w), &[])
            .await
            .unwrap()
            .len(),
        2
    );

    let needs_release = Where::new()
        .attrs("HeadRevisionNum", CmpOp::Gt, "LastReleasedRevisionNum")
        .build()
        .unwrap();
    assert_eq!(
        c.list_units(&s.space_id, Some(&needs_release), &[])
            .await
            .unwrap()
            .len(),
        3
    );

    // As the service: nothing is released without a release Target, and only the Units on it are.
    let refused = c.publish_release(&s.space_id).await.unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");
    let target = c
        .create_target(&s.space_id, "flux", "Kubernetes/YAML", "FluxOCI")
        .await
        .unwrap();
    let other = space(&c, "elsewhere").await;
    let foreign = c
        .create_target(&other.space_id, "flux", "Kubernetes/YAML", "FluxOCI")
        .await
        .unwrap();
    let bad_target = c
        .patch_space(
            &s.space_id,
            &serde_json::json!({"ReleaseTargetID": foreign.target_id}),
        )
        .await
        .unwrap_err();
    assert_eq!(bad_target.status(), Some(400), "{bad_target}");
    let patched = c
        .patch_space(
            &s.space_id,
            &serde_json::json!({"ReleaseTargetID": target.target_id}),
        )
        .await
        .unwrap();
    assert_eq!(patched.release_target_id, target.target_id);
    for id in &ids[..2] {
        let patch = UnitPatch {
            target_id: Some(target.target_id.clone()),
            ..Default::default()
        };
        c.patch_unit(&s.space_id, id, &patch).await.unwrap();
    }
    let no_such_target = UnitPatch {
        target_id: Some(uuid::Uuid::new_v4().to_string()),
        ..Default::default()
    };
    let err = c
        .patch_unit(&s.space_id, &ids[2], &no_such_target)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");

    let published = c.publish_release_response(&s.space_id).await.unwrap();
    let release = published.release;
    assert_eq!(release.release_num, 1);
    assert_eq!(
        release.unit_count, 2,
        "only the Units on the release Target"
    );
    assert_eq!(release.target_id, target.target_id);
    assert!(release.published);
    assert_eq!(
        slugs(
            c.list_units(&s.space_id, Some(&needs_release), &[])
                .await
                .unwrap()
        ),
        ["db"]
    );
    let web1 = c.get_unit(&s.space_id, &ids[0]).await.unwrap();
    assert_eq!(web1.last_released_revision_num, 1);
    let head = c
        .get_revision(&s.space_id, &ids[0], &web1.head_revision_id)
        .await
        .unwrap();
    assert!(head.releases.contains_key(&release.release_id));

    // Nothing changed: the latest Release comes back and nothing new is created.
    let again = c.publish_release_response(&s.space_id).await.unwrap();
    assert_eq!(again.release.release_id, release.release_id);
    assert!(again.message.contains("identical"), "{}", again.message);

    // A Unit with validation errors blocks the Release (422) until it is fixed.
    c.upload_unit_data(&s.space_id, &ids[0], b"x: 1".to_vec(), None, None)
        .await
        .unwrap();
    let web1 = c.get_unit(&s.space_id, &ids[0]).await.unwrap();
    assert_eq!(
        web1.validation_errors.keys().collect::<Vec<_>>(),
        ["apps/hub-vet/vet-kubernetes-yaml"]
    );
    let blocked = c.publish_release(&s.space_id).await.unwrap_err();
    assert_eq!(blocked.status(), Some(422), "{blocked}");
    assert!(blocked.to_string().contains("web-1"), "{blocked}");
    let fixed = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n".to_vec();
    c.upload_unit_data(&s.space_id, &ids[0], fixed, None, None)
        .await
        .unwrap();
    assert_eq!(
        slugs(
            c.list_units(&s.space_id, Some(&needs_release), &["HeadRevisionNum"])
                .await
                .unwrap()
        ),
        ["db", "web-1"]
    );
    assert_eq!(c.publish_release(&s.space_id).await.unwrap().release_num, 2);

    let bad = c
        .list_units(&s.space_id, Some("Slug = 'a' OR 1=1"), &[])
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(400));
    assert!(bad.to_string().contains("OR"), "{bad}");
    let bad = c
        .list_units(&s.space_id, Some("Bogus = 1"), &[])
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("Bogus"), "{bad}");
    hub.stop().await;
}
