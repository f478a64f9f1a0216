//! The soak's invariants as pure functions (the run in `mod.rs` feeds them; unit-tested here):
//! a set a consumer got, checked against what the STS front minted; a published version's expiry
//! against STS's; why a consumer could not get a set; and whether an injected fault excuses that.
//!
//! **The excused window.** A reader that could not get a valid set is a violation unless a
//! *declared* fault explains that very failure:
//! - an expired set (`credential-process` refusing it, the endpoint's 503 `CredentialsExpired`):
//!   only within a *starved* stretch — from the start of an STS or Key Vault outage (every
//!   rotation fails while it lasts) to the end of the first rotation that succeeded after it,
//!   plus the reader's own lag (1 s for `credential-process`, which reads the vault when run;
//!   the endpoint's poll interval plus 3 s for the endpoint, which learns of a new set at its
//!   next poll). That first rotation must come within [`RECOVERY_CAP`] of the outage's end, or
//!   the stretch ends there and the run reports it;
//! - Key Vault failing the consumer's own read (429, 5xx, unreachable): only while a Key Vault
//!   fault (503, 429, dropped connection, outage) is installed;
//! - no answer from the endpoint (connection refused or cut): only while the endpoint is down
//!   (SIGKILLed, until its restart has printed its two lines).
//!
//! Nothing else excuses a failure: not storage down (rotation goes on without the lease), not a
//! SIGKILLed `serve` instance (another one rotates), not ARM or IAM faults (side work), not Key
//! Vault latency; and no cause other than these (a refused read, a missing bundle, a malformed
//! answer, an unexpected status) is ever excused.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use testbed::sts::Minted;

use super::schedule::Kind;

/// How long after an outage ends a rotation must have succeeded (`RotationTimeBudgetSeconds` 30
/// plus a lease left by a run the outage failed, `RotationLeaseSeconds` 15).
pub const RECOVERY_CAP: Duration = Duration::from_secs(45);
/// How far past the first successful rotation after an outage a `credential-process` read that
/// started may still find the old set.
pub const BUNDLE_READER_LAG: Duration = Duration::from_secs(1);

/// What an invariant breach is about (the self-test matches the defects it injects by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum What {
    /// A published or consumed `Expiration` (or a version's `exp`) is not the expiry STS gave.
    WrongExpiration,
    /// A set that is malformed, not minted by the STS front, or whose secret or token differ.
    BadSet,
    /// A consumer was handed a set that had expired.
    ExpiredSetHandedOut,
    /// The latest version of the bundle is disabled.
    LatestDisabled,
    /// No valid set was published (latest bundle disabled, or its set expiring) outside a
    /// starved stretch.
    NoValidSetPublished,
    /// A reader could not get a valid set and no declared fault explains it.
    ReaderFailed,
    /// A secret value in captured output.
    SecretInOutput,
    /// The separate secrets disagreed with the bundle past a whole successful rotation.
    Disagreement,
    /// A burst of forced triggers minted more than once with storage up.
    BurstMintedTwice,
    /// The IAM user does not end with exactly one active key, the stored one.
    IamKeys,
    /// No rotation succeeded within [`RECOVERY_CAP`] of a fault's end (or at the end).
    NoRecovery,
}

impl What {
    pub fn label(self) -> &'static str {
        match self {
            What::WrongExpiration => "Expiration not STS's",
            What::BadSet => "set not as minted",
            What::ExpiredSetHandedOut => "expired set handed out",
            What::LatestDisabled => "latest bundle version disabled",
            What::NoValidSetPublished => "no valid set published",
            What::ReaderFailed => "reader failed, no fault explains it",
            What::SecretInOutput => "secret in captured output",
            What::Disagreement => "separate secrets disagree",
            What::BurstMintedTwice => "burst minted twice",
            What::IamKeys => "IAM keys",
            What::NoRecovery => "no recovery",
        }
    }
}

/// A breach found by a check: what it is about, and what to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    pub what: What,
    pub text: String,
}

fn breach(what: What, text: String) -> Breach {
    Breach { what, text }
}

/// A set as a consumer got it, its fields as the consumer's format names them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Got<'a> {
    pub id: Option<&'a str>,
    pub secret: Option<&'a str>,
    pub token: Option<&'a str>,
    pub expiration: Option<&'a str>,
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A set a consumer got at `now`: one the STS front minted (id, secret and token), with exactly
/// the expiry STS gave it (not compared with the clock: with the STS front's record), and not
/// expired when it was handed out.
pub fn check_got(
    got: &Got,
    minted: &HashMap<String, Minted>,
    now: DateTime<Utc>,
) -> Result<(), Breach> {
    let (Some(id), Some(secret), Some(token), Some(expiration)) =
        (got.id, got.secret, got.token, got.expiration)
    else {
        return Err(breach(What::BadSet, "malformed: a field is missing".into()));
    };
    let Some(m) = minted.get(id) else {
        return Err(breach(
            What::BadSet,
            format!("{id} was not minted by the STS front"),
        ));
    };
    if m.secret_access_key != secret || m.session_token != token {
        return Err(breach(
            What::BadSet,
            format!("{id}: secret or token differ from what STS minted"),
        ));
    }
    let Some(expires) = parse_time(expiration) else {
        return Err(breach(
            What::BadSet,
            format!("{id}: malformed Expiration {expiration:?}"),
        ));
    };
    let sts = parse_time(&m.expiration);
    if sts != Some(expires) {
        return Err(breach(
            What::WrongExpiration,
            format!(
                "{id}: Expiration {expiration} but STS gave {}{}",
                m.expiration,
                sts.map(|s| format!(" ({:+} s)", (expires - s).num_seconds()))
                    .unwrap_or_default()
            ),
        ));
    }
    let left = expires - now;
    if left <= chrono::Duration::zero() {
        return Err(breach(
            What::ExpiredSetHandedOut,
            format!(
                "{id}: expired {:.1} s before it was handed out",
                -left.num_milliseconds() as f64 / 1000.0
            ),
        ));
    }
    Ok(())
}

/// A published version of `name` holding a set STS said expires at `sts_expiration`: the
/// version's `exp` attribute, and the bundle's `Expiration` when it is the bundle, are exactly
/// that expiry (never rounded up, never recomputed).
pub fn check_published(
    name: &str,
    expiration: Option<&str>,
    exp: Option<i64>,
    sts_expiration: &str,
) -> Result<(), Breach> {
    let Some(sts) = parse_time(sts_expiration) else {
        return Err(breach(
            What::BadSet,
            format!("{name}: STS's Expiration {sts_expiration:?} does not parse"),
        ));
    };
    if let Some(expiration) = expiration {
        if parse_time(expiration) != Some(sts) {
            return Err(breach(
                What::WrongExpiration,
                format!("{name}: published Expiration {expiration}, STS gave {sts_expiration}"),
            ));
        }
    }
    match exp {
        Some(exp) if exp == sts.timestamp() => Ok(()),
        Some(exp) => Err(breach(
            What::WrongExpiration,
            format!(
                "{name}: exp {exp} is {:+} s from STS's expiry {sts_expiration}",
                exp - sts.timestamp()
            ),
        )),
        None => Err(breach(
            What::WrongExpiration,
            format!("{name}: published without exp (STS's expiry {sts_expiration})"),
        )),
    }
}

/// The two consumers the soak reads through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reader {
    /// `stsbridge credential-process`, run as the AWS CLI runs it.
    CredentialProcess,
    /// The `serve-credentials` endpoint, asked as an SDK asks it.
    Endpoint,
}

impl Reader {
    pub fn label(self) -> &'static str {
        match self {
            Reader::CredentialProcess => "credential-process",
            Reader::Endpoint => "serve-credentials",
        }
    }
}

/// Why a reader could not get a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The only set on offer had expired (or was within the reader's margin of it).
    Expired,
    /// Key Vault failed the read: throttled, 5xx, unreachable.
    VaultUnavailable,
    /// Key Vault refused the read (403, 401, a disabled version).
    VaultRefused,
    /// No bundle published.
    NoBundle,
    /// No answer: connection refused or cut, or no answer in time.
    NoAnswer,
    /// Anything else: an unexpected status, an unreadable answer, a failure not recognised.
    Other,
}

impl Cause {
    pub fn label(self) -> &'static str {
        match self {
            Cause::Expired => "expired",
            Cause::VaultUnavailable => "Key Vault unavailable",
            Cause::VaultRefused => "Key Vault refused",
            Cause::NoBundle => "no bundle",
            Cause::NoAnswer => "no answer",
            Cause::Other => "other",
        }
    }
}

/// Why `credential-process` failed, from its stderr (the product's messages: `consumers::explain`,
/// `consumers::check_remaining`, `VaultError`'s display).
pub fn classify_credential_process(stderr: &str) -> Cause {
    if stderr.contains("credentials expired at") || stderr.contains("less than --min-remaining") {
        return Cause::Expired;
    }
    if stderr.contains("no credentials are published") {
        return Cause::NoBundle;
    }
    if stderr.contains("Key Vault refused to let") {
        return Cause::VaultRefused;
    }
    if stderr.contains("Key Vault unreachable") {
        return Cause::VaultUnavailable;
    }
    // `VaultError::Refused`: "Key Vault refused to OP SECRET-URL: STATUS CODE: message".
    if let Some((_, rest)) = stderr.split_once("Key Vault refused to ") {
        let status = rest
            .split_once(": ")
            .and_then(|(_, s)| s.get(..3))
            .and_then(|s| s.parse::<u16>().ok());
        return match status {
            Some(429) | Some(500..=599) => Cause::VaultUnavailable,
            _ => Cause::VaultRefused,
        };
    }
    Cause::Other
}

/// One forced trigger of a burst, as the soak saw it (times from the burst's start).
#[derive(Clone, Debug)]
pub struct BurstTrigger {
    pub instance: usize,
    pub sent: Duration,
    pub answered: Duration,
    /// The run's own length (`durationMs` of its answer), when it answered one.
    pub run: Option<Duration>,
    pub rotated: bool,
}

impl BurstTrigger {
    /// When its run began, as far as the answer tells.
    fn began(&self) -> Option<Duration> {
        self.run.map(|r| self.answered.saturating_sub(r))
    }

    pub fn describe(&self) -> String {
        format!(
            "instance {}: sent +{} ms, answered +{} ms{}{}",
            self.instance,
            self.sent.as_millis(),
            self.answered.as_millis(),
            self.began()
                .map(|b| format!(", its run began +{} ms", b.as_millis()))
                .unwrap_or_default(),
            if self.rotated { ", minted" } else { "" }
        )
    }
}

/// The mints of a burst that no late trigger explains: a forced trigger wants a set minted after
/// it arrived, so one whose run began only after another trigger of the burst had answered
/// with its new set (published before that answer) rightly mints again. The others share one
/// mint; more than one mint among them breaks "a burst mints once".
pub fn unexplained_mints(mints: usize, triggers: &[BurstTrigger]) -> usize {
    let first_answer = triggers
        .iter()
        .filter(|t| t.rotated)
        .map(|t| t.answered)
        .min();
    let late = triggers
        .iter()
        .filter(|t| t.rotated)
        .filter(|t| match (t.began(), first_answer) {
            (Some(began), Some(first)) => began > first,
            _ => false,
        })
        .count();
    mints.saturating_sub(late)
}

/// Why the endpoint's answer was not a set.
pub fn classify_endpoint(status: u16, body: &str) -> Cause {
    if status == 503 && body.contains("\"CredentialsExpired\"") {
        Cause::Expired
    } else {
        Cause::Other
    }
}

/// A declared fault, as the readers lived through it.
#[derive(Clone, Debug)]
pub struct Window {
    pub kind: Kind,
    pub hour: u32,
    pub label: String,
    pub start: Instant,
    pub end: Instant,
}

/// A stretch in which no rotation could publish: starving windows (merged while no rotation
/// succeeded between them), to the end of the first rotation that succeeded after them.
#[derive(Clone, Debug)]
pub struct Starved {
    pub hour: u32,
    pub label: String,
    pub start: Instant,
    pub fault_end: Instant,
    /// The end of the first successful rotation after `fault_end`, or `fault_end` +
    /// [`RECOVERY_CAP`] when none came by then.
    pub recovered: Instant,
    /// Whether a rotation succeeded within [`RECOVERY_CAP`].
    pub in_time: bool,
}

/// The starved stretches of a run, given its declared windows and its successful rotations
/// (`(start, end)` of each invocation that answered a successful rotation).
pub fn starved(windows: &[Window], rotations: &[(Instant, Instant)]) -> Vec<Starved> {
    let mut starving: Vec<&Window> = windows.iter().filter(|w| w.kind.starves()).collect();
    starving.sort_by_key(|w| w.start);
    let recovery = |after: Instant| {
        let first = rotations
            .iter()
            .map(|(_, end)| *end)
            .filter(|end| *end > after)
            .min();
        match first {
            Some(end) if end <= after + RECOVERY_CAP => (end, true),
            _ => (after + RECOVERY_CAP, false),
        }
    };
    let mut out: Vec<Starved> = vec![];
    for w in starving {
        if let Some(last) = out.last_mut() {
            if w.start <= last.recovered {
                last.fault_end = last.fault_end.max(w.end);
                last.label = format!("{}; {}", last.label, w.label);
                (last.recovered, last.in_time) = recovery(last.fault_end);
                continue;
            }
        }
        let (recovered, in_time) = recovery(w.end);
        out.push(Starved {
            hour: w.hour,
            label: w.label.clone(),
            start: w.start,
            fault_end: w.end,
            recovered,
            in_time,
        });
    }
    out
}

/// A read that did not give a valid set.
#[derive(Clone, Debug)]
pub struct Failure {
    pub reader: Reader,
    pub cause: Cause,
    pub start: Instant,
    pub end: Instant,
    /// The hour and the fault label when the read started (for the report).
    pub hour: u32,
    pub fault: String,
    /// What the reader said (its first line), kept for the report.
    pub detail: String,
}

/// The declared fault that explains a reader's failure, if any (see the module docs).
pub fn excuse(
    f: &Failure,
    windows: &[Window],
    starved: &[Starved],
    endpoint_poll: Duration,
) -> Option<String> {
    let during = |start: Instant, end: Instant| f.start <= end && start <= f.end;
    match (f.reader, f.cause) {
        (reader, Cause::Expired) => {
            let lag = match reader {
                Reader::CredentialProcess => BUNDLE_READER_LAG,
                Reader::Endpoint => endpoint_poll + Duration::from_secs(3),
            };
            starved
                .iter()
                .find(|s| during(s.start, s.recovered + lag))
                .map(|s| s.label.clone())
        }
        (Reader::CredentialProcess, Cause::VaultUnavailable) => windows
            .iter()
            .find(|w| w.kind.fails_vault_reads() && during(w.start, w.end))
            .map(|w| w.label.clone()),
        (Reader::Endpoint, Cause::NoAnswer) => windows
            .iter()
            .find(|w| w.kind.stops_endpoint() && during(w.start, w.end))
            .map(|w| w.label.clone()),
        _ => None,
    }
}

/// Whether a stretch without a valid published set lies within a starved stretch (it began
/// after the outage did, and ended by the first rotation after it, within a sampling lag).
pub fn unavailable_excused(start: Instant, end: Instant, starved: &[Starved]) -> Option<String> {
    starved
        .iter()
        .find(|s| s.start <= start && end <= s.recovered + BUNDLE_READER_LAG)
        .map(|s| s.label.clone())
}

/// Runs of failures of one reader and cause that began in one hour, no more than `gap` apart:
/// one violation each.
pub fn coalesce(mut failures: Vec<Failure>, gap: Duration) -> Vec<(Failure, Instant, usize)> {
    failures.sort_by_key(|f| (f.reader, f.start));
    let mut out: Vec<(Failure, Instant, usize)> = vec![];
    for f in failures {
        if let Some((first, last_end, n)) = out.last_mut() {
            if first.reader == f.reader
                && first.cause == f.cause
                && first.hour == f.hour
                && f.start <= *last_end + gap
            {
                *last_end = (*last_end).max(f.end);
                *n += 1;
                continue;
            }
        }
        let end = f.end;
        out.push((f, end, 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2030-01-01T00:01:00Z";

    fn minted(id: &str, expiration: &str) -> HashMap<String, Minted> {
        let m = Minted {
            access_key_id: id.into(),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration: expiration.into(),
            arn: "arn:aws:iam::123456789012:user/u".into(),
            account: "123456789012".into(),
            user_id: "AIDA".into(),
            issued: Utc::now(),
            kind: testbed::sts::SessionKind::UserSession,
        };
        HashMap::from([(id.to_string(), m)])
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    fn got<'a>(id: &'a str, secret: &'a str, expiration: &'a str) -> Got<'a> {
        Got {
            id: Some(id),
            secret: Some(secret),
            token: Some("token"),
            expiration: Some(expiration),
        }
    }

    #[test]
    fn a_minted_set_with_sts_expiry_passes_and_anything_else_is_a_breach() {
        let known = minted("ASIA1", T0);
        let now = at("2030-01-01T00:00:10Z");
        let what = |g: Got| check_got(&g, &known, now).err().map(|b| b.what);
        assert_eq!(what(got("ASIA1", "secret", T0)), None);
        // The same instant written another way is the same expiry.
        assert_eq!(
            what(got("ASIA1", "secret", "2030-01-01T00:01:00+00:00")),
            None
        );
        assert_eq!(what(got("ASIA2", "secret", T0)), Some(What::BadSet));
        assert_eq!(what(got("ASIA1", "other", T0)), Some(What::BadSet));
        assert_eq!(what(got("ASIA1", "secret", "soon")), Some(What::BadSet));
        let missing = Got {
            secret: None,
            ..got("ASIA1", "secret", T0)
        };
        assert_eq!(what(missing), Some(What::BadSet));
    }

    #[test]
    fn an_expiration_an_hour_or_a_second_off_sts_is_a_breach_even_when_unexpired() {
        let known = minted("ASIA1", T0);
        let now = at("2030-01-01T00:00:10Z");
        let later = check_got(&got("ASIA1", "secret", "2030-01-01T01:01:00Z"), &known, now);
        let later = later.unwrap_err();
        assert_eq!(later.what, What::WrongExpiration);
        assert!(later.text.contains("+3600 s"), "{}", later.text);
        let earlier = check_got(&got("ASIA1", "secret", "2030-01-01T00:00:59Z"), &known, now);
        assert_eq!(earlier.unwrap_err().what, What::WrongExpiration);
    }

    #[test]
    fn a_set_handed_out_after_its_expiry_is_a_breach() {
        let known = minted("ASIA1", T0);
        let after = at("2030-01-01T00:01:01Z");
        let expired = check_got(&got("ASIA1", "secret", T0), &known, after).unwrap_err();
        assert_eq!(expired.what, What::ExpiredSetHandedOut);
        assert!(expired.text.contains("1.0 s"), "{}", expired.text);
    }

    #[test]
    fn a_published_version_carries_sts_expiry_exactly_in_expiration_and_exp() {
        let exp = at(T0).timestamp();
        assert_eq!(check_published("b", Some(T0), Some(exp), T0), Ok(()));
        assert_eq!(check_published("AccessKeyId", None, Some(exp), T0), Ok(()));
        let hour_later = check_published("b", Some("2030-01-01T01:01:00Z"), Some(exp), T0);
        assert_eq!(hour_later.unwrap_err().what, What::WrongExpiration);
        let second_early = check_published("SessionToken", None, Some(exp - 1), T0).unwrap_err();
        assert_eq!(second_early.what, What::WrongExpiration);
        assert!(second_early.text.contains("-1 s"), "{}", second_early.text);
        assert_eq!(
            check_published("b", Some(T0), None, T0).unwrap_err().what,
            What::WrongExpiration
        );
    }

    #[test]
    fn credential_process_failures_are_told_apart_by_the_products_messages() {
        let cases = [
            ("Error: the published credentials expired at 2030-01-01T00:00:00Z: the rotation is not running (check TimerRotate's failures)", Cause::Expired),
            ("Error: the published credentials expire at 2030-01-01T00:00:00Z, in 3 s, less than --min-remaining (5 s): rotate them (HttpRotate?force=true)", Cause::Expired),
            ("Error: no credentials are published at AwsSessionCredentials (SecretNotFound): run a rotation first", Cause::NoBundle),
            ("Error: Key Vault refused to let the managed identity read AwsSessionCredentials (Forbidden): grant it get", Cause::VaultRefused),
            // As a 200-hour run printed them (stsbridge's own wording).
            ("stsbridge: Key Vault refused to read https://kv.vault.test/secrets/AwsSessionCredentials: 503 ServiceUnavailable: The service is unavailable. (as managed identity (system-assigned))", Cause::VaultUnavailable),
            ("stsbridge: Key Vault refused to let managed identity (system-assigned) read https://kv.vault.test/secrets/AwsSessionCredentials (Forbidden): grant it get on this secret (Key Vault Secrets User)", Cause::VaultRefused),
            ("stsbridge: the published credentials expire at 2026-12-06T09:35:27Z, in 4 s, less than --min-remaining (5 s): rotate them (HttpRotate?force=true)", Cause::Expired),
            ("Error: Key Vault refused to read https://kv.vault.test/secrets/AwsSessionCredentials: 429 Throttled: Request was not processed (as x)", Cause::VaultUnavailable),
            ("Error: Key Vault refused to read https://kv.vault.test/secrets/AwsSessionCredentials: 400 BadParameter: no (as x)", Cause::VaultRefused),
            ("Error: Key Vault unreachable to read https://kv.vault.test/secrets/AwsSessionCredentials: connection closed (as x)", Cause::VaultUnavailable),
            ("Error: AwsSessionCredentials is not a credentials bundle", Cause::Other),
        ];
        for (stderr, cause) in cases {
            assert_eq!(classify_credential_process(stderr), cause, "{stderr}");
        }
        assert_eq!(
            classify_endpoint(503, r#"{"Code":"CredentialsExpired","Message":"m"}"#),
            Cause::Expired
        );
        assert_eq!(classify_endpoint(500, "{}"), Cause::Other);
        assert_eq!(
            classify_endpoint(403, r#"{"Code":"Forbidden"}"#),
            Cause::Other
        );
    }

    fn window(kind: Kind, base: Instant, from: u64, to: u64) -> Window {
        Window {
            kind,
            hour: 1,
            label: kind.label().into(),
            start: base + Duration::from_secs(from),
            end: base + Duration::from_secs(to),
        }
    }

    fn failure(reader: Reader, cause: Cause, base: Instant, at: u64) -> Failure {
        Failure {
            reader,
            cause,
            start: base + Duration::from_secs(at),
            end: base + Duration::from_millis(at * 1000 + 300),
            hour: 1 + at as u32 / 20,
            fault: "f".into(),
            detail: String::new(),
        }
    }

    fn rotation(base: Instant, at: u64) -> (Instant, Instant) {
        (
            base + Duration::from_secs(at),
            base + Duration::from_millis(at * 1000 + 500),
        )
    }

    #[test]
    fn an_expired_set_is_excused_from_an_outage_start_to_the_first_rotation_after_it() {
        let b = Instant::now();
        let windows = [window(Kind::StsOutage, b, 100, 190)];
        // Rotations before the outage, none during it, the first after it 2 s after its end.
        let rotations = [rotation(b, 98), rotation(b, 192), rotation(b, 194)];
        let starved = starved(&windows, &rotations);
        assert_eq!(starved.len(), 1);
        assert!(starved[0].in_time);
        let poll = Duration::from_secs(10);
        let excused = |r, at| excuse(&failure(r, Cause::Expired, b, at), &windows, &starved, poll);
        assert!(excused(Reader::CredentialProcess, 170).is_some());
        assert!(excused(Reader::CredentialProcess, 192).is_some());
        // 192.5 + 1 s: a read started later saw the new set.
        assert!(excused(Reader::CredentialProcess, 194).is_none());
        assert!(excused(Reader::CredentialProcess, 99).is_none());
        // The endpoint learns at its next poll: 192.5 + 10 + 3 s.
        assert!(excused(Reader::Endpoint, 205).is_some());
        assert!(excused(Reader::Endpoint, 206).is_none());
    }

    #[test]
    fn storage_outages_kills_and_latency_excuse_no_failure() {
        let b = Instant::now();
        let windows = [
            window(Kind::StorageOutage, b, 0, 90),
            window(Kind::Kill, b, 0, 90),
            window(Kind::VaultLatency, b, 0, 90),
            window(Kind::ArmHanging, b, 0, 90),
        ];
        let starved = starved(&windows, &[]);
        assert!(starved.is_empty());
        let poll = Duration::from_secs(10);
        for cause in [
            Cause::Expired,
            Cause::VaultUnavailable,
            Cause::VaultRefused,
            Cause::NoBundle,
            Cause::NoAnswer,
            Cause::Other,
        ] {
            for reader in [Reader::CredentialProcess, Reader::Endpoint] {
                let f = failure(reader, cause, b, 50);
                assert_eq!(
                    excuse(&f, &windows, &starved, poll),
                    None,
                    "{reader:?} {cause:?}"
                );
            }
        }
    }

    #[test]
    fn a_key_vault_fault_excuses_only_its_own_failures_while_it_is_installed() {
        let b = Instant::now();
        let windows = [
            window(Kind::Vault5xx, b, 10, 12),
            window(Kind::EndpointKill, b, 20, 23),
        ];
        let poll = Duration::from_secs(10);
        let excused = |r, c, at| excuse(&failure(r, c, b, at), &windows, &[], poll).is_some();
        assert!(excused(
            Reader::CredentialProcess,
            Cause::VaultUnavailable,
            11
        ));
        assert!(!excused(
            Reader::CredentialProcess,
            Cause::VaultUnavailable,
            13
        ));
        assert!(!excused(Reader::CredentialProcess, Cause::VaultRefused, 11));
        assert!(!excused(Reader::CredentialProcess, Cause::Expired, 11));
        assert!(!excused(
            Reader::CredentialProcess,
            Cause::VaultUnavailable,
            21
        ));
        assert!(excused(Reader::Endpoint, Cause::NoAnswer, 21));
        assert!(!excused(Reader::Endpoint, Cause::NoAnswer, 24));
        assert!(!excused(Reader::Endpoint, Cause::Other, 21));
        assert!(!excused(Reader::CredentialProcess, Cause::NoAnswer, 21));
    }

    #[test]
    fn outages_with_no_rotation_between_them_are_one_stretch_and_a_late_recovery_is_reported() {
        let b = Instant::now();
        let windows = [
            window(Kind::VaultOutage, b, 100, 150),
            window(Kind::StsOutage, b, 152, 200),
            window(Kind::StsOutage, b, 400, 420),
        ];
        let rotations = [rotation(b, 203), rotation(b, 500)];
        let s = starved(&windows, &rotations);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].start, b + Duration::from_secs(100));
        assert_eq!(s[0].recovered, b + Duration::from_millis(203_500));
        assert!(s[0].in_time);
        assert!(!s[1].in_time, "80 s after the outage is later than the cap");
        assert_eq!(s[1].recovered, b + Duration::from_secs(420) + RECOVERY_CAP);
        assert!(unavailable_excused(
            b + Duration::from_secs(155),
            b + Duration::from_secs(204),
            &s
        )
        .is_some());
        assert!(unavailable_excused(
            b + Duration::from_secs(99),
            b + Duration::from_secs(150),
            &s
        )
        .is_none());
        assert!(unavailable_excused(
            b + Duration::from_secs(160),
            b + Duration::from_secs(206),
            &s
        )
        .is_none());
    }

    #[test]
    fn failures_close_together_are_one_violation() {
        let b = Instant::now();
        let fs = vec![
            failure(Reader::Endpoint, Cause::Expired, b, 10),
            failure(Reader::CredentialProcess, Cause::Expired, b, 11),
            failure(Reader::Endpoint, Cause::Expired, b, 11),
            failure(Reader::Endpoint, Cause::Expired, b, 30),
            failure(Reader::Endpoint, Cause::Other, b, 38),
            // 2 s later but in the next hour (hour 3 from 40 s): another violation.
            failure(Reader::Endpoint, Cause::Other, b, 40),
        ];
        let runs = coalesce(fs, Duration::from_secs(5));
        let counts: Vec<(Reader, Cause, usize)> = runs
            .iter()
            .map(|(f, _, n)| (f.reader, f.cause, *n))
            .collect();
        assert_eq!(
            counts,
            [
                (Reader::CredentialProcess, Cause::Expired, 1),
                (Reader::Endpoint, Cause::Expired, 2),
                (Reader::Endpoint, Cause::Expired, 1),
                (Reader::Endpoint, Cause::Other, 1),
                (Reader::Endpoint, Cause::Other, 1),
            ]
        );
    }

    #[test]
    fn a_second_mint_is_explained_only_by_a_trigger_whose_run_began_after_a_set_was_answered() {
        let ms = Duration::from_millis;
        let trigger = |instance, answered, run, rotated| BurstTrigger {
            instance,
            sent: ms(1),
            answered: ms(answered),
            run: Some(ms(run)),
            rotated,
        };
        // One mint, the other trigger joined it.
        let joined = [trigger(1, 620, 618, true), trigger(2, 850, 846, false)];
        assert_eq!(unexplained_mints(1, &joined), 1);
        // Instance 2's run began at +640 ms, after instance 1 answered at +620 ms: it arrived
        // after that set was published and rightly minted again.
        let late = [trigger(1, 620, 618, true), trigger(2, 1262, 622, true)];
        assert_eq!(unexplained_mints(2, &late), 1);
        // Both runs began at once and both minted: a double mint.
        let double = [trigger(1, 620, 618, true), trigger(2, 640, 630, true)];
        assert_eq!(unexplained_mints(2, &double), 2);
        // A run with no report (a failed answer) explains nothing.
        let unknown = [
            trigger(1, 620, 618, true),
            BurstTrigger {
                run: None,
                ..trigger(2, 1262, 0, true)
            },
        ];
        assert_eq!(unexplained_mints(2, &unknown), 2);
        assert!(late[1].describe().contains("its run began +640 ms, minted"));
    }
}
