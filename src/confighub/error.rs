//! The one error type of the ConfigHub client.
//!
//! It keeps what an operator needs to chase a failure with ConfigHub support (operation, HTTP status,
//! ConfigHub `Code`/`Message`, `X-Request-Id`) and never the bearer token: nothing here is built from
//! request headers.

use std::time::Duration;

/// hyper-util's message for a `407 Proxy Authentication Required` answer to `CONNECT`.
const PROXY_AUTH_REQUIRED: &str = "proxy authorization required";

/// Everything a ConfigHub call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ConfigHub answered with a 4xx/5xx status.
    #[error("{operation}: ConfigHub answered HTTP {status} (Code {code:?}, request id {}): {message}", request_id.as_deref().unwrap_or("none"))]
    Api {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// `POST /auth/worker` refused the worker credentials (400, 401 or 403): the worker ID or its
    /// secret is wrong, revoked or not allowed. Retrying with the same credentials cannot help.
    #[error("{AUTH}: ConfigHub refused the credentials of worker {worker_id:?} (HTTP {status}, request id {}): {message}", request_id.as_deref().unwrap_or("none"), AUTH = super::AUTH_WORKER_OPERATION)]
    CredentialsRejected {
        worker_id: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// The call did not finish within the configured timeout.
    #[error("{operation}: timed out after {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
    },
    /// The connection failed (refused, reset, TLS, DNS…).
    #[error("{operation}: transport error: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    /// The TLS handshake with ConfigHub (or the proxy) failed: with `certificate`, the server's
    /// certificate was not trusted (an unknown CA, a wrong name, expired); retrying cannot help until
    /// the CA (`certSecretRef`) or the server's certificate changes.
    #[error("{operation}: TLS {} failed for {url}: {message}", if *certificate { "certificate verification" } else { "handshake" })]
    Tls {
        operation: &'static str,
        url: String,
        certificate: bool,
        message: String,
    },
    /// The response arrived but its body was not what the API documents.
    #[error("{operation}: undecodable response (HTTP {status}, request id {}): {message}", request_id.as_deref().unwrap_or("none"))]
    Decode {
        operation: &'static str,
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    /// The response body was larger than `ClientOptions::max_response_bytes`; it was not read further.
    #[error("{operation}: response larger than {limit} bytes (HTTP {status}, request id {}); not read", request_id.as_deref().unwrap_or("none"))]
    TooLarge {
        operation: &'static str,
        status: u16,
        limit: usize,
        request_id: Option<String>,
    },
    /// A lookup by slug found nothing (the API itself has no 404 for an empty list).
    #[error("{operation}: {kind} {name:?} not found")]
    NotFound {
        operation: &'static str,
        kind: &'static str,
        name: String,
    },
    /// The caller handed the client something unusable (bad origin URL, invalid `where`…).
    #[error("invalid ConfigHub client input: {0}")]
    Invalid(String),
}

impl Error {
    /// The ConfigHub operation that failed, e.g. `"ListUnits"`.
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            Error::Api { operation, .. }
            | Error::Timeout { operation, .. }
            | Error::Transport { operation, .. }
            | Error::Tls { operation, .. }
            | Error::Decode { operation, .. }
            | Error::TooLarge { operation, .. }
            | Error::NotFound { operation, .. } => Some(operation),
            Error::CredentialsRejected { .. } => Some(super::AUTH_WORKER_OPERATION),
            Error::Invalid(_) => None,
        }
    }

    /// The HTTP status ConfigHub answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. }
            | Error::CredentialsRejected { status, .. }
            | Error::Decode { status, .. }
            | Error::TooLarge { status, .. } => Some(*status),
            Error::NotFound { .. } => Some(404),
            _ => None,
        }
    }

    /// The `X-Request-Id` of the failed response, for support tickets.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. }
            | Error::CredentialsRejected { request_id, .. }
            | Error::Decode { request_id, .. }
            | Error::TooLarge { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. }) || self.api_status() == Some(404)
    }

    /// ConfigHub refused the credentials: a 401 from the API, or any refusal of the worker exchange.
    pub fn is_unauthorized(&self) -> bool {
        self.api_status() == Some(401) || self.is_credentials_rejected()
    }

    /// `POST /auth/worker` refused the worker ID or secret.
    pub fn is_credentials_rejected(&self) -> bool {
        matches!(self, Error::CredentialsRejected { .. })
    }

    pub fn is_forbidden(&self) -> bool {
        self.api_status() == Some(403)
    }

    /// Stale `Version` or `If-Match`. The spec declares 409; live servers may send 412.
    pub fn is_conflict(&self) -> bool {
        matches!(self.api_status(), Some(409) | Some(412))
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// A failed TLS handshake; `Some(true)` when the server's certificate was refused.
    pub fn tls_certificate_refused(&self) -> Option<bool> {
        match self {
            Error::Tls { certificate, .. } => Some(*certificate),
            _ => None,
        }
    }

    /// The proxy answered 407 to `CONNECT`: it refused the proxy credentials (or got none). The
    /// tunnel error type is private to hyper-util, so its message is what identifies it.
    pub fn is_proxy_auth_refused(&self) -> bool {
        matches!(self, Error::Transport { message, .. } if message.contains(PROXY_AUTH_REQUIRED))
    }

    /// Whether trying again later could help (the client already retried within its budget).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// A low-cardinality label for metrics (`confighub_errors_total{reason=…}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Api { status, .. } => match status {
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                409 | 412 => "conflict",
                429 => "throttled",
                400..=499 => "client_error",
                _ => "server_error",
            },
            Error::CredentialsRejected { .. } => "unauthorized",
            Error::Timeout { .. } => "timeout",
            Error::Transport { .. } => "transport",
            Error::Tls { .. } => "tls",
            Error::Decode { .. } => "decode",
            Error::TooLarge { .. } => "too_large",
            Error::NotFound { .. } => "not_found",
            Error::Invalid(_) => "invalid",
        }
    }

    fn api_status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_display_names_operation_status_code_and_request_id() {
        let err = Error::Api {
            operation: "ListUnits",
            status: 409,
            code: "409".into(),
            message: "Unit data conflict".into(),
            request_id: Some("req-1".into()),
        };
        let text = err.to_string();
        for part in ["ListUnits", "409", "Unit data conflict", "req-1"] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        assert!(err.is_conflict());
        assert!(!err.is_not_found());
        assert_eq!(err.metric_label(), "conflict");
    }

    #[test]
    fn classification_follows_status() {
        let api = |status| Error::Api {
            operation: "GetUnit",
            status,
            code: String::new(),
            message: String::new(),
            request_id: None,
        };
        assert!(api(404).is_not_found());
        assert!(api(401).is_unauthorized());
        assert!(api(412).is_conflict());
        assert!(api(503).is_transient());
        assert!(!api(400).is_transient());
        assert_eq!(api(500).metric_label(), "server_error");
        assert_eq!(api(400).metric_label(), "client_error");
    }
}
