//! Credentials and the access token sent as `Authorization: Bearer`.
//!
//! Two kinds of credentials, as ConfigHub's own agents use them (`shared/confighub-api-more.md` §5):
//!
//! - a static bearer token, sent as it is;
//! - a worker ID and secret (`CONFIGHUB_WORKER_ID`, `CONFIGHUB_WORKER_SECRET`), exchanged at
//!   `POST {origin}/auth/worker` (body `{"worker_id","worker_secret"}`, answer `{"access_token",…}`)
//!   for an access token that expires.
//!
//! [`TokenSource`] hands the client the token to send: the static one, or the cached access token,
//! exchanged again before it expires (at 80% of its lifetime, at most five minutes early) and when the
//! client reports a 401 for it. The lifetime is read from the token's JWT `exp` (and `iat`), as
//! ConfigHub's clients do; a token without one is renewed after an hour, or on its first 401.
//!
//! Nothing secret is ever formatted: [`Credentials`] and [`TokenSource`] print `***`, and the
//! exchange's errors are scrubbed of the secret in case a server echoes it.

use std::fmt;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::token::Token;

/// Lifetime assumed for an access token that says nothing about its expiry.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(3600);
/// The most a token is renewed before it expires.
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(300);

/// What a client authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A bearer token sent as it is (a user or API token).
    Token(Token),
    /// A ConfigHub worker's ID and secret, exchanged at `POST /auth/worker` for access tokens.
    Worker { id: String, secret: Token },
}

impl Credentials {
    pub fn token(value: impl Into<String>) -> Self {
        Credentials::Token(Token::new(value))
    }

    pub fn worker(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials::Worker {
            id: id.into(),
            secret: Token::new(secret),
        }
    }

    /// A stable, non-reversible key for caching per credentials: a SHA-256 over the kind and values.
    /// A Secret rotated in place gives a new fingerprint, hence a new client and a new exchange.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        match self {
            Credentials::Token(t) => {
                h.update(b"token\0");
                h.update(t.expose().as_bytes());
            }
            Credentials::Worker { id, secret } => {
                h.update(b"worker\0");
                h.update(id.as_bytes());
                h.update(b"\0");
                h.update(secret.expose().as_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    /// Whether the token sent can be renewed (worker credentials) or is fixed (a static token).
    pub fn is_renewable(&self) -> bool {
        matches!(self, Credentials::Worker { .. })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Credentials::Token(***)"),
            Credentials::Worker { id, .. } => f
                .debug_struct("Credentials::Worker")
                .field("id", id)
                .field("secret", &"***")
                .finish(),
        }
    }
}

/// An access token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Access {
    pub token: Token,
    /// Renew from this moment on (it is still usable until `expires_at`).
    pub renew_at: Instant,
    /// When the server stops accepting it, if known.
    pub expires_at: Option<Instant>,
}

impl Access {
    /// Times `token`, received at `now`, from its JWT claims (`exp`, `iat`) or `expires_in`.
    pub fn new(token: Token, expires_in: Option<u64>, now: Instant) -> Access {
        let lifetime = expires_in
            .map(Duration::from_secs)
            .or_else(|| jwt_lifetime(token.expose()));
        let (renew_at, expires_at) = match lifetime {
            Some(lifetime) => {
                let margin = (lifetime / 5).min(MAX_RENEW_MARGIN);
                (now + (lifetime - margin), Some(now + lifetime))
            }
            None => (now + UNKNOWN_LIFETIME, None),
        };
        Access {
            token,
            renew_at,
            expires_at,
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.renew_at
    }

    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// The lifetime a JWT declares: `exp - iat`, or `exp - now` without `iat`. The signature is not
/// checked (the server does that); only the timing is read. `None` for anything that is not a JWT
/// with a numeric `exp`.
pub(crate) fn jwt_lifetime(token: &str) -> Option<Duration> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let claims: serde_json::Value = serde_json::from_slice(&base64url_decode(payload)?).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    let start = match claims.get("iat").and_then(|v| v.as_f64()) {
        Some(iat) => iat,
        None => chrono::Utc::now().timestamp() as f64,
    };
    let secs = exp - start;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Unpadded (or padded) base64url, as JWTs use.
pub(crate) fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Unpadded base64url, for the hub's JWT-shaped tokens.
pub(crate) fn base64url_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=n {
            out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Hands out the bearer token to send; shared by every clone of a client.
pub(crate) struct TokenSource {
    pub credentials: Credentials,
    pub cached: tokio::sync::Mutex<Option<Access>>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(credentials: Credentials) -> TokenSource {
        TokenSource {
            credentials,
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

/// Replaces every occurrence of `secret` in `text` with `***` (a hostile or careless server could
/// echo what it was sent).
pub(crate) fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_string();
    }
    text.replace(secret, "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.{}",
            base64url_encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            base64url_encode(claims.as_bytes()),
            base64url_encode(b"signature")
        )
    }

    #[test]
    fn base64url_round_trips() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64url_decode(&base64url_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64url_encode(b"hi?"), "aGk_");
        assert!(base64url_decode("a b").is_none());
    }

    #[test]
    fn lifetime_comes_from_exp_and_iat() {
        let token = jwt(r#"{"iat":1000,"exp":1030,"sub":"w"}"#);
        assert_eq!(jwt_lifetime(&token), Some(Duration::from_secs(30)));
        assert_eq!(jwt_lifetime("opaque-token"), None);
        assert_eq!(jwt_lifetime(&jwt(r#"{"sub":"w"}"#)), None);
        assert_eq!(jwt_lifetime(&jwt(r#"{"iat":1030,"exp":1000}"#)), None);
    }

    #[test]
    fn renewal_is_at_eighty_percent_and_at_most_five_minutes_early() {
        let now = Instant::now();
        let short = Access::new(Token::new("t"), Some(10), now);
        assert_eq!(short.renew_at, now + Duration::from_secs(8));
        assert_eq!(short.expires_at, Some(now + Duration::from_secs(10)));
        let long = Access::new(Token::new("t"), Some(86_400), now);
        assert_eq!(long.renew_at, now + Duration::from_secs(86_400 - 300));
        let unknown = Access::new(Token::new("opaque"), None, now);
        assert_eq!(unknown.renew_at, now + UNKNOWN_LIFETIME);
        assert!(unknown.expires_at.is_none());
        assert!(!short.due(now) && short.due(now + Duration::from_secs(8)));
        assert!(short.expired(now + Duration::from_secs(10)));
    }

    #[test]
    fn debug_and_fingerprint_hide_the_secret() {
        let worker = Credentials::worker("worker-1", "s3cr3t-worker");
        let token = Credentials::token("s3cr3t-token");
        let text = format!("{worker:?} {token:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("worker-1"));
        assert!(!worker.fingerprint().contains("s3cr3t"));
        assert_ne!(
            worker.fingerprint(),
            Credentials::worker("worker-1", "other").fingerprint()
        );
        assert_ne!(
            Credentials::token("a").fingerprint(),
            Credentials::worker("a", "").fingerprint()
        );
        let source = TokenSource::new(worker);
        assert!(!format!("{source:?}").contains("s3cr3t"));
    }

    #[test]
    fn scrub_removes_the_secret() {
        assert_eq!(
            scrub("bad secret s3 here s3", "s3"),
            "bad secret *** here ***"
        );
        assert_eq!(scrub("x", ""), "x");
    }
}
