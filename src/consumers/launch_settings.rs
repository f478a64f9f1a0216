//! Writing the credentials into a .NET project's `Properties/launchSettings.json` (seed 002).
//!
//! Pure: [`update`] takes the file's text and returns the new text. Every profile gets
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` in its
//! `environmentVariables` (created when missing); everything else — other keys, their order,
//! other variables — is kept (`serde_json` with `preserve_order`), and the text is written back
//! with Visual Studio's two-space indentation.

use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use crate::secrets::SessionCredentials;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LaunchSettingsError {
    #[error("it is not JSON (line {0})")]
    NotJson(usize),
    #[error("it has no \"profiles\" object")]
    NoProfiles,
    #[error("profile '{0}' is not an object")]
    BadProfile(String),
    #[error("the environmentVariables of profile '{0}' is not an object")]
    BadVariables(String),
}

fn parse(text: &str) -> Result<Value, LaunchSettingsError> {
    let text_no_bom = text.trim_start_matches('\u{feff}');
    let doc: Value =
        serde_json::from_str(text_no_bom).map_err(|e| LaunchSettingsError::NotJson(e.line()))?;
    let Some(profiles) = doc.get("profiles").and_then(Value::as_object) else {
        return Err(LaunchSettingsError::NoProfiles);
    };
    for (name, profile) in profiles {
        let Some(profile) = profile.as_object() else {
            return Err(LaunchSettingsError::BadProfile(name.clone()));
        };
        if profile
            .get("environmentVariables")
            .is_some_and(|v| !v.is_object())
        {
            return Err(LaunchSettingsError::BadVariables(name.clone()));
        }
    }
    Ok(doc)
}

/// Whether [`update`] can edit this text.
pub fn check(text: &str) -> Result<(), LaunchSettingsError> {
    parse(text).map(|_| ())
}

/// Sets the three variables in every profile; returns the new text and the profiles changed.
pub fn update(
    text: &str,
    c: &SessionCredentials,
) -> Result<(String, Vec<String>), LaunchSettingsError> {
    let mut doc = parse(text)?;
    let profiles = doc
        .get_mut("profiles")
        .and_then(Value::as_object_mut)
        .expect("checked by parse");
    let mut changed = vec![];
    for (name, profile) in profiles.iter_mut() {
        let vars = profile
            .as_object_mut()
            .expect("checked by parse")
            .entry("environmentVariables")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("checked by parse");
        vars.insert("AWS_ACCESS_KEY_ID".into(), c.access_key_id.clone().into());
        vars.insert(
            "AWS_SECRET_ACCESS_KEY".into(),
            c.secret_access_key.expose_secret().into(),
        );
        vars.insert(
            "AWS_SESSION_TOKEN".into(),
            c.session_token.expose_secret().into(),
        );
        changed.push(name.clone());
    }
    let mut out = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    if text.ends_with('\n') {
        out.push('\n');
    }
    if text.contains("\r\n") {
        out = out.replace('\n', "\r\n");
    }
    if text.starts_with('\u{feff}') {
        out.insert(0, '\u{feff}');
    }
    Ok((out, changed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use secrecy::SecretString;

    fn creds() -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIANEW".into(),
            secret_access_key: SecretString::from("SECRET".to_string()),
            session_token: SecretString::from("TOKEN".to_string()),
            expiration: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    const FILE: &str = r#"{
  "$schema": "http://json.schemastore.org/launchsettings.json",
  "profiles": {
    "Api": {
      "commandName": "Project",
      "launchBrowser": true,
      "environmentVariables": {
        "ASPNETCORE_ENVIRONMENT": "Development",
        "AWS_ACCESS_KEY_ID": "OLD"
      },
      "applicationUrl": "https://localhost:5001"
    },
    "IIS Express": {
      "commandName": "IISExpress"
    }
  },
  "iisSettings": {
    "windowsAuthentication": false
  }
}
"#;

    #[test]
    fn every_profile_gets_the_variables_and_nothing_else_changes() {
        let (out, changed) = update(FILE, &creds()).unwrap();
        assert_eq!(changed, vec!["Api", "IIS Express"]);
        let expected = FILE
            .replace(
                r#""AWS_ACCESS_KEY_ID": "OLD""#,
                r#""AWS_ACCESS_KEY_ID": "ASIANEW",
        "AWS_SECRET_ACCESS_KEY": "SECRET",
        "AWS_SESSION_TOKEN": "TOKEN""#,
            )
            .replace(
                r#""commandName": "IISExpress"
    }"#,
                r#""commandName": "IISExpress",
      "environmentVariables": {
        "AWS_ACCESS_KEY_ID": "ASIANEW",
        "AWS_SECRET_ACCESS_KEY": "SECRET",
        "AWS_SESSION_TOKEN": "TOKEN"
      }
    }"#,
            );
        assert_eq!(out, expected);
    }

    #[test]
    fn a_second_run_changes_nothing_more() {
        let (once, _) = update(FILE, &creds()).unwrap();
        let (twice, _) = update(&once, &creds()).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn malformed_files_are_refused() {
        assert_eq!(
            update("{", &creds()).unwrap_err(),
            LaunchSettingsError::NotJson(1)
        );
        assert_eq!(
            update("{}", &creds()).unwrap_err(),
            LaunchSettingsError::NoProfiles
        );
        assert!(update(r#"{"profiles":{"a":1}}"#, &creds()).is_err());
        assert!(update(
            r#"{"profiles":{"a":{"environmentVariables":[]}}}"#,
            &creds()
        )
        .is_err());
    }

    proptest::proptest! {
        /// Whatever the values hold, the file stays JSON with the same keys, and every profile's
        /// variables read back exactly as given.
        #[test]
        fn hostile_values_read_back_exactly_and_add_nothing(
            c in crate::consumers::hostile::credentials()
        ) {
            let (out, _) = update(FILE, &c).unwrap();
            let doc: Value = serde_json::from_str(&out).unwrap();
            let before: Value = serde_json::from_str(FILE).unwrap();
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            proptest::prop_assert_eq!(keys(&doc), keys(&before));
            proptest::prop_assert_eq!(keys(&doc["profiles"]), keys(&before["profiles"]));
            for (_, profile) in doc["profiles"].as_object().unwrap() {
                let vars = &profile["environmentVariables"];
                proptest::prop_assert_eq!(vars["AWS_ACCESS_KEY_ID"].as_str(), Some(c.access_key_id.as_str()));
                proptest::prop_assert_eq!(vars["AWS_SECRET_ACCESS_KEY"].as_str(), Some(c.secret_access_key.expose_secret()));
                proptest::prop_assert_eq!(vars["AWS_SESSION_TOKEN"].as_str(), Some(c.session_token.expose_secret()));
            }
        }
    }
}
