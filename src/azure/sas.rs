//! An account shared access signature derived from a storage account key (pure; the caller
//! passes `now`).
//!
//! The official `azure_storage_blob` crate (1.x) authenticates only with an Entra ID token or a
//! SAS URL; a connection string with an account key (what `func start` with Azurite and many
//! existing apps use) is turned into a short-lived account SAS here — a few lines of
//! HMAC-SHA256 — and the crate does the rest. Signing scheme: "Create an account SAS" (Blob
//! service REST docs), string-to-sign for versions 2020-12-06 and later.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};

/// The signed version (`sv`). Any version from 2020-12-06 on signs the same fields.
pub const SIGNED_VERSION: &str = "2022-11-02";

/// What a SAS grants; the lease needs only these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSas<'a> {
    pub account: &'a str,
    /// `sp`: read (blob properties), write (lease, metadata), create (container, empty blob).
    pub permissions: &'a str,
    /// `ss`: blob.
    pub services: &'a str,
    /// `srt`: container and object.
    pub resource_types: &'a str,
    pub start: DateTime<Utc>,
    pub expiry: DateTime<Utc>,
    /// `spr`: `https`, or `https,http` for an emulator on this machine.
    pub protocol: &'a str,
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl AccountSas<'_> {
    /// The lease's SAS for `account`, valid from five minutes ago (clock skew) for an hour.
    pub fn for_lease<'a>(
        account: &'a str,
        protocol: &'a str,
        now: DateTime<Utc>,
    ) -> AccountSas<'a> {
        AccountSas {
            account,
            permissions: "rwc",
            services: "b",
            resource_types: "co",
            start: now - chrono::Duration::minutes(5),
            expiry: now + chrono::Duration::hours(1),
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
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b64
            .decode(key.expose_secret())
            .map_err(|_| "the account key is not base64".to_string())?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
            .map_err(|_| "the account key cannot key an HMAC".to_string())?;
        mac.update(self.string_to_sign().as_bytes());
        Ok(b64.encode(mac.finalize().into_bytes()))
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

    #[test]
    fn a_key_that_is_not_base64_is_refused_without_being_shown() {
        let e = sas()
            .signature(&SecretString::from("not base64!".to_string()))
            .unwrap_err();
        assert!(!e.contains("not base64!"));
    }
}
