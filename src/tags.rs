//! Names of the tags stsbridge writes on every published secret: written by the rotation, read
//! by the consumers (`show`) and `GET HttpRotate`.
//!
//! Tags are metadata Key Vault returns with a secret, so they describe a set without a second
//! read: which mode and settings minted it (the freshness rule compares them), when, and which
//! set it is (the minted access key id, compared to tell whether the separate secrets hold the
//! bundle's set). None is a secret. Key Vault limits a tag value to 256 characters.

pub const MODE: &str = "mode";
pub const SOURCE_KEY_ID: &str = "source-access-key-id";
pub const ROLE_ARN: &str = "role-arn";
pub const DURATION: &str = "duration-seconds";
pub const MINTED_AT: &str = "minted-at";
pub const ACCESS_KEY_ID: &str = "access-key-id";
pub const CALLER_ARN: &str = "caller-arn";
/// The target's name, when a targets file names it.
pub const TARGET: &str = "target";
/// A revocation's cut-off (`stsbridge revoke`, issue #20): a set minted before it is dead (AWS
/// denies its sessions) and is never fresh nor published again. Carried forward to every new
/// set, so the mark survives new versions.
pub const REVOKED_BEFORE: &str = "revoked-before";

/// A tag value within Key Vault's limit (ARNs can be longer; the tail is informational).
pub fn value(v: &str) -> String {
    v.chars().take(256).collect()
}
