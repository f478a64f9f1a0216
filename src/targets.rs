//! Many targets in one app (issue #10): the optional targets file.
//!
//! Without a targets file, the flat app settings are the one implicit target and nothing changes.
//! With one (`StsbridgeTargetsFile`, default `targets.json` at the app root when present):
//!
//! ```json
//! {"Defaults": {"KeyVaultUrl": "https://kv.vault.azure.net"},
//!  "Targets": [{"Name": "prod", "CredentialMode": "assume-role", "RoleArn": "arn:aws:iam::…"}]}
//! ```
//!
//! Every object uses the app settings' own names. A target's value wins over `Defaults`, which
//! win over the flat app settings; `null` unsets an inherited value. The four published secrets are per target only: unless the
//! target names them, they are `<Name>-AccessKeyId`, `<Name>-SecretAccessKey`,
//! `<Name>-SessionToken` and `<Name>-AwsSessionCredentials`. App-wide settings (the Azure
//! identity, endpoints, limits) stay app settings. Every problem in the file is reported at once,
//! as `Targets[<name>].<Setting>`; secret-name collisions between targets are errors. The JSON
//! schema `targets.schema.json` describes the file for editors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::settings::reader::Reader;
use crate::settings::table::{self, Scope};
use crate::settings::{Settings, SettingsError, SettingsErrors, SourceValue};

/// The published secrets: set per target only (inherited, they would collide), defaulting to
/// the table's default names prefixed with the target's name.
pub const OWN_ONLY: &[&str] = &[
    "AccessKeyIdFromKeyVault",
    "SecretAccessKeyFromKeyVault",
    "SessionTokenFromKeyVault",
    "CredentialsBundleSecretName",
];

/// Whether a target (or `Defaults`) may set this setting (`settings::table`'s `Target` scope).
fn per_target(name: &str) -> bool {
    table::find(name).is_some_and(|d| d.scope == Scope::Target)
}

const FILE_SETTING: &str = "StsbridgeTargetsFile";
const DEFAULT_FILE: &str = "targets.json";

/// Every target to rotate, and the app-wide limits of rotating them.
#[derive(Debug)]
pub struct TargetsConfig {
    /// No targets file: the flat settings are the one target, and answers keep their old shape.
    pub implicit: bool,
    pub targets: Vec<Settings>,
    pub file: Option<PathBuf>,
    /// `MaxConcurrentTargets` (default 8).
    pub max_concurrent: usize,
    /// `KeyVaultWritesPer10Seconds` per vault (default 300; 0 turns pacing off).
    pub writes_per_10s: u32,
    pub warnings: Vec<String>,
}

/// Reads the flat settings and, when there is one, the targets file.
pub fn load(map: &HashMap<String, String>) -> Result<TargetsConfig, SettingsErrors> {
    let mut r = Reader::new(map);
    let max_concurrent = r.number("MaxConcurrentTargets") as usize;
    let writes_per_10s = r.number("KeyVaultWritesPer10Seconds") as u32;
    let mut errors = match r.finish() {
        Ok(_) => vec![],
        Err(e) => e.0,
    };

    let file = match targets_file(map) {
        Ok(f) => f,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let Some(file) = file else {
        if !errors.is_empty() {
            return Err(SettingsErrors(errors));
        }
        let settings = Settings::from_map(map)?;
        return Ok(TargetsConfig {
            implicit: true,
            warnings: settings.warnings.clone(),
            targets: vec![settings],
            file: None,
            max_concurrent,
            writes_per_10s,
        });
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        SettingsErrors(vec![err(
            FILE_SETTING,
            format!("cannot read {}: {e}", file.display()),
        )])
    })?;
    let (targets, mut warnings) = parse(&text, map).map_err(|mut e| {
        errors.append(&mut e.0);
        SettingsErrors(std::mem::take(&mut errors))
    })?;
    if !errors.is_empty() {
        return Err(SettingsErrors(errors));
    }
    for t in &targets {
        let name = t.name.as_deref().unwrap_or("?");
        warnings.extend(t.warnings.iter().map(|w| format!("target {name}: {w}")));
    }
    Ok(TargetsConfig {
        implicit: false,
        targets,
        file: Some(file),
        max_concurrent,
        writes_per_10s,
        warnings,
    })
}

fn err(setting: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        setting: setting.to_string(),
        message: message.into(),
    }
}

/// The targets file to read, if any: `StsbridgeTargetsFile` (must exist), else `targets.json` at
/// the app root (`AzureWebJobsScriptRoot`, else the working directory) when present.
fn targets_file(map: &HashMap<String, String>) -> Result<Option<PathBuf>, SettingsError> {
    let root = map
        .get("AzureWebJobsScriptRoot")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    match map
        .get(FILE_SETTING)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        Some(given) => {
            let path = root.join(Path::new(given));
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(err(
                    FILE_SETTING,
                    format!("{} does not exist", path.display()),
                ))
            }
        }
        None => {
            let path = root.join(DEFAULT_FILE);
            Ok(path.is_file().then_some(path))
        }
    }
}

/// A JSON value as the string an app setting would hold.
fn as_setting(name: &str, value: &Value) -> Result<Option<String>, String> {
    Ok(match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) if name == "SessionPolicyArns" || name == "RefreshAppSettingsOf" => {
            Some(
                items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .ok_or("must be a list of strings")
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
            )
        }
        Value::Object(_) if name == "SessionPolicy" => Some(value.to_string()),
        Value::Object(tags) if name == "SessionTags" => {
            let mut pairs = tags
                .iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|v| format!("{k}={v}"))
                        .ok_or("tag values must be strings")
                })
                .collect::<Result<Vec<_>, _>>()?;
            pairs.sort();
            Some(pairs.join(","))
        }
        _ => return Err("must be a string, number or boolean".into()),
    })
}

/// The settings one object of the file sets; problems go to `errors` under `prefix`.
fn fields(
    object: &serde_json::Map<String, Value>,
    prefix: &str,
    allow_name: bool,
    errors: &mut Vec<SettingsError>,
) -> HashMap<String, Option<String>> {
    let mut out = HashMap::new();
    for (key, value) in object {
        if key == "Name" && allow_name {
            continue;
        }
        if !per_target(key) {
            let why = if key == "Name" {
                "belongs in a target, not in Defaults".to_string()
            } else {
                "is not a per-target setting (app-wide settings such as the Azure identity stay app settings)".to_string()
            };
            errors.push(err(&format!("{prefix}.{key}"), why));
            continue;
        }
        // `null` unsets an inherited setting.
        match as_setting(key, value) {
            Ok(v) => {
                out.insert(key.clone(), v);
            }
            Err(e) => errors.push(err(&format!("{prefix}.{key}"), e)),
        }
    }
    out
}

/// Parses and validates the whole file against the flat settings `map`.
pub fn parse(
    text: &str,
    map: &HashMap<String, String>,
) -> Result<(Vec<Settings>, Vec<String>), SettingsErrors> {
    let mut errors = vec![];
    let mut warnings = vec![];
    let root: Value = serde_json::from_str(text)
        .map_err(|e| SettingsErrors(vec![err(FILE_SETTING, format!("not valid JSON: {e}"))]))?;
    let Some(root) = root.as_object() else {
        return Err(SettingsErrors(vec![err(
            FILE_SETTING,
            "must be an object with Defaults and Targets",
        )]));
    };
    for key in root
        .keys()
        .filter(|k| !matches!(k.as_str(), "Defaults" | "Targets" | "$schema"))
    {
        errors.push(err(
            key,
            "is not a section of the targets file (Defaults, Targets)",
        ));
    }
    let defaults = match root.get("Defaults") {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(o)) => fields(o, "Defaults", false, &mut errors),
        Some(_) => {
            errors.push(err("Defaults", "must be an object"));
            HashMap::new()
        }
    };
    for own in OWN_ONLY {
        if defaults.contains_key(*own) {
            errors.push(err(
                &format!("Defaults.{own}"),
                "names a published secret, which every target would share: set it per target",
            ));
        }
    }
    let Some(Value::Array(list)) = root.get("Targets") else {
        errors.push(err(
            "Targets",
            "is required: a list of targets, each with a Name",
        ));
        return Err(SettingsErrors(errors));
    };
    if list.is_empty() {
        errors.push(err("Targets", "is empty"));
    }
    let mut targets: Vec<Settings> = vec![];
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, item) in list.iter().enumerate() {
        let Some(object) = item.as_object() else {
            errors.push(err(&format!("Targets[{i}]"), "must be an object"));
            continue;
        };
        let name = match object.get("Name").and_then(Value::as_str) {
            Some(n) if valid_name(n) => n.to_string(),
            Some(n) => {
                errors.push(err(
                    &format!("Targets[{i}].Name"),
                    format!(
                        "'{n}' must be 1-40 letters, digits or dashes (it prefixes secret names)"
                    ),
                ));
                continue;
            }
            None => {
                errors.push(err(&format!("Targets[{i}].Name"), "is required"));
                continue;
            }
        };
        if let Some(first) = names.insert(name.to_ascii_lowercase(), i) {
            errors.push(err(
                &format!("Targets[{name}].Name"),
                format!("is used by Targets[{first}] too (names are case-insensitive)"),
            ));
            continue;
        }
        let prefix = format!("Targets[{name}]");
        let own = fields(object, &prefix, true, &mut errors);
        match Settings::from_map(&merged_settings(map, &defaults, &own, &name)) {
            Ok(mut s) => {
                s.name = Some(name);
                targets.push(s);
            }
            Err(SettingsErrors(list)) => {
                errors.extend(
                    list.into_iter()
                        .map(|e| err(&format!("{prefix}.{}", e.setting), e.message)),
                );
            }
        }
    }
    check_collisions(&mut targets, &mut errors, &mut warnings);
    if errors.is_empty() {
        Ok((targets, warnings))
    } else {
        Err(SettingsErrors(errors))
    }
}

/// One target's settings: the flat app settings (but their published secrets), then
/// `Defaults`, then the target's own (`None` unsets), and the published secrets' names prefixed
/// with the target's name unless it sets them.
fn merged_settings(
    map: &HashMap<String, String>,
    defaults: &HashMap<String, Option<String>>,
    own: &HashMap<String, Option<String>>,
    name: &str,
) -> HashMap<String, String> {
    let mut merged: HashMap<String, String> = map
        .iter()
        .filter(|(k, _)| !OWN_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in defaults.iter().chain(own.iter()) {
        match v {
            Some(v) => merged.insert(k.clone(), v.clone()),
            None => merged.remove(k),
        };
    }
    for setting in OWN_ONLY {
        let default = table::find(setting)
            .and_then(|d| d.default)
            .expect("published secrets have default names");
        merged
            .entry(setting.to_string())
            .or_insert_with(|| format!("{name}-{default}"));
    }
    merged
}

fn valid_name(n: &str) -> bool {
    (1..=40).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Published secrets must be unique across targets and never anyone's source. A source shared by
/// several targets is rotated by the first of them only (two rotations of one IAM user's key at
/// once would fight over its two key slots).
fn check_collisions(
    targets: &mut [Settings],
    errors: &mut Vec<SettingsError>,
    warnings: &mut Vec<String>,
) {
    let key = |r: &crate::azure::reference::SecretRef| {
        format!(
            "{}/{}",
            r.vault_origin().to_ascii_lowercase(),
            r.name.to_ascii_lowercase()
        )
    };
    let mut published: HashMap<String, String> = HashMap::new();
    for t in targets.iter() {
        let name = t.name.clone().unwrap_or_default();
        for r in t.targets.all() {
            if let Some(other) = published.insert(key(r), name.clone()) {
                errors.push(err(
                    &format!("Targets[{name}]"),
                    format!("publishes to {r}, which target {other} publishes to as well"),
                ));
            }
        }
    }
    let mut sources: HashMap<String, String> = HashMap::new();
    for t in targets.iter_mut() {
        let name = t.name.clone().unwrap_or_default();
        let Some(source) = t.mode.source() else {
            continue;
        };
        let refs: Vec<_> = [&source.access_key_id, &source.secret_access_key]
            .into_iter()
            .filter_map(|v| match v {
                SourceValue::KeyVault(r, _) => Some(r.clone()),
                SourceValue::Plain(_) => None,
            })
            .collect();
        for r in &refs {
            if let Some(owner) = published.get(&key(r)) {
                errors.push(err(
                    &format!("Targets[{name}]"),
                    format!("reads its IAM user's key from {r}, which target {owner} publishes to"),
                ));
            }
        }
        if let Some(first) = refs.first() {
            match sources.get(&key(first)) {
                Some(owner) => {
                    if t.source_key_max_age_days > 0 {
                        warnings.push(format!("target {name}: shares its IAM user's key with target {owner}, which rotates it"));
                    }
                    t.source_key_max_age_days = 0;
                    t.source_key_rotated_by = Some(owner.clone());
                }
                None => {
                    sources.insert(key(first), name.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat() -> HashMap<String, String> {
        [
            ("KeyVaultUrl", "https://kv.vault.azure.net"),
            (
                "UsernameFromKeyVault",
                "https://kv.vault.azure.net/secrets/src-id",
            ),
            (
                "PasswordFromKeyVault",
                "https://kv.vault.azure.net/secrets/src-secret",
            ),
            (
                "AccessKeyIdFromKeyVault",
                "https://kv.vault.azure.net/secrets/flat-id",
            ),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn settings_named(errors: &SettingsErrors) -> Vec<String> {
        errors.0.iter().map(|e| e.setting.clone()).collect()
    }

    #[test]
    fn targets_inherit_defaults_and_flat_settings_and_get_prefixed_secret_names() {
        let text = r#"{"Defaults": {"SessionDurationSeconds": 3600},
            "Targets": [{"Name": "a"}, {"Name": "b", "SessionDurationSeconds": 1800, "CredentialsBundleSecretName": "b-bundle"}]}"#;
        let (targets, warnings) = parse(text, &flat()).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].session_duration_secs, 3600);
        assert_eq!(targets[1].session_duration_secs, 1800);
        assert_eq!(targets[0].targets.bundle.name, "a-AwsSessionCredentials");
        assert_eq!(
            targets[0].targets.access_key_id.name, "a-AccessKeyId",
            "the flat published names are not inherited"
        );
        assert_eq!(targets[1].targets.bundle.name, "b-bundle");
        // Both read the same IAM user: only the first rotates it.
        assert_eq!(targets[1].source_key_rotated_by.as_deref(), Some("a"));
        assert_eq!(targets[1].source_key_max_age_days, 0);
        assert!(
            warnings.iter().any(|w| w.contains("target b")),
            "{warnings:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_the_targets_name_and_field() {
        let text = r#"{"Defaults": {"AZURE_CLIENT_ID": "x", "CredentialsBundleSecretName": "shared"},
            "Targets": [{"Name": "a", "RoleArn": "nope", "CredentialMode": "assume-role", "Typo": 1},
                        {"Name": "A"}, {"Name": "bad name"}, {}, {"Name": "c", "SessionDurationSeconds": "many"}],
            "Extra": {}}"#;
        let e = parse(text, &flat()).unwrap_err();
        let named = settings_named(&e);
        for want in [
            "Defaults.AZURE_CLIENT_ID",
            "Defaults.CredentialsBundleSecretName",
            "Targets[a].Typo",
            "Targets[a].RoleArn",
            "Targets[A].Name",
            "Targets[2].Name",
            "Targets[3].Name",
            "Targets[c].SessionDurationSeconds",
            "Extra",
        ] {
            assert!(
                named.iter().any(|n| n == want),
                "{want} missing from {named:?}"
            );
        }
    }

    #[test]
    fn secret_name_collisions_between_targets_are_errors() {
        let text = r#"{"Targets": [{"Name": "a", "CredentialsBundleSecretName": "same"},
                                   {"Name": "b", "CredentialsBundleSecretName": "SAME"},
                                   {"Name": "c", "AccessKeyIdFromKeyVault": "src-id"}]}"#;
        let e = parse(text, &flat()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("target a publishes to as well"), "{text}");
        assert!(text.contains("Targets[c]"), "{text}");
    }

    #[test]
    fn json_values_become_setting_strings() {
        assert_eq!(
            as_setting(
                "SessionTags",
                &serde_json::json!({"team": "x", "env": "prod"})
            )
            .unwrap()
            .unwrap(),
            "env=prod,team=x"
        );
        assert_eq!(
            as_setting("SessionPolicyArns", &serde_json::json!(["a", "b"]))
                .unwrap()
                .unwrap(),
            "a,b"
        );
        assert_eq!(
            as_setting("SessionDurationSeconds", &serde_json::json!(900))
                .unwrap()
                .unwrap(),
            "900"
        );
        assert!(as_setting("RoleArn", &serde_json::json!(["x"])).is_err());
    }
}
