//! Editing one profile of the AWS shared credentials file (`~/.aws/credentials`), keeping every
//! other byte as it was (seed 003).
//!
//! Pure: [`update_profile`] takes the file's text and returns the new text. Only the three
//! credential keys of the named profile change; other profiles, keys, comments, blank lines,
//! line endings and the order of everything stay byte-for-byte. A profile that does not exist
//! is appended. Text that is not an INI file the AWS tools would read is refused.

use secrecy::ExposeSecret;

use crate::secrets::SessionCredentials;

/// Why a credentials file cannot be edited.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("line {0} is not a [section], a key = value, or a comment")]
    Malformed(usize),
    #[error("'{0}' is not a valid profile name")]
    BadName(String),
    /// A value the file cannot hold as written (a line break would start a new line, a section
    /// or key of the writer's choosing). Credentials are checked when they are read, so this is
    /// a second line of defence.
    #[error("the {0} value cannot be written into a credentials file (it holds a control character or surrounding space)")]
    UnsafeValue(&'static str),
}

/// The outcome of an edit.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    /// The profile already holds this key id (seed 003's comparison): nothing to write.
    Unchanged,
    Updated(String),
}

const KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

fn section_name(line: &str) -> Option<&str> {
    let t = line.trim();
    t.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

fn key_of(line: &str) -> Option<&str> {
    let (k, _) = line.split_once('=')?;
    Some(k.trim())
}

fn is_comment_or_blank(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#') || t.starts_with(';')
}

/// The value of `key` in `profile`, if set.
pub fn read_key<'a>(text: &'a str, profile: &str, key: &str) -> Option<&'a str> {
    let mut inside = false;
    for line in text.lines() {
        if let Some(name) = section_name(line) {
            inside = name == profile;
        } else if inside && !is_comment_or_blank(line) && !line.starts_with([' ', '\t']) {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim().eq_ignore_ascii_case(key) {
                    return Some(v.trim());
                }
            }
        }
    }
    None
}

/// Whether [`update_profile`] can edit `profile` in this text: the name is valid and every line
/// is one the AWS tools would read (a file we do not understand is left alone).
pub fn check(text: &str, profile: &str) -> Result<(), ProfileError> {
    if profile.is_empty() || profile.contains([']', '[', '\n', '\r']) {
        return Err(ProfileError::BadName(profile.to_string()));
    }
    for (i, line) in text.lines().enumerate() {
        let ok = is_comment_or_blank(line)
            || section_name(line).is_some()
            || line.starts_with([' ', '\t']) // a continuation (nested) value
            || key_of(line).is_some_and(|k| !k.is_empty());
        if !ok {
            return Err(ProfileError::Malformed(i + 1));
        }
    }
    Ok(())
}

/// Sets the three credential keys of `profile` to `creds`, unless it already holds that key id.
pub fn update_profile(
    text: &str,
    profile: &str,
    creds: &SessionCredentials,
) -> Result<Edit, ProfileError> {
    check(text, profile)?;
    if read_key(text, profile, KEYS[0]) == Some(creds.access_key_id.as_str()) {
        return Ok(Edit::Unchanged);
    }
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let values = [
        creds.access_key_id.as_str(),
        creds.secret_access_key.expose_secret(),
        creds.session_token.expose_secret(),
    ];
    for (key, value) in KEYS.iter().zip(values) {
        if value.chars().any(char::is_control) || value.trim() != value {
            return Err(ProfileError::UnsafeValue(key));
        }
    }

    // Split keeping line endings, so untouched lines are copied exactly.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len() + 1024);
    let mut inside = false;
    let mut found_section = false;
    let mut written = [false; 3];
    let mut last_key_index: Option<usize> = None;
    let mut section_header_index: Option<usize> = None;
    let mut rendered: Vec<String> = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        let ending = &raw[line.len()..];
        if let Some(name) = section_name(line) {
            inside = name == profile;
            if inside {
                found_section = true;
                section_header_index = Some(i);
                last_key_index = Some(i);
            }
            rendered.push(raw.to_string());
            continue;
        }
        if inside && !is_comment_or_blank(line) && !line.starts_with([' ', '\t']) {
            if let Some((k, _)) = line.split_once('=') {
                last_key_index = Some(i);
                if let Some(pos) = KEYS
                    .iter()
                    .position(|key| k.trim().eq_ignore_ascii_case(key))
                {
                    // Keep the key exactly as written (case, spacing before '=').
                    rendered.push(format!("{k}= {}{ending}", values[pos]));
                    written[pos] = true;
                    continue;
                }
            }
        }
        rendered.push(raw.to_string());
    }
    let missing: String = KEYS
        .iter()
        .zip(values.iter())
        .zip(written.iter())
        .filter(|(_, w)| !**w)
        .map(|((k, v), _)| format!("{k} = {v}{eol}"))
        .collect();
    if found_section {
        let at = last_key_index
            .or(section_header_index)
            .expect("section found");
        if !rendered[at].ends_with('\n') {
            rendered[at].push_str(eol);
        }
        rendered[at].push_str(&missing);
    } else {
        if let Some(last) = rendered.last_mut() {
            if !last.ends_with('\n') {
                last.push_str(eol);
            }
        }
        if !text.is_empty() {
            rendered.push(eol.to_string());
        }
        rendered.push(format!("[{profile}]{eol}{missing}"));
    }
    for r in rendered {
        out.push_str(&r);
    }
    Ok(Edit::Updated(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use secrecy::SecretString;

    fn creds(id: &str) -> SessionCredentials {
        SessionCredentials {
            access_key_id: id.into(),
            secret_access_key: SecretString::from("SECRET".to_string()),
            session_token: SecretString::from("TOKEN".to_string()),
            expiration: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    const FILE: &str = "# my creds\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = keep-me\n\n[app]\nAWS_ACCESS_KEY_ID=OLD\n; note\naws_secret_access_key=OLDSECRET\nregion = eu-west-1\n\n[other]\nx = 1\n";

    #[test]
    fn only_the_named_profiles_credential_keys_change() {
        let Edit::Updated(out) = update_profile(FILE, "app", &creds("ASIANEW")).unwrap() else {
            panic!()
        };
        assert_eq!(
            out,
            "# my creds\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = keep-me\n\n[app]\nAWS_ACCESS_KEY_ID= ASIANEW\n; note\naws_secret_access_key= SECRET\nregion = eu-west-1\naws_session_token = TOKEN\n\n[other]\nx = 1\n"
        );
    }

    #[test]
    fn the_same_key_id_means_unchanged() {
        let Edit::Updated(out) = update_profile(FILE, "app", &creds("ASIANEW")).unwrap() else {
            panic!()
        };
        assert_eq!(
            update_profile(&out, "app", &creds("ASIANEW")).unwrap(),
            Edit::Unchanged
        );
    }

    #[test]
    fn a_missing_profile_is_appended_and_the_rest_kept_byte_for_byte() {
        let Edit::Updated(out) = update_profile(FILE, "new", &creds("ASIANEW")).unwrap() else {
            panic!()
        };
        assert!(out.starts_with(FILE));
        assert!(out.ends_with("\n[new]\naws_access_key_id = ASIANEW\naws_secret_access_key = SECRET\naws_session_token = TOKEN\n"));
        let Edit::Updated(empty) = update_profile("", "p", &creds("A")).unwrap() else {
            panic!()
        };
        assert_eq!(empty, "[p]\naws_access_key_id = A\naws_secret_access_key = SECRET\naws_session_token = TOKEN\n");
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let text = "[app]\r\naws_access_key_id = OLD\r\n";
        let Edit::Updated(out) = update_profile(text, "app", &creds("NEW")).unwrap() else {
            panic!()
        };
        assert_eq!(out, "[app]\r\naws_access_key_id = NEW\r\naws_secret_access_key = SECRET\r\naws_session_token = TOKEN\r\n");
    }

    #[test]
    fn a_file_that_is_not_ini_is_refused() {
        assert_eq!(
            update_profile("[app]\nthis is not ini\n", "app", &creds("A")),
            Err(ProfileError::Malformed(2))
        );
        assert!(update_profile("", "bad]name", &creds("A")).is_err());
    }

    #[test]
    fn a_value_with_a_line_break_is_refused_and_nothing_is_written() {
        let mut c = creds("ASIANEW");
        c.secret_access_key =
            SecretString::from("x\n[bridged]\ncredential_process = sh -c id".to_string());
        assert_eq!(
            update_profile(FILE, "app", &c),
            Err(ProfileError::UnsafeValue("aws_secret_access_key"))
        );
    }

    proptest::proptest! {
        /// Read back as the AWS CLI reads the file (botocore's parser, `sso::config`): either the
        /// value is refused, or the file has the same sections as before and the profile holds
        /// exactly the values given.
        #[test]
        fn hostile_values_never_add_a_section_or_a_key(
            c in crate::consumers::hostile::credentials()
        ) {
            use crate::sso::config::raw_sections;
            let out = match update_profile(FILE, "app", &c) {
                Err(ProfileError::UnsafeValue(_)) | Ok(Edit::Unchanged) => return Ok(()),
                Err(e) => panic!("{e}"),
                Ok(Edit::Updated(out)) => out,
            };
            let before = raw_sections(FILE).unwrap();
            let after = raw_sections(&out).unwrap();
            let names = |s: &[(String, crate::sso::config::Section)]| {
                s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
            };
            proptest::prop_assert_eq!(names(&after), names(&before));
            for ((name, was), (_, now)) in before.iter().zip(after.iter()) {
                if name != "app" {
                    proptest::prop_assert_eq!(was, now);
                    continue;
                }
                let mut want = was.clone();
                want.insert(KEYS[0].into(), c.access_key_id.clone());
                want.insert(KEYS[1].into(), c.secret_access_key.expose_secret().to_string());
                want.insert(KEYS[2].into(), c.session_token.expose_secret().to_string());
                proptest::prop_assert_eq!(now, &want);
            }
        }
    }
}
