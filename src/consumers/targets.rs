//! The files credentials are written into, shared by the Key Vault consumers (`sync-profile`,
//! `write-launch-settings`) and `stsbridge sso login --sync-profile/--launch-settings`.
//!
//! A target is opened — read and checked — *before* any credentials are fetched, so a file
//! stsbridge cannot edit fails the command before a network call or a sign-in, and is left
//! byte-for-byte. It is written afterwards through [`super::files::write_private`] (atomic, 0600).

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::SecondsFormat;

use super::files::{ensure_dir, write_private};
use super::{launch_settings, profile};
use crate::secrets::SessionCredentials;

/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials` (where the AWS CLI and SDKs look).
pub fn default_credentials_file() -> anyhow::Result<PathBuf> {
    match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => Ok(PathBuf::from(p)),
        None => Ok(PathBuf::from(
            std::env::var_os("HOME").context("HOME is not set; pass --credentials-file")?,
        )
        .join(".aws")
        .join("credentials")),
    }
}

fn expires(c: &SessionCredentials) -> String {
    c.expiration.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One profile of an AWS shared credentials file.
pub struct ProfileTarget {
    pub path: PathBuf,
    pub profile: String,
}

fn read_credentials_file(path: &Path) -> anyhow::Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .with_context(|| format!("{} is not UTF-8 text; left unchanged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl ProfileTarget {
    /// Reads the file (a missing one is empty) and checks it can be edited.
    pub fn open(path: PathBuf, profile: &str) -> anyhow::Result<Self> {
        let target = Self {
            profile: profile.to_string(),
            path,
        };
        target.read()?;
        Ok(target)
    }

    /// The file's text now, checked.
    fn read(&self) -> anyhow::Result<String> {
        let text = read_credentials_file(&self.path)?;
        profile::check(&text, &self.profile).with_context(|| {
            format!(
                "{} is not a credentials file stsbridge can edit; left unchanged",
                self.path.display()
            )
        })?;
        Ok(text)
    }

    /// Writes the credentials into the profile (unless it already holds this key id); the line
    /// that says what happened. The file is read again first: `open` may have been long ago (an
    /// SSO sign-in waits for a browser), and an edit made since must not be lost.
    pub fn write(&self, credentials: &SessionCredentials) -> anyhow::Result<String> {
        let (path, profile) = (self.path.display(), &self.profile);
        let text = self.read()?;
        let edit = profile::update_profile(&text, profile, credentials)
            .with_context(|| format!("{path} left unchanged"))?;
        match edit {
            profile::Edit::Unchanged => Ok(format!(
                "unchanged: profile [{profile}] in {path} already holds {}",
                credentials.access_key_id
            )),
            profile::Edit::Updated(new_text) => {
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    ensure_dir(dir)?;
                }
                write_private(&self.path, new_text.as_bytes())?;
                Ok(format!(
                    "updated: profile [{profile}] in {path} now holds {} (expires {})",
                    credentials.access_key_id,
                    expires(credentials)
                ))
            }
        }
    }
}

/// A .NET project's `launchSettings.json`.
pub struct LaunchSettingsTarget {
    pub path: PathBuf,
}

/// The reminder printed after writing credentials into a project file.
pub fn launch_settings_note(path: &Path) -> String {
    format!(
        "note: {} now holds session credentials; keep it out of version control",
        path.display()
    )
}

impl LaunchSettingsTarget {
    /// Reads the file and checks it can be edited.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let target = Self {
            path: path.to_path_buf(),
        };
        target.read()?;
        Ok(target)
    }

    /// The file's text now, checked.
    fn read(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.path).with_context(|| {
            format!(
                "reading {} (run this from the root of a .NET project, or give its path)",
                self.path.display()
            )
        })?;
        launch_settings::check(&text).with_context(|| {
            format!("{} cannot be updated; left unchanged", self.path.display())
        })?;
        Ok(text)
    }

    /// Writes the credentials into every profile; the line that says what happened. Reads the
    /// file again first, as [`ProfileTarget::write`] does.
    pub fn write(&self, credentials: &SessionCredentials) -> anyhow::Result<String> {
        let text = self.read()?;
        let (new_text, profiles) =
            launch_settings::update(&text, credentials).with_context(|| {
                format!("{} cannot be updated; left unchanged", self.path.display())
            })?;
        write_private(&self.path, new_text.as_bytes())?;
        Ok(format!(
            "updated {} profile(s) in {}: {} (expires {})",
            profiles.len(),
            self.path.display(),
            profiles.join(", "),
            expires(credentials)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use secrecy::SecretString;

    /// Issue #15 L5: an edit made between `open` and `write` (an SSO sign-in waits minutes for
    /// a browser) is kept.
    #[test]
    fn an_edit_made_after_open_survives_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, "[app]\naws_access_key_id = OLD\n").unwrap();
        let target = ProfileTarget::open(path.clone(), "app").unwrap();
        std::fs::write(
            &path,
            "[app]\naws_access_key_id = OLD\n\n[added-meanwhile]\nregion = eu-west-1\n",
        )
        .unwrap();
        let creds = SessionCredentials::new_at(
            "ASIAEXAMPLEEXAMPLE01",
            SecretString::from("s3cr3tValueOfFortyCharactersExample/+0=".to_string()),
            SecretString::from("FwoGZXIvYXdzEtokenExample".to_string()),
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2029, 12, 31, 23, 0, 0).unwrap(),
        )
        .unwrap();
        target.write(&creds).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[added-meanwhile]\nregion = eu-west-1"),
            "{text}"
        );
        assert!(
            text.contains("aws_access_key_id = ASIAEXAMPLEEXAMPLE01"),
            "{text}"
        );
    }
}
