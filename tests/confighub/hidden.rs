//! Hidden Units, as the service has them: lists leave out a Unit with a non-empty `HiddenReason` unless
//! `include_hidden` names its reason (or is `*`), or `where` names it by `Slug`/`UnitID` with `=`/`IN`, or
//! mentions `HiddenReason`; `ConfigHub/YAML` Units are `BackingUnit`s unless told otherwise.

use confighub_source_controller::confighub::{Client, UnitCreate};

use crate::support::{TestHub, space, unit};

async fn create(c: &Client, space_id: &str, slug: &str, toolchain: &str, reason: &str) {
    let unit = UnitCreate {
        slug: slug.into(),
        toolchain_type: toolchain.into(),
        hidden_reason: reason.into(),
        ..Default::default()
    };
    c.create_unit(space_id, &unit, false).await.unwrap();
}

async fn slugs(
    c: &Client,
    space_id: &str,
    where_: Option<&str>,
    hidden: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = c
        .list_units_hidden(space_id, where_, &[], hidden)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.slug)
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_units_are_listed_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let c = hub.client();
    let s = space(&c, "hiding").await;
    unit(&c, &s.space_id, "visible").await;
    create(&c, &s.space_id, "archived", "Kubernetes/YAML", "Archived").await;
    // A ConfigHub/YAML Unit is a BackingUnit unless told otherwise.
    create(&c, &s.space_id, "backing", "ConfigHub/YAML", "").await;
    let sid = &s.space_id;

    assert_eq!(slugs(&c, sid, None, None).await, ["visible"]);
    assert_eq!(
        slugs(&c, sid, None, Some("*")).await,
        ["archived", "backing", "visible"]
    );
    assert_eq!(
        slugs(&c, sid, None, Some("BackingUnit")).await,
        ["backing", "visible"]
    );
    assert_eq!(
        slugs(&c, sid, None, Some("Other, Archived")).await,
        ["archived", "visible"]
    );
    // Named by slug, a hidden Unit is listed; matched only by another attribute, it is not.
    assert_eq!(
        slugs(&c, sid, Some("Slug = 'archived'"), None).await,
        ["archived"]
    );
    assert_eq!(
        slugs(&c, sid, Some("Slug IN ('archived', 'visible')"), None).await,
        ["archived", "visible"]
    );
    assert_eq!(
        slugs(&c, sid, Some("Slug LIKE 'arch%'"), None).await,
        Vec::<String>::new()
    );
    assert_eq!(
        slugs(&c, sid, Some("HiddenReason = 'BackingUnit'"), None).await,
        ["backing"]
    );
    hub.stop().await;
}
