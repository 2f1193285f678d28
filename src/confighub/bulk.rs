//! Bulk data reads (`shared/confighub-api-more.md` §1): `GET /unit_data` (op `SearchUnitData`) and
//! `GET /revision_data` (op `SearchRevisionData`) return the data of every Unit or Revision a `where`
//! selects, so a sync needs a few requests instead of one per Unit. Both are organization-wide: callers
//! narrow them with `SpaceID = '…'`. ConfigHub refuses a query string over 8,192 characters, so `IN`
//! lists are split into chunks that fit ([`id_chunks`]).

use reqwest::Method;

use super::client::*;
use super::error::Error;
use super::types::*;
use super::where_expr::quote;

/// ConfigHub answers 400 to a query string longer than this.
pub const MAX_QUERY_CHARS: usize = 8192;
/// The most rows one page may ask for (`limit`); more gets 400.
pub const MAX_PAGE: usize = 1000;

/// What a bulk read selects.
#[derive(Clone, Debug, Default)]
pub struct BulkQuery {
    /// The whole `where` (include `SpaceID = '…'`: the endpoints are organization-wide).
    pub where_: String,
    /// Hidden reasons to include (comma-separated, or `*`).
    pub include_hidden: Option<String>,
}

/// Splits `ids` into `attr IN (…)` clauses, each ANDed after `prefix` (may be empty), so that the
/// encoded query string — with `extra` characters of other parameters — stays within
/// [`MAX_QUERY_CHARS`] and each chunk within [`MAX_PAGE`] ids.
pub fn id_chunks(prefix: &str, attr: &str, ids: &[String], extra: usize) -> Vec<String> {
    let enc = |s: &str| encoded_len(s);
    let head = if prefix.is_empty() {
        format!("{attr} IN (")
    } else {
        format!("{prefix} AND {attr} IN (")
    };
    // "where=" + head + items joined by ", " + ")", all percent-encoded.
    let fixed = "where=".len() + enc(&head) + enc(")") + extra;
    let sep = enc(", ");
    let mut chunks = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut len = fixed;
    for id in ids {
        let item = quote(id);
        let cost = enc(&item) + if current.is_empty() { 0 } else { sep };
        if !current.is_empty() && (len + cost > MAX_QUERY_CHARS || current.len() >= MAX_PAGE) {
            chunks.push(format!("{head}{})", current.join(", ")));
            current.clear();
            len = fixed;
        }
        len += enc(&item) + if current.is_empty() { 0 } else { sep };
        current.push(item);
    }
    if !current.is_empty() {
        chunks.push(format!("{head}{})", current.join(", ")));
    }
    chunks
}

/// Length of `s` percent-encoded as [`with_query`] encodes it.
fn encoded_len(s: &str) -> usize {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .map(|part| if part == "+" { 3 } else { part.len() })
        .sum()
}

impl Client {
    /// `GET /unit_data?where=…`: the head data of every Unit selected, every page. `page` is sent as
    /// `limit` (at most 1000); `None` asks for everything at once, as ConfigHub answers without one.
    pub async fn search_unit_data(
        &self,
        query: &BulkQuery,
        page: Option<usize>,
    ) -> Result<Vec<UnitData>, Error> {
        let mut call = self.call("SearchUnitData", Method::GET, &["unit_data"]);
        call.query.push(("where", query.where_.clone()));
        if let Some(h) = &query.include_hidden {
            call.query.push(("include_hidden", h.clone()));
        }
        if let Some(n) = page {
            call.query.push(("limit", n.clamp(1, MAX_PAGE).to_string()));
        }
        self.bulk(call).await
    }

    /// `GET /revision_data?where=…&distinct_on=Off&limit=…`: the data of every Revision selected (not
    /// only each Unit's latest), every page. `Off` needs a `limit`; `page` is clamped to 1..=1000.
    pub async fn search_revision_data(
        &self,
        where_: &str,
        page: usize,
    ) -> Result<Vec<RevisionData>, Error> {
        let mut call = self.call("SearchRevisionData", Method::GET, &["revision_data"]);
        call.query.push(("where", where_.to_string()));
        call.query.push(("distinct_on", "Off".into()));
        call.query
            .push(("limit", page.clamp(1, MAX_PAGE).to_string()));
        self.bulk(call).await
    }

    async fn bulk<T: serde::de::DeserializeOwned>(&self, call: Call) -> Result<Vec<T>, Error> {
        let len = with_query(&call.url, &call.query)
            .query()
            .map_or(0, str::len);
        if len > MAX_QUERY_CHARS {
            return Err(Error::Invalid(format!(
                "{}: query string of {len} characters is over ConfigHub's {MAX_QUERY_CHARS}",
                call.op
            )));
        }
        self.fetch_list(call, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
            .collect()
    }

    #[test]
    fn chunks_fit_the_query_limit_and_keep_every_id() {
        let ids = uuids(10_000);
        let prefix = format!("SpaceID = {}", quote(&ids[0]));
        let chunks = id_chunks(&prefix, "UnitID", &ids, 40);
        assert!(chunks.len() > 1);
        let mut seen = 0;
        for chunk in &chunks {
            let q = with_query(
                &url::Url::parse("http://h/api/unit_data").unwrap(),
                &[("where", chunk.clone())],
            );
            assert!(q.query().unwrap().len() + 40 <= MAX_QUERY_CHARS, "{chunk}");
            seen += chunk.matches("-4000-").count();
        }
        assert_eq!(
            seen,
            10_000 + chunks.len(),
            "every id once, plus the prefix"
        );
        // Nearly full: another id would not have fitted.
        let first = with_query(
            &url::Url::parse("http://h/api/unit_data").unwrap(),
            &[("where", chunks[0].clone())],
        );
        assert!(first.query().unwrap().len() + 40 + 48 > MAX_QUERY_CHARS);
    }

    #[test]
    fn a_few_ids_make_one_chunk() {
        let ids = uuids(3);
        let chunks = id_chunks("", "RevisionID", &ids, 0);
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].starts_with("RevisionID IN ('00000000-0000-4000-8000-000000000000', "));
        assert!(id_chunks("", "RevisionID", &[], 0).is_empty());
    }
}
