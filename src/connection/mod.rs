//! A ConfigHubRepository's connection to ConfigHub, shared by the source reconciler and the drift
//! engine: its credentials (read from the repository's Secret), one [`confighub::Client`] per
//! (origin, credentials) — which holds the token provider, so an access token is exchanged once and
//! renewed for every user of those credentials — and the resolved spaces.
//!
//! The Secret holds either `token` (a static bearer token) or `CONFIGHUB_WORKER_ID` and
//! `CONFIGHUB_WORKER_SECRET` (worker credentials, as `cub worker install` and `cub auth login
//! --as-worker` name them). It is read on every use, so a Secret rotated in place takes effect at the
//! next reconcile: new credentials have a new fingerprint and so get a new client.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;

use crate::api::{ConfigHubRepository, SecretReference};
use crate::confighub::{self, ClientOptions, Credentials, RequestObserver, Transport};

mod secret;
mod transport;

pub use secret::CredentialsError;
use secret::{get_secret, secret_text};
pub use transport::{
    CA_KEY, CERT_VERIFICATION_FAILED, INVALID_CERT_SECRET, INVALID_PROXY_SECRET, PROXY_ADDRESS_KEY,
    PROXY_AUTHENTICATION_FAILED, PROXY_PASSWORD_KEY, PROXY_USERNAME_KEY, TLS_CERT_KEY,
    TLS_HANDSHAKE_FAILED, TLS_KEY_KEY, proxy_from_secret, read_transport, tls_from_secret,
};

/// Secret key of a static bearer token.
pub const TOKEN_KEY: &str = "token";
/// Secret key of a worker's ID.
pub const WORKER_ID_KEY: &str = "CONFIGHUB_WORKER_ID";
/// Secret key of a worker's secret.
pub const WORKER_SECRET_KEY: &str = "CONFIGHUB_WORKER_SECRET";

/// Condition reason when the credentials are missing from the Secret or refused by ConfigHub.
pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";

/// Condition reason when ConfigHub's answer could not be used: a body that is not the JSON the API
/// documents, or unit data that does not match its DataHash (a body mangled on the way). Retried.
pub const INVALID_RESPONSE: &str = "InvalidResponse";

/// A client unused this long is dropped (with its access token): credentials rotated away, or a
/// repository deleted. One still in use is simply made again, at the cost of one token exchange.
const IDLE_CLIENT: Duration = Duration::from_secs(3600);

/// Credentials and the Secret they came from (for messages that say where to look).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoCredentials {
    pub secret: String,
    pub credentials: Credentials,
}

impl RepoCredentials {
    /// Where the credentials came from, for a person fixing them: names the Secret and its keys,
    /// never their values.
    pub fn describe(&self) -> String {
        match &self.credentials {
            Credentials::Token(_) => {
                format!("the token in Secret '{}' (key '{TOKEN_KEY}')", self.secret)
            }
            Credentials::Worker { id, .. } => format!(
                "the credentials of worker '{id}' in Secret '{}' (keys '{WORKER_ID_KEY}' and '{WORKER_SECRET_KEY}')",
                self.secret
            ),
        }
    }
}

/// Why a repository could not be connected to ConfigHub: a condition reason, a message naming what
/// to fix (never a secret), and whether retrying cannot help until the spec changes (Flux's Stalled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectError {
    pub reason: &'static str,
    pub message: String,
    pub stalled: bool,
}

impl From<CredentialsError> for ConnectError {
    fn from(e: CredentialsError) -> Self {
        ConnectError {
            reason: e.reason,
            message: e.message,
            stalled: false,
        }
    }
}

/// A repository connected to ConfigHub: its client (shared per credentials), its space, and where
/// the credentials came from (for [`refused`] messages about later calls).
#[derive(Clone, Debug)]
pub struct Connected {
    pub client: confighub::Client,
    pub space: confighub::Space,
    pub credentials: Option<RepoCredentials>,
}

/// The condition reason for a failed ConfigHub call, and whether it is stalled (retrying cannot help).
/// Refused credentials are [`AUTHENTICATION_FAILED`]; an untrusted server certificate is
/// [`CERT_VERIFICATION_FAILED`]; ConfigHub unreachable, 5xx and timeouts are `ConfigHubUnavailable`.
pub fn classify(err: &confighub::Error) -> (&'static str, bool) {
    if let Some(certificate) = err.tls_certificate_refused() {
        let reason = if certificate {
            CERT_VERIFICATION_FAILED
        } else {
            TLS_HANDSHAKE_FAILED
        };
        (reason, false)
    } else if err.is_proxy_auth_refused() {
        (PROXY_AUTHENTICATION_FAILED, false)
    } else if err.is_unauthorized() {
        (AUTHENTICATION_FAILED, false)
    } else if err.is_forbidden() {
        ("AccessDenied", false)
    } else if err.is_not_found() {
        ("NotFound", false)
    } else if err.status() == Some(400) {
        ("InvalidRequest", true)
    } else if err.is_transient() || err.is_timeout() {
        ("ConfigHubUnavailable", false)
    } else if matches!(err, confighub::Error::Decode { .. }) {
        (INVALID_RESPONSE, false)
    } else {
        ("FetchFailed", false)
    }
}

/// The message of an `AuthenticationFailed` condition for a refusal by ConfigHub (`detail`), naming
/// the Secret and keys the credentials came from.
pub fn refused(credentials: Option<&RepoCredentials>, detail: &str) -> String {
    match credentials {
        Some(c) => format!("ConfigHub refused {}: {detail}", c.describe()),
        None => format!(
            "ConfigHub refused the request and spec.secretRef names no Secret with credentials: {detail}"
        ),
    }
}

/// The credentials in a Secret's `data` (and `stringData`, for objects not yet round-tripped through
/// the API server). Both worker keys win over `token`; one worker key alone, or no key at all, is an
/// `AuthenticationFailed` error naming the key that is missing.
pub fn credentials_from_secret(
    secret_name: &str,
    data: Option<&BTreeMap<String, ByteString>>,
    string_data: Option<&BTreeMap<String, String>>,
) -> Result<Credentials, CredentialsError> {
    let get = |key: &str| secret_text(data, string_data, key);
    let missing = |message: String| CredentialsError {
        reason: AUTHENTICATION_FAILED,
        message,
    };
    match (get(WORKER_ID_KEY), get(WORKER_SECRET_KEY), get(TOKEN_KEY)) {
        (Some(id), Some(secret), _) => Ok(Credentials::worker(id, secret)),
        (_, _, Some(token)) => Ok(Credentials::token(token)),
        (Some(_), None, None) => Err(missing(format!(
            "Secret '{secret_name}' has key '{WORKER_ID_KEY}' but no non-empty key '{WORKER_SECRET_KEY}'"
        ))),
        (None, Some(_), None) => Err(missing(format!(
            "Secret '{secret_name}' has key '{WORKER_SECRET_KEY}' but no non-empty key '{WORKER_ID_KEY}' (cub worker install keeps the ID out of its Secret: add it)"
        ))),
        (None, None, None) => Err(missing(format!(
            "Secret '{secret_name}' has neither a non-empty key '{TOKEN_KEY}' nor keys '{WORKER_ID_KEY}' and '{WORKER_SECRET_KEY}'"
        ))),
    }
}

/// What a `CertificateVerificationFailed` message adds: which CAs were trusted, and where to change them.
fn untrusted_hint(chr: &ConfigHubRepository) -> String {
    match &chr.spec.cert_secret_ref {
        Some(r) => format!(
            " (trusted: the system roots and the CA certificates in Secret '{}' key '{CA_KEY}', spec.certSecretRef)",
            r.name
        ),
        None => format!(
            " (trusted: the system roots only; for a private CA put its certificate in a Secret's key '{CA_KEY}' and name it in spec.certSecretRef)"
        ),
    }
}

/// Reads the credentials named by `secret_ref` in `namespace` (`None` without a `secretRef`).
pub async fn read_credentials(
    kube: &kube::Client,
    namespace: &str,
    secret_ref: Option<&SecretReference>,
) -> Result<Option<RepoCredentials>, CredentialsError> {
    let Some(secret_ref) = secret_ref else {
        return Ok(None);
    };
    let secret = get_secret(kube, namespace, &secret_ref.name).await?;
    let credentials = credentials_from_secret(
        &secret_ref.name,
        secret.data.as_ref(),
        secret.string_data.as_ref(),
    )?;
    Ok(Some(RepoCredentials {
        secret: secret_ref.name.clone(),
        credentials,
    }))
}

/// Clients per (origin, credentials and transport fingerprints) and resolved spaces per (origin,
/// space reference).
pub struct Connections {
    clients: Mutex<HashMap<(String, String), (confighub::Client, Instant)>>,
    spaces: Mutex<HashMap<(String, String), confighub::Space>>,
    observer: Option<Arc<dyn RequestObserver>>,
    /// Shared by every client: however many repositories reconcile or drift at once, at most this
    /// many requests are in flight to ConfigHub.
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Connections {
    /// `observer` sees every request of every client (for `confighub_client_requests_total`); at most
    /// `max_in_flight` requests of all the clients run at once.
    pub fn new(observer: Option<Arc<dyn RequestObserver>>, max_in_flight: usize) -> Connections {
        Connections {
            clients: Mutex::new(HashMap::new()),
            spaces: Mutex::new(HashMap::new()),
            observer,
            in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1))),
        }
    }

    /// The client for `origin`, `credentials` and `transport` (CA, client certificate, proxy),
    /// reused across reconciles (and by the drift engine) so connections, counters and the access
    /// token carry over. The key holds hashes of the credentials and transport, never their values,
    /// so a Secret changed in place gets a new client. Clients unused for an hour are dropped.
    pub fn client(
        &self,
        origin: &str,
        credentials: Option<&Credentials>,
        transport: &Transport,
    ) -> Result<confighub::Client, confighub::Error> {
        let key = (
            origin.to_string(),
            format!(
                "{}/{}",
                credentials
                    .map(Credentials::fingerprint)
                    .unwrap_or_default(),
                transport.fingerprint()
            ),
        );
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.retain(|_, (_, used)| now.duration_since(*used) < IDLE_CLIENT);
        if let Some((client, used)) = clients.get_mut(&key) {
            *used = now;
            return Ok(client.clone());
        }
        let options = ClientOptions {
            transport: transport.clone(),
            in_flight: Some(Arc::clone(&self.in_flight)),
            ..ClientOptions::default()
        };
        let mut client =
            confighub::Client::with_credentials(origin, credentials.cloned(), options)?;
        if let Some(observer) = &self.observer {
            client = client.observed(Arc::clone(observer));
        }
        clients.insert(key, (client.clone(), now));
        Ok(client)
    }

    pub fn cached_space(&self, origin: &str, space_ref: &str) -> Option<confighub::Space> {
        let spaces = self.spaces.lock().unwrap_or_else(|p| p.into_inner());
        spaces
            .get(&(origin.to_string(), space_ref.to_string()))
            .cloned()
    }

    /// Remembers (`Some`) or forgets (`None`, e.g. after a 404) a resolved space.
    pub fn remember_space(&self, origin: &str, space_ref: &str, space: Option<confighub::Space>) {
        let mut spaces = self.spaces.lock().unwrap_or_else(|p| p.into_inner());
        let key = (origin.to_string(), space_ref.to_string());
        match space {
            Some(space) => spaces.insert(key, space),
            None => spaces.remove(&key),
        };
    }

    /// Connects `chr` to ConfigHub: reads its Secret, takes the client for its URL and credentials,
    /// and resolves its space (once; the answer is remembered). Used by the source reconciler for
    /// every reconcile and meant for every other ConfigHub caller (the drift engine), so they share
    /// clients, access tokens and spaces.
    pub async fn connect(
        &self,
        kube: &kube::Client,
        chr: &ConfigHubRepository,
    ) -> Result<Connected, ConnectError> {
        let namespace = kube::ResourceExt::namespace(chr).unwrap_or_default();
        let credentials = read_credentials(kube, &namespace, chr.spec.secret_ref.as_ref()).await?;
        let transport = read_transport(
            kube,
            &namespace,
            chr.spec.cert_secret_ref.as_ref(),
            chr.spec.proxy_secret_ref.as_ref(),
        )
        .await?;
        let (origin, space_ref) = (chr.spec.url.as_str(), chr.spec.space.as_str());
        let client = self
            .client(
                origin,
                credentials.as_ref().map(|c| &c.credentials),
                &transport,
            )
            .map_err(|e| ConnectError {
                reason: "InvalidURL",
                message: e.to_string(),
                stalled: true,
            })?;
        let space = self.space(&client, origin, space_ref).await.map_err(|e| {
            let (reason, stalled) = classify(&e);
            let mut message = format!("resolving space '{space_ref}': {e}");
            let reason = if e.is_not_found() {
                "SpaceNotFound"
            } else {
                reason
            };
            if reason == AUTHENTICATION_FAILED {
                message = refused(credentials.as_ref(), &message);
            }
            if reason == CERT_VERIFICATION_FAILED {
                message.push_str(&untrusted_hint(chr));
            }
            if let (PROXY_AUTHENTICATION_FAILED, Some(r)) = (reason, &chr.spec.proxy_secret_ref) {
                message.push_str(&format!(
                    " (the proxy refused the keys '{PROXY_USERNAME_KEY}' and '{PROXY_PASSWORD_KEY}' of Secret '{}', spec.proxySecretRef)",
                    r.name
                ));
            }
            ConnectError {
                reason,
                message,
                stalled,
            }
        })?;
        Ok(Connected {
            client,
            space,
            credentials,
        })
    }

    /// The space `space_ref` (slug or UUID) through `client`, from the cache when known.
    pub async fn space(
        &self,
        client: &confighub::Client,
        origin: &str,
        space_ref: &str,
    ) -> Result<confighub::Space, confighub::Error> {
        if let Some(space) = self.cached_space(origin, space_ref) {
            return Ok(space);
        }
        let space = client.resolve_space(space_ref).await?;
        self.remember_space(origin, space_ref, Some(space.clone()));
        Ok(space)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn a_secret_holds_a_token_or_worker_credentials() {
        let token = credentials_from_secret("s", Some(&data(&[("token", " tok \n")])), None);
        assert_eq!(token, Ok(Credentials::token("tok")));
        let worker = credentials_from_secret(
            "s",
            Some(&data(&[(WORKER_ID_KEY, "w1"), (WORKER_SECRET_KEY, "sec")])),
            None,
        );
        assert_eq!(worker, Ok(Credentials::worker("w1", "sec")));
        let both = credentials_from_secret(
            "s",
            Some(&data(&[
                ("token", "tok"),
                (WORKER_ID_KEY, "w1"),
                (WORKER_SECRET_KEY, "sec"),
            ])),
            None,
        );
        assert_eq!(both, Ok(Credentials::worker("w1", "sec")));
        let string_data: BTreeMap<String, String> =
            [("token".to_string(), "tok".to_string())].into();
        assert_eq!(
            credentials_from_secret("s", None, Some(&string_data)),
            Ok(Credentials::token("tok"))
        );
    }

    #[test]
    fn missing_keys_are_named() {
        let only_secret =
            credentials_from_secret("creds", Some(&data(&[(WORKER_SECRET_KEY, "sec")])), None)
                .unwrap_err();
        assert_eq!(only_secret.reason, AUTHENTICATION_FAILED);
        assert!(only_secret.message.contains("'CONFIGHUB_WORKER_ID'"));
        assert!(only_secret.message.contains("'creds'"));
        assert!(!only_secret.message.contains("sec'"));
        let only_id = credentials_from_secret("creds", Some(&data(&[(WORKER_ID_KEY, "w1")])), None)
            .unwrap_err();
        assert!(
            only_id
                .message
                .contains("no non-empty key 'CONFIGHUB_WORKER_SECRET'")
        );
        let empty =
            credentials_from_secret("creds", Some(&data(&[("token", "  ")])), None).unwrap_err();
        assert!(empty.message.contains("'token'") && empty.message.contains("CONFIGHUB_WORKER_ID"));
    }

    #[test]
    fn descriptions_name_keys_not_values() {
        let worker = RepoCredentials {
            secret: "creds".into(),
            credentials: Credentials::worker("w1", "s3cr3t"),
        };
        let text = refused(Some(&worker), "HTTP 401");
        assert!(
            text.contains("'creds'") && text.contains(WORKER_SECRET_KEY),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"));
        let token = RepoCredentials {
            secret: "creds".into(),
            credentials: Credentials::token("s3cr3t"),
        };
        assert!(!format!("{token:?} {}", token.describe()).contains("s3cr3t"));
    }

    #[test]
    fn clients_are_shared_per_credentials_and_new_credentials_get_a_new_one() {
        let connections = Connections::new(None, 1);
        let origin = "http://127.0.0.1:1";
        let a = Credentials::worker("w1", "one");
        let plain = Transport::default();
        let first = connections.client(origin, Some(&a), &plain).unwrap();
        let again = connections.client(origin, Some(&a), &plain).unwrap();
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        let _rotated = connections
            .client(origin, Some(&Credentials::worker("w1", "two")), &plain)
            .unwrap();
        let _static = connections.client(origin, None, &plain).unwrap();
        // A proxy (or a CA) named or changed in a Secret is a new client too.
        let proxied = |password: &str| Transport {
            proxy: Some(confighub::ProxySettings {
                address: "http://proxy:3128".into(),
                auth: Some(("alice".into(), confighub::Token::new(password))),
            }),
            ..Transport::default()
        };
        let _proxied = connections
            .client(origin, Some(&a), &proxied("pw-one"))
            .unwrap();
        let _proxied_again = connections
            .client(origin, Some(&a), &proxied("pw-one"))
            .unwrap();
        let _new_password = connections
            .client(origin, Some(&a), &proxied("pw-two"))
            .unwrap();
        let clients = connections.clients.lock().unwrap();
        assert_eq!(clients.len(), 5);
        assert!(
            clients
                .keys()
                .all(|(_, k)| !k.contains("one") && !k.contains("two") && !k.contains("pw-"))
        );
    }
}
