//! ConfigHub client operations the controller never calls — the rest of the API surface (info, spaces,
//! Unit get/replace/delete, bulk downloads, revisions by ID, change sets, releases) — kept with the hub,
//! whose tests and tools exercise it through the same typed client. The controller's own operations stay
//! in `src/confighub/ops.rs`, so that client is exactly what the controller uses.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::Method;

use crate::confighub::client::*;
use crate::confighub::types::*;
use crate::confighub::{Client, Error};

impl Client {
    /// `GET /info` (no token needed).
    pub async fn info(&self) -> Result<ApiInfo, Error> {
        self.fetch_json(&self.call("GetInfo", Method::GET, &["info"]))
            .await
    }

    /// `GET /me`: the token check. A bad token fails with [`Error::is_unauthorized`].
    pub async fn me(&self) -> Result<OrganizationMember, Error> {
        self.fetch_json(&self.call("GetMe", Method::GET, &["me"]))
            .await
    }

    /// `GET /space?where=…`.
    pub async fn list_spaces(&self, where_: Option<&str>) -> Result<Vec<ExtendedSpace>, Error> {
        let mut call = self.call("ListSpaces", Method::GET, &["space"]);
        if let Some(w) = where_ {
            call.query.push(("where", w.to_string()));
        }
        self.fetch_list(call, true).await
    }

    /// `GET /space/{id}`.
    pub async fn get_space(&self, space_id: &str) -> Result<Space, Error> {
        let call = self.call("GetSpace", Method::GET, &["space", space_id]);
        Ok(self.fetch_json::<ExtendedSpace>(&call).await?.space)
    }

    /// `GET /space/{id}/unit/{id}`.
    pub async fn get_unit(&self, space_id: &str, unit_id: &str) -> Result<Unit, Error> {
        let call = self.call(
            "GetUnit",
            Method::GET,
            &["space", space_id, "unit", unit_id],
        );
        Ok(self.fetch_json::<ExtendedUnit>(&call).await?.unit)
    }

    /// `PUT /space/{id}/unit/{id}`: whole-entity replace guarded by `unit.version` (409 if stale).
    pub async fn update_unit(&self, space_id: &str, unit: &Unit) -> Result<Unit, Error> {
        let op = "UpdateUnit";
        let mut call = self.call(op, Method::PUT, &["space", space_id, "unit", &unit.unit_id]);
        call.body = Some(("application/json", Self::json_body(op, unit)?));
        Ok(self
            .fetch_json::<UnitCreateOrUpdateResponse>(&call)
            .await?
            .unit)
    }

    /// `DELETE /space/{id}/unit/{id}`.
    pub async fn delete_unit(
        &self,
        space_id: &str,
        unit_id: &str,
    ) -> Result<DeleteResponse, Error> {
        let call = self.call(
            "DeleteUnit",
            Method::DELETE,
            &["space", space_id, "unit", unit_id],
        );
        self.fetch_json(&call).await
    }

    /// Downloads many Units' data with at most `max_concurrent_downloads` in flight; results come
    /// back in completion order, each with its Unit ID.
    pub async fn download_many(
        &self,
        space_id: &str,
        requests: Vec<DownloadRequest>,
    ) -> Vec<(String, Result<DataDownload, Error>)> {
        let limit = self.options.max_concurrent_downloads.max(1);
        futures::stream::iter(requests)
            .map(|req| async move {
                let result = self
                    .download_unit_data(space_id, &req.unit_id, req.if_none_match.as_deref())
                    .await;
                (req.unit_id, result)
            })
            .buffer_unordered(limit)
            .collect()
            .await
    }

    /// `GET …/revision/{revision_id}` (the Revision UUID, not its number).
    pub async fn get_revision(
        &self,
        space_id: &str,
        unit_id: &str,
        revision_id: &str,
    ) -> Result<Revision, Error> {
        let call = self.call(
            "GetRevision",
            Method::GET,
            &["space", space_id, "unit", unit_id, "revision", revision_id],
        );
        Ok(self.fetch_json::<ExtendedRevision>(&call).await?.revision)
    }

    /// `POST /space/{id}/change_set`.
    pub async fn create_change_set(
        &self,
        space_id: &str,
        change_set: &ChangeSetCreate,
    ) -> Result<ChangeSet, Error> {
        let op = "CreateChangeSet";
        let mut call = self.call(op, Method::POST, &["space", space_id, "change_set"]);
        call.body = Some(("application/json", Self::json_body(op, change_set)?));
        self.fetch_json(&call).await
    }

    /// `GET /space/{id}/change_set/{id}`.
    pub async fn get_change_set(
        &self,
        space_id: &str,
        change_set_id: &str,
    ) -> Result<ChangeSet, Error> {
        let call = self.call(
            "GetChangeSet",
            Method::GET,
            &["space", space_id, "change_set", change_set_id],
        );
        Ok(self
            .fetch_json::<ExtendedChangeSet>(&call)
            .await?
            .change_set)
    }

    /// `GET /space/{id}/change_set`.
    pub async fn list_change_sets(&self, space_id: &str) -> Result<Vec<ChangeSet>, Error> {
        let call = self.call(
            "ListChangeSets",
            Method::GET,
            &["space", space_id, "change_set"],
        );
        let sets: Vec<ExtendedChangeSet> = self.fetch_list(call, false).await?;
        Ok(sets.into_iter().map(|c| c.change_set).collect())
    }

    /// `POST /space/{id}/release`: publishes the Units on the Space's release Target at their heads.
    pub async fn publish_release(&self, space_id: &str) -> Result<Release, Error> {
        Ok(self.publish_release_response(space_id).await?.release)
    }

    /// [`Client::publish_release`] with the server's `Message`.
    pub async fn publish_release_response(
        &self,
        space_id: &str,
    ) -> Result<ReleasePublishResponse, Error> {
        let op = "PublishRelease";
        let mut call = self.call(op, Method::POST, &["space", space_id, "release"]);
        call.body = Some(("application/json", Bytes::from_static(b"{}")));
        self.fetch_json(&call).await
    }

    /// `POST /space/{id}/target`.
    pub async fn create_target(
        &self,
        space_id: &str,
        slug: &str,
        toolchain_type: &str,
        provider_type: &str,
    ) -> Result<Target, Error> {
        let op = "CreateTarget";
        let mut call = self.call(op, Method::POST, &["space", space_id, "target"]);
        let body = serde_json::json!({
            "Slug": slug, "ToolchainType": toolchain_type, "ProviderType": provider_type,
        });
        call.body = Some(("application/json", Self::json_body(op, &body)?));
        self.fetch_json(&call).await
    }

    /// `GET /space/{id}/target`.
    pub async fn list_targets(&self, space_id: &str) -> Result<Vec<Target>, Error> {
        let call = self.call("ListTargets", Method::GET, &["space", space_id, "target"]);
        let targets: Vec<ExtendedTarget> = self.fetch_list(call, false).await?;
        Ok(targets.into_iter().map(|t| t.target).collect())
    }

    /// `PATCH /space/{id}` as a merge patch (e.g. `{"ReleaseTargetID": "…"}`).
    pub async fn patch_space(
        &self,
        space_id: &str,
        patch: &serde_json::Value,
    ) -> Result<Space, Error> {
        let op = "PatchSpace";
        let mut call = self.call(op, Method::PATCH, &["space", space_id]);
        call.body = Some(("application/merge-patch+json", Self::json_body(op, patch)?));
        self.fetch_json(&call).await
    }
}
