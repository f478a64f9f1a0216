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

/// How far ahead of now a cut-off (or IAM's clock) is believed: clocks that far apart are
/// broken, and a cut-off further ahead was not taken from AWS's clock a second ahead — it would
/// deny every session, new ones included, until then (issue #26). The rotation's own bound on
/// the bundle's `revoked-before` mark, shared.
pub const LEEWAY: TimeDelta = crate::rotation::decide::CUT_OFF_LEEWAY;

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
///
/// Once held, a `Principal` is safe to print: [`Principal::parse`] accepts only IAM's own
/// character set (names `[\w+=,.@-]`, paths of printable ASCII between slashes), so an ARN that
/// came from outside (a tag, an IAM answer) cannot carry a line break or a terminal escape
/// sequence into the report or the terminal (issue #26).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Principal {
    pub kind: Kind,
    pub arn: String,
    /// The name IAM's policy calls take: the ARN's last segment, without the path.
    pub name: String,
    pub partition: String,
    pub account: String,
}

/// IAM's user and role names: 1–64 of `[\w+=,.@-]` (AWS's `[\w+=,.@-]+`, `\w` being ASCII).
fn is_iam_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// `/` or `/…/` of printable ASCII (IAM's path rule, without DEL), at most 512 characters.
fn is_iam_path(path: &str) -> bool {
    path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && path.chars().all(|c| c.is_ascii_graphic())
}

fn is_partition(p: &str) -> bool {
    (1..=32).contains(&p.len())
        && p.starts_with("aws")
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_account(a: &str) -> bool {
    a.len() == 12 && a.chars().all(|c| c.is_ascii_digit())
}

impl Principal {
    /// An IAM role's or user's ARN, checked against IAM's character set; the error quotes the
    /// input escaped (`{:?}`).
    pub fn parse(arn: &str) -> Result<Self, String> {
        let bad = || format!("{arn:?} is not the ARN of an IAM role or user");
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6
            || parts[0] != "arn"
            || !is_partition(parts[1])
            || parts[2] != "iam"
            || !parts[3].is_empty()
            || !is_account(parts[4])
        {
            return Err(bad());
        }
        let (kind, rest) = if let Some(p) = parts[5].strip_prefix("role/") {
            (Kind::Role, p)
        } else if let Some(p) = parts[5].strip_prefix("user/") {
            (Kind::User, p)
        } else {
            return Err(bad());
        };
        let name = rest.rsplit('/').next().unwrap_or_default();
        let path = &rest[..rest.len() - name.len()];
        if !is_iam_name(name) || !is_iam_path(&format!("/{path}")) {
            return Err(bad());
        }
        Ok(Self {
            kind,
            arn: arn.to_string(),
            name: name.to_string(),
            partition: parts[1].to_string(),
            account: parts[4].to_string(),
        })
    }
}

/// The role of an assumed-role session ARN (`arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION`):
/// `(partition, account, role name)`; `None` for any other ARN.
pub fn assumed_role_of(arn: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sts" {
        return None;
    }
    let mut resource = parts[5].strip_prefix("assumed-role/")?.split('/');
    let role = resource.next().filter(|r| is_iam_name(r))?;
    resource.next()?;
    Some((parts[1], parts[4], role))
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

/// How far AWS's clock (IAM's `Date` header) may run ahead of this machine's. Further, its
/// cut-off would deny the sets minted here until this clock caught up — and the re-issue waits
/// for both clocks — so nothing is revoked, and the error says why (issue #26).
pub fn believable_skew(aws_ahead_by: TimeDelta) -> Result<(), String> {
    if aws_ahead_by > LEEWAY {
        Err(format!(
            "IAM's clock (the Date header of its answer) is {} s ahead of this machine's, more than {} s: nothing was revoked, since its cut-off would deny the sets minted here until this machine's clock caught up. Set this machine's clock right (or check AWS_ENDPOINT_URL_IAM) and run again",
            aws_ahead_by.num_seconds(),
            LEEWAY.num_seconds()
        ))
    } else {
        Ok(())
    }
}

/// To the whole second (AWS's condition keys have no fractions).
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// "Now" for `--prune`: AWS's clock (the `Date` header), but never more than [`LEEWAY`] ahead
/// of this machine's — a `Date` far ahead (a broken clock, an endpoint override) would make
/// revocations of sessions still alive look old enough to delete (issue #26).
pub fn prune_clock(date: Option<&str>, local: DateTime<Utc>) -> DateTime<Utc> {
    date.and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
        .map(|d| d.with_timezone(&Utc).min(local + LEEWAY))
        .unwrap_or(local)
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
            "arn:aws:iam::12345:user/u",
            "arn:aws:iam:us-east-1:123456789012:user/u",
            "role/r",
        ] {
            assert!(Principal::parse(bad).is_err(), "{bad}");
        }
    }

    /// Issue #26: an ARN from a tag or an answer is held to IAM's character set, and the error
    /// shows it escaped, so a terminal escape sequence or a line break cannot disguise a name.
    #[test]
    fn an_arn_outside_iam_s_character_set_is_refused_and_quoted_escaped() {
        for bad in [
            "arn:aws:iam::123456789012:user/ci\u{1b}[2K-deployer",
            "arn:aws:iam::123456789012:user/stsbridge-minter\nok: user arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:user/team one/u",
            "arn:aws:iam::123456789012:user/a b",
            "arn:aws:iam::123456789012:role/p\u{7f}/r",
            "arn:aws:iam::123456789012:user/\u{2028}u",
            &format!("arn:aws:iam::123456789012:user/{}", "u".repeat(65)),
        ] {
            let err = Principal::parse(bad).unwrap_err();
            assert!(!err.chars().any(|c| c.is_control()), "{err}");
            assert!(err.starts_with(&format!("{bad:?}")), "{err}");
        }
        for good in [
            "arn:aws:iam::123456789012:user/ci+deploy=er,x.y@z_1-2",
            "arn:aws-us-gov:iam::123456789012:role/a/b~c!/r",
        ] {
            assert!(Principal::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn an_assumed_role_session_names_its_role_without_the_path() {
        assert_eq!(
            assumed_role_of("arn:aws:sts::123456789012:assumed-role/stsbridge-reader/alice"),
            Some(("aws", "123456789012", "stsbridge-reader"))
        );
        assert_eq!(
            assumed_role_of("arn:aws:iam::123456789012:user/alice"),
            None
        );
        assert_eq!(
            assumed_role_of("arn:aws:sts::123456789012:federated-user/alice"),
            None
        );
    }

    #[test]
    fn an_aws_clock_more_than_five_minutes_ahead_stops_the_revocation() {
        assert!(believable_skew(TimeDelta::minutes(-30)).is_ok());
        assert!(believable_skew(TimeDelta::minutes(5)).is_ok());
        let err = believable_skew(TimeDelta::days(365)).unwrap_err();
        assert!(err.contains("31536000 s ahead"), "{err}");
        assert!(err.contains("nothing was revoked"), "{err}");
    }

    #[test]
    fn prune_takes_aws_s_clock_but_never_far_ahead_of_this_one() {
        let local = at("2030-01-01T00:00:00Z");
        assert_eq!(
            prune_clock(Some("Mon, 31 Dec 2029 23:59:00 GMT"), local),
            at("2029-12-31T23:59:00Z")
        );
        assert_eq!(
            prune_clock(Some("Wed, 01 Jan 2031 00:00:00 GMT"), local),
            at("2030-01-01T00:05:00Z")
        );
        assert_eq!(prune_clock(Some("soon"), local), local);
        assert_eq!(prune_clock(None, local), local);
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
