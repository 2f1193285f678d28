//! The ConfigHub REST client: one method per API operation, all going through [`Client::execute`],
//! which owns timeouts, retries, error decoding and the request/byte counters.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use tokio::sync::Semaphore;
use url::Url;

use super::auth::{Access, Credentials, TokenSource, scrub};
pub(crate) use super::codec::*;
use super::error::Error;
use super::retry::{RetryPolicy, parse_retry_after, retryable_status};
use super::token::Token;
use super::transport::{Transport, tls_failure};
use super::types::*;

/// Response header carrying the token of a list's next page.
pub const CONTINUE_HEADER: &str = "confighub-continue";

/// The operation name of the worker token exchange (`POST {origin}/auth/worker`).
pub const AUTH_WORKER_OPERATION: &str = "AuthWorker";

/// Sees every HTTP attempt a client makes: its operation (`"ListUnits"`, `"AuthWorker"`…) and the
/// status code, or `"error"` when no response arrived. The controller counts them in
/// `confighub_client_requests_total{operation,code}`.
pub trait RequestObserver: Send + Sync {
    fn observe(&self, operation: &'static str, code: &str);
    /// The body bytes of a response to `operation` (so "nothing changed" can be shown to cost no data).
    fn observe_bytes(&self, _operation: &'static str, _bytes: u64) {}
}

/// Tunables of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Whole-request timeout, body included, for every call.
    pub timeout: Duration,
    /// Retries after the first attempt for connection errors, 5xx and 429.
    pub max_retries: u32,
    /// First backoff step; doubles per retry up to `max_backoff`, with full jitter.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Data downloads in flight at once across the whole client.
    pub max_concurrent_downloads: usize,
    /// Page size asked of Space and Unit lists (`limit`, at most 1000); `None` asks for everything
    /// at once, as ConfigHub answers when no `limit` is sent. Either way every page is read, following
    /// `ConfigHub-Continue` until the last.
    pub page_size: Option<u32>,
    /// Largest response body read; a bigger one fails with [`Error::TooLarge`] instead of filling
    /// memory (a unit list of 100,000 units is ~35 MB; unit data is at most 64 MiB).
    pub max_response_bytes: usize,
    pub user_agent: String,
    /// Extra CA certificates, client certificate and proxy (a repository's `certSecretRef` and
    /// `proxySecretRef`).
    pub transport: Transport,
    /// Requests in flight at once, shared with every client holding the same semaphore (the
    /// controller's `--confighub-concurrent-requests`); `None`: no limit beyond the downloads'.
    pub in_flight: Option<Arc<Semaphore>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_retries: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_concurrent_downloads: 8,
            page_size: None,
            max_response_bytes: 256 * 1024 * 1024,
            user_agent: format!("confighub-source-controller/{}", env!("CARGO_PKG_VERSION")),
            transport: Transport::default(),
            in_flight: None,
        }
    }
}

/// Counters since the client was built; the controller exports them and benchmarks read them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP attempts sent, retries included.
    pub requests: u64,
    /// Response body bytes received.
    pub bytes_downloaded: u64,
    /// Worker credentials exchanged for an access token (`POST /auth/worker` answered 200).
    pub token_exchanges: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    bytes_downloaded: AtomicU64,
    token_exchanges: AtomicU64,
}

/// Result of a conditional data download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataDownload {
    /// `If-None-Match` matched: the caller's copy is current.
    NotModified,
    /// The data and its ETag (the DataHash, quotes and `W/` stripped).
    Data { bytes: Bytes, etag: Option<String> },
}

/// One item for [`Client::download_many`].
#[derive(Clone, Debug)]
pub struct DownloadRequest {
    pub unit_id: String,
    pub if_none_match: Option<String>,
}

/// A ConfigHub API client. Cheap to clone; clones share the connection pool and counters.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    /// `{origin}/auth/worker`, where worker credentials are exchanged.
    pub(crate) auth_url: Url,
    pub(crate) auth: Option<Arc<TokenSource>>,
    pub(crate) observer: Option<Arc<dyn RequestObserver>>,
    pub(crate) options: ClientOptions,
    pub(crate) retry: RetryPolicy,
    pub(crate) counters: Arc<Counters>,
    pub(crate) downloads: Arc<Semaphore>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("credentials", &self.auth.as_ref().map(|a| &a.credentials))
            .field("options", &self.options)
            .finish()
    }
}

/// What the retry loop needs to rebuild a request for each attempt.
pub(crate) struct Call {
    pub(crate) op: &'static str,
    pub(crate) method: Method,
    /// Whether repeating the request is harmless, so 5xx and cut connections may be retried.
    pub(crate) idempotent: bool,
    pub(crate) url: Url,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) headers: Vec<(reqwest::header::HeaderName, String)>,
    pub(crate) body: Option<(&'static str, Bytes)>,
}

pub(crate) struct Raw {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) request_id: Option<String>,
}

impl Client {
    /// `origin` is the server without `/api` (as in `CONFIGHUB_URL`); the client appends `/api`.
    /// `token` is a static bearer token (an empty one is the same as none).
    pub fn new(origin: &str, token: Option<String>, options: ClientOptions) -> Result<Self, Error> {
        let credentials = token.filter(|t| !t.is_empty()).map(Credentials::token);
        Self::with_credentials(origin, credentials, options)
    }

    /// Like [`Client::new`], with a static token or worker credentials (exchanged at
    /// `POST {origin}/auth/worker` for access tokens, which the client renews before they expire and
    /// once on a 401).
    pub fn with_credentials(
        origin: &str,
        credentials: Option<Credentials>,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let mut base = Url::parse(origin.trim())
            .map_err(|e| Error::Invalid(format!("ConfigHub URL {origin:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Invalid(format!(
                "ConfigHub URL {origin:?} must be http(s)://host[:port]"
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        let origin_path = base.path().trim_end_matches('/').to_string();
        let mut auth_url = base.clone();
        auth_url.set_path(&format!("{origin_path}/auth/worker"));
        base.set_path(&format!("{origin_path}/api"));
        let builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(options.user_agent.clone());
        let http = options
            .transport
            .apply(builder)?
            .build()
            .map_err(|e| Error::Invalid(format!("building HTTP client: {e}")))?;
        let retry = RetryPolicy {
            max_retries: options.max_retries,
            base_delay: options.base_backoff,
            max_delay: options.max_backoff,
        };
        Ok(Self {
            http,
            base,
            auth_url,
            auth: credentials.map(|c| Arc::new(TokenSource::new(c))),
            observer: None,
            downloads: Arc::new(Semaphore::new(options.max_concurrent_downloads.max(1))),
            options,
            retry,
            counters: Arc::default(),
        })
    }

    /// The API base, e.g. `http://127.0.0.1:8090/api`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Reports every HTTP attempt of this client (and its clones made afterwards) to `observer`.
    pub fn observed(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            bytes_downloaded: self.counters.bytes_downloaded.load(Ordering::Relaxed),
            token_exchanges: self.counters.token_exchanges.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(crate) fn call(&self, op: &'static str, method: Method, segments: &[&str]) -> Call {
        Call {
            op,
            idempotent: method != Method::POST,
            method,
            url: self.url(segments),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn json_body<T: Serialize>(op: &'static str, value: &T) -> Result<Bytes, Error> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| Error::Invalid(format!("{op}: encoding request: {e}")))
    }

    /// Sends `call` with the current bearer token. A 401 for a renewable (worker) token renews it
    /// and sends the call once more; a second 401 is the caller's.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Raw, Error> {
        let bearer = self.bearer().await?;
        let result = self.execute_with(call, bearer.as_ref()).await;
        match (&result, &self.auth, &bearer) {
            (Err(e), Some(auth), Some(sent))
                if e.is_unauthorized() && auth.credentials.is_renewable() =>
            {
                tracing::debug!(
                    op = call.op,
                    "ConfigHub refused the access token; renewing it once"
                );
                self.forget_token(sent).await;
                let renewed = self.bearer().await?;
                self.execute_with(call, renewed.as_ref()).await
            }
            _ => result,
        }
    }

    /// The token to send: the static one, or the cached access token, renewed when due.
    pub(crate) async fn bearer(&self) -> Result<Option<Token>, Error> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let (id, secret) = match &auth.credentials {
            Credentials::Token(token) => return Ok(Some(token.clone())),
            Credentials::Worker { id, secret } => (id, secret),
        };
        // One exchange at a time per credentials: concurrent calls wait for it and share its token.
        let mut cached = auth.cached.lock().await;
        let now = std::time::Instant::now();
        if let Some(access) = cached.as_ref().filter(|a| !a.due(now)) {
            return Ok(Some(access.token.clone()));
        }
        match self.exchange(id, secret).await {
            Ok(access) => {
                let token = access.token.clone();
                *cached = Some(access);
                Ok(Some(token))
            }
            // Renewing early failed, but the old token is still good: keep using it until it expires
            // (or is refused), so a short outage of the exchange costs nothing.
            Err(err) if !err.is_unauthorized() => match cached.as_ref() {
                Some(old) if !old.expired(now) => {
                    tracing::debug!(error = %err, "renewing the ConfigHub access token failed; the current one is still valid");
                    Ok(Some(old.token.clone()))
                }
                _ => Err(err),
            },
            Err(err) => {
                *cached = None;
                Err(err)
            }
        }
    }

    /// Drops the cached access token if it is still `refused` (a concurrent call may have renewed it).
    pub(crate) async fn forget_token(&self, refused: &Token) {
        if let Some(auth) = &self.auth {
            let mut cached = auth.cached.lock().await;
            if cached.as_ref().is_some_and(|a| &a.token == refused) {
                *cached = None;
            }
        }
    }

    /// `POST {origin}/auth/worker` with `{"worker_id","worker_secret"}`: a new access token.
    pub(crate) async fn exchange(&self, id: &str, secret: &Token) -> Result<Access, Error> {
        let op = AUTH_WORKER_OPERATION;
        let body = serde_json::json!({"worker_id": id, "worker_secret": secret.expose()});
        let call = Call {
            op,
            method: Method::POST,
            // Exchanging twice only issues two tokens.
            idempotent: true,
            url: self.auth_url.clone(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Some(("application/json", Self::json_body(op, &body)?)),
        };
        let raw = match self.execute_with(&call, None).await {
            Ok(raw) => raw,
            Err(Error::Api {
                status,
                code,
                message,
                request_id,
                ..
            }) if matches!(status, 400 | 401 | 403) => {
                return Err(Error::CredentialsRejected {
                    worker_id: id.to_string(),
                    status,
                    code,
                    message: scrub(&message, secret.expose()),
                    request_id,
                });
            }
            Err(Error::Api {
                operation,
                status,
                code,
                message,
                request_id,
            }) => {
                return Err(Error::Api {
                    operation,
                    status,
                    code,
                    message: scrub(&message, secret.expose()),
                    request_id,
                });
            }
            Err(err) => return Err(err),
        };
        let session: AuthSession = decode(op, &raw)?;
        if session.access_token.is_empty() {
            return Err(Error::Decode {
                operation: op,
                status: raw.status.as_u16(),
                message: "no access_token in the answer".into(),
                request_id: raw.request_id.clone(),
            });
        }
        self.counters
            .token_exchanges
            .fetch_add(1, Ordering::Relaxed);
        Ok(Access::new(
            Token::new(session.access_token),
            session.expires_in,
            std::time::Instant::now(),
        ))
    }

    pub(crate) fn observe(&self, op: &'static str, code: &str) {
        if let Some(observer) = &self.observer {
            observer.observe(op, code);
        }
    }

    /// Sends `call` with `bearer`, retrying what may succeed on a second try, and reads the whole body.
    pub(crate) async fn execute_with(
        &self,
        call: &Call,
        bearer: Option<&Token>,
    ) -> Result<Raw, Error> {
        // POST is not idempotent: a retry after the server may have acted could create twice.
        let idempotent = call.idempotent;
        let mut attempt = 0u32;
        loop {
            let mut req = self
                .http
                .request(call.method.clone(), with_query(&call.url, &call.query));
            if let Some(token) = bearer {
                req = req.bearer_auth(token.expose());
            }
            for (name, value) in &call.headers {
                req = req.header(name, value);
            }
            if let Some((content_type, body)) = &call.body {
                req = req.header(CONTENT_TYPE, *content_type).body(body.clone());
            }
            // Held for the attempt only, never across a retry's backoff.
            let permit = match &self.options.in_flight {
                Some(in_flight) => Some(
                    Arc::clone(in_flight)
                        .acquire_owned()
                        .await
                        .map_err(|_| Error::Invalid("request semaphore closed".into()))?,
                ),
                None => None,
            };
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let limit = self.options.max_response_bytes;
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    read_limited(resp, limit)
                        .await
                        .map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            drop(permit);
            match &outcome {
                Ok((status, _, _)) => self.observe(call.op, status.as_str()),
                Err(_) => self.observe(call.op, "error"),
            }
            let can_retry = attempt < self.retry.max_retries;
            match outcome {
                Ok((status, headers, None)) => {
                    return Err(Error::TooLarge {
                        operation: call.op,
                        status: status.as_u16(),
                        limit,
                        request_id: headers
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                    });
                }
                Ok((status, headers, Some(body))) => {
                    self.counters
                        .bytes_downloaded
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    if let Some(observer) = &self.observer {
                        observer.observe_bytes(call.op, body.len() as u64);
                    }
                    let request_id = headers
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    if status.is_success() || status == StatusCode::NOT_MODIFIED {
                        return Ok(Raw {
                            status,
                            headers,
                            body,
                            request_id,
                        });
                    }
                    let code = status.as_u16();
                    let throttled = code == 429 || code == 503;
                    if can_retry && retryable_status(code) && (idempotent || throttled) {
                        let hinted = headers
                            .get(RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_retry_after)
                            .filter(|_| throttled);
                        let wait = hinted.unwrap_or_else(|| self.retry.backoff(attempt));
                        tracing::debug!(
                            op = call.op,
                            status = code,
                            ?wait,
                            "retrying ConfigHub call"
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(api_error(call.op, status, request_id, &body));
                }
                Err(e) => {
                    // A refused connection never reached the server, so even POST is safe to repeat.
                    // A refused certificate stays refused: no retry.
                    if can_retry && (idempotent || e.is_connect()) && tls_failure(&e).is_none() {
                        let wait = self.retry.backoff(attempt);
                        tracing::debug!(op = call.op, error = %e, ?wait, "retrying ConfigHub call");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(self.transport_error(call.op, &e));
                }
            }
        }
    }

    pub(crate) fn transport_error(&self, op: &'static str, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::Timeout {
                operation: op,
                timeout: self.options.timeout,
            };
        }
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        match tls_failure(e) {
            Some(certificate) => Error::Tls {
                operation: op,
                url: self.base.to_string(),
                certificate,
                message,
            },
            None => Error::Transport {
                operation: op,
                message,
            },
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
