//! Shared access signatures derived from a storage account key (pure; the caller passes `now`).
//!
//! The official `azure_storage_blob` crate (1.x) authenticates only with an Entra ID token or a
//! SAS URL; a connection string with an account key (what `func start` with Azurite and many
//! existing apps use) is turned into short-lived SASes here — a few lines of HMAC-SHA256 — and
//! the crate does the rest. Two kinds (issue #27, F3: the lease's SAS grants only what a lease
//! needs):
//! - [`ServiceSas`]: a service SAS on one container (`sr=c`), read and write: every lease
//!   operation on the lease blobs (Lease Blob, Put Blob, Get Blob Properties, Set Blob
//!   Metadata) and nothing outside that container. "Create a service SAS", string-to-sign for
//!   versions 2020-12-06 and later.
//! - [`AccountSas`]: an account SAS, used only to create the lease container (which a service
//!   SAS cannot do): the blob service, container resource type, write, ten minutes. "Create an
//!   account SAS", string-to-sign for versions 2020-12-06 and later.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};

/// The signed version (`sv`). Any version from 2020-12-06 on signs the same fields.
pub const SIGNED_VERSION: &str = "2022-11-02";

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The base64 HMAC-SHA256 of `string_to_sign` with the account key (itself base64, as in
/// connection strings). Errors never quote the key.
fn sign(string_to_sign: &str, key: &SecretString) -> Result<String, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(key.expose_secret())
        .map_err(|_| "the account key is not base64".to_string())?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|_| "the account key cannot key an HMAC".to_string())?;
    mac.update(string_to_sign.as_bytes());
    Ok(b64.encode(mac.finalize().into_bytes()))
}

/// A service SAS on one container of the blob service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSas<'a> {
    pub account: &'a str,
    pub container: &'a str,
    /// `sp`: read (blob properties), write (lease, metadata, an empty blob).
    pub permissions: &'a str,
    pub start: DateTime<Utc>,
    pub expiry: DateTime<Utc>,
    /// `spr`: `https`, or `https,http` for an emulator on this machine.
    pub protocol: &'a str,
}

impl ServiceSas<'_> {
    /// The lease's SAS: `container` only, read and write, valid from five minutes ago (clock
    /// skew) for an hour.
    pub fn for_lease<'a>(
        account: &'a str,
        container: &'a str,
        protocol: &'a str,
        now: DateTime<Utc>,
    ) -> ServiceSas<'a> {
        ServiceSas {
            account,
            container,
            permissions: "rw",
            start: now - chrono::Duration::minutes(5),
            expiry: now + chrono::Duration::hours(1),
            protocol,
        }
    }

    /// The string the signature covers (version 2020-12-06 and later: sixteen fields; the
    /// identifier, IP range, snapshot time, encryption scope and the five response-header
    /// overrides are empty).
    pub fn string_to_sign(&self) -> String {
        let resource = format!("/blob/{}/{}", self.account, self.container);
        [
            self.permissions,
            &time(self.start),
            &time(self.expiry),
            &resource,
            "",
            "",
            self.protocol,
            SIGNED_VERSION,
            "c",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]
        .join("\n")
    }

    pub fn signature(&self, key: &SecretString) -> Result<String, String> {
        sign(&self.string_to_sign(), key)
    }

    /// The SAS as a query string (without `?`).
    pub fn query(&self, key: &SecretString) -> Result<SecretString, String> {
        let signature = self.signature(key)?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("sv", SIGNED_VERSION)
            .append_pair("sr", "c")
            .append_pair("sp", self.permissions)
            .append_pair("st", &time(self.start))
            .append_pair("se", &time(self.expiry))
            .append_pair("spr", self.protocol)
            .append_pair("sig", &signature)
            .finish();
        Ok(SecretString::from(query))
    }
}

/// An account SAS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSas<'a> {
    pub account: &'a str,
    pub permissions: &'a str,
    /// `ss`: blob.
    pub services: &'a str,
    /// `srt`: container.
    pub resource_types: &'a str,
    pub start: DateTime<Utc>,
    pub expiry: DateTime<Utc>,
    /// `spr`: `https`, or `https,http` for an emulator on this machine.
    pub protocol: &'a str,
}

impl AccountSas<'_> {
    /// The SAS that creates the lease container: the blob service's containers, write (Create
    /// Container takes write or create; write is the one every service version documents), from
    /// five minutes ago (clock skew) for ten minutes. It reaches no blob.
    pub fn for_creating_containers<'a>(
        account: &'a str,
        protocol: &'a str,
        now: DateTime<Utc>,
    ) -> AccountSas<'a> {
        AccountSas {
            account,
            permissions: "w",
            services: "b",
            resource_types: "c",
            start: now - chrono::Duration::minutes(5),
            expiry: now + chrono::Duration::minutes(10),
            protocol,
        }
    }

    /// The string the signature covers (version 2020-12-06 and later: the encryption scope is
    /// the empty last field, and the string ends with a newline).
    pub fn string_to_sign(&self) -> String {
        [
            self.account,
            self.permissions,
            self.services,
            self.resource_types,
            &time(self.start),
            &time(self.expiry),
            "",
            self.protocol,
            SIGNED_VERSION,
            "",
            "",
        ]
        .join("\n")
    }

    /// The base64 signature with the account key (itself base64, as in connection strings).
    pub fn signature(&self, key: &SecretString) -> Result<String, String> {
        sign(&self.string_to_sign(), key)
    }

    /// The SAS as a query string (without `?`).
    pub fn query(&self, key: &SecretString) -> Result<SecretString, String> {
        let signature = self.signature(key)?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("sv", SIGNED_VERSION)
            .append_pair("ss", self.services)
            .append_pair("srt", self.resource_types)
            .append_pair("sp", self.permissions)
            .append_pair("st", &time(self.start))
            .append_pair("se", &time(self.expiry))
            .append_pair("spr", self.protocol)
            .append_pair("sig", &signature)
            .finish();
        Ok(SecretString::from(query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sas() -> AccountSas<'static> {
        AccountSas {
            account: "devstoreaccount1",
            permissions: "rwc",
            services: "b",
            resource_types: "co",
            start: at("2026-01-01T00:00:00Z"),
            expiry: at("2026-01-01T01:00:00Z"),
            protocol: "https,http",
        }
    }

    #[test]
    fn the_string_to_sign_has_the_eleven_fields_of_version_2020_12_06() {
        assert_eq!(
            sas().string_to_sign(),
            "devstoreaccount1\nrwc\nb\nco\n2026-01-01T00:00:00Z\n2026-01-01T01:00:00Z\n\nhttps,http\n2022-11-02\n\n"
        );
    }

    /// The known vector was computed by Azurite 3.35.0's own `generateAccountSASSignature`
    /// (the emulator's independent implementation, which is what checks the SAS in the tests)
    /// with the development account's well-known key.
    #[test]
    fn the_signature_matches_azurites_for_the_development_account() {
        let key = SecretString::from(
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
                .to_string(),
        );
        assert_eq!(sas().signature(&key).unwrap(), KNOWN_SIGNATURE);
        let query = sas().query(&key).unwrap();
        assert!(query
            .expose_secret()
            .starts_with("sv=2022-11-02&ss=b&srt=co&sp=rwc&st=2026-01-01T00%3A00%3A00Z"));
        assert!(query.expose_secret().contains("&sig="));
    }

    const KNOWN_SIGNATURE: &str = "nhmJqgjcF6oBEfoywYUWnsuHTks6bCKEQjF9Vto4+d4=";

    fn service_sas() -> ServiceSas<'static> {
        ServiceSas {
            account: "devstoreaccount1",
            container: "stsbridge-leases",
            permissions: "rw",
            start: at("2026-01-01T00:00:00Z"),
            expiry: at("2026-01-01T01:00:00Z"),
            protocol: "https,http",
        }
    }

    #[test]
    fn the_service_sas_string_to_sign_has_the_sixteen_fields_of_version_2020_12_06() {
        assert_eq!(
            service_sas().string_to_sign(),
            "rw\n2026-01-01T00:00:00Z\n2026-01-01T01:00:00Z\n/blob/devstoreaccount1/stsbridge-leases\n\n\nhttps,http\n2022-11-02\nc\n\n\n\n\n\n\n"
        );
    }

    /// Computed by Azurite 3.35.0's own `generateBlobSASSignature` (resource `c`, the same
    /// values), which is what checks the lease's SAS in the end-to-end tests.
    #[test]
    fn the_service_sas_signature_matches_azurites_for_the_development_account() {
        let key = SecretString::from(
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
                .to_string(),
        );
        assert_eq!(
            service_sas().signature(&key).unwrap(),
            "lwO/TL99lUDG6+s8uPhknQg1Hd/rH5z+U26HqT6nTm4="
        );
        let query = service_sas().query(&key).unwrap();
        assert!(query
            .expose_secret()
            .starts_with("sv=2022-11-02&sr=c&sp=rw&st=2026-01-01T00%3A00%3A00Z"));
        assert!(!query.expose_secret().contains("srt="));
    }

    /// The lease's SAS reaches one container, and the container-creating one no blob.
    #[test]
    fn the_lease_sas_is_narrowed_to_its_container_and_the_create_sas_to_containers() {
        let now = at("2026-01-01T00:00:00Z");
        let lease = ServiceSas::for_lease("stapp01", "stsbridge-leases", "https", now);
        assert_eq!(
            (lease.permissions, lease.container),
            ("rw", "stsbridge-leases")
        );
        let create = AccountSas::for_creating_containers("stapp01", "https", now);
        assert_eq!(
            (create.services, create.resource_types, create.permissions),
            ("b", "c", "w")
        );
        assert_eq!(create.expiry - now, chrono::Duration::minutes(10));
    }

    #[test]
    fn a_key_that_is_not_base64_is_refused_without_being_shown() {
        let e = sas()
            .signature(&SecretString::from("not base64!".to_string()))
            .unwrap_err();
        assert!(!e.contains("not base64!"));
    }
}
