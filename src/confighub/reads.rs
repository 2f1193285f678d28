//! Reads that decode JSON: one object, or a whole paged list. A 200 whose body is not the JSON it
//! should be (a proxy or load balancer cutting or mangling it) is retried like a 5xx when the call is
//! idempotent: the next attempt usually gets the real answer, and a reconcile need not fail for it.

use serde::de::DeserializeOwned;

use super::client::{CONTINUE_HEADER, Call, Client, Raw, decode};
use super::error::Error;

impl Client {
    /// Sends `call` and decodes its body, sending it again (with backoff, up to the client's retries)
    /// while an idempotent call's answer does not decode.
    async fn execute_decoded<T: DeserializeOwned>(&self, call: &Call) -> Result<(Raw, T), Error> {
        let mut attempt = 0u32;
        loop {
            let raw = self.execute(call).await?;
            match decode(call.op, &raw) {
                Ok(value) => return Ok((raw, value)),
                Err(e) if call.idempotent && attempt < self.retry.max_retries => {
                    let wait = self.retry.backoff(attempt);
                    tracing::debug!(op = call.op, error = %e, ?wait, "retrying ConfigHub call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) async fn fetch_json<T: DeserializeOwned>(&self, call: &Call) -> Result<T, Error> {
        Ok(self.execute_decoded(call).await?.1)
    }

    /// A whole list: every page, following `ConfigHub-Continue` (sent back as `continue`, the other
    /// parameters unchanged) until a page comes without it. A page may be short or empty and still
    /// have a next one; `null` reads as an empty page.
    /// `sized` sends `ClientOptions::page_size` as `limit` (Space and Unit lists).
    pub(crate) async fn fetch_list<T: DeserializeOwned>(
        &self,
        mut call: Call,
        sized: bool,
    ) -> Result<Vec<T>, Error> {
        if let Some(size) = self.options.page_size.filter(|_| sized) {
            call.query.push(("limit", size.clamp(1, 1000).to_string()));
        }
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let (raw, page) = self.execute_decoded::<Option<Vec<T>>>(&call).await?;
            items.extend(page.unwrap_or_default());
            let Some(next) = raw
                .headers
                .get(CONTINUE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
            else {
                return Ok(items);
            };
            // A server handing out the same token twice would page forever.
            if !seen.insert(next.clone()) {
                return Err(Error::Decode {
                    operation: call.op,
                    status: raw.status.as_u16(),
                    message: "ConfigHub-Continue repeats an earlier page token".into(),
                    request_id: raw.request_id.clone(),
                });
            }
            call.query.retain(|(k, _)| *k != "continue");
            call.query.push(("continue", next));
        }
    }
}
