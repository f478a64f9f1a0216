//! The SSO settings of `stsbridge sso`: from flags, or from a profile in the AWS config file read
//! exactly as the AWS CLI reads it (issue #11).
//!
//! Pure: [`AwsConfig::parse`] takes the file's text, [`resolve`] turns a profile (or the flags)
//! into [`SsoSettings`]. The CLI layer reads the file (`AWS_CONFIG_FILE`, else `~/.aws/config`).
//!
//! **Keep this parser; do not "simplify" it into `aws_config::profile`.** That one differs from
//! what the AWS CLI accepts and refuses (only `=` separates keys; no `[DEFAULT]`; duplicate
//! sections and keys are not rejected), and the tests here pin botocore's behaviour, so a file
//! means the same to stsbridge as to the AWS CLI that shares its cache.
//!
//! The parser follows botocore (`botocore/configloader.py`: `raw_config_parse` over Python's
//! `configparser.RawConfigParser`, then `build_profile_map`), so a file the AWS CLI accepts means
//! the same here, and a file it refuses is refused here too:
//! - `[default]` and `[profile NAME]` are profiles; `[sso-session NAME]` are sessions; a section
//!   name is split like `shlex.split` (so `[profile "my dev"]` is the profile `my dev`), and one
//!   that does not split into exactly two words is ignored; a later section of the same profile
//!   replaces an earlier one;
//! - keys are case-insensitive (lowercased), `key = value` or `key: value` (the first `=` or `:`
//!   splits), values are trimmed; whole-line comments start with `#` or `;` (no inline comments);
//!   an indented line continues the previous value; `[DEFAULT]` values apply to every section;
//! - a duplicate section or key, a line outside any section and a line that is not `key = value`
//!   make the whole file invalid, as they do for the AWS CLI.
//!
//! Profile resolution follows botocore's `SSOProvider`: a profile with `sso_session` takes
//! `sso_start_url`/`sso_region`/`sso_registration_scopes` from that `[sso-session]` (a key set in
//! both must agree); otherwise the legacy `sso_start_url`/`sso_region` keys of the profile apply.
//! Registration scopes are parsed as the AWS CLI v2 does (comma-separated, trimmed, empties
//! dropped), because they are part of the client registration's cache key.

use std::collections::BTreeMap;

/// Why the config file or the SSO settings cannot be used. Messages name the file's line or the
/// missing key, never a value that could be secret (the config file holds none we read).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("line {0}: a key before any [section]")]
    NoSection(usize),
    #[error("line {0}: section [{1}] appears twice")]
    DuplicateSection(usize, String),
    #[error("line {0}: key '{1}' appears twice in its section")]
    DuplicateKey(usize, String),
    #[error("line {0} is not a [section], a key = value, or a comment")]
    Malformed(usize),
    #[error("profile '{0}' is not in the AWS config file")]
    NoProfile(String),
    #[error("profile '{profile}' refers to sso-session '{session}', which is not in the AWS config file")]
    NoSession { profile: String, session: String },
    #[error("the value of {key} differs between profile '{profile}' and its sso-session")]
    Inconsistent { profile: String, key: String },
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Invalid(String),
}

/// One section's keys (lowercased) and values.
pub type Section = BTreeMap<String, String>;

/// The AWS config file as botocore sees it: profiles and sso-sessions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    pub profiles: BTreeMap<String, Section>,
    pub sso_sessions: BTreeMap<String, Section>,
}

/// Python's `shlex.split` (POSIX mode, no comments): `None` when a quote is left open.
fn shlex_split(text: &str) -> Option<Vec<String>> {
    let mut words = vec![];
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('\\' | '"' | '$' | '`' | '\n') => w.push(c),
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// `configparser`'s option line: the first `=` or `:` splits; `None` if there is neither.
fn option_line(line: &str) -> Option<(String, String)> {
    let at = line.find(['=', ':'])?;
    Some((
        line[..at].trim_end().to_lowercase(),
        line[at + 1..].trim().to_string(),
    ))
}

/// botocore's `raw_config_parse`: every section of an AWS config or credentials file with its
/// keys (`[DEFAULT]`'s merged in), in file order. The credentials file's sections are profile
/// names as they are (`[app]`), which is why this is public: the credentials writer's tests read
/// what it wrote exactly as the AWS CLI would.
pub fn raw_sections(text: &str) -> Result<Vec<(String, Section)>, ConfigError> {
    {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // (section name, keys in order with their value lines)
        // Each key with its value's lines, in file order.
        type Keys = Vec<(String, Vec<String>)>;
        let mut sections: Vec<(String, Keys)> = vec![];
        let mut defaults: Keys = vec![];
        // Which list receives keys: None before any section, Some(None) for [DEFAULT].
        let mut current: Option<Option<usize>> = None;
        let mut current_key: Option<usize> = None;
        let mut indent_level = 0usize;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let stripped = line.trim();
            if stripped.starts_with('#') || stripped.starts_with(';') {
                continue;
            }
            if stripped.is_empty() {
                // configparser keeps blank lines inside a multi-line value.
                if let (Some(at), Some(k)) = (current, current_key) {
                    let keys = match at {
                        Some(s) => &mut sections[s].1,
                        None => &mut defaults,
                    };
                    keys[k].1.push(String::new());
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let (Some(at), Some(k)) = (current, current_key) {
                if indent > indent_level {
                    let keys = match at {
                        Some(s) => &mut sections[s].1,
                        None => &mut defaults,
                    };
                    keys[k].1.push(stripped.to_string());
                    continue;
                }
            }
            indent_level = indent;
            if let Some(name) = section_header(stripped) {
                current_key = None;
                if name == "DEFAULT" {
                    current = Some(None);
                } else if sections.iter().any(|(s, _)| s == name) {
                    return Err(ConfigError::DuplicateSection(n, name.to_string()));
                } else {
                    sections.push((name.to_string(), vec![]));
                    current = Some(Some(sections.len() - 1));
                }
                continue;
            }
            let Some(at) = current else {
                return Err(ConfigError::NoSection(n));
            };
            let Some((key, value)) = option_line(stripped) else {
                return Err(ConfigError::Malformed(n));
            };
            if key.is_empty() {
                return Err(ConfigError::Malformed(n));
            }
            let keys = match at {
                Some(s) => &mut sections[s].1,
                None => &mut defaults,
            };
            if keys.iter().any(|(k, _)| *k == key) {
                return Err(ConfigError::DuplicateKey(n, key));
            }
            keys.push((key, vec![value]));
            current_key = Some(keys.len() - 1);
        }
        let join = |lines: &[String]| lines.join("\n").trim_end().to_string();
        Ok(sections
            .into_iter()
            .map(|(name, keys)| {
                let mut section: Section =
                    defaults.iter().map(|(k, v)| (k.clone(), join(v))).collect();
                section.extend(keys.iter().map(|(k, v)| (k.clone(), join(v))));
                (name, section)
            })
            .collect())
    }
}

impl AwsConfig {
    /// Parses the config file's text (see the module docs for the rules).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut config = AwsConfig::default();
        for (name, section) in raw_sections(text)? {
            let name = name.as_str();
            let two = |prefix: &str| {
                name.starts_with(prefix)
                    .then(|| shlex_split(name))
                    .flatten()
                    .filter(|parts| parts.len() == 2)
                    .map(|mut parts| parts.remove(1))
            };
            if let Some(profile) = two("profile") {
                config.profiles.insert(profile, section);
            } else if let Some(session) = two("sso-session") {
                config.sso_sessions.insert(session, section);
            } else if name == "default" {
                config.profiles.insert("default".into(), section);
            }
        }
        Ok(config)
    }
}

/// configparser's `\[(?P<header>.+)\]` matched at the start of the stripped line.
fn section_header(stripped: &str) -> Option<&str> {
    let rest = stripped.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    let name = &rest[..end];
    (!name.is_empty()).then_some(name)
}

/// Parses `sso_registration_scopes` as the AWS CLI v2 does.
pub fn parse_scopes(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Everything needed to sign in and get role credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettings {
    pub start_url: String,
    pub region: String,
    /// The `[sso-session]` name; `None` for the legacy form (flags, or keys in the profile).
    pub session_name: Option<String>,
    /// `sso_registration_scopes` of the sso-session: `None` when the key is absent.
    pub registration_scopes: Option<Vec<String>>,
    pub account_id: Option<String>,
    pub role_name: Option<String>,
    /// The profile the settings came from, for messages.
    pub profile: Option<String>,
}

impl SsoSettings {
    /// The account and role, or an error saying how to give them.
    pub fn role(&self) -> Result<(&str, &str), ConfigError> {
        match (self.account_id.as_deref(), self.role_name.as_deref()) {
            (Some(a), Some(r)) => Ok((a, r)),
            _ => Err(ConfigError::Missing(match &self.profile {
                Some(p) => format!("profile '{p}' has no sso_account_id and sso_role_name; add them or pass --account-id and --role-name"),
                None => "--account-id and --role-name are needed to get role credentials".into(),
            })),
        }
    }

    /// The arguments that select these settings again, for "run `stsbridge sso login …`".
    pub fn login_hint(&self) -> String {
        match &self.profile {
            Some(p) => format!("stsbridge sso login --aws-profile {p}"),
            None => format!(
                "stsbridge sso login --start-url {} --sso-region {}",
                self.start_url, self.region
            ),
        }
    }
}

/// Values given as flags. Alone, they are the legacy form; with a profile, the account and role
/// win over the profile's, and a start URL or region is refused (it would sign in to one place
/// and cache the sign-in under the name of another).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub start_url: Option<String>,
    pub region: Option<String>,
    pub account_id: Option<String>,
    pub role_name: Option<String>,
}

/// The SSO settings of `profile` in `config` (or of the flags alone when `profile` is `None`).
pub fn resolve(
    config: &AwsConfig,
    profile: Option<&str>,
    flags: &Flags,
) -> Result<SsoSettings, ConfigError> {
    let settings = match profile {
        None => SsoSettings {
            start_url: flags.start_url.clone().ok_or_else(|| {
                ConfigError::Missing("--start-url is needed (or --aws-profile)".into())
            })?,
            region: flags.region.clone().ok_or_else(|| {
                ConfigError::Missing("--sso-region is needed (or --aws-profile)".into())
            })?,
            session_name: None,
            registration_scopes: None,
            account_id: flags.account_id.clone(),
            role_name: flags.role_name.clone(),
            profile: None,
        },
        Some(_) if flags.start_url.is_some() || flags.region.is_some() => {
            return Err(ConfigError::Invalid(
                "--start-url and --sso-region cannot be combined with --aws-profile: the profile (or its sso-session) sets them".into(),
            ))
        }
        Some(name) => {
            let p = config
                .profiles
                .get(name)
                .ok_or_else(|| ConfigError::NoProfile(name.to_string()))?;
            let mut merged = p.clone();
            let session_name = p.get("sso_session").cloned();
            let mut scopes = None;
            if let Some(session) = &session_name {
                let s = config
                    .sso_sessions
                    .get(session)
                    .ok_or_else(|| ConfigError::NoSession {
                        profile: name.to_string(),
                        session: session.clone(),
                    })?;
                for (k, v) in s {
                    if merged.get(k).is_some_and(|mine| mine != v) {
                        return Err(ConfigError::Inconsistent {
                            profile: name.to_string(),
                            key: k.clone(),
                        });
                    }
                    merged.insert(k.clone(), v.clone());
                }
                scopes = s.get("sso_registration_scopes").map(|r| parse_scopes(r));
            }
            let missing: Vec<&str> = ["sso_start_url", "sso_region"]
                .into_iter()
                .filter(|k| !merged.contains_key(*k))
                .collect();
            if !missing.is_empty() {
                let place = match &session_name {
                    Some(s) => format!("sso-session '{s}' (used by profile '{name}')"),
                    None => format!("profile '{name}' (it has no sso_session either)"),
                };
                return Err(ConfigError::Missing(format!(
                    "{place} lacks {}",
                    missing.join(" and ")
                )));
            }
            SsoSettings {
                start_url: merged["sso_start_url"].clone(),
                region: merged["sso_region"].clone(),
                session_name,
                registration_scopes: scopes,
                account_id: flags
                    .account_id
                    .clone()
                    .or_else(|| merged.get("sso_account_id").cloned()),
                role_name: flags
                    .role_name
                    .clone()
                    .or_else(|| merged.get("sso_role_name").cloned()),
                profile: Some(name.to_string()),
            }
        }
    };
    validate(&settings)?;
    Ok(settings)
}

fn validate(s: &SsoSettings) -> Result<(), ConfigError> {
    let url = url::Url::parse(&s.start_url).map_err(|_| {
        ConfigError::Invalid(format!("the start URL '{}' is not a URL", s.start_url))
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ConfigError::Invalid(format!(
            "the start URL '{}' is not an https URL",
            s.start_url
        )));
    }
    if s.region.is_empty()
        || !s
            .region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(ConfigError::Invalid(format!(
            "'{}' is not an AWS region name",
            s.region
        )));
    }
    if let Some(a) = &s.account_id {
        if a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConfigError::Invalid(format!(
                "the account id '{a}' is not 12 digits"
            )));
        }
    }
    if s.role_name.as_deref() == Some("") {
        return Err(ConfigError::Invalid("the role name is empty".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# my AWS config
[default]
region = us-east-1

[profile dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = DeveloperAccess
region = eu-west-1
s3 =
    max_concurrent_requests = 20

[profile legacy]
sso_start_url = https://old.awsapps.com/start
sso_region = us-west-2
SSO_Account_Id: 444455556666
sso_role_name=ReadOnly

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access, ,other:scope

[preview]
cloudfront = true
";

    fn settings(profile: &str) -> Result<SsoSettings, ConfigError> {
        resolve(
            &AwsConfig::parse(CONFIG).unwrap(),
            Some(profile),
            &Flags::default(),
        )
    }

    #[test]
    fn a_profile_with_an_sso_session_takes_the_sessions_url_region_and_scopes() {
        let s = settings("dev").unwrap();
        assert_eq!(s.start_url, "https://corp.awsapps.com/start");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.session_name.as_deref(), Some("corp"));
        assert_eq!(
            s.registration_scopes,
            Some(vec!["sso:account:access".to_string(), "other:scope".into()])
        );
        assert_eq!(s.role().unwrap(), ("111122223333", "DeveloperAccess"));
    }

    #[test]
    fn a_legacy_profile_uses_its_own_keys_and_keys_are_case_insensitive() {
        let s = settings("legacy").unwrap();
        assert_eq!(s.start_url, "https://old.awsapps.com/start");
        assert_eq!(s.region, "us-west-2");
        assert_eq!(s.session_name, None);
        assert_eq!(s.registration_scopes, None);
        assert_eq!(s.role().unwrap(), ("444455556666", "ReadOnly"));
    }

    #[test]
    fn flags_alone_are_the_legacy_form_and_win_over_a_profile() {
        let flags = Flags {
            start_url: Some("https://x.awsapps.com/start".into()),
            region: Some("ap-southeast-2".into()),
            account_id: Some("999999999999".into()),
            role_name: Some("Admin".into()),
        };
        let s = resolve(&AwsConfig::default(), None, &flags).unwrap();
        assert_eq!(
            (s.session_name.as_deref(), s.region.as_str()),
            (None, "ap-southeast-2")
        );
        let overridden = resolve(
            &AwsConfig::parse(CONFIG).unwrap(),
            Some("dev"),
            &Flags {
                role_name: Some("Admin".into()),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(overridden.role().unwrap(), ("111122223333", "Admin"));
        let mixed = resolve(&AwsConfig::parse(CONFIG).unwrap(), Some("dev"), &flags);
        assert!(matches!(mixed, Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn sections_are_named_the_way_botocore_names_them() {
        let c = AwsConfig::parse(
            "[profile \"my dev\"]\na = 1\n[profile]\nb = 2\n[profile a b c]\nc = 3\n[sso-session 'x y']\nd = 4\n[profile 'open]\ne = 5\n[profile  spaced ]\nf = 6\n",
        )
        .unwrap();
        assert_eq!(
            c.profiles.keys().collect::<Vec<_>>(),
            vec!["my dev", "spaced"]
        );
        assert_eq!(c.sso_sessions.keys().collect::<Vec<_>>(), vec!["x y"]);
    }

    #[test]
    fn values_continue_on_indented_lines_and_default_applies_everywhere() {
        let c = AwsConfig::parse(
            "[DEFAULT]\nshared = yes\n[profile a]\ns3 =\n  x = 1\n\n  y = 2\nk = v\n  more\n# c\n; c\n[profile b]\nshared = no\n",
        )
        .unwrap();
        let a = &c.profiles["a"];
        assert_eq!(a["s3"], "\nx = 1\n\ny = 2");
        assert_eq!(a["k"], "v\nmore");
        assert_eq!(a["shared"], "yes");
        assert_eq!(c.profiles["b"]["shared"], "no");
    }

    #[test]
    fn files_the_aws_cli_refuses_are_refused() {
        assert_eq!(AwsConfig::parse("a = 1\n"), Err(ConfigError::NoSection(1)));
        assert_eq!(
            AwsConfig::parse("[a]\n[b]\n[a]\n"),
            Err(ConfigError::DuplicateSection(3, "a".into()))
        );
        assert_eq!(
            AwsConfig::parse("[a]\nk = 1\nK = 2\n"),
            Err(ConfigError::DuplicateKey(3, "k".into()))
        );
        assert_eq!(
            AwsConfig::parse("[a]\nnot ini\n"),
            Err(ConfigError::Malformed(2))
        );
        assert_eq!(
            AwsConfig::parse("[a]\n= 1\n"),
            Err(ConfigError::Malformed(2))
        );
    }

    #[test]
    fn a_later_default_section_replaces_an_earlier_one() {
        let c = AwsConfig::parse("[default]\nregion = a\n[profile default]\nregion = b\n").unwrap();
        assert_eq!(c.profiles["default"]["region"], "b");
    }

    #[test]
    fn missing_and_inconsistent_settings_are_named() {
        assert_eq!(settings("nope"), Err(ConfigError::NoProfile("nope".into())));
        let err = settings("default").unwrap_err().to_string();
        assert!(err.contains("sso_start_url and sso_region"), "{err}");
        let c = AwsConfig::parse(
            "[profile p]\nsso_session = s\nsso_region = eu-west-1\n[sso-session s]\nsso_start_url = https://a/start\nsso_region = us-east-1\n",
        )
        .unwrap();
        assert!(matches!(
            resolve(&c, Some("p"), &Flags::default()),
            Err(ConfigError::Inconsistent { .. })
        ));
        let c = AwsConfig::parse("[profile p]\nsso_session = gone\n").unwrap();
        assert!(matches!(
            resolve(&c, Some("p"), &Flags::default()),
            Err(ConfigError::NoSession { .. })
        ));
    }

    #[test]
    fn bad_values_are_refused_before_any_call() {
        let bad = |f: Flags| resolve(&AwsConfig::default(), None, &f).unwrap_err();
        let ok = Flags {
            start_url: Some("https://x/start".into()),
            region: Some("us-east-1".into()),
            ..Flags::default()
        };
        assert!(matches!(
            bad(Flags {
                start_url: Some("not a url".into()),
                ..ok.clone()
            }),
            ConfigError::Invalid(_)
        ));
        assert!(matches!(
            bad(Flags {
                account_id: Some("12345".into()),
                ..ok.clone()
            }),
            ConfigError::Invalid(_)
        ));
        assert!(matches!(
            bad(Flags {
                region: Some("US East".into()),
                ..ok.clone()
            }),
            ConfigError::Invalid(_)
        ));
        let no_role = resolve(&AwsConfig::default(), None, &ok).unwrap();
        assert!(no_role.role().is_err());
    }

    #[test]
    fn scopes_are_split_on_commas_and_trimmed() {
        assert_eq!(parse_scopes(" a , b,,c "), vec!["a", "b", "c"]);
        assert!(parse_scopes("").is_empty());
    }
}
