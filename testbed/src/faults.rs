//! Fault and latency injection shared by the Key Vault server and the STS front.
//!
//! A test adds [`Rule`]s: "the 3rd `set` of secret X answers 503", "every `GetSessionToken` waits
//! 2 s", "drop the next connection". Each server asks [`Faults::check`] once per request with the
//! operation (`get`/`set`/`list`/`update` for Key Vault, the `Action` for STS and IAM) and, for Key
//! Vault, the secret name. Rules are checked in the order they were added; the first that fires wins.

use std::sync::Mutex;
use std::time::Duration;

/// What a rule does to a matching request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this status and the protocol's error body carrying `code` and `message`
    /// (`inner_code` becomes Key Vault's `innererror.code`, e.g. `ForbiddenByRbac`).
    Error {
        status: u16,
        code: String,
        message: String,
        inner_code: Option<String>,
        retry_after: Option<u64>,
    },
    /// Wait, then handle the request normally.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Handle the request (a write commits), then close the connection without answering: the
    /// client cannot tell whether its write happened.
    CommitThenDrop,
}

impl Fault {
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Fault::Error {
            status,
            code: code.to_string(),
            message: message.to_string(),
            inner_code: None,
            retry_after: None,
        }
    }

    /// Key Vault's answer to an identity whose role assignment does not cover the operation.
    pub fn forbidden_by_rbac() -> Self {
        Fault::Error {
            status: 403,
            code: "Forbidden".into(),
            message: "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.".into(),
            inner_code: Some("ForbiddenByRbac".into()),
            retry_after: None,
        }
    }

    /// Key Vault's throttling answer.
    pub fn throttled(retry_after_secs: u64) -> Self {
        Fault::Error {
            status: 429,
            code: "Throttled".into(),
            message: "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached".into(),
            inner_code: None,
            retry_after: Some(retry_after_secs),
        }
    }
}

/// When a fault fires: which requests it matches, how many it lets pass first, how many it hits.
#[derive(Clone, Debug)]
pub struct Rule {
    pub op: Option<String>,
    pub name: Option<String>,
    pub skip: u32,
    pub times: Option<u32>,
    pub fault: Fault,
}

impl Rule {
    /// A rule for every request of operation `op` (`get`, `set`, `list`, `update`, or an STS/IAM action).
    pub fn on(op: &str, fault: Fault) -> Self {
        Self {
            op: Some(op.to_string()),
            name: None,
            skip: 0,
            times: None,
            fault,
        }
    }

    /// A rule for every request.
    pub fn any(fault: Fault) -> Self {
        Self {
            op: None,
            name: None,
            skip: 0,
            times: None,
            fault,
        }
    }

    /// Only requests for this secret (Key Vault; names compare case-insensitively).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_ascii_lowercase());
        self
    }

    /// Let the first `n` matching requests through.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Fire for `n` matching requests, then retire.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, op: &str, name: Option<&str>) -> bool {
        self.op
            .as_deref()
            .is_none_or(|o| o.eq_ignore_ascii_case(op))
            && self
                .name
                .as_deref()
                .is_none_or(|n| name.is_some_and(|m| m.eq_ignore_ascii_case(n)))
    }
}

/// The rules and the base latency of one server.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    latency: Mutex<Duration>,
}

impl Faults {
    pub fn add(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// Latency added to every request before it is handled.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    pub fn latency(&self) -> Duration {
        *self.latency.lock().unwrap()
    }

    /// The fault for this request, if a rule fires; counts the request against matching rules.
    pub fn check(&self, op: &str, name: Option<&str>) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let mut fired = None;
        for rule in rules.iter_mut() {
            if !rule.matches(op, name) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if rule.times == Some(0) {
                continue;
            }
            if let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
            fired = Some(rule.fault.clone());
            break;
        }
        rules.retain(|r| r.times != Some(0));
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_lets_the_first_requests_through_then_fires_its_count() {
        let faults = Faults::default();
        faults.add(Rule::on("set", Fault::Drop).after(2).times(1));
        assert_eq!(faults.check("set", Some("a")), None);
        assert_eq!(faults.check("get", Some("a")), None);
        assert_eq!(faults.check("set", Some("b")), None);
        assert_eq!(faults.check("set", Some("c")), Some(Fault::Drop));
        assert_eq!(faults.check("set", Some("d")), None);
    }

    #[test]
    fn a_named_rule_matches_only_that_secret_whatever_its_case() {
        let faults = Faults::default();
        faults.add(Rule::on("get", Fault::forbidden_by_rbac()).named("Src"));
        assert_eq!(faults.check("get", Some("other")), None);
        assert!(faults.check("get", Some("SRC")).is_some());
        assert!(faults.check("get", Some("src")).is_some());
    }
}
