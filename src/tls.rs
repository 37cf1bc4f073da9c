//! The TLS client configuration the gateway and the REST client share:
//! rustls with the ring provider and the webpki roots, built once.

use std::sync::{Arc, OnceLock};

use crate::bus::BoxError;

/// The TLS client configuration, built once per process.
pub(crate) fn client_config() -> Result<Arc<rustls::ClientConfig>, BoxError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}
