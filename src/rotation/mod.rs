//! The rotation use case, shared by both functions and the CLI. This file is the orchestration;
//! each stage is a file of its own:
//!
//! ```text
//! read (read.rs) ─► decide (decide.rs, pure) ─► mint + verify (mint.rs) ─► publish (publish.rs) ─► report (report.rs)
//!                        └─ fresh ─► repair out-of-step secrets (publish.rs)
//! ```
//!
//! One run: **read** the source keys, the published set's metadata and the Entra token,
//! concurrently → **decide** whether the set is fresh → **mint** with STS, per mode → **verify**
//! with `GetCallerIdentity` signed by the new credentials → **publish** the bundle and the three
//! separate secrets, concurrently, each with the STS expiry → **report**. Nothing is written
//! unless the new credentials were verified; a publish that fails part-way says which secrets
//! hold the new set. Warm, that is four sequential round trips: read, mint, verify, publish.
//!
//! Around it: the IAM user's own key rotation ([`source_key`], before minting and after
//! publishing), single flight within a process ([`flight`]) and one rotation across instances
//! (a blob lease per target, taken concurrently with the reads: [`lease`]), version hygiene after a publish
//! ([`hygiene`]), the read-only state for `GET HttpRotate` ([`state`]), the clients every target
//! shares ([`clients`]), every target of a targets file ([`fleet`]), and what `stsbridge revoke`
//! reads and marks on the published bundle (`revocation.rs`, issue #20). Nothing here names an
//! SDK type in a signature others call, and nothing reads the clock inside a pure decision.

pub mod clients;
pub mod decide;
pub mod fleet;
mod flight;
pub mod hygiene;
pub mod lease;
mod mint;
mod publish;
mod read;
pub mod refresh;
pub mod report;
mod revocation;
mod roles_anywhere;
pub mod side;
pub mod source_key;
pub mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use azure_core::credentials::TokenCredential;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::aws::sts::{CallerIdentity, Sts};
use crate::azure::keyvault::Vaults;
use crate::secrets::{MintedCredentials, SessionCredentials};
use crate::settings::{Mode, Settings, WebIdentityCredential};
use crate::tags;

pub use clients::Clients;
pub use decide::{decide, Decision, Published};
pub use hygiene::versions_to_disable;
pub use report::{Failure, Kind, Report, Step};
pub use revocation::SourceIdentity;
pub use side::SideWork;
pub use state::State;

/// The result every joiner of a run gets.
pub type Outcome = Arc<Result<Report, Failure>>;

/// What a trigger asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub force: bool,
    /// Rotate the IAM user's own key now (and mint with the new one).
    pub rotate_source_key: bool,
    /// A revocation's cut-off (`stsbridge revoke`, issue #20): only a set minted after it may
    /// answer this request, and no set minted before it is published.
    pub revoked_before: Option<DateTime<Utc>>,
}

impl Request {
    /// Whether a run for `self` also does everything `other` asks for.
    fn covers(&self, other: &Request) -> bool {
        (self.rotate_source_key || !other.rotate_source_key)
            && other.revoked_before <= self.revoked_before
    }
}

/// The rotation service: settings, adapters, and the run in flight.
pub struct RotationService {
    pub settings: Settings,
    vaults: Arc<Vaults>,
    sts: Sts,
    iam: crate::aws::iam::Iam,
    web_identity: Option<Arc<dyn TokenCredential>>,
    inflight: Mutex<Option<flight::InFlight>>,
    side: side::SideTasks,
    /// The rotation lease's store (`AzureWebJobsStorage`), shared by every target.
    lease: Option<Arc<crate::azure::lease::LeaseStore>>,
    /// This process's turn with the target's lease (see [`lease`]).
    lease_turn: Arc<tokio::sync::Mutex<()>>,
    /// Roles Anywhere mode's minter, which keeps its certificate ([`crate::roles_anywhere`]).
    roles_anywhere: Option<crate::roles_anywhere::RolesAnywhereMinter>,
}

/// What a run leaves for [`RotationService::run`] besides its result.
#[derive(Default)]
struct RunContext {
    /// The published set's expiry, for the warning of a failed run.
    published_expiry: Option<DateTime<Utc>>,
    /// The lease this run holds, released after its side work's key steps.
    lease: Option<lease::LeaseGuard>,
    /// Warnings about the coordination (the holder failed; the lease store unusable).
    notes: Vec<String>,
}

impl std::fmt::Debug for RotationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationService")
            .field("mode", &self.settings.mode.name())
            .finish_non_exhaustive()
    }
}

impl RotationService {
    /// Builds the adapters from validated settings. Makes no network call.
    pub async fn new(settings: Settings) -> anyhow::Result<Self> {
        let clients = Clients::new(&settings, 0)?;
        Self::with_clients(settings, &clients).await
    }

    /// Builds one target's service on clients shared by every target (one identity, one
    /// connection pool, one Key Vault client and write pacer per vault, one AWS configuration
    /// per region).
    pub async fn with_clients(settings: Settings, clients: &Clients) -> anyhow::Result<Self> {
        let credential = clients.credential.clone();
        let client_options = clients.client_options.clone();
        let web_identity = match &settings.mode {
            Mode::WebIdentity {
                credential: kind, ..
            } => Some(match kind {
                WebIdentityCredential::ManagedIdentity => credential.clone(),
                WebIdentityCredential::Developer => crate::azure::identity::credential(
                    &crate::azure::identity::AzureIdentity::Developer,
                    client_options.clone(),
                )?,
                WebIdentityCredential::WorkloadIdentity => crate::azure::identity::credential(
                    &crate::azure::identity::AzureIdentity::WorkloadIdentity,
                    client_options.clone(),
                )?,
                // Built per run: its secret may itself live in Key Vault.
                WebIdentityCredential::ClientSecret { .. } => credential.clone(),
            }),
            _ => None,
        };
        let roles_anywhere = match &settings.mode {
            Mode::RolesAnywhere(ra) => Some(crate::roles_anywhere::RolesAnywhereMinter::new(
                clients.vaults.clone(),
                clients.http.clone(),
                ra.clone(),
            )),
            _ => None,
        };
        let aws = clients.aws(&settings).await;
        let sts = Sts::new(&aws, settings.sts_endpoint.as_deref());
        let iam = crate::aws::iam::Iam::new(&aws, settings.iam_endpoint.as_deref());
        Ok(Self {
            vaults: clients.vaults.clone(),
            sts,
            iam,
            web_identity,
            settings,
            inflight: Mutex::default(),
            side: side::SideTasks::default(),
            lease: clients.lease.clone(),
            lease_turn: Arc::default(),
            roles_anywhere,
        })
    }

    /// One run; a failure says so when the published set is about to expire (no silent expiry
    /// while STS or Key Vault is out).
    async fn run(
        self: &Arc<Self>,
        request: Request,
        forced_since: &Mutex<Option<DateTime<Utc>>>,
    ) -> Result<Report, Failure> {
        let mut cx = RunContext::default();
        let result = self.run_inner(request, forced_since, &mut cx).await;
        let result = match result {
            Ok((mut report, plan)) => {
                report.warnings.extend(cx.notes);
                Ok((report, plan))
            }
            Err(mut failure) => {
                failure.warnings.extend(cx.notes);
                Err(failure)
            }
        };
        let lease = cx.lease.map(|guard| {
            let recorded = lease::record(result.as_ref().map(|(r, _)| r));
            (guard, recorded)
        });
        match result {
            Ok((report, plan)) => {
                self.spawn_side_work(report.rotated.then(|| report.versions.clone()), plan, lease);
                Ok(report)
            }
            Err(mut failure) => {
                self.spawn_side_work(None, None, lease);
                if let Some(exp) = cx.published_expiry {
                    let left = exp.signed_duration_since(Utc::now()).num_seconds();
                    if left <= 0 {
                        failure
                            .warnings
                            .push("the published credentials have expired".into());
                    } else if left < self.settings.expiry_warning.as_secs() as i64 {
                        failure.warnings.push(format!(
                            "the published credentials expire in {left} s (ExpiryWarningSeconds is {}) and could not be replaced",
                            self.settings.expiry_warning.as_secs()
                        ));
                    }
                }
                Err(failure)
            }
        }
    }

    async fn run_inner(
        &self,
        request: Request,
        forced_since: &Mutex<Option<DateTime<Utc>>>,
        cx: &mut RunContext,
    ) -> Result<(Report, Option<source_key::Plan>), Failure> {
        let started = Instant::now();
        let started_at = Utc::now();
        let s = &self.settings;

        // Read, concurrently, and take the target's lease meanwhile (Roles Anywhere mode: its
        // certificate too, when it is not held yet).
        let (mut source, mut current, mut token, mut coordination, certificate) = tokio::join!(
            self.read_source(),
            self.read_current(),
            self.web_identity_token(),
            self.take_lease(),
            self.roles_anywhere_certificate(),
        );
        certificate?;
        let mut holder = lease::HolderInfo::default();
        let mut waited_since = None;
        if matches!(coordination, lease::Coordination::Busy) {
            // An unforced trigger whose own reads show a fresh set needs nothing from the
            // instance at work: it answers at once (issue #28) instead of waiting for the lease.
            if let Some(report) =
                self.fresh_without_the_lease(&request, forced_since, &source, &current, started)
            {
                return Ok((report, None));
            }
            waited_since = Some(started_at);
            // Another instance is at work: wait for it, then read what it left.
            (coordination, holder) = self.wait_for_lease(started, started_at).await?;
            (source, current, token) = tokio::join!(
                self.read_source(),
                self.read_current(),
                self.web_identity_token(),
            );
        }
        cx.notes.append(&mut holder.notes);
        let may_start_key_rotation = coordination.may_start_key_rotation();
        match coordination {
            lease::Coordination::Held(guard) => cx.lease = Some(guard),
            lease::Coordination::Unavailable(why) => {
                tracing::warn!("{}", lease::unavailable_warning(&why));
                cx.notes.push(lease::unavailable_warning(&why));
            }
            lease::Coordination::NotConfigured | lease::Coordination::Busy => {}
        }
        let (source, current, token) = (source?, current?, token?);
        let now = Utc::now();
        let mut plan = match source {
            Some(read) => Some(
                self.prepare_source_key(
                    read,
                    request.rotate_source_key,
                    source_key::Gate {
                        may_start: may_start_key_rotation,
                        waited_since,
                    },
                    now,
                )
                .await?,
            ),
            None => None,
        };
        let keys = plan.as_ref().map(|p| p.keys.clone());

        // Decide. The force flag is read now, not at the start: a forced trigger that joined
        // during the reads upgrades this run (see `flight`).
        let wanted = s.fingerprint(keys.as_ref().map(|k| k.access_key_id.as_str()));
        let mut bundle = current.bundle_published();
        if let (Some(b), Some((minted, published))) = (bundle.as_mut(), holder.published) {
            // The holder we waited for says, to the millisecond, when it published this set.
            if b.minted_at() == Some(minted) {
                b.published_at = Some(published);
            }
        }
        cx.published_expiry = bundle.as_ref().and_then(|b| b.expires);
        believed(cx, bundle.as_ref().and_then(Published::revoked_before), now);
        let forced_since = *forced_since.lock().expect("no panics while held");
        let decision = decide(
            forced_since,
            request.revoked_before,
            bundle.as_ref(),
            &wanted,
            s.min_rotation_interval,
            now,
        );
        let reason = match decision {
            Decision::Fresh(reason) => {
                let mut report = self.repair(reason, current, started).await?;
                // Passed on to the lease's next holder (`lease::record`): when this set was
                // published, as precisely as this run learnt it. Without it, the third forced
                // trigger of a burst compared its arrival with the version's `created` (whole
                // seconds) and minted again (found by the soak, issue #25).
                report.published_at = bundle
                    .as_ref()
                    .filter(|b| b.minted_at() == report.minted_at)
                    .and_then(|b| b.published_at);
                self.finish_plan(plan.as_mut(), &mut report, now).await;
                return Ok((report, plan));
            }
            Decision::Rotate(reason) => reason,
        };

        // Mint, verify, publish, report. The bundle's mark is read again while the new set is
        // verified (no extra round trip): a revocation that began after this run read it must
        // not be overwritten by a set minted before its cut-off.
        let minted = self.mint(keys.as_ref(), token.as_ref()).await?;
        let (caller, mark) = tokio::join!(self.verify(&minted), self.read_revoked_before());
        let caller = caller?;
        let revoked_before = [
            believed(cx, bundle.as_ref().and_then(Published::revoked_before), now),
            request.revoked_before,
            believed(cx, mark?, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(cut_off) = revoked_before.filter(|c| now < *c) {
            return Err(revoked_meanwhile(now, cut_off));
        }
        let mut set_tags = self.set_tags(wanted, now, &minted, &caller);
        if let Some(cut_off) = revoked_before {
            set_tags.insert(
                tags::REVOKED_BEFORE.into(),
                cut_off.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
        }
        let versions = self.publish(&minted.credentials, &set_tags).await?;
        let published_at = Utc::now();
        let mut report = self.report(true, reason, &minted.credentials, versions, started, |r| {
            r.assumed_role_arn = minted.assumed_role_arn.clone();
            r.caller_arn = Some(caller.arn.clone());
            r.minted_at = Some(now);
            r.published_at = Some(published_at);
        });
        self.finish_plan(plan.as_mut(), &mut report, now).await;
        Ok((report, plan))
    }

    /// With the lease held elsewhere: the answer for a plain unforced trigger whose own reads
    /// show a fresh set — that set, repairing nothing (a repair now could land after the
    /// holder's publish and leave the separate secrets behind it). `None`: wait for the lease.
    fn fresh_without_the_lease(
        &self,
        request: &Request,
        forced_since: &Mutex<Option<DateTime<Utc>>>,
        source: &Result<Option<source_key::SourceRead>, Failure>,
        current: &Result<read::Current, Failure>,
        started: Instant,
    ) -> Option<Report> {
        let forced = forced_since.lock().expect("no panics while held").is_some();
        if forced || request.rotate_source_key || request.revoked_before.is_some() {
            return None;
        }
        let (Ok(source), Ok(current)) = (source, current) else {
            return None;
        };
        let wanted = self
            .settings
            .fingerprint(source.as_ref().map(|read| read.keys.access_key_id.as_str()));
        let now = Utc::now();
        let bundle = current.bundle_published();
        let Decision::Fresh(reason) = decide(
            None,
            None,
            bundle.as_ref(),
            &wanted,
            self.settings.min_rotation_interval,
            now,
        ) else {
            return None;
        };
        let stored = current.bundle.as_ref()?;
        use secrecy::ExposeSecret;
        let credentials =
            SessionCredentials::from_process_json(stored.value.expose_secret()).ok()?;
        let minted_at = bundle.and_then(|b| b.minted_at());
        let versions = current.versions(&self.settings.targets);
        let reason = format!("{reason}; another instance holds the rotation lease, and a fresh set needs nothing from it");
        Some(
            self.report(false, reason, &credentials, versions, started, |r| {
                r.minted_at = minted_at;
            }),
        )
    }

    /// The `revoked-before` mark on the latest bundle, read again just before a publish.
    async fn read_revoked_before(&self) -> Result<Option<DateTime<Utc>>, Failure> {
        let bundle = self
            .vaults
            .get_optional(&self.settings.targets.bundle)
            .await
            .map_err(|e| {
                Failure::from_vault(
                    Step::ReadCurrent,
                    "reading the published bundle's revocation mark before publishing",
                    &e,
                )
            })?;
        Ok(bundle.and_then(|b| decide::revoked_before_of(&b.tags)))
    }

    /// The tags of a new set: the settings it was minted under (`wanted`), when, and who it is.
    fn set_tags(
        &self,
        wanted: BTreeMap<String, String>,
        now: DateTime<Utc>,
        minted: &MintedCredentials,
        caller: &CallerIdentity,
    ) -> BTreeMap<String, String> {
        let mut set_tags = wanted;
        set_tags.insert(
            tags::MINTED_AT.into(),
            now.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        set_tags.insert(
            tags::ACCESS_KEY_ID.into(),
            minted.credentials.access_key_id.clone(),
        );
        set_tags.insert(tags::CALLER_ARN.into(), tags::value(&caller.arn));
        if let Some(name) = &self.settings.name {
            set_tags.insert(tags::TARGET.into(), tags::value(name));
        }
        set_tags
    }

    /// The source-key step that completes this run's key rotation (deactivating the previous
    /// key) runs before the answer, which says the rotation is complete; the bookkeeping is side
    /// work ([`side`]).
    async fn finish_plan(
        &self,
        plan: Option<&mut source_key::Plan>,
        report: &mut Report,
        now: DateTime<Utc>,
    ) {
        let Some(plan) = plan else { return };
        if plan.completes_a_rotation() {
            let warnings = self.finish_source_key(plan, now).await;
            report.warnings.extend(warnings);
            plan.after = source_key::After::Nothing;
        }
        if !plan.report.actions.is_empty() {
            report.source_key = Some(plan.report.clone());
        }
    }

    fn report(
        &self,
        rotated: bool,
        reason: String,
        credentials: &SessionCredentials,
        versions: BTreeMap<String, String>,
        started: Instant,
        extra: impl FnOnce(&mut Report),
    ) -> Report {
        let now = Utc::now();
        let remaining = credentials
            .expiration
            .signed_duration_since(now)
            .num_seconds();
        let mut warnings = vec![];
        if remaining < self.settings.expiry_warning.as_secs() as i64 {
            warnings.push(format!(
                "the published credentials expire in {remaining} s (ExpiryWarningSeconds is {})",
                self.settings.expiry_warning.as_secs()
            ));
        }
        let mut report = Report {
            rotated,
            reason,
            mode: self.settings.mode.name().into(),
            access_key_id: Some(credentials.access_key_id.clone()),
            expiration: Some(
                credentials
                    .expiration
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
            remaining_seconds: Some(remaining),
            versions,
            warnings,
            duration_ms: started.elapsed().as_millis() as u64,
            previous_side_work: self.last_side_work(),
            ..Default::default()
        };
        extra(&mut report);
        report
    }
}

/// A `revoked-before` mark as the run honours it: one far in the future is ignored (and so not
/// carried forward), with a warning in the run's report, once (issue #26).
fn believed(
    cx: &mut RunContext,
    mark: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let (mark, warning) =
        decide::believable_cut_off(mark, "the published bundle's revoked-before tag", now);
    if let Some(w) = warning.filter(|w| !cx.notes.contains(w)) {
        tracing::warn!("{w}");
        cx.notes.push(w);
    }
    mark
}

/// A run that minted before a revocation's cut-off: its set is dead on arrival, and publishing
/// it would replace the revocation's fresh set with a dead one.
fn revoked_meanwhile(minted_at: DateTime<Utc>, cut_off: DateTime<Utc>) -> Failure {
    Failure::new(
        Step::Publish,
        Kind::Conflict,
        "RevokedMeanwhile",
        format!(
            "the credentials were revoked at {} while this run minted at {}: the new set is denied by AWS and was not published",
            cut_off.to_rfc3339_opts(SecondsFormat::Secs, true),
            minted_at.to_rfc3339_opts(SecondsFormat::Millis, true)
        ),
    )
    .with_hint("the revocation publishes a set minted after its cut-off; run again to mint one")
}
