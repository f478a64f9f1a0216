//! Shell and file formats for the credentials (seed 004's `export` lines, and friends).
//!
//! Pure formatting. Every value is quoted for its format (POSIX single quotes; PowerShell single
//! quotes with all five of its quote characters doubled; JSON), or, for dotenv, written bare or
//! refused, so a value can never break out of its assignment, whatever characters it holds. The
//! property tests read every format back with a model of its reader.

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
pub fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// The characters PowerShell takes as a single quote: `'` and U+2018–U+201B (its tokenizer's
/// `IsSingleQuote`). Any of them ends a single-quoted string, so every one is doubled, as
/// PowerShell's own `CodeGeneration.EscapeSingleQuotedStringContent` does.
pub const POWERSHELL_SINGLE_QUOTES: [char; 5] =
    ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// PowerShell single quotes: each single-quote character is doubled.
fn ps_quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        if POWERSHELL_SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Characters every dotenv reader takes literally in a bare value.
fn dotenv_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+/=_.:-".contains(c)
}

/// Why a value cannot be written in a format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0} cannot be written as a dotenv value: only letters, digits and + / = _ . : - are read the same by every dotenv reader")]
pub struct Unwritable(pub &'static str);
/// The credentials in `format`, as text holding secrets.
///
/// Dotenv values are written bare or not at all: readers disagree on quotes (`docker
/// --env-file` keeps them, python-dotenv expands `${…}` inside double quotes and keeps `\\$`),
/// so a quoted value would mean different things to different programs. Credentials that passed
/// [`SessionCredentials::new`] are always bare-safe (base64 and an RFC 3339 time).
pub fn render(c: &SessionCredentials, format: Format) -> Result<SecretString, Unwritable> {
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
        Format::Dotenv => {
            let mut text = String::new();
            for (k, v) in &vars {
                if !v.expose_secret().chars().all(dotenv_safe) {
                    return Err(Unwritable(k));
                }
                text.push_str(&format!("{k}={}\n", v.expose_secret()));
            }
            text
        }
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
    Ok(SecretString::from(text))
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
        let out = render(&creds("it's$(rm -rf)"), Format::Env).unwrap();
        let text = out.expose_secret();
        assert!(
            text.contains("export AWS_SECRET_ACCESS_KEY='it'\\''s$(rm -rf)'\n"),
            "{text}"
        );
        assert!(text.contains("export AWS_CREDENTIAL_EXPIRATION='2030-01-02T03:04:05Z'\n"));
    }

    #[test]
    fn powershell_doubles_single_quotes() {
        let out = render(&creds("it's"), Format::Powershell).unwrap();
        assert!(out
            .expose_secret()
            .contains("$env:AWS_SECRET_ACCESS_KEY = 'it''s'\n"));
    }

    /// Issue #15 M1: PowerShell also ends a single-quoted string at U+2018–U+201B.
    #[test]
    fn powershell_doubles_the_typographic_single_quotes_too() {
        let out = render(&creds("a\u{2019}; calc; \u{2018}b"), Format::Powershell).unwrap();
        assert!(out.expose_secret().contains(
            "$env:AWS_SECRET_ACCESS_KEY = 'a\u{2019}\u{2019}; calc; \u{2018}\u{2018}b'\n"
        ));
    }

    /// A POSIX shell word: single-quoted runs taken literally, a backslash quotes the next
    /// character, whitespace ends the word. Returns the word and the rest.
    fn sh_word(s: &str) -> Option<(String, &str)> {
        let mut out = String::new();
        let mut chars = s.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => loop {
                    match chars.next()? {
                        (_, '\'') => break,
                        (_, c) => out.push(c),
                    }
                },
                '\\' => out.push(chars.next()?.1),
                c if c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' => {
                    return Some((out, &s[i..]))
                }
                '$' | '`' | '"' | '(' | ')' | '<' | '>' => return None,
                c => out.push(c),
            }
        }
        Some((out, ""))
    }

    /// PowerShell's single-quoted string: any single-quote character opens and closes it; two
    /// in a row are one literal quote.
    fn ps_string(s: &str) -> Option<(String, &str)> {
        let mut chars = s.char_indices().peekable();
        let (_, open) = chars.next()?;
        if !POWERSHELL_SINGLE_QUOTES.contains(&open) {
            return None;
        }
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            if POWERSHELL_SINGLE_QUOTES.contains(&c) {
                match chars.peek() {
                    Some((_, n)) if POWERSHELL_SINGLE_QUOTES.contains(n) => {
                        out.push(*n);
                        chars.next();
                    }
                    _ => return Some((out, &s[i + c.len_utf8()..])),
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    /// A bare dotenv value, up to the end of the line.
    fn dotenv_parse(s: &str) -> Option<(String, &str)> {
        let end = s.find('\n')?;
        Some((s[..end].to_string(), &s[end..]))
    }

    fn expected(c: &SessionCredentials) -> Vec<(String, String)> {
        variables(c)
            .iter()
            .map(|(k, v)| (k.to_string(), v.expose_secret().to_string()))
            .collect()
    }

    /// Reads the rendered lines back with `parse_value` after each `prefix`NAME`infix`: every
    /// line is one assignment of exactly the value given, and nothing else is on it.
    fn read_back(
        text: &str,
        prefix: &str,
        infix: &str,
        parse_value: fn(&str) -> Option<(String, &str)>,
    ) -> Option<Vec<(String, String)>> {
        let mut rest = text;
        let mut out = vec![];
        while !rest.is_empty() {
            let line = rest.strip_prefix(prefix)?;
            let name_end = line.find(infix)?;
            let name = &line[..name_end];
            if !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return None;
            }
            let (value, after) = parse_value(&line[name_end + infix.len()..])?;
            rest = after.strip_prefix('\n')?;
            out.push((name.to_string(), value));
        }
        Some(out)
    }

    proptest::proptest! {
        #[test]
        fn every_format_reads_back_exactly_the_values_whatever_they_hold(
            c in crate::consumers::hostile::credentials()
        ) {
            let want = expected(&c);
            let env = render(&c, Format::Env).unwrap();
            let got = read_back(env.expose_secret(), "export ", "=", sh_word);
            proptest::prop_assert_eq!(got.as_ref(), Some(&want), "env: {:?}", env.expose_secret());
            let ps = render(&c, Format::Powershell).unwrap();
            let got = read_back(ps.expose_secret(), "$env:", " = ", ps_string);
            proptest::prop_assert_eq!(got.as_ref(), Some(&want), "powershell: {:?}", ps.expose_secret());
            if let Ok(dotenv) = render(&c, Format::Dotenv) {
                let got = read_back(dotenv.expose_secret(), "", "=", dotenv_parse);
                proptest::prop_assert_eq!(got.as_ref(), Some(&want), "dotenv: {:?}", dotenv.expose_secret());
            } else {
                proptest::prop_assert!(want.iter().any(|(_, v)| !v.chars().all(dotenv_safe)));
            }
            let json: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(render(&c, Format::Json).unwrap().expose_secret()).unwrap();
            let got: Vec<(String, String)> = json
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
                .collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn dotenv_writes_safe_values_bare_and_refuses_the_rest() {
        let out = render(&creds("abc+/="), Format::Dotenv).unwrap();
        let text = out.expose_secret();
        assert!(text.contains("AWS_SESSION_TOKEN=tok+en/=\n"));
        assert!(text.contains("AWS_SECRET_ACCESS_KEY=abc+/=\n"), "{text}");
        assert_eq!(
            render(&creds("a b\"$"), Format::Dotenv).unwrap_err(),
            Unwritable("AWS_SECRET_ACCESS_KEY")
        );
    }

    #[test]
    fn json_is_an_object_of_the_variables() {
        let out = render(&creds("s"), Format::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(out.expose_secret()).unwrap();
        assert_eq!(v["AWS_ACCESS_KEY_ID"], "ASIAEXAMPLE");
        assert_eq!(v.as_object().unwrap().len(), 4);
    }
}
