//! How old the credentials an Azure consumer holds can get (issue #18): for each kind of
//! consumer, how often it re-reads the published secrets, and the worst case — the timer's
//! interval plus that re-read interval — against the credentials' lifetime. `stsbridge check`
//! prints it for the current settings. Pure; the facts and their sources are in
//! `docs/consumers-azure.md`.

use std::time::Duration;

use crate::schedule::human;

/// One kind of consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub consumer: &'static str,
    /// How it re-reads, in words.
    pub rereads: String,
    /// The longest it can hold a set; `None`: until restarted.
    pub worst: Option<Duration>,
}

impl Row {
    /// How long a day (at worst) it can hold expired credentials, with a lifetime of `lifetime`.
    pub fn expired_for(&self, lifetime: Duration) -> Option<Duration> {
        match self.worst {
            None => Some(Duration::MAX),
            Some(w) if w > lifetime => Some(w - lifetime),
            Some(_) => None,
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// The table for a timer that runs at least every `timer`, with or without the refresh of
/// App Service / Functions references after each publish.
pub fn table(timer: Duration, refreshed: bool) -> Vec<Row> {
    let row = |consumer, rereads: &str, interval: Option<Duration>| Row {
        consumer,
        rereads: rereads.to_string(),
        worst: interval.map(|i| timer + i),
    };
    vec![
        if refreshed {
            row(
                "App Service / Functions Key Vault references",
                "re-resolved after every publish (RefreshAppSettingsOf)",
                Some(Duration::ZERO),
            )
        } else {
            row(
                "App Service / Functions Key Vault references",
                "every 24 h, or on a configuration change",
                Some(24 * HOUR),
            )
        },
        row(
            "Container Apps secrets referencing Key Vault",
            "within 30 min",
            Some(HOUR / 2),
        ),
        row(
            "AKS Secrets Store CSI driver, mounted files",
            "every 2 min, when rotation is enabled (off by default)",
            Some(Duration::from_secs(120)),
        ),
        row(
            "AKS CSI driver synced secret as environment variables",
            "never, until the pod restarts",
            None,
        ),
        row(
            "Data Factory / Synapse linked services, Logic Apps",
            "at each run (a long run can outlive the set)",
            Some(Duration::ZERO),
        ),
        row(
            "stsbridge credential-process, export, sync-profile",
            "at each use or run",
            Some(Duration::ZERO),
        ),
    ]
}

/// The warning `check` gives when App Service / Functions references could hold an expired
/// set: neither the refresh nor a lifetime longer than the 24-hour cache plus the timer.
pub fn app_service_warning(
    timer: Duration,
    lifetime: Duration,
    refreshed: bool,
    session_token_mode: bool,
) -> Option<String> {
    let worst = timer + 24 * HOUR;
    if refreshed || lifetime > worst {
        return None;
    }
    let alternative = if session_token_mode {
        format!(
            ", or SessionDurationSeconds above {} s (e.g. 129600, 36 h; a leaked set then lives that long)",
            worst.as_secs()
        )
    } else {
        " (the role modes cap credentials at 12 h, so they need the refresh)".into()
    };
    Some(format!(
        "App Service / Functions apps that read these secrets through Key Vault references re-read them every 24 h, so they can hold expired credentials for up to {} at a time: set RefreshAppSettingsOf to their resource IDs{alternative} — see docs/consumers-azure.md",
        human(worst - lifetime)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_service_references_outlive_the_default_lifetime_unless_refreshed() {
        let rows = table(HOUR, false);
        let refs = &rows[0];
        assert_eq!(refs.worst, Some(25 * HOUR));
        assert_eq!(refs.expired_for(2 * HOUR), Some(23 * HOUR));
        assert_eq!(table(HOUR, true)[0].expired_for(2 * HOUR), None);
        assert!(app_service_warning(HOUR, 2 * HOUR, false, true)
            .unwrap()
            .contains("23 h"));
        assert!(app_service_warning(HOUR, 2 * HOUR, true, true).is_none());
        assert!(app_service_warning(HOUR, 36 * HOUR, false, true).is_none());
        assert!(app_service_warning(HOUR, 12 * HOUR, false, false)
            .unwrap()
            .contains("role modes"));
    }

    #[test]
    fn a_consumer_that_never_rereads_is_always_at_risk() {
        let rows = table(HOUR, true);
        let env = rows.iter().find(|r| r.worst.is_none()).unwrap();
        assert_eq!(env.expired_for(36 * HOUR), Some(Duration::MAX));
    }
}
