//! Who may call the hub: static bearer tokens (`--token`), and worker credentials (`--worker ID=SECRET`)
//! exchanged at `POST /auth/worker` for access tokens, as ConfigHub's workers authenticate
//! (`shared/confighub-api-more.md` §5). With `--token-ttl` those access tokens expire and get 401
//! afterwards, so clients must renew them; without it they last as long as the hub runs.
//!
//! Access tokens are JWT-shaped (`header.claims.signature`, claims `sub`, `iat`, `exp`, `jti`), so a
//! client reads their expiry exactly as it does from ConfigHub's. The hub does not verify signatures:
//! it keeps the tokens it issued in memory, so a restarted hub refuses them (clients renew on 401).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::Hub;
use super::error::ApiError;
use crate::confighub::{AuthSession, base64url_encode};

/// Issued access tokens and when each stops working (`None`: never).
#[derive(Default)]
pub(crate) struct Issued {
    tokens: Mutex<HashMap<String, Option<Instant>>>,
}

impl Issued {
    /// Whether `token` was issued and has not expired; forgets expired tokens on the way.
    pub fn accepts(&self, token: &str) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        tokens.retain(|_, expiry| expiry.is_none_or(|at| at > now));
        tokens.contains_key(token)
    }

    fn issue(&self, worker_id: &str, ttl: Option<Duration>) -> String {
        let iat = chrono::Utc::now().timestamp();
        let mut claims = serde_json::json!({
            "sub": worker_id,
            "iat": iat,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(ttl) = ttl {
            claims["exp"] = (iat + ttl.as_secs().max(1) as i64).into();
        }
        let signature: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| u.as_bytes().to_vec())
            .collect();
        let token = format!(
            "{}.{}.{}",
            base64url_encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            base64url_encode(claims.to_string().as_bytes()),
            base64url_encode(&signature)
        );
        let expiry = ttl.map(|ttl| Instant::now() + ttl);
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), expiry);
        token
    }
}

/// `{"worker_id","worker_secret"}` (no `Debug`, so the secret cannot be logged).
#[derive(Deserialize)]
struct WorkerLogin {
    #[serde(default)]
    worker_id: String,
    #[serde(default)]
    worker_secret: String,
}

/// `POST /auth/worker`: 200 with an `AuthSession` for a configured worker and its secret, 401
/// otherwise (400 for a body that is not the documented JSON).
pub async fn worker_login(
    State(hub): State<Hub>,
    body: Bytes,
) -> Result<Json<AuthSession>, ApiError> {
    let login: WorkerLogin = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    if login.worker_id.is_empty() || login.worker_secret.is_empty() {
        return Err(ApiError::bad_request(
            "worker_id and worker_secret are required.",
        ));
    }
    if !hub.accepts_worker(&login.worker_id, &login.worker_secret) {
        tracing::debug!(worker_id = %login.worker_id, "hub refused worker credentials");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid worker credentials.",
        ));
    }
    let access_token = hub.issued().issue(&login.worker_id, hub.token_ttl());
    Ok(Json(AuthSession {
        access_token,
        organization_id: hub.ids().org_id.clone(),
        // ConfigHub states the expiry only in the token's `exp`; so does the hub.
        expires_in: None,
    }))
}
