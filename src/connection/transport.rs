//! A repository's TLS and proxy settings, from the Secrets named by `spec.certSecretRef` and
//! `spec.proxySecretRef`, with Flux's keys: `ca.crt` (CA certificates trusted in addition to the
//! system roots) and optionally `tls.crt` + `tls.key` (a client certificate); `address` and
//! optionally `username` + `password` (an HTTP proxy with basic auth). Read on every reconcile, so a
//! Secret changed in place takes effect at the next one.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;

use super::secret::{CredentialsError, get_secret, secret_text, secret_value};
use crate::api::SecretReference;
use crate::confighub::{self, ProxySettings, TlsSettings, Token, Transport};

pub const CA_KEY: &str = "ca.crt";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";
pub const PROXY_ADDRESS_KEY: &str = "address";
pub const PROXY_USERNAME_KEY: &str = "username";
pub const PROXY_PASSWORD_KEY: &str = "password";

/// Condition reason: the `certSecretRef` Secret lacks a key or holds something that is not PEM.
pub const INVALID_CERT_SECRET: &str = "InvalidCertSecret";
/// Condition reason: the `proxySecretRef` Secret lacks `address` or holds an unusable one.
pub const INVALID_PROXY_SECRET: &str = "InvalidProxySecret";
/// Condition reason: ConfigHub's certificate was not trusted (unknown CA, wrong name, expired).
pub const CERT_VERIFICATION_FAILED: &str = "CertificateVerificationFailed";
/// Condition reason: the proxy answered 407 (wrong or missing `username`/`password`).
pub const PROXY_AUTHENTICATION_FAILED: &str = "ProxyAuthenticationFailed";
/// Condition reason: the TLS handshake failed for another reason (protocol, client certificate).
pub const TLS_HANDSHAKE_FAILED: &str = "TLSHandshakeFailed";

type Data<'a> = Option<&'a BTreeMap<String, ByteString>>;
type StringData<'a> = Option<&'a BTreeMap<String, String>>;

/// The TLS settings in a `certSecretRef` Secret: at least `ca.crt`, or `tls.crt` with `tls.key`.
pub fn tls_from_secret(
    name: &str,
    data: Data<'_>,
    string_data: StringData<'_>,
) -> Result<TlsSettings, CredentialsError> {
    let invalid = |message: String| CredentialsError {
        reason: INVALID_CERT_SECRET,
        message,
    };
    let ca = secret_value(data, string_data, CA_KEY);
    let cert = secret_value(data, string_data, TLS_CERT_KEY);
    let key = secret_value(data, string_data, TLS_KEY_KEY);
    let client_identity =
        match both_or_neither(name, (TLS_CERT_KEY, TLS_KEY_KEY), (cert, key)).map_err(invalid)? {
            Some((cert, key)) => Some((
                cert,
                Token::new(String::from_utf8(key).map_err(|_| {
                    invalid(format!(
                        "Secret '{name}' key '{TLS_KEY_KEY}' is not a PEM private key"
                    ))
                })?),
            )),
            None => None,
        };
    if ca.is_none() && client_identity.is_none() {
        return Err(invalid(format!(
            "Secret '{name}' has neither a non-empty key '{CA_KEY}' nor keys '{TLS_CERT_KEY}' and '{TLS_KEY_KEY}'"
        )));
    }
    let tls = TlsSettings {
        ca_pem: ca,
        client_identity,
    };
    // Check the PEM now, so the message names the Secret rather than a client that cannot be built.
    Transport {
        tls: tls.clone(),
        proxy: None,
    }
    .apply(reqwest::Client::builder())
    .map(drop)
    .map_err(|e| invalid(format!("Secret '{name}': {}", plain(&e))))?;
    Ok(tls)
}

/// Two keys that only make sense together (a certificate and its key, a user and a password): both,
/// neither, or the message naming the one that is missing.
fn both_or_neither<A, B>(
    name: &str,
    (a_key, b_key): (&str, &str),
    values: (Option<A>, Option<B>),
) -> Result<Option<(A, B)>, String> {
    match values {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (Some(_), None) => Err(format!(
            "Secret '{name}' has key '{a_key}' but no non-empty key '{b_key}'"
        )),
        (None, Some(_)) => Err(format!(
            "Secret '{name}' has key '{b_key}' but no non-empty key '{a_key}'"
        )),
        (None, None) => Ok(None),
    }
}

/// The proxy in a `proxySecretRef` Secret: `address`, and `username` + `password` for basic auth.
pub fn proxy_from_secret(
    name: &str,
    data: Data<'_>,
    string_data: StringData<'_>,
) -> Result<ProxySettings, CredentialsError> {
    let invalid = |message: String| CredentialsError {
        reason: INVALID_PROXY_SECRET,
        message,
    };
    let address = secret_text(data, string_data, PROXY_ADDRESS_KEY).ok_or_else(|| {
        invalid(format!(
            "Secret '{name}' has no non-empty key '{PROXY_ADDRESS_KEY}'"
        ))
    })?;
    let user = secret_text(data, string_data, PROXY_USERNAME_KEY);
    // A password may legitimately carry surrounding spaces: only a trailing newline is dropped.
    let password = secret_value(data, string_data, PROXY_PASSWORD_KEY).map(|p| {
        String::from_utf8_lossy(&p)
            .trim_end_matches(['\r', '\n'])
            .to_string()
    });
    let auth = both_or_neither(
        name,
        (PROXY_USERNAME_KEY, PROXY_PASSWORD_KEY),
        (user, password),
    )
    .map_err(invalid)?
    .map(|(user, password)| (user, Token::new(password)));
    let proxy = ProxySettings { address, auth };
    Transport {
        tls: TlsSettings::default(),
        proxy: Some(proxy.clone()),
    }
    .apply(reqwest::Client::builder())
    .map(drop)
    .map_err(|e| {
        invalid(format!(
            "Secret '{name}' key '{PROXY_ADDRESS_KEY}': {}",
            plain(&e)
        ))
    })?;
    Ok(proxy)
}

/// The message of a client-input error without its generic prefix.
fn plain(e: &confighub::Error) -> String {
    match e {
        confighub::Error::Invalid(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Reads the TLS and proxy settings named by `cert_ref` and `proxy_ref` in `namespace`.
pub async fn read_transport(
    kube: &kube::Client,
    namespace: &str,
    cert_ref: Option<&SecretReference>,
    proxy_ref: Option<&SecretReference>,
) -> Result<Transport, CredentialsError> {
    let mut transport = Transport::default();
    if let Some(r) = cert_ref {
        let secret = get_secret(kube, namespace, &r.name).await?;
        transport.tls =
            tls_from_secret(&r.name, secret.data.as_ref(), secret.string_data.as_ref())?;
    }
    if let Some(r) = proxy_ref {
        let secret = get_secret(kube, namespace, &r.name).await?;
        transport.proxy = Some(proxy_from_secret(
            &r.name,
            secret.data.as_ref(),
            secret.string_data.as_ref(),
        )?);
    }
    Ok(transport)
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

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn a_cert_secret_needs_ca_or_a_client_pair_and_names_what_is_missing() {
        let ca = ca_pem();
        let ok = tls_from_secret("certs", Some(&data(&[(CA_KEY, &ca)])), None).unwrap();
        assert_eq!(ok.ca_pem.as_deref(), Some(ca.as_bytes()));
        let empty = tls_from_secret("certs", Some(&data(&[("other", "x")])), None).unwrap_err();
        assert_eq!(empty.reason, INVALID_CERT_SECRET);
        assert!(
            empty.message.contains("'certs'") && empty.message.contains("'ca.crt'"),
            "{}",
            empty.message
        );
        let half = tls_from_secret("certs", Some(&data(&[(TLS_CERT_KEY, &ca)])), None).unwrap_err();
        assert!(
            half.message.contains("no non-empty key 'tls.key'"),
            "{}",
            half.message
        );
        let garbage =
            tls_from_secret("certs", Some(&data(&[(CA_KEY, "not pem")])), None).unwrap_err();
        assert!(
            garbage.message.contains("'certs'") && garbage.message.contains("CA certificates"),
            "{}",
            garbage.message
        );
    }

    #[test]
    fn a_client_certificate_pair_is_read_and_a_bad_key_named() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        let pair = data(&[(TLS_CERT_KEY, &cert), (TLS_KEY_KEY, &key.serialize_pem())]);
        let tls = tls_from_secret("client", Some(&pair), None).unwrap();
        assert!(tls.ca_pem.is_none());
        let (read_cert, _) = tls.client_identity.unwrap();
        assert_eq!(read_cert, cert.as_bytes());
        let bad = data(&[(TLS_CERT_KEY, &cert), (TLS_KEY_KEY, "not a key")]);
        let err = tls_from_secret("client", Some(&bad), None).unwrap_err();
        assert_eq!(err.reason, INVALID_CERT_SECRET);
        assert!(
            err.message.contains("'client'") && err.message.contains("client certificate"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("not a key"), "{}", err.message);
    }

    #[test]
    fn a_proxy_secret_needs_an_address_and_both_halves_of_basic_auth() {
        let ok = proxy_from_secret(
            "proxy",
            Some(&data(&[
                (PROXY_ADDRESS_KEY, "http://proxy:3128\n"),
                (PROXY_USERNAME_KEY, "alice"),
                (PROXY_PASSWORD_KEY, "s3cr3t\n"),
            ])),
            None,
        )
        .unwrap();
        assert_eq!(ok.address, "http://proxy:3128");
        let (user, password) = ok.auth.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("alice", "s3cr3t"));
        let no_address =
            proxy_from_secret("proxy", Some(&data(&[(PROXY_USERNAME_KEY, "a")])), None)
                .unwrap_err();
        assert_eq!(no_address.reason, INVALID_PROXY_SECRET);
        assert!(
            no_address.message.contains("'address'"),
            "{}",
            no_address.message
        );
        let no_password = proxy_from_secret(
            "proxy",
            Some(&data(&[
                (PROXY_ADDRESS_KEY, "http://proxy:3128"),
                (PROXY_USERNAME_KEY, "alice"),
            ])),
            None,
        )
        .unwrap_err();
        assert!(
            no_password.message.contains("'password'"),
            "{}",
            no_password.message
        );
        let bad = proxy_from_secret(
            "proxy",
            Some(&data(&[(PROXY_ADDRESS_KEY, "http://bob:hunter2@/x")])),
            None,
        )
        .unwrap_err();
        assert!(!bad.message.contains("hunter2"), "{}", bad.message);
    }
}
