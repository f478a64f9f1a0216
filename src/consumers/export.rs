//! Shell and file formats for the credentials (seed 004's `export` lines, and friends).
//!
//! Pure formatting. Every value is quoted for its format, so a value can never break out of its
//! assignment, whatever characters it holds.

use chrono::SecondsFormat;
use secrecy::{ExposeSecret, SecretString};

use crate::secrets::SessionCredentials;

/// The output formats of `stsbridge export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `export NAME='value'` lines for `eval` in sh/bash/zsh.
    Env,
    /// A JSON object of the variables.
    Json,
    /// `NAME=value` lines for `.env` files (and `docker --env-file`).
    Dotenv,
    /// `$env:NAME = 'value'` lines for PowerShell.
    Powershell,
}

/// The variables the AWS CLI and SDKs read, in order.
pub fn variables(c: &SessionCredentials) -> [(&'static str, SecretString); 4] {
    [
        (
            "AWS_ACCESS_KEY_ID",
            SecretString::from(c.access_key_id.clone()),
        ),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.clone()),
        ("AWS_SESSION_TOKEN", c.session_token.clone()),
        (
            "AWS_CREDENTIAL_EXPIRATION",
            SecretString::from(c.expiration.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ),
    ]
}

/// POSIX shell single quotes: `'` becomes `'\''`.
fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// PowerShell single quotes: `'` is doubled.
fn ps_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// Unquoted when every character is safe for both dotenv parsers and `docker --env-file` (which
/// does not strip quotes); otherwise double quotes with escapes.
fn dotenv_value(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=_.:-".contains(c))
    {
        v.to_string()
    } else {
        let escaped = v
            .replace('\\', r"\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    }
}

/// The credentials in `format`, as text holding secrets.
pub fn render(c: &SessionCredentials, format: Format) -> SecretString {
    let vars = variables(c);
    let text = match format {
        Format::Env => vars
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", sh_quote(v.expose_secret())))
            .collect(),
        Format::Powershell => vars
            .iter()
            .map(|(k, v)| format!("$env:{k} = {}\n", ps_quote(v.expose_secret())))
            .collect(),
        Format::Dotenv => vars
            .iter()
            .map(|(k, v)| format!("{k}={}\n", dotenv_value(v.expose_secret())))
            .collect(),
        Format::Json => {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.expose_secret().into()))
                .collect();
            format!(
                "{}\n",
                serde_json::to_string_pretty(&map).expect("strings serialize")
            )
        }
    };
    SecretString::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn creds(secret: &str) -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: SecretString::from(secret.to_string()),
            session_token: SecretString::from("tok+en/=".to_string()),
            expiration: Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    #[test]
    fn env_lines_are_single_quoted_even_with_a_quote_inside() {
        let out = render(&creds("it's$(rm -rf)"), Format::Env);
        let text = out.expose_secret();
        assert!(
            text.contains("export AWS_SECRET_ACCESS_KEY='it'\\''s$(rm -rf)'\n"),
            "{text}"
        );
        assert!(text.contains("export AWS_CREDENTIAL_EXPIRATION='2030-01-02T03:04:05Z'\n"));
    }

    #[test]
    fn powershell_doubles_single_quotes() {
        let out = render(&creds("it's"), Format::Powershell);
        assert!(out
            .expose_secret()
            .contains("$env:AWS_SECRET_ACCESS_KEY = 'it''s'\n"));
    }

    #[test]
    fn dotenv_leaves_safe_values_bare_and_quotes_the_rest() {
        let out = render(&creds("a b\"$"), Format::Dotenv);
        let text = out.expose_secret();
        assert!(text.contains("AWS_SESSION_TOKEN=tok+en/=\n"));
        assert!(
            text.contains("AWS_SECRET_ACCESS_KEY=\"a b\\\"\\$\"\n"),
            "{text}"
        );
    }

    #[test]
    fn json_is_an_object_of_the_variables() {
        let out = render(&creds("s"), Format::Json);
        let v: serde_json::Value = serde_json::from_str(out.expose_secret()).unwrap();
        assert_eq!(v["AWS_ACCESS_KEY_ID"], "ASIAEXAMPLE");
        assert_eq!(v.as_object().unwrap().len(), 4);
    }
}
