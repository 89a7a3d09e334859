//! TLS to PostgreSQL (P20: wrapped data keys never cross the network in clear), with rustls
//! and ring. The connection string takes libpq's `sslmode` and `sslrootcert`, in a URL's query
//! (`postgres://…/db?sslmode=verify-full&sslrootcert=/etc/steward/pg-ca.pem`) or as
//! `key=value` words; Steward reads them itself, because the driver knows only `disable`,
//! `prefer` and `require`, and passes the rest on.
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (the default, as libpq) | when the server offers TLS | no |
//! | `require` | always, or the connection fails | no; against `sslrootcert` when one is given (as libpq) |
//! | `verify-ca` | always | chains to `sslrootcert` |
//! | `verify-full` | always | chains to `sslrootcert` and names the host connected to |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
    SignatureScheme,
};

use crate::StoreError;

/// What `sslmode` asks of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, unverified.
    Prefer,
    /// Always TLS, unverified unless a root certificate is given.
    Require,
    /// Always TLS, the chain checked against the root certificate.
    VerifyCa,
    /// Always TLS, the chain and the host name checked.
    VerifyFull,
}

/// The TLS settings taken out of a connection string, and the string without them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The connection string the driver reads (without `sslmode` and `sslrootcert`).
    pub url: String,
    /// `sslmode`.
    pub mode: Mode,
    /// `sslrootcert`.
    pub root: Option<PathBuf>,
}

fn mode(word: &str) -> Result<Mode, StoreError> {
    Ok(match word {
        "disable" => Mode::Disable,
        "allow" | "prefer" => Mode::Prefer,
        "require" => Mode::Require,
        "verify-ca" => Mode::VerifyCa,
        "verify-full" => Mode::VerifyFull,
        _ => {
            return Err(StoreError::Incompatible(
                "sslmode must be disable, allow, prefer, require, verify-ca or verify-full".into(),
            ));
        }
    })
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (URL or `key=value` words).
pub fn split(url: &str) -> Result<Settings, StoreError> {
    let mut mode_word: Option<String> = None;
    let mut root: Option<PathBuf> = None;
    let mut take = |key: &str, value: &str| -> bool {
        match key {
            "sslmode" => {
                mode_word = Some(value.to_string());
                true
            }
            "sslrootcert" => {
                root = Some(PathBuf::from(value));
                true
            }
            _ => false,
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        !take(k, &percent_decode(v))
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        url.split_whitespace()
            .filter(|word| {
                let (k, v) = word.split_once('=').unwrap_or((word, ""));
                !take(k.trim(), v.trim().trim_matches('\''))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut mode = match mode_word {
        Some(w) => mode(&w)?,
        None => Mode::Prefer,
    };
    // As libpq: `require` with a root certificate verifies the chain.
    if mode == Mode::Require && root.is_some() {
        mode = Mode::VerifyCa;
    }
    if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) && root.is_none() {
        return Err(StoreError::Incompatible(
            "sslmode verify-ca and verify-full need sslrootcert: the CA certificate (PEM) the server's certificate must chain to".into(),
        ));
    }
    Ok(Settings {
        url: rest,
        mode,
        root,
    })
}

/// `%XX` escapes in a URL query value (a path may hold `%2F`).
fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

/// The driver's mode for these settings.
pub fn driver_mode(mode: Mode) -> SslMode {
    match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    }
}

/// The connector for these settings; `None` for `disable`.
pub fn connector(settings: &Settings) -> Result<Option<MakeRustlsConnect>, StoreError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Incompatible(format!("tls: {e}")))?;
    let chain = match (settings.mode, &settings.root) {
        (Mode::Disable, _) => return Ok(None),
        (Mode::Prefer | Mode::Require, _) => None,
        (Mode::VerifyCa | Mode::VerifyFull, Some(root)) => Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root)?),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|e| StoreError::Incompatible(format!("tls: {e}")))?,
        ),
        (Mode::VerifyCa | Mode::VerifyFull, None) => {
            return Err(StoreError::Incompatible("sslrootcert is missing".into()));
        }
    };
    let verifier = Arc::new(Verifier {
        chain,
        check_name: settings.mode == Mode::VerifyFull,
        algorithms: provider.signature_verification_algorithms,
    });
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

fn roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let bad =
        |why: String| StoreError::Incompatible(format!("sslrootcert `{}`: {why}", path.display()));
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        store
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if store.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(store)
}

/// How the server's certificate is checked: against the root (`verify-ca`, and the host name
/// too for `verify-full`), or not at all (`prefer`, `require` without a root: encrypted against
/// eavesdroppers, not against a server in the middle, as libpq). The handshake's signatures
/// are checked either way.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        tokio_rustls::rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        tokio_rustls::rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p20_sslmode_and_sslrootcert_are_read_from_either_form() {
        let s = split("postgres://u@h:5432/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x").unwrap();
        assert_eq!(s.mode, Mode::VerifyFull);
        assert_eq!(s.root.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(s.url, "postgres://u@h:5432/db?application_name=x");
        let s = split("host=h user=u sslmode=require dbname=d").unwrap();
        assert_eq!(
            (s.mode, s.url.as_str()),
            (Mode::Require, "host=h user=u dbname=d")
        );
        let s = split("postgres://u@h/db").unwrap();
        assert_eq!(
            (s.mode, s.url.as_str()),
            (Mode::Prefer, "postgres://u@h/db")
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem")
                .unwrap()
                .mode,
            Mode::VerifyCa
        );
        assert!(split("postgres://u@h/db?sslmode=verify-full").is_err());
        assert!(split("postgres://u@h/db?sslmode=sometimes").is_err());
    }
}
