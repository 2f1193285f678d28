//! A ConfigHub REST API client faithful to `shared/confighub-api.md` (the "Release" generation):
//! Units carry no data, config moves through `…/data` with `ETag`/`If-None-Match`/`If-Match`, and
//! every error keeps ConfigHub's `Code`, `Message` and `X-Request-Id`.

mod auth;
mod bulk;
pub(crate) mod client;
pub(crate) mod codec;
mod error;
mod ops;
mod reads;
pub mod retry;
mod token;
mod transport;
pub mod types;
pub mod where_expr;

pub use auth::Credentials;
pub(crate) use auth::{base64url_decode, base64url_encode};
pub use bulk::{BulkQuery, MAX_PAGE, MAX_QUERY_CHARS, id_chunks};
pub use client::{
    AUTH_WORKER_OPERATION, Client, ClientOptions, ClientStats, DataDownload, DownloadRequest,
    RequestObserver,
};
pub use codec::normalize_etag;
pub use error::Error;
pub use token::Token;
pub use transport::{ProxySettings, TlsSettings, Transport};
pub use types::*;
pub use where_expr::{CmpOp, Where, WhereBuildError};

/// SHA-256 hex of `bytes`: ConfigHub's `DataHash`, and therefore the data ETag.
pub fn data_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn empty_data_hash_is_the_sha256_of_no_bytes() {
        assert_eq!(
            super::data_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
