//! `--soak --self-test`: the soak run against deliberately broken behaviour, to show that each
//! breach is reported. A short fixed schedule (30 s sets, the STS front's shortest) with:
//! - hour 2, a **declared** STS outage of 45 s (the control: the published set expires, the readers
//!   fail, and all of it is excused — no violation may come of it);
//! - hour 5, a publish with a **wrong expiry**: the bed writes a new bundle version holding the
//!   latest set with its `Expiration` (and `exp`) an hour later than STS's, as a build that added
//!   an hour would;
//! - hour 7, the **latest bundle version disabled** (over Key Vault's REST API, as an operator or
//!   a broken sweep would) for 3 s, then enabled again;
//! - hour 9, the **consumer refused**: Key Vault answers 403 `ForbiddenByRbac` to every read of the
//!   bundle for 3 s, a fault nobody declared;
//! - hour 11, the **endpoint down**: `serve-credentials` SIGKILLed and restarted 2 s later,
//!   undeclared, so its refused connections are the readers' failures;
//! - hour 13, an **undeclared STS outage** of 45 s: the same outage as hour 2's, now unexplained;
//! - hours 16 and 17, **a secret in a log line** of instance 1, and one in the consumer's stdout.
//!
//! It passes when each injected defect was reported as a violation of the kind it should cause,
//! and no violation came from anywhere else (the control outage included).

use std::time::{Duration, Instant};

use super::check::What;
use super::schedule::{Injected, Step};
use super::{Violation, INSTANCES};

/// The sets' lifetime in the self-test.
pub const LIFETIME: Duration = Duration::from_secs(30);
/// The outages' length: past a set's lifetime.
pub const OUTAGE: Duration = Duration::from_secs(45);
/// How long a defect is held before the run goes on (the readers read meanwhile).
pub const HOLD: Duration = Duration::from_secs(3);
/// How long after an injection its consequences may still be reported (the endpoint learns of
/// a new set at its next poll, 10 s after the first rotation); the run pauses this long after
/// each injection (and after the control outage), its timer firing every 2 s meanwhile, so
/// that no two overlap.
pub const SLACK: Duration = Duration::from_secs(15);

/// The defects the self-test injects after an hour's timer trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    WrongExpiry,
    DisabledLatest,
    VaultRefusesConsumer,
    EndpointDown,
    SecretInLog,
    SecretInConsumerStdout,
}

impl Defect {
    pub fn label(self) -> &'static str {
        match self {
            Defect::WrongExpiry => "a publish whose Expiration is an hour later than STS's",
            Defect::DisabledLatest => "the latest bundle version disabled for 3 s",
            Defect::VaultRefusesConsumer => "Key Vault refusing the consumer's read (403) for 3 s",
            Defect::EndpointDown => "serve-credentials SIGKILLed, restarted 2 s later",
            Defect::SecretInLog => "a session token in a log line of instance 1",
            Defect::SecretInConsumerStdout => "a secret key in serve-credentials' stdout",
        }
    }

    /// The violation it must cause.
    pub fn expected(self) -> What {
        match self {
            Defect::WrongExpiry => What::WrongExpiration,
            Defect::DisabledLatest | Defect::VaultRefusesConsumer | Defect::EndpointDown => {
                What::ReaderFailed
            }
            Defect::SecretInLog | Defect::SecretInConsumerStdout => What::SecretInOutput,
        }
    }

    /// The captured output it writes into (the secret search names it).
    pub fn file(self) -> Option<&'static str> {
        match self {
            Defect::SecretInLog => Some("serve-1.log"),
            Defect::SecretInConsumerStdout => Some("serve-credentials.stdout"),
            _ => None,
        }
    }
}

/// The self-test's schedule (see the module docs).
pub fn schedule() -> Vec<Step> {
    let mut steps: Vec<Step> = (1..=18)
        .map(|hour| Step::quiet(hour, hour as usize % INSTANCES))
        .collect();
    steps[1].fault = Some(Injected::StsOutage(OUTAGE));
    steps[4].defect = Some(Defect::WrongExpiry);
    steps[6].defect = Some(Defect::DisabledLatest);
    steps[8].defect = Some(Defect::VaultRefusesConsumer);
    steps[10].defect = Some(Defect::EndpointDown);
    steps[12].fault = Some(Injected::StsOutage(OUTAGE));
    steps[12].declared = false;
    steps[15].defect = Some(Defect::SecretInLog);
    steps[16].defect = Some(Defect::SecretInConsumerStdout);
    for s in &mut steps {
        if s.fault.is_some() || s.defect.is_some() {
            s.pause = SLACK;
        }
    }
    steps
}

/// One injected defect, and when it was in place.
#[derive(Clone, Debug)]
pub struct Injection {
    pub hour: u32,
    pub name: String,
    pub expected: What,
    pub file: Option<&'static str>,
    pub start: Instant,
    pub end: Instant,
}

impl Injection {
    /// Whether the violation is the one this injection must cause: of its kind, and begun in its
    /// hour (or, for a secret written into a file, naming that file).
    fn reports(&self, v: &Violation) -> bool {
        v.what == self.expected
            && match self.file {
                Some(file) => v.text.contains(file),
                None => v.hour == self.hour,
            }
    }

    /// Whether the violation may be a consequence of this injection (any kind): begun in its
    /// hour, or between a read's length before it and [`SLACK`] after it ended (a
    /// `credential-process` run reaches the vault some 300 ms after it starts), or naming its
    /// file.
    fn caused(&self, v: &Violation) -> bool {
        match self.file {
            Some(file) => v.what == What::SecretInOutput && v.text.contains(file),
            None => {
                v.hour == self.hour
                    || (v.at + Duration::from_secs(1) >= self.start && v.at <= self.end + SLACK)
            }
        }
    }
}

/// The verdict: for each injection, the violations that report it; and the violations no
/// injection explains. Passes when every injection was reported and nothing else was.
pub fn verdict<'a>(
    injections: &'a [Injection],
    violations: &'a [Violation],
) -> (Vec<(&'a Injection, Vec<&'a Violation>)>, Vec<&'a Violation>) {
    let reported = injections
        .iter()
        .map(|i| (i, violations.iter().filter(|v| i.reports(v)).collect()))
        .collect();
    let stray = violations
        .iter()
        .filter(|v| !injections.iter().any(|i| i.caused(v)))
        .collect();
    (reported, stray)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(what: What, hour: u32, at: Instant, text: &str) -> Violation {
        Violation {
            at,
            hour,
            fault: "none".into(),
            what,
            text: text.into(),
        }
    }

    #[test]
    fn every_defect_is_injected_once_and_the_control_outage_is_declared() {
        let steps = schedule();
        let defects: Vec<Defect> = steps.iter().filter_map(|s| s.defect).collect();
        assert_eq!(defects.len(), 6);
        let outages: Vec<(bool, Duration)> = steps
            .iter()
            .filter_map(|s| Some((s.declared, s.fault.as_ref()?.outage()?)))
            .collect();
        assert_eq!(outages, [(true, OUTAGE), (false, OUTAGE)]);
        assert!(OUTAGE > LIFETIME, "the outages reach past a set's expiry");
    }

    #[test]
    fn an_injection_is_reported_only_by_its_kind_of_violation_in_its_hour_or_file() {
        let t = Instant::now();
        let s = Duration::from_secs;
        let wrong = Injection {
            hour: 5,
            name: "wrong".into(),
            expected: What::WrongExpiration,
            file: None,
            start: t + s(10),
            end: t + s(13),
        };
        let leak = Injection {
            hour: 16,
            name: "leak".into(),
            expected: What::SecretInOutput,
            file: Some("serve-1.log"),
            start: t + s(50),
            end: t + s(50),
        };
        let injections = [wrong, leak];
        let violations = [
            violation(What::WrongExpiration, 5, t + s(11), "reported"),
            // Its consequences: another kind in its hour, or in the next hour within the slack.
            violation(What::ReaderFailed, 5, t + s(12), "consequence"),
            violation(What::WrongExpiration, 6, t + s(20), "late consequence"),
            violation(
                What::ReaderFailed,
                4,
                t + Duration::from_millis(9500),
                "a read begun before",
            ),
            violation(What::ReaderFailed, 7, t + s(40), "stray"),
            violation(
                What::SecretInOutput,
                18,
                t + s(90),
                "1 secret value(s) in serve-1.log",
            ),
            violation(
                What::SecretInOutput,
                18,
                t + s(90),
                "1 secret value(s) in serve-0.log",
            ),
        ];
        let (reported, stray) = verdict(&injections, &violations);
        let texts = |vs: &[&Violation]| vs.iter().map(|v| v.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&reported[0].1), ["reported"]);
        assert_eq!(texts(&reported[1].1), ["1 secret value(s) in serve-1.log"]);
        assert_eq!(texts(&stray), ["stray", "1 secret value(s) in serve-0.log"]);
        let (none, _) = verdict(&injections, &violations[1..5]);
        assert!(none.iter().all(|(_, v)| v.is_empty()));
    }
}
