//! A throw-away CA and server certificates for the simulated VNet and tests.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// Why a certificate could not be made.
pub use rcgen::Error as CertError;

/// A certificate authority that signs leaf certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    pem: String,
}

/// A leaf certificate chain and its key, ready for a rustls server.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Leaf {
    pub fn clone_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

/// Validity of a leaf relative to now.
#[derive(Clone, Copy, Debug)]
pub enum Validity {
    /// Valid from a day ago for 90 days.
    Current,
    /// Expired yesterday.
    Expired,
}

impl Ca {
    pub fn new(common_name: &str) -> Result<Ca, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            pem: cert.pem(),
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names` (DNS names, wildcards allowed).
    pub fn leaf(&self, names: &[&str], validity: Validity) -> Result<Leaf, rcgen::Error> {
        self.issue(names, validity, false)
    }

    /// A server certificate that is itself marked as a CA (basicConstraints
    /// CA:TRUE): what a misconfigured proxy presents; verifiers reject it.
    pub fn ca_marked_leaf(&self, names: &[&str]) -> Result<Leaf, rcgen::Error> {
        self.issue(names, Validity::Current, true)
    }

    fn issue(&self, names: &[&str], validity: Validity, marked_ca: bool) -> Result<Leaf, rcgen::Error> {
        let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("netprobe-sim"));
        let now = OffsetDateTime::now_utc();
        match validity {
            Validity::Current => {
                params.not_before = now - Duration::days(1);
                params.not_after = now + Duration::days(90);
            }
            Validity::Expired => {
                params.not_before = now - Duration::days(90);
                params.not_after = now - Duration::days(1);
            }
        }
        if marked_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            chain: vec![cert.der().clone(), self.cert.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}
