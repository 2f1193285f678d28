//! The ConfigHub API operations, one method each, all going through the request machinery in
//! [`super::client`] (timeouts, retries, paging, error decoding, counters).

use bytes::Bytes;
use reqwest::header::{ETAG, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};

use super::client::*;
use super::error::Error;
use super::types::*;

impl Client {
    /// Looks a Space up by slug with `where=Slug = '…'` (quoted safely).
    pub async fn find_space_by_slug(&self, slug: &str) -> Result<Option<Space>, Error> {
        let w = super::Where::new()
            .eq("Slug", slug)
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let spaces = self.list_spaces(Some(&w)).await?;
        Ok(spaces.into_iter().map(|s| s.space).find(|s| s.slug == slug))
    }

    /// Accepts what users write in a spec: a Space UUID or a slug.
    pub async fn resolve_space(&self, slug_or_id: &str) -> Result<Space, Error> {
        if uuid::Uuid::parse_str(slug_or_id).is_ok() {
            return self.get_space(slug_or_id).await;
        }
        self.find_space_by_slug(slug_or_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                operation: "ResolveSpace",
                kind: "space",
                name: slug_or_id.to_string(),
            })
    }

    /// `POST /space`; with `allow_exists` an existing Space of that slug is returned instead of 409.
    pub async fn create_space(
        &self,
        space: &SpaceCreate,
        allow_exists: bool,
    ) -> Result<Space, Error> {
        let op = "CreateSpace";
        let mut call = self.call(op, Method::POST, &["space"]);
        call.query.push(("allow_exists", allow_exists.to_string()));
        call.body = Some(("application/json", Self::json_body(op, space)?));
        self.fetch_json(&call).await
    }

    /// `GET /space/{id}/unit?where=…&select=…`, every page.
    pub async fn list_units(
        &self,
        space_id: &str,
        where_: Option<&str>,
        select: &[&str],
    ) -> Result<Vec<Unit>, Error> {
        self.list_units_hidden(space_id, where_, select, None).await
    }

    /// [`Client::list_units`], also returning hidden Units whose `HiddenReason` is in
    /// `include_hidden` (comma-separated reasons, or `*` for all).
    pub async fn list_units_hidden(
        &self,
        space_id: &str,
        where_: Option<&str>,
        select: &[&str],
        include_hidden: Option<&str>,
    ) -> Result<Vec<Unit>, Error> {
        let units = self
            .list_units_extended(space_id, where_, select, include_hidden, &[])
            .await?;
        Ok(units.into_iter().map(|u| u.unit).collect())
    }

    /// [`Client::list_units_hidden`] with `include` (e.g. `LastReleasedRevisionNum`, which adds each
    /// Unit's last released Revision), returning the `ExtendedUnit`s.
    pub async fn list_units_extended(
        &self,
        space_id: &str,
        where_: Option<&str>,
        select: &[&str],
        include_hidden: Option<&str>,
        include: &[&str],
    ) -> Result<Vec<ExtendedUnit>, Error> {
        let mut call = self.call("ListUnits", Method::GET, &["space", space_id, "unit"]);
        if let Some(w) = where_ {
            call.query.push(("where", w.to_string()));
        }
        if let Some(h) = include_hidden {
            call.query.push(("include_hidden", h.to_string()));
        }
        if !select.is_empty() {
            call.query.push(("select", select.join(",")));
        }
        if !include.is_empty() {
            call.query.push(("include", include.join(",")));
        }
        self.fetch_list(call, true).await
    }

    /// `POST /space/{id}/unit`: the new Unit starts at revision 1, empty.
    pub async fn create_unit(
        &self,
        space_id: &str,
        unit: &UnitCreate,
        allow_exists: bool,
    ) -> Result<Unit, Error> {
        let op = "CreateUnit";
        let mut call = self.call(op, Method::POST, &["space", space_id, "unit"]);
        call.query.push(("allow_exists", allow_exists.to_string()));
        call.body = Some(("application/json", Self::json_body(op, unit)?));
        Ok(self
            .fetch_json::<UnitCreateOrUpdateResponse>(&call)
            .await?
            .unit)
    }

    /// `PATCH /space/{id}/unit/{id}` as `application/merge-patch+json`.
    pub async fn patch_unit(
        &self,
        space_id: &str,
        unit_id: &str,
        patch: &UnitPatch,
    ) -> Result<Unit, Error> {
        let op = "PatchUnit";
        let mut call = self.call(op, Method::PATCH, &["space", space_id, "unit", unit_id]);
        call.body = Some(("application/merge-patch+json", Self::json_body(op, patch)?));
        Ok(self
            .fetch_json::<UnitCreateOrUpdateResponse>(&call)
            .await?
            .unit)
    }

    async fn download(
        &self,
        mut call: Call,
        if_none_match: Option<&str>,
    ) -> Result<DataDownload, Error> {
        if let Some(etag) = if_none_match {
            call.headers.push((IF_NONE_MATCH, quoted(etag)));
        }
        let _permit = self
            .downloads
            .acquire()
            .await
            .map_err(|_| Error::Invalid("download semaphore closed".into()))?;
        let raw = self.execute(&call).await?;
        if raw.status == StatusCode::NOT_MODIFIED {
            return Ok(DataDownload::NotModified);
        }
        let etag = raw
            .headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(normalize_etag);
        Ok(DataDownload::Data {
            bytes: raw.body,
            etag,
        })
    }

    /// `GET /space/{id}/unit/{id}/data`, conditional on `if_none_match` (a DataHash, quoted or not).
    pub async fn download_unit_data(
        &self,
        space_id: &str,
        unit_id: &str,
        if_none_match: Option<&str>,
    ) -> Result<DataDownload, Error> {
        let call = self.call(
            "DownloadUnitData",
            Method::GET,
            &["space", space_id, "unit", unit_id, "data"],
        );
        self.download(call, if_none_match).await
    }

    /// `PUT /space/{id}/unit/{id}/data`. With `if_match` a concurrent write fails with
    /// [`Error::is_conflict`] (409, or 412 from servers that use it).
    pub async fn upload_unit_data(
        &self,
        space_id: &str,
        unit_id: &str,
        data: impl Into<Bytes>,
        if_match: Option<&str>,
        last_change_description: Option<&str>,
    ) -> Result<Unit, Error> {
        let mut call = self.call(
            "UploadUnitData",
            Method::PUT,
            &["space", space_id, "unit", unit_id, "data"],
        );
        if let Some(etag) = if_match {
            call.headers.push((IF_MATCH, quoted(etag)));
        }
        if let Some(d) = last_change_description {
            call.query.push(("last_change_description", d.to_string()));
        }
        call.body = Some(("application/octet-stream", data.into()));
        Ok(self
            .fetch_json::<UnitCreateOrUpdateResponse>(&call)
            .await?
            .unit)
    }

    /// `GET /space/{id}/unit/{id}/revision` with `where`, `limit` (≤ 1000) and `order_by`
    /// (e.g. `DESC:RevisionNum`).
    pub async fn list_revisions(
        &self,
        space_id: &str,
        unit_id: &str,
        where_: Option<&str>,
        limit: Option<u32>,
        order_by: Option<&str>,
    ) -> Result<Vec<Revision>, Error> {
        let mut call = self.call(
            "ListRevisions",
            Method::GET,
            &["space", space_id, "unit", unit_id, "revision"],
        );
        if let Some(w) = where_ {
            call.query.push(("where", w.to_string()));
        }
        if let Some(l) = limit {
            call.query.push(("limit", l.to_string()));
        }
        if let Some(o) = order_by {
            call.query.push(("order_by", o.to_string()));
        }
        // With a limit the caller asked for that many: one page. Without, every page.
        let revs: Vec<ExtendedRevision> = if limit.is_some() {
            let page: Option<Vec<ExtendedRevision>> = self.fetch_json(&call).await?;
            page.unwrap_or_default()
        } else {
            self.fetch_list(call, false).await?
        };
        Ok(revs.into_iter().map(|r| r.revision).collect())
    }

    /// `GET …/revision/{revision_id}/data`.
    pub async fn download_revision_data(
        &self,
        space_id: &str,
        unit_id: &str,
        revision_id: &str,
        if_none_match: Option<&str>,
    ) -> Result<DataDownload, Error> {
        let call = self.call(
            "DownloadRevisionData",
            Method::GET,
            &[
                "space",
                space_id,
                "unit",
                unit_id,
                "revision",
                revision_id,
                "data",
            ],
        );
        self.download(call, if_none_match).await
    }
}
