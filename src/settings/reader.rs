//! Reading raw settings (a map of strings) into typed values, collecting every problem.
//!
//! Each getter takes the setting's parser bounds and default from [`super::table`], so a default
//! lives in one place; a name the table does not declare is a bug (a debug assertion).

use std::collections::HashMap;

use secrecy::SecretString;
use url::Url;

use super::table::{self, Kind};
use super::{SettingsError, SettingsErrors, SourceValue};
use crate::azure::reference::{looks_like_reference, parse_reference, RefForm, SecretRef};

/// Reads settings from a raw map, collecting errors and warnings.
pub(crate) struct Reader<'a> {
    map: &'a HashMap<String, String>,
    errors: Vec<SettingsError>,
    pub(crate) warnings: Vec<String>,
}

fn declared(name: &str) -> &'static table::Def {
    match table::find(name) {
        Some(d) => d,
        None => panic!("{name} is read but not declared in settings::table::SETTINGS"),
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(map: &'a HashMap<String, String>) -> Self {
        Self {
            map,
            errors: vec![],
            warnings: vec![],
        }
    }

    /// The trimmed value, `None` when absent or blank.
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        debug_assert!(
            table::find(name).is_some(),
            "{name} is not in the settings table"
        );
        self.map
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value, or the table's default.
    pub(crate) fn text(&self, name: &str) -> Option<&'a str> {
        self.get(name).or(declared(name).default)
    }

    pub(crate) fn error(&mut self, setting: &str, message: impl Into<String>) {
        self.errors.push(SettingsError {
            setting: setting.to_string(),
            message: message.into(),
        });
    }

    /// The errors, or the warnings when there are none.
    pub(crate) fn finish(self) -> Result<Vec<String>, SettingsErrors> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(SettingsErrors(self.errors))
        }
    }

    /// The number given, when it is one within the table's bounds; `None` when absent (an
    /// invalid value is an error, and `None`).
    pub(crate) fn number_given(&mut self, name: &str) -> Option<u64> {
        let Kind::Number { min, max } = declared(name).kind else {
            panic!("{name} is not declared as a number");
        };
        let raw = self.get(name)?;
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.error(name, format!("{n} is outside {min}-{max}"));
                None
            }
            Err(_) => {
                self.error(name, format!("'{raw}' is not a whole number"));
                None
            }
        }
    }

    /// The number given, else the table's default.
    pub(crate) fn number(&mut self, name: &str) -> u64 {
        self.number_given(name)
            .unwrap_or_else(|| self.default_number(name))
    }

    /// The table's default of a number setting.
    pub(crate) fn default_number(&self, name: &str) -> u64 {
        declared(name)
            .default
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("{name} has no numeric default in the table"))
    }

    /// The boolean given, else the table's default.
    pub(crate) fn boolean(&mut self, name: &str) -> bool {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => declared(name).default == Some("true"),
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                self.error(name, format!("'{other}' is not true or false"));
                declared(name).default == Some("true")
            }
        }
    }

    /// One of the table's choices (given, else the default); `None` after an error.
    pub(crate) fn choice(&mut self, name: &str) -> Option<&'static str> {
        let d = declared(name);
        let Kind::Choice(choices) = d.kind else {
            panic!("{name} is not declared as a choice");
        };
        let given = self.get(name).map(str::to_ascii_lowercase);
        let Some(given) = given else {
            return d.default;
        };
        match choices.iter().find(|c| **c == given) {
            Some(c) => Some(c),
            None => {
                self.error(
                    name,
                    format!("'{given}' is not one of {}", choices.join(", ")),
                );
                None
            }
        }
    }

    /// An AWS endpoint override (`setting`, else `AWS_ENDPOINT_URL`), checked to be a URL;
    /// plain http to another machine is allowed but warned about.
    pub(crate) fn endpoint(&mut self, setting: &str) -> Option<String> {
        let (name, value) = match self.get(setting) {
            Some(v) => (setting, v),
            None => ("AWS_ENDPOINT_URL", self.get("AWS_ENDPOINT_URL")?),
        };
        if Url::parse(value).is_err() {
            self.error(name, format!("'{value}' is not a URL"));
        } else if let Some(w) = crate::net::plain_http_warning(name, value) {
            self.warnings.push(w);
        }
        Some(value.to_string())
    }

    /// A value that may be given directly or point at a Key Vault secret.
    pub(crate) fn source_value(
        &mut self,
        name: &str,
        home: Option<&Url>,
        suffix: &str,
    ) -> Option<SourceValue> {
        let raw = self.get(name)?;
        if !looks_like_reference(raw) {
            return Some(SourceValue::Plain(SecretString::from(raw.to_string())));
        }
        match parse_reference(raw, home, suffix) {
            Ok((r, form)) => {
                if form != RefForm::SecretUri {
                    self.warnings.push(format!(
                        "{name}: the platform did not resolve this Key Vault reference; stsbridge reads {r} itself with its Azure identity"
                    ));
                }
                Some(SourceValue::KeyVault(r, form))
            }
            Err(e) => {
                self.error(name, e);
                None
            }
        }
    }

    /// A published secret: a bare secret name (in `KeyVaultUrl`'s vault), a URI or reference
    /// (its vault and name are used), or the table's default name.
    pub(crate) fn published(&mut self, name: &str, home: &Url, suffix: &str) -> SecretRef {
        let default = declared(name)
            .default
            .expect("published secrets have default names");
        let Some(raw) = self.get(name) else {
            return SecretRef::new(home, default);
        };
        // A bare secret name means that secret in KeyVaultUrl's vault.
        if (1..=127).contains(&raw.len())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return SecretRef::new(home, raw);
        }
        match parse_reference(raw, Some(home), suffix) {
            Ok((mut r, _)) => {
                if r.version.take().is_some() {
                    self.warnings.push(format!(
                        "{name}: the version in the setting is ignored; every rotation writes a new version"
                    ));
                }
                r
            }
            Err(e) => {
                self.error(name, e);
                SecretRef::new(home, default)
            }
        }
    }
}
