//! The SSO token and client-registration cache, shared with the AWS CLI: same directory, same
//! file names, same JSON, so a login by either tool serves both (issue #11).
//!
//! Where and how, from the AWS CLI v2 source (`awscli/botocore/utils.py`: `SSOTokenFetcher`,
//! `BaseSSOTokenFetcher._registration_cache_key` / `_token_cache_key`; botocore
//! `tokens.py`: `SSOTokenProvider`, which refreshes the token):
//! - the directory is `~/.aws/sso/cache`;
//! - the **token** file is `<sha1 hex>.json` of the sso-session name (or, for the legacy form, of
//!   the start URL), holding `startUrl`, `region`, `accessToken`, `expiresAt`, and the
//!   registration it came from (`clientId`, `clientSecret`, `registrationExpiresAt`) plus
//!   `refreshToken` when the service issued one (registrations with scopes);
//! - the **registration** file is `<sha1 hex>.json` of Python's
//!   `json.dumps({"tool": "botocore", "startUrl", "region", "scopes", "session_name"},
//!   sort_keys=True)` (default separators, ASCII escapes), holding `clientId`, `clientSecret`,
//!   `expiresAt` and `scopes` (when given); the CLI's authorization-code logins store
//!   `grantTypes` there, and such a registration is not used for the device flow (as the CLI);
//! - times are UTC `YYYY-MM-DDTHH:MM:SSZ`; a token or registration within 15 minutes of expiry
//!   counts as expired (the CLI's `_EXPIRY_WINDOW` and refresh window).
//!
//! The pure parts (names, JSON, validity) are apart from the file I/O ([`Cache`]), which writes
//! through [`crate::consumers::files::write_private`] (0600, atomic) into a 0700 directory. Parse
//! errors never quote the file: it holds bearer tokens and a client secret.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::consumers::files::{private_dir, write_private};

/// A token or registration this close to expiry is treated as expired (the AWS CLI's window).
pub const EXPIRY_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A string as Python's `json.dumps` writes it (`ensure_ascii=True`).
pub fn python_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The token file's name (without `.json`): SHA-1 of the session name, or of the start URL.
pub fn token_key(start_url: &str, session_name: Option<&str>) -> String {
    sha1_hex(session_name.unwrap_or(start_url).as_bytes())
}

/// The registration file's name (without `.json`), as the AWS CLI v2 computes it.
pub fn registration_key(
    start_url: &str,
    region: &str,
    scopes: Option<&[String]>,
    session_name: Option<&str>,
) -> String {
    let opt = |v: Option<&str>| v.map(python_json_string).unwrap_or_else(|| "null".into());
    let scopes = match scopes {
        None => "null".to_string(),
        Some(list) => format!(
            "[{}]",
            list.iter()
                .map(|s| python_json_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // sort_keys=True: region, scopes, session_name, startUrl, tool.
    let json = format!(
        "{{\"region\": {}, \"scopes\": {scopes}, \"session_name\": {}, \"startUrl\": {}, \"tool\": \"botocore\"}}",
        python_json_string(region),
        opt(session_name),
        python_json_string(start_url),
    );
    sha1_hex(json.as_bytes())
}

/// Formats a time as the cache does.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads a cache time leniently: RFC 3339, or the naive forms other tools write (`…Z`, `…UTC`).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = text
        .trim_end_matches("UTC")
        .trim_end_matches('Z')
        .trim_end();
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

fn time_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    parse_time(&text).ok_or_else(|| serde::de::Error::custom("a time that cannot be read"))
}

fn opt_time_field<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .as_deref()
        .and_then(parse_time))
}

/// Why a cache file cannot be used. Never carries the file's text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    #[error("it is not a JSON object with the expected fields (line {0}, column {1})")]
    Malformed(usize, usize),
}

fn malformed(e: serde_json::Error) -> CacheError {
    // The position only: serde's messages can quote a value, and the values are secrets.
    CacheError::Malformed(e.line(), e.column())
}

/// A client registration (RegisterClient's answer).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub client_id: String,
    pub client_secret: SecretString,
    #[serde(deserialize_with = "time_field")]
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationOut<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grant_types: Option<&'a [String]>,
}

impl Registration {
    pub fn from_json(text: &str) -> Result<Self, CacheError> {
        serde_json::from_str(text).map_err(malformed)
    }

    pub fn to_json(&self) -> SecretString {
        let out = RegistrationOut {
            client_id: &self.client_id,
            client_secret: self.client_secret.expose_secret(),
            expires_at: format_time(self.expires_at),
            scopes: self.scopes.as_deref(),
            grant_types: self.grant_types.as_deref(),
        };
        SecretString::from(serde_json::to_string(&out).expect("strings serialize"))
    }

    /// Usable for the device flow: not within the expiry window, and not an
    /// authorization-code registration of the AWS CLI.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        let for_auth_code = self
            .grant_types
            .as_ref()
            .is_some_and(|g| g.iter().any(|t| t == "authorization_code"));
        self.expires_at - now >= EXPIRY_WINDOW && !for_auth_code
    }
}

/// An SSO access token as the cache holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken {
    #[serde(default)]
    pub start_url: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub access_token: SecretString,
    #[serde(deserialize_with = "time_field")]
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default, deserialize_with = "opt_time_field")]
    pub registration_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenOut<'a> {
    start_url: Option<&'a str>,
    region: Option<&'a str>,
    access_token: &'a str,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

impl CachedToken {
    pub fn from_json(text: &str) -> Result<Self, CacheError> {
        serde_json::from_str(text).map_err(malformed)
    }

    /// The file's JSON, in the AWS CLI's field order.
    pub fn to_json(&self) -> SecretString {
        let out = TokenOut {
            start_url: self.start_url.as_deref(),
            region: self.region.as_deref(),
            access_token: self.access_token.expose_secret(),
            expires_at: format_time(self.expires_at),
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_ref().map(|s| s.expose_secret()),
            registration_expires_at: self.registration_expires_at.map(format_time),
            refresh_token: self.refresh_token.as_ref().map(|s| s.expose_secret()),
        };
        SecretString::from(serde_json::to_string(&out).expect("strings serialize"))
    }

    /// Good for at least the expiry window: used as is.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.expires_at - now >= EXPIRY_WINDOW
    }

    /// Not expired yet (it may be inside the window).
    pub fn is_unexpired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }

    /// The registration to refresh it with, when it has a refresh token and the registration is
    /// still valid (botocore's `SSOTokenProvider._refresh_access_token` conditions).
    pub fn refresh_with(&self, now: DateTime<Utc>) -> Option<(Registration, SecretString)> {
        let expires_at = self.registration_expires_at?;
        if expires_at <= now {
            return None;
        }
        Some((
            Registration {
                client_id: self.client_id.clone()?,
                client_secret: self.client_secret.clone()?,
                expires_at,
                scopes: None,
                grant_types: None,
            },
            self.refresh_token.clone()?,
        ))
    }
}

/// The cache directory and its files.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

/// What reading a cache file found.
pub enum Read<T> {
    Found(T),
    Absent,
    /// Present but unusable (the reason, for a warning).
    Unreadable(String),
}

impl<T> Read<T> {
    pub fn found(self) -> Option<T> {
        match self {
            Read::Found(t) => Some(t),
            _ => None,
        }
    }
}

impl Cache {
    /// `~/.aws/sso/cache` under `home`.
    pub fn under_home(home: &Path) -> Self {
        Self {
            dir: home.join(".aws").join("sso").join("cache"),
        }
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn read<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, CacheError>) -> Read<T> {
        let path = self.path(key);
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse(&text) {
                Ok(t) => Read::Found(t),
                Err(e) => Read::Unreadable(format!("{}: {e}", path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Read::Absent,
            Err(e) => Read::Unreadable(format!("{}: {e}", path.display())),
        }
    }

    pub fn read_token(&self, key: &str) -> Read<CachedToken> {
        self.read(key, CachedToken::from_json)
    }

    pub fn read_registration(&self, key: &str) -> Read<Registration> {
        self.read(key, Registration::from_json)
    }

    fn write(&self, key: &str, json: SecretString) -> anyhow::Result<PathBuf> {
        private_dir(&self.dir)?;
        let path = self.path(key);
        write_private(&path, json.expose_secret().as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    pub fn write_token(&self, key: &str, token: &CachedToken) -> anyhow::Result<PathBuf> {
        self.write(key, token.to_json())
    }

    pub fn write_registration(&self, key: &str, r: &Registration) -> anyhow::Result<PathBuf> {
        self.write(key, r.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const URL: &str = "https://my-sso-portal.awsapps.com/start";

    // The expected names were computed with Python (`hashlib.sha1(json.dumps(args,
    // sort_keys=True).encode()).hexdigest()`), the way the AWS CLI v2 computes them.
    #[test]
    fn registration_file_names_match_the_aws_clis() {
        let scopes = vec!["sso:account:access".to_string()];
        assert_eq!(
            registration_key(URL, "us-east-1", Some(&scopes), Some("my-sso")),
            "c5cfae6e3e4f067423a532368c8b514b6a4b0ace"
        );
        assert_eq!(
            registration_key(URL, "us-east-1", None, None),
            "0e093f10f65cee6c5c1898a8e240f5726875bf08"
        );
        assert_eq!(
            registration_key(
                "https://d-123.awsapps.com/start#/",
                "eu-west-1",
                Some(&[]),
                Some("équipe \"a\"\\b\n\u{2603}\u{1F600}\u{7f}")
            ),
            "657f92b95ab8234896b737a58808901247b6eb1a"
        );
    }

    #[test]
    fn token_file_names_are_the_sha1_of_the_session_name_or_the_start_url() {
        assert_eq!(
            token_key(URL, Some("my-sso")),
            "0ad374308c5a4e22f723adf10145eafad7c4031c"
        );
        assert_eq!(
            token_key(URL, None),
            "c7aaaf71fcc8777ae2475525ed049d39fe16c484"
        );
    }

    #[test]
    fn python_escapes_non_ascii_and_control_characters() {
        assert_eq!(
            python_json_string("a\"\\\u{1}é😀/"),
            r#""a\"\\\u0001\u00e9\ud83d\ude00/""#
        );
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, m, 0).unwrap()
    }

    fn token() -> CachedToken {
        CachedToken {
            start_url: Some(URL.into()),
            region: Some("us-east-1".into()),
            access_token: SecretString::from("aoa-secret".to_string()),
            expires_at: at(8, 0),
            client_id: Some("cid".into()),
            client_secret: Some(SecretString::from("cs-secret".to_string())),
            registration_expires_at: Some(at(23, 0)),
            refresh_token: Some(SecretString::from("aor-secret".to_string())),
        }
    }

    #[test]
    fn a_token_round_trips_in_the_aws_cli_format() {
        let json = token().to_json();
        assert_eq!(
            json.expose_secret(),
            r#"{"startUrl":"https://my-sso-portal.awsapps.com/start","region":"us-east-1","accessToken":"aoa-secret","expiresAt":"2030-01-01T08:00:00Z","clientId":"cid","clientSecret":"cs-secret","registrationExpiresAt":"2030-01-01T23:00:00Z","refreshToken":"aor-secret"}"#
        );
        let back = CachedToken::from_json(json.expose_secret()).unwrap();
        assert_eq!(back.expires_at, at(8, 0));
        assert_eq!(back.refresh_token.unwrap().expose_secret(), "aor-secret");
    }

    #[test]
    fn tokens_written_by_other_tools_are_read() {
        let t = CachedToken::from_json(
            r#"{"startUrl":"u","region":"r","accessToken":"a","expiresAt":"2030-01-01T08:00:00UTC","extra":1}"#,
        )
        .unwrap();
        assert_eq!(t.expires_at, at(8, 0));
        assert!(t.refresh_with(at(1, 0)).is_none());
        assert_eq!(parse_time("2030-01-01T08:00:00.000Z"), Some(at(8, 0)));
        assert_eq!(parse_time("2030-01-01T09:00:00+01:00"), Some(at(8, 0)));
    }

    #[test]
    fn a_token_within_fifteen_minutes_of_expiry_is_not_fresh() {
        let t = token();
        assert!(t.is_fresh(at(7, 45)));
        assert!(!t.is_fresh(at(7, 46)));
        assert!(t.is_unexpired(at(7, 59)));
        assert!(!t.is_unexpired(at(8, 0)));
    }

    #[test]
    fn a_token_is_refreshable_only_with_a_refresh_token_and_a_valid_registration() {
        let t = token();
        let (reg, refresh) = t.refresh_with(at(9, 0)).unwrap();
        assert_eq!(reg.client_id, "cid");
        assert_eq!(refresh.expose_secret(), "aor-secret");
        assert!(t.refresh_with(at(23, 0)).is_none(), "registration expired");
        let mut no_refresh = token();
        no_refresh.refresh_token = None;
        assert!(no_refresh.refresh_with(at(9, 0)).is_none());
    }

    #[test]
    fn auth_code_registrations_and_expiring_ones_are_not_reused() {
        let r = Registration::from_json(
            r#"{"clientId":"c","clientSecret":"s","expiresAt":"2030-01-01T08:00:00Z","scopes":["sso:account:access"]}"#,
        )
        .unwrap();
        assert!(r.is_usable(at(7, 0)));
        assert!(!r.is_usable(at(7, 50)));
        let auth = Registration::from_json(
            r#"{"clientId":"c","clientSecret":"s","expiresAt":"2030-01-01T08:00:00Z","grantTypes":["authorization_code","refresh_token"]}"#,
        )
        .unwrap();
        assert!(!auth.is_usable(at(7, 0)));
        assert_eq!(
            r.to_json().expose_secret(),
            r#"{"clientId":"c","clientSecret":"s","expiresAt":"2030-01-01T08:00:00Z","scopes":["sso:account:access"]}"#
        );
    }

    #[test]
    fn a_malformed_cache_file_is_refused_without_quoting_it() {
        let err = CachedToken::from_json(r#"{"accessToken": 12, "expiresAt": "aoa-secret"}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("aoa-secret"));
        let err = CachedToken::from_json(r#"{"accessToken": "aoa-secret", "expiresAt": "soon"}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("aoa-secret"));
    }

    #[test]
    fn files_are_private_in_a_private_directory() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::under_home(home.path());
        let path = cache.write_token("k", &token()).unwrap();
        assert!(cache.read_token("k").found().is_some());
        assert!(cache.read_token("other").found().is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&cache.dir), 0o700);
    }
}
