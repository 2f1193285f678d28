//! How a client reaches ConfigHub beyond its URL: extra CA certificates and a client certificate for a
//! server behind a private CA (Flux's `certSecretRef`), and an HTTP proxy with optional basic auth
//! (Flux's `proxySecretRef`).
//!
//! Nothing secret is ever formatted: `Debug` prints the proxy password and the client key as `***`,
//! and the proxy address is shown without any user info it carries.

use std::fmt;

use sha2::{Digest, Sha256};

use super::error::Error;
use super::token::Token;

/// TLS settings: CA certificates trusted in addition to the system roots, and a client certificate.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM bundle of CA certificates (`ca.crt`).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and its private key (`tls.crt`, `tls.key`), for mutual TLS.
    pub client_identity: Option<(Vec<u8>, Token)>,
}

/// An HTTP(S) proxy every request goes through (`CONNECT` for https URLs).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// `http://host:port`, as Flux's `address` key.
    pub address: String,
    /// Basic-auth user and password sent to the proxy.
    pub auth: Option<(String, Token)>,
}

/// TLS and proxy of a client; the default is the system roots and no proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    pub tls: TlsSettings,
    pub proxy: Option<ProxySettings>,
}

impl Transport {
    /// A stable, non-reversible cache key: a client is reused only for the same CA, client
    /// certificate and proxy, so a Secret changed in place gets a new client.
    pub fn fingerprint(&self) -> String {
        if *self == Transport::default() {
            return String::new();
        }
        let mut h = Sha256::new();
        let mut part = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(self.tls.ca_pem.as_deref().unwrap_or_default());
        if let Some((cert, key)) = &self.tls.client_identity {
            part(cert);
            part(key.expose().as_bytes());
        }
        if let Some(proxy) = &self.proxy {
            part(proxy.address.as_bytes());
            if let Some((user, password)) = &proxy.auth {
                part(user.as_bytes());
                part(password.expose().as_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    /// Applies the settings to a client under construction; bad PEM or a bad proxy address is an
    /// [`Error::Invalid`] naming what is wrong (never its content).
    pub(crate) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, Error> {
        if let Some(pem) = &self.tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Invalid(format!("CA certificates (PEM): {e}")))?;
            if certs.is_empty() {
                return Err(Error::Invalid(
                    "CA certificates (PEM): no certificate found".into(),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        if let Some((cert, key)) = &self.tls.client_identity {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key.expose().as_bytes());
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| Error::Invalid(format!("client certificate and key (PEM): {e}")))?;
            builder = builder.identity(identity);
        }
        if let Some(proxy) = &self.proxy {
            let url = url::Url::parse(proxy.address.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "proxy address {:?} must be http(s)://host[:port]",
                        redact_userinfo(&proxy.address)
                    ))
                })?;
            let mut p = reqwest::Proxy::all(url.as_str())
                .map_err(|e| Error::Invalid(format!("proxy address: {e}")))?;
            if let Some((user, password)) = &proxy.auth {
                p = p.basic_auth(user, password.expose());
            }
            builder = builder.proxy(p);
        }
        Ok(builder)
    }
}

/// `address` without a `user:password@` part, for messages.
fn redact_userinfo(address: &str) -> String {
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), address),
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => address.to_string(),
    }
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(Vec::len))
            .field(
                "client_identity",
                &self.client_identity.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySettings")
            .field("address", &redact_userinfo(&self.address))
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .finish()
    }
}

/// Whether a reqwest error is a failed TLS handshake, and if so, whether the server's certificate
/// was refused (untrusted issuer, wrong name, expired…) rather than the handshake otherwise failing.
pub(crate) fn tls_failure(e: &reqwest::Error) -> Option<bool> {
    find_rustls(e, 0).map(|tls| {
        matches!(
            tls,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        )
    })
}

/// The rustls error somewhere in `err`'s chain, looking inside `io::Error`s too (their own `source`
/// skips the error they wrap).
fn find_rustls<'a>(
    err: &'a (dyn std::error::Error + 'static),
    depth: usize,
) -> Option<&'a rustls::Error> {
    if depth > 16 {
        return None;
    }
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        && let Some(tls) = find_rustls(inner, depth + 1)
    {
        return Some(tls);
    }
    err.source().and_then(|s| find_rustls(s, depth + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxied() -> Transport {
        Transport {
            tls: TlsSettings::default(),
            proxy: Some(ProxySettings {
                address: "http://proxy.internal:3128".into(),
                auth: Some(("alice".into(), Token::new("pr0xy-pass"))),
            }),
        }
    }

    #[test]
    fn debug_hides_passwords_and_keys() {
        let mut t = proxied();
        t.tls.client_identity = Some((b"CERT".to_vec(), Token::new("PRIVATE-KEY-BYTES")));
        let text = format!("{t:?}");
        assert!(
            text.contains("proxy.internal:3128") && text.contains("alice"),
            "{text}"
        );
        assert!(
            !text.contains("pr0xy-pass") && !text.contains("PRIVATE-KEY"),
            "{text}"
        );
        assert_eq!(
            redact_userinfo("http://bob:hunter2@proxy:8080"),
            "http://***@proxy:8080"
        );
    }

    #[test]
    fn fingerprint_changes_with_every_setting() {
        let plain = Transport::default();
        assert_eq!(plain.fingerprint(), "");
        let a = proxied();
        let mut b = proxied();
        b.proxy.as_mut().unwrap().auth = Some(("alice".into(), Token::new("other")));
        let mut c = proxied();
        c.tls.ca_pem = Some(b"pem".to_vec());
        let prints = [a.fingerprint(), b.fingerprint(), c.fingerprint()];
        assert!(prints.iter().all(|p| !p.is_empty() && !p.contains("pr0xy")));
        assert_ne!(prints[0], prints[1]);
        assert_ne!(prints[0], prints[2]);
        assert_eq!(a.fingerprint(), proxied().fingerprint());
    }

    #[test]
    fn bad_pem_and_bad_proxy_addresses_are_refused() {
        let bad_ca = Transport {
            tls: TlsSettings {
                ca_pem: Some(b"not a certificate".to_vec()),
                client_identity: None,
            },
            proxy: None,
        };
        let err = bad_ca.apply(reqwest::Client::builder()).unwrap_err();
        assert!(err.to_string().contains("CA certificates"), "{err}");
        let mut bad_proxy = proxied();
        bad_proxy.proxy.as_mut().unwrap().address = "proxy-without-scheme:3128".into();
        let err = bad_proxy.apply(reqwest::Client::builder()).unwrap_err();
        assert!(err.to_string().contains("proxy address"), "{err}");
        assert!(proxied().apply(reqwest::Client::builder()).is_ok());
    }
}
