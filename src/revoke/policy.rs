//! The pure parts of a revocation: which principal an ARN names, the deny policy AWS's console
//! attaches ("Revoke active sessions"), the cut-off read from AWS's clock, and when a policy may
//! be pruned. No I/O; callers pass `now`.
//!
//! AWS's shape, for roles: <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_revoke-sessions.html>;
//! the same condition on a user's inline policy denies the temporary credentials the user got
//! with `GetSessionToken` (<https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_disable-perms.html>),
//! while requests signed with the user's own key carry no `aws:TokenIssueTime` and are not denied.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{json, Value};

/// The inline policy's name: AWS's own, so the console and `stsbridge revoke` update one policy.
pub const POLICY_NAME: &str = "AWSRevokeOlderSessions";

/// Whose sessions a policy denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Role,
    User,
}

impl Kind {
    /// The longest a session of this principal can live: `GetSessionToken` up to 36 h, a role
    /// session up to 12 h (a role's MaxSessionDuration). A revocation older than that denies
    /// nothing that still exists.
    pub fn longest_session(self) -> TimeDelta {
        match self {
            Kind::User => TimeDelta::hours(36),
            Kind::Role => TimeDelta::hours(12),
        }
    }
}

/// An IAM role or user, from its ARN (`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Principal {
    pub kind: Kind,
    pub arn: String,
    /// The name IAM's policy calls take: the ARN's last segment, without the path.
    pub name: String,
}

impl Principal {
    pub fn parse(arn: &str) -> Result<Self, String> {
        let bad = || format!("{arn:?} is not the ARN of an IAM role or user");
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" || parts[4].is_empty() {
            return Err(bad());
        }
        let (kind, path) = if let Some(p) = parts[5].strip_prefix("role/") {
            (Kind::Role, p)
        } else if let Some(p) = parts[5].strip_prefix("user/") {
            (Kind::User, p)
        } else {
            return Err(bad());
        };
        let name = path.rsplit('/').next().unwrap_or_default();
        if name.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            kind,
            arn: arn.to_string(),
            name: name.to_string(),
        })
    }
}

/// A cut-off as AWS's condition operators take it: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_cut_off(cut_off: DateTime<Utc>) -> String {
    cut_off.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The deny policy, exactly AWS's shape: every action, every resource, for sessions issued
/// before `cut_off`.
pub fn document(cut_off: DateTime<Utc>) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": format_cut_off(cut_off)}}
        }
    })
}

/// The newest cut-off of a stored policy document's deny statements (IAM returns documents
/// URL-encoded; both forms are read). `None` for a document without one.
pub fn cut_off_of(stored: &str) -> Option<DateTime<Utc>> {
    let decoded = percent_encoding::percent_decode_str(stored).decode_utf8_lossy();
    let doc: Value = serde_json::from_str(stored)
        .or_else(|_| serde_json::from_str(&decoded))
        .ok()?;
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        s @ Value::Object(_) => vec![s],
        _ => vec![],
    };
    statements
        .into_iter()
        .filter(|s| s["Effect"] == "Deny")
        .flat_map(
            |s| match &s["Condition"]["DateLessThan"]["aws:TokenIssueTime"] {
                Value::String(t) => vec![t.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect(),
                _ => vec![],
            },
        )
        .filter_map(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max()
}

/// The cut-off from the `Date` header of an IAM answer (RFC 2822, second precision): one second
/// after it, so every session issued up to AWS's "now" — whatever fraction of the second the
/// header dropped — is before it.
pub fn cut_off_from_date(date: &str) -> Result<DateTime<Utc>, String> {
    let at = DateTime::parse_from_rfc2822(date.trim())
        .map_err(|e| format!("the Date header {date:?} is not an HTTP date: {e}"))?
        .with_timezone(&Utc);
    Ok(truncate(at) + TimeDelta::seconds(1))
}

/// To the whole second (AWS's condition keys have no fractions).
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// When a revocation with `cut_off` may be deleted: once no session issued before it can still
/// be alive. `Ok(())` when it may be now, else `Err(the moment it may)`.
pub fn prunable(
    kind: Kind,
    cut_off: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DateTime<Utc>> {
    let after = cut_off + kind.longest_session();
    if now >= after {
        Ok(())
    } else {
        Err(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_policy_is_exactly_aws_s_shape() {
        let doc = document(at("2030-01-02T03:04:05.678Z"));
        assert_eq!(
            doc.to_string(),
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2030-01-02T03:04:05Z"}}}}"#
        );
    }

    #[test]
    fn a_stored_policy_s_cut_off_is_read_plain_or_url_encoded() {
        let doc = document(at("2030-01-02T03:04:05Z")).to_string();
        assert_eq!(cut_off_of(&doc), Some(at("2030-01-02T03:04:05Z")));
        let encoded: String =
            percent_encoding::utf8_percent_encode(&doc, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(cut_off_of(&encoded), Some(at("2030-01-02T03:04:05Z")));
        let list = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2031-01-01T00:00:00Z"}}},
            {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":["2030-01-01T00:00:00Z","2030-06-01T00:00:00Z"]}}}]}"#;
        assert_eq!(cut_off_of(list), Some(at("2030-06-01T00:00:00Z")));
        assert_eq!(cut_off_of("not json"), None);
        assert_eq!(cut_off_of(r#"{"Statement":{"Effect":"Deny"}}"#), None);
    }

    #[test]
    fn the_cut_off_is_one_second_after_aws_s_date_header() {
        assert_eq!(
            cut_off_from_date("Tue, 01 Jan 2030 00:00:59 GMT"),
            Ok(at("2030-01-01T00:01:00Z"))
        );
        assert!(cut_off_from_date("yesterday").is_err());
    }

    #[test]
    fn roles_and_users_are_read_from_their_arns_without_the_path() {
        let role =
            Principal::parse("arn:aws:iam::123456789012:role/teams/a/stsbridge-reader").unwrap();
        assert_eq!(
            (role.kind, role.name.as_str()),
            (Kind::Role, "stsbridge-reader")
        );
        let user = Principal::parse("arn:aws-cn:iam::123456789012:user/stsbridge-minter").unwrap();
        assert_eq!(
            (user.kind, user.name.as_str()),
            (Kind::User, "stsbridge-minter")
        );
        for bad in [
            "arn:aws:sts::123456789012:assumed-role/r/s",
            "arn:aws:iam::123456789012:group/g",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam:::user/u",
            "role/r",
        ] {
            assert!(Principal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_policy_is_prunable_only_after_the_longest_session_it_could_deny() {
        let cut = at("2030-01-01T00:00:00Z");
        assert_eq!(
            prunable(Kind::Role, cut, at("2030-01-01T12:00:00Z")),
            Ok(())
        );
        assert_eq!(
            prunable(Kind::Role, cut, at("2030-01-01T11:59:59Z")),
            Err(at("2030-01-01T12:00:00Z"))
        );
        assert_eq!(
            prunable(Kind::User, cut, at("2030-01-02T11:59:59Z")),
            Err(at("2030-01-02T12:00:00Z"))
        );
        assert_eq!(
            prunable(Kind::User, cut, at("2030-01-02T12:00:00Z")),
            Ok(())
        );
    }
}
