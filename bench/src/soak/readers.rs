//! The soak's readers, which read the credentials as consumers do, and its monitor, which checks
//! what the vault holds against what STS minted.
//!
//! - [`credential_process`]: runs `stsbridge credential-process --min-remaining 5s` (a new
//!   process each time, as the AWS CLI runs it), again 250 ms after each run ends: it reads the
//!   bundle over HTTPS from
//!   `https://kv.vault.test` through the bed's proxy with the bearer challenge, so a disabled
//!   version is refused as Key Vault refuses it. Its stdout must be exactly one minted set with
//!   STS's expiry; a failure is recorded with its cause from stderr.
//! - [`endpoint`]: `GET`s the `serve-credentials` endpoint with its token every 100 ms (following
//!   the endpoint across restarts); a 200 must hold a minted set with STS's expiry (the endpoint
//!   advertises a bundle set's real expiry when it is under 15 minutes and two polls away, as the
//!   soak's 60 s sets are); anything else is a failure with its cause.
//! - [`monitor`]: every version of the bundle and the three separate secrets, as stored, against
//!   STS's expiry for its set (`Expiration` and `exp`); the latest bundle version enabled; the
//!   stretches in which no valid set was published; the separate secrets' disagreement with the
//!   bundle. In-process: it reads what was published, it does not stand in for a consumer.
//!
//! Failures are judged at the end of the run (whether a declared fault excuses them needs the
//! rotation that ended the fault); a set that breaks an invariant is a violation at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use testbed::keyvault::KeyVault;
use testbed::sts::{Minted, StsFront};

use super::check::{self, Cause, Failure, Got, Reader, What};
use super::{Shared, BUNDLE, MARGIN, SEPARATE};

/// The pause between one `credential-process` run's end and the next one's start.
const CREDENTIAL_PROCESS_EVERY: Duration = Duration::from_millis(250);
/// How long the endpoint's requests are apart.
const ENDPOINT_EVERY: Duration = Duration::from_millis(100);

/// What a reader did.
#[derive(Default)]
pub struct ReaderStats {
    pub reads: u64,
    pub good: u64,
    pub failed: BTreeMap<Cause, u64>,
}

pub fn minted_by_id(sts: &StsFront) -> HashMap<String, Minted> {
    sts.minted()
        .into_iter()
        .map(|m| (m.access_key_id.clone(), m))
        .collect()
}

/// The first line of what a reader said, for the report.
fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// `credential-process`'s stdout: exactly one JSON object of the five `credential_process`
/// fields (`Version` 1) and a line break, nothing else.
fn process_json(stdout: &str) -> Result<Value, String> {
    let Some(line) = stdout.strip_suffix('\n') else {
        return Err("stdout does not end with one line break".into());
    };
    if line.contains('\n') {
        return Err("stdout holds more than one line".into());
    }
    let v: Value = serde_json::from_str(line).map_err(|_| "stdout is not JSON".to_string())?;
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort();
    let want = [
        "AccessKeyId",
        "Expiration",
        "SecretAccessKey",
        "SessionToken",
        "Version",
    ];
    if keys != want || v["Version"] != 1 {
        return Err(format!(
            "stdout has fields {keys:?}, Version {}",
            v["Version"]
        ));
    }
    Ok(v)
}

/// Checks a set a reader was handed against what STS minted (a violation if it differs), and
/// returns its secret and token: the reader's output is meant to hold them, and is searched for
/// every other secret.
fn judge(
    got: &Got,
    sts: &StsFront,
    shared: &Shared,
    stats: &mut ReaderStats,
    reader: Reader,
    hour: u32,
    fault: &str,
) -> Vec<String> {
    match check::check_got(got, &minted_by_id(sts), Utc::now()) {
        Ok(()) => stats.good += 1,
        Err(b) => shared.violate_during(
            hour,
            fault,
            b.what,
            format!("{}: {}", reader.label(), b.text),
        ),
    }
    [got.secret, got.token]
        .into_iter()
        .flatten()
        .map(str::to_string)
        .collect()
}

/// `stsbridge credential-process`, run as the AWS CLI runs it, 250 ms after each run ends.
pub async fn credential_process(
    bin: PathBuf,
    env: HashMap<String, String>,
    home: PathBuf,
    sts: Arc<StsFront>,
    shared: Arc<Shared>,
) -> ReaderStats {
    let mut stats = ReaderStats::default();
    let reader = Reader::CredentialProcess;
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(CREDENTIAL_PROCESS_EVERY).await;
        let (hour, fault) = shared.now();
        let start = Instant::now();
        let run = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(&bin)
                .args(["credential-process", "--min-remaining", "5s"])
                .env_clear()
                .env("HOME", &home)
                .envs(&env)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await;
        let end = Instant::now();
        stats.reads += 1;
        let mut fail = |cause: Cause, detail: String| {
            *stats.failed.entry(cause).or_default() += 1;
            shared.failures.lock().unwrap().push(Failure {
                reader,
                cause,
                start,
                end,
                hour,
                fault: fault.clone(),
                detail,
            });
        };
        let output = match run {
            Err(_) => {
                fail(Cause::NoAnswer, "no answer in 60 s".into());
                continue;
            }
            Ok(Err(e)) => {
                fail(Cause::Other, format!("could not run it: {e}"));
                continue;
            }
            Ok(Ok(output)) => output,
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        shared.capture("credential-process stderr", stderr.clone(), vec![]);
        if !output.status.success() {
            fail(
                check::classify_credential_process(&stderr),
                first_line(&stderr),
            );
            shared.capture("credential-process stdout (a failed run)", stdout, vec![]);
            continue;
        }
        let v = match process_json(&stdout) {
            Ok(v) => v,
            Err(problem) => {
                shared.violate_during(
                    hour,
                    &fault,
                    What::BadSet,
                    format!("{}: {problem}", reader.label()),
                );
                shared.capture("credential-process stdout", stdout, vec![]);
                continue;
            }
        };
        let field = |name: &str| v[name].as_str();
        let got = Got {
            id: field("AccessKeyId"),
            secret: field("SecretAccessKey"),
            token: field("SessionToken"),
            expiration: field("Expiration"),
        };
        // Its stdout is meant to hold this set: searched for every other secret.
        let own = judge(&got, &sts, &shared, &mut stats, reader, hour, &fault);
        shared.capture("credential-process stdout", stdout, own);
    }
    stats
}

/// The `serve-credentials` client: a `GET` with the token every 100 ms.
pub async fn endpoint(sts: Arc<StsFront>, shared: Arc<Shared>) -> ReaderStats {
    let mut stats = ReaderStats::default();
    let reader = Reader::Endpoint;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(ENDPOINT_EVERY).await;
        let (url, token) = shared.endpoint.lock().unwrap().clone();
        let (hour, fault) = shared.now();
        let start = Instant::now();
        stats.reads += 1;
        let answer = match http.get(&url).header("authorization", &token).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                r.text().await.map(|body| (status, body))
            }
            Err(e) => Err(e),
        };
        let end = Instant::now();
        let mut fail = |cause: Cause, detail: String| {
            *stats.failed.entry(cause).or_default() += 1;
            shared.failures.lock().unwrap().push(Failure {
                reader,
                cause,
                start,
                end,
                hour,
                fault: fault.clone(),
                detail,
            });
        };
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                fail(Cause::NoAnswer, format!("{e}"));
                continue;
            }
        };
        if status != 200 {
            fail(
                check::classify_endpoint(status, &body),
                format!("{status} {}", first_line(&body)),
            );
            shared.capture("serve-credentials answers", body, vec![]);
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&body) else {
            shared.violate_during(
                hour,
                &fault,
                What::BadSet,
                format!("{}: a 200 whose body is not JSON", reader.label()),
            );
            shared.capture("serve-credentials answers", body, vec![]);
            continue;
        };
        let field = |name: &str| v[name].as_str();
        let got = Got {
            id: field("AccessKeyId"),
            secret: field("SecretAccessKey"),
            token: field("Token"),
            expiration: field("Expiration"),
        };
        let own = judge(&got, &sts, &shared, &mut stats, reader, hour, &fault);
        shared.capture("serve-credentials answers", body, own);
    }
    stats
}

/// A stretch in which the latest bundle version was disabled or its set within [`MARGIN`] of
/// its expiry (by STS's record).
#[derive(Clone, Debug)]
pub struct Unavailable {
    pub start: Instant,
    pub end: Instant,
    pub hour: u32,
    pub fault: String,
    /// Whether the set had expired outright (not only within the margin) in the stretch.
    pub expired: bool,
}

/// What the monitor saw.
#[derive(Default)]
pub struct MonitorStats {
    /// Versions checked against STS's expiry, by secret name.
    pub versions_checked: BTreeMap<&'static str, usize>,
    pub unavailable: Vec<Unavailable>,
    pub longest_disagreement: Duration,
    /// When the longest disagreement began: the hour and its fault.
    pub longest_disagreement_began: String,
}

impl MonitorStats {
    fn note_disagreement(&mut self, since: Instant, began: String) {
        if since.elapsed() > self.longest_disagreement {
            self.longest_disagreement = since.elapsed();
            self.longest_disagreement_began = began;
        }
    }
}

/// The set a stored value belongs to, by STS's record: the bundle by its `AccessKeyId`, the
/// separate secrets by their value.
struct Sets {
    by_id: HashMap<String, Minted>,
    by_secret: HashMap<String, String>,
    by_token: HashMap<String, String>,
}

impl Sets {
    fn now(sts: &StsFront) -> Self {
        let by_id = minted_by_id(sts);
        let by_secret = by_id
            .values()
            .map(|m| (m.secret_access_key.clone(), m.access_key_id.clone()))
            .collect();
        let by_token = by_id
            .values()
            .map(|m| (m.session_token.clone(), m.access_key_id.clone()))
            .collect();
        Self {
            by_id,
            by_secret,
            by_token,
        }
    }

    fn of(&self, name: &str, value: &str) -> Option<&Minted> {
        let id = match name {
            "AccessKeyId" => Some(value.to_string()),
            "SecretAccessKey" => self.by_secret.get(value).cloned(),
            "SessionToken" => self.by_token.get(value).cloned(),
            _ => serde_json::from_str::<Value>(value)
                .ok()
                .and_then(|v| v["AccessKeyId"].as_str().map(str::to_string)),
        }?;
        self.by_id.get(&id)
    }
}

/// Every version of the four secrets not yet checked, against STS's expiry for its set.
fn check_new_versions(
    vault: &KeyVault,
    sts: &StsFront,
    shared: &Shared,
    checked: &mut BTreeMap<&'static str, usize>,
) {
    // The versions first: a set is minted before any version holds it.
    let versions: Vec<(&'static str, Vec<testbed::keyvault::SecretVersion>)> =
        std::iter::once(BUNDLE)
            .chain(SEPARATE)
            .map(|name| (name, vault.versions(name)))
            .collect();
    let sets = Sets::now(sts);
    for (name, versions) in versions {
        let done = checked.entry(name).or_default();
        for v in versions.iter().skip(*done) {
            let Some(m) = sets.of(name, &v.value) else {
                shared.violate(
                    What::BadSet,
                    format!(
                        "version {} of {name} holds no set the STS front minted",
                        v.version
                    ),
                );
                continue;
            };
            let expiration = (name == BUNDLE)
                .then(|| serde_json::from_str::<Value>(&v.value).ok())
                .flatten()
                .and_then(|b| b["Expiration"].as_str().map(str::to_string));
            if name == BUNDLE && expiration.is_none() {
                shared.violate(
                    What::BadSet,
                    format!("version {} of {name} has no Expiration", v.version),
                );
                continue;
            }
            if let Err(b) =
                check::check_published(name, expiration.as_deref(), v.exp, &m.expiration)
            {
                shared.violate(
                    b.what,
                    format!(
                        "version {} of {} ({}): {}",
                        v.version, name, m.access_key_id, b.text
                    ),
                );
            }
        }
        *done = versions.len();
    }
}

/// Whether the latest bundle version is enabled and holds a set STS says is good for more than
/// [`MARGIN`]; and whether that set has expired outright.
fn latest_valid(
    vault: &KeyVault,
    sts: &StsFront,
    shared: &Shared,
    reported: &mut HashSet<String>,
) -> (bool, bool) {
    let Some(latest) = vault.latest(BUNDLE) else {
        return (false, true);
    };
    if !latest.enabled && reported.insert(latest.version.clone()) {
        shared.violate(
            What::LatestDisabled,
            format!(
                "the latest version of {BUNDLE} ({}) is disabled",
                latest.version
            ),
        );
    }
    let sts_expiry = serde_json::from_str::<Value>(&latest.value)
        .ok()
        .and_then(|b| b["AccessKeyId"].as_str().map(str::to_string))
        .and_then(|id| sts.minted().into_iter().find(|m| m.access_key_id == id))
        .and_then(|m| chrono::DateTime::parse_from_rfc3339(&m.expiration).ok());
    let Some(expiry) = sts_expiry else {
        return (false, true);
    };
    let left = expiry.with_timezone(&Utc) - Utc::now();
    let margin = chrono::Duration::from_std(MARGIN).expect("small");
    (
        latest.enabled && left > margin,
        left <= chrono::Duration::zero(),
    )
}

/// The monitor: every 100 ms, the latest bundle and the separate secrets; every 500 ms, every new
/// version against STS's expiry.
pub async fn monitor(
    vault: Arc<KeyVault>,
    sts: Arc<StsFront>,
    shared: Arc<Shared>,
) -> MonitorStats {
    let mut stats = MonitorStats::default();
    let mut checked: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut disabled_reported: HashSet<String> = HashSet::new();
    let mut unavailable: Option<Unavailable> = None;
    // (since, reported, began)
    let mut disagreeing: Option<(Instant, bool, String)> = None;
    let mut tick = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tick += 1;
        if tick.is_multiple_of(5) {
            check_new_versions(&vault, &sts, &shared, &mut checked);
        }

        let (valid, expired) = latest_valid(&vault, &sts, &shared, &mut disabled_reported);
        match (valid, &mut unavailable) {
            (false, None) => {
                let (hour, fault) = shared.now();
                unavailable = Some(Unavailable {
                    start: Instant::now(),
                    end: Instant::now(),
                    hour,
                    fault,
                    expired,
                });
            }
            (false, Some(u)) => u.expired |= expired,
            (true, Some(_)) => {
                let mut u = unavailable.take().expect("some");
                u.end = Instant::now();
                stats.unavailable.push(u);
            }
            (true, None) => {}
        }

        let Some(bundle) = vault.latest(BUNDLE) else {
            continue;
        };
        let v: Value = serde_json::from_str(&bundle.value).unwrap_or(Value::Null);
        let fields = ["AccessKeyId", "SecretAccessKey", "SessionToken"].map(|f| v[f].as_str());
        let agree = SEPARATE
            .iter()
            .zip(fields)
            .all(|(name, field)| vault.latest(name).map(|s| s.value).as_deref() == field);
        match (agree, &mut disagreeing) {
            (true, d) => {
                if let Some((since, _, began)) = d.take() {
                    stats.note_disagreement(since, began);
                }
            }
            (false, None) => {
                let (hour, fault) = shared.now();
                disagreeing = Some((Instant::now(), false, format!("hour {hour} [{fault}]")));
            }
            (false, Some((since, reported, _))) => {
                if !*reported && shared.rotated_since(*since, Duration::from_millis(300)) {
                    *reported = true;
                    shared.violate(
                        What::Disagreement,
                        format!(
                            "the separate secrets disagree with the bundle for {:.1} s, past a whole successful rotation",
                            since.elapsed().as_secs_f64()
                        ),
                    );
                }
            }
        }
    }
    check_new_versions(&vault, &sts, &shared, &mut checked);
    if let Some(mut u) = unavailable {
        u.end = Instant::now();
        stats.unavailable.push(u);
    }
    if let Some((since, _, began)) = disagreeing {
        stats.note_disagreement(since, format!("{began}, still open at the end"));
    }
    stats.versions_checked = checked;
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_process_stdout_is_exactly_one_set_of_the_five_fields() {
        let good = r#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","SessionToken":"t","Expiration":"2030-01-01T00:00:00Z"}"#;
        assert!(process_json(&format!("{good}\n")).is_ok());
        assert!(process_json(good).is_err(), "no line break");
        assert!(process_json(&format!("{good}\nsecret\n")).is_err());
        let extra = good.replace("\"Version\":1", "\"Version\":1,\"Note\":\"x\"");
        assert!(process_json(&format!("{extra}\n")).is_err());
        let v2 = good.replace("\"Version\":1", "\"Version\":2");
        assert!(process_json(&format!("{v2}\n")).is_err());
    }
}
