//! The rotation use case, shared by both functions and the CLI.
//!
//! One run: **read** (source keys, the published set's metadata, the Entra token — concurrently)
//! → **decide** (pure, [`decide`]) → **mint** (STS, per mode) → **verify** (`GetCallerIdentity`
//! signed with the new credentials) → **publish** (the bundle and the three separate secrets,
//! concurrently, each with the STS expiry) → **report**. Nothing is written unless the new
//! credentials were verified; a publish that fails part-way says which secrets hold the new set.
//! Warm, that is four sequential round trips: read, mint, verify, publish.
//!
//! Runs are single-flight per process: a trigger that arrives while a run is in flight joins it
//! and gets its result; the run itself is a spawned task, so a caller that goes away (the host
//! timing out an HTTP request) never cancels a publish half-way.

pub mod decide;
pub mod fleet;
pub mod report;
pub mod source_key;
pub mod tags;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use azure_core::credentials::TokenCredential;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::aws::sts::Sts;
use crate::aws::AwsError;
use crate::azure::keyvault::{NewVersion, StoredSecret, VaultError, VaultOptions, Vaults};
use crate::azure::reference::SecretRef;
use crate::secrets::{AwsKeys, MintedCredentials, SessionCredentials};
use crate::settings::{Mode, Settings, SourceKeys, SourceValue, WebIdentityCredential};

pub use decide::{decide, Decision, Published};
pub use report::{Failure, Kind, Report, Step};

/// The result every joiner of a run gets.
pub type Outcome = Arc<Result<Report, Failure>>;

/// What a trigger asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub force: bool,
    /// Rotate the IAM user's own key now (and mint with the new one).
    pub rotate_source_key: bool,
}

impl Request {
    /// Whether a run for `self` also does everything `other` asks for.
    fn covers(&self, other: &Request) -> bool {
        self.rotate_source_key || !other.rotate_source_key
    }
}

/// The run in flight, for triggers that arrive while it lasts.
struct InFlight {
    request: Request,
    /// Set by a forced trigger that joins; the run reads it when it decides.
    force: Arc<AtomicBool>,
    run: Shared<BoxFuture<'static, Outcome>>,
}

/// Whether a forced trigger that arrived at `arrived` can take this outcome as its own: a set
/// minted after it arrived, or a failure (running again at once would most likely fail alike).
fn satisfies_force(outcome: &Outcome, arrived: DateTime<Utc>) -> bool {
    match outcome.as_ref() {
        Ok(report) => report.rotated && report.minted_at.is_some_and(|m| m >= arrived),
        Err(_) => true,
    }
}

/// The rotation service: settings, adapters, and the run in flight.
pub struct RotationService {
    pub settings: Settings,
    vaults: Arc<Vaults>,
    sts: Sts,
    iam: crate::aws::iam::Iam,
    web_identity: Option<Arc<dyn TokenCredential>>,
    inflight: Mutex<Option<InFlight>>,
    hygiene: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for RotationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationService")
            .field("mode", &self.settings.mode.name())
            .finish_non_exhaustive()
    }
}

/// What every target's service shares.
pub struct Clients {
    credential: Arc<dyn TokenCredential>,
    client_options: azure_core::http::ClientOptions,
    vaults: Arc<Vaults>,
    aws: tokio::sync::Mutex<BTreeMap<(String, u64), aws_config::SdkConfig>>,
}

impl Clients {
    /// From the app-wide settings (any target's: identity and challenge checks are app-wide);
    /// `writes_per_10s` paces writes per vault (0: no pacing).
    pub fn new(settings: &Settings, writes_per_10s: u32) -> anyhow::Result<Self> {
        let vault_options = VaultOptions {
            verify_challenge_resource: settings.verify_challenge_resource,
            retry_budget: settings.rotation_time_budget / 4,
            ..Default::default()
        };
        let http = crate::azure::keyvault::http_client(vault_options.request_timeout);
        let client_options = crate::azure::keyvault::client_options(&http, &vault_options);
        let credential =
            crate::azure::identity::credential(&settings.identity, client_options.clone())?;
        let vaults =
            Vaults::new(credential.clone(), vault_options, http).with_write_pacing(writes_per_10s);
        Ok(Self {
            credential,
            client_options,
            vaults: Arc::new(vaults),
            aws: tokio::sync::Mutex::default(),
        })
    }

    /// The AWS configuration for a target's region and time budget, made once.
    async fn aws(&self, settings: &Settings) -> aws_config::SdkConfig {
        let budget = settings.rotation_time_budget / 3;
        let key = (settings.region.clone(), budget.as_millis() as u64);
        let mut cache = self.aws.lock().await;
        if let Some(c) = cache.get(&key) {
            return c.clone();
        }
        let config =
            crate::aws::sdk_config(&settings.region, std::time::Duration::from_secs(20), budget)
                .await;
        cache.insert(key, config.clone());
        config
    }
}

/// The current state of the published set, for `GET HttpRotate` and `stsbridge show`.
#[derive(Clone, Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub published: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub versions: BTreeMap<String, String>,
    /// Whether the three separate secrets hold the bundle's set.
    pub consistent: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
                    &crate::settings::AzureIdentity::Developer,
                    client_options.clone(),
                )?,
                WebIdentityCredential::WorkloadIdentity => crate::azure::identity::credential(
                    &crate::settings::AzureIdentity::WorkloadIdentity,
                    client_options.clone(),
                )?,
                // Built per run: its secret may itself live in Key Vault.
                WebIdentityCredential::ClientSecret { .. } => credential.clone(),
            }),
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
            hygiene: Mutex::default(),
        })
    }

    /// Runs a rotation, or joins the one in flight.
    ///
    /// A trigger joins whatever run is in flight and gets its result, with two exceptions. One
    /// that asks for more (rotating the source key) waits for it to end and then runs. A forced
    /// one upgrades the run to forced if it has not decided yet, and accepts its result only if
    /// that run minted after the trigger arrived (or failed); otherwise — the run found the set
    /// fresh, or had minted already — it runs again, so `force` always means a set minted after
    /// it was asked for (issue #15 L3).
    pub async fn rotate(self: &Arc<Self>, request: Request) -> Outcome {
        let arrived = Utc::now();
        loop {
            let (joined, run) = {
                let mut inflight = self.inflight.lock().expect("no panics while held");
                match inflight.as_ref() {
                    Some(running) => {
                        if request.force {
                            running.force.store(true, Ordering::SeqCst);
                        }
                        (running.request.covers(&request), running.run.clone())
                    }
                    None => {
                        let me = self.clone();
                        let force = Arc::new(AtomicBool::new(request.force));
                        let run_force = force.clone();
                        let run = async move {
                            let budget = me.settings.rotation_time_budget;
                            let outcome = match tokio::time::timeout(budget, me.run(request, &run_force)).await {
                                Ok(result) => result,
                                Err(_) => Err(Failure::new(
                                    Step::Publish,
                                    Kind::Unreachable,
                                    "Timeout",
                                    format!(
                                        "the rotation did not finish within RotationTimeBudgetSeconds ({} s)",
                                        budget.as_secs()
                                    ),
                                )),
                            };
                            *me.inflight.lock().expect("no panics while held") = None;
                            Arc::new(outcome)
                        }
                        .boxed()
                        .shared();
                        *inflight = Some(InFlight {
                            request,
                            force,
                            run: run.clone(),
                        });
                        // Driven by its own task, so it completes even if every caller goes away.
                        tokio::spawn(run.clone());
                        (true, run)
                    }
                }
            };
            let outcome = run.await;
            if joined && (!request.force || satisfies_force(&outcome, arrived)) {
                return outcome;
            }
        }
    }

    /// One run; a failure says so when the published set is about to expire (no silent expiry
    /// while STS or Key Vault is out).
    async fn run(
        self: &Arc<Self>,
        request: Request,
        force: &AtomicBool,
    ) -> Result<Report, Failure> {
        let mut published_expiry = None;
        let result = self.run_inner(request, force, &mut published_expiry).await;
        match result {
            Ok(report) => {
                if report.rotated {
                    self.spawn_hygiene(report.versions.clone());
                }
                Ok(report)
            }
            Err(mut failure) => {
                if let Some(exp) = published_expiry {
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
        force: &AtomicBool,
        published_expiry: &mut Option<DateTime<Utc>>,
    ) -> Result<Report, Failure> {
        let started = Instant::now();
        let s = &self.settings;
        let (source, current, token) = tokio::join!(
            self.read_source(),
            async {
                if request.force {
                    Ok(None)
                } else {
                    self.read_current().await.map(Some)
                }
            },
            self.web_identity_token(),
        );
        let source = source?;
        let current = current?;
        let token = token?;
        let now = Utc::now();
        let mut plan = match source {
            Some(read) => Some(
                self.prepare_source_key(read, request.rotate_source_key, now)
                    .await?,
            ),
            None => None,
        };
        let source = plan.as_ref().map(|p| p.keys.clone());
        let wanted = s.fingerprint(source.as_ref().map(|k| k.access_key_id.as_str()));
        let bundle = current.as_ref().and_then(|c| c.bundle_published());
        *published_expiry = bundle.as_ref().and_then(|b| b.expires);
        // Read now, not at the start: a forced trigger that joined during the reads upgrades
        // this run (see `rotate`).
        let decision = decide(
            force.load(Ordering::SeqCst),
            bundle.as_ref(),
            &wanted,
            s.min_rotation_interval,
            now,
        );
        let reason = match decision {
            Decision::Fresh(reason) => {
                let current = current.expect("fresh implies a current set");
                let mut report = self.fresh(reason, current, started).await?;
                self.finish_plan(plan.as_mut(), &mut report, now).await;
                return Ok(report);
            }
            Decision::Rotate(reason) => reason,
        };

        let minted = self.mint(source.as_ref(), token.as_ref()).await?;
        let caller = self
            .sts
            .caller_identity(&minted.credentials)
            .await
            .map_err(|e| {
                Failure::from_aws(Step::Verify, &e)
                    .with_hint("the new credentials did not work; nothing was published")
            })?;
        if let Some(role) = &minted.assumed_role_arn {
            if !role.is_empty() && caller.arn != *role {
                return Err(Failure::new(
                    Step::Verify,
                    Kind::Upstream,
                    "IdentityMismatch",
                    format!(
                        "the new credentials act as {} instead of {role}; nothing was published",
                        caller.arn
                    ),
                ));
            }
        }

        let mut set_tags = wanted;
        set_tags.insert(
            tags::MINTED_AT.into(),
            now.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        set_tags.insert(
            tags::ACCESS_KEY_ID.into(),
            minted.credentials.access_key_id.clone(),
        );
        set_tags.insert(tags::CALLER_ARN.into(), tags::value(&caller.arn));
        if let Some(name) = &s.name {
            set_tags.insert(tags::TARGET.into(), tags::value(name));
        }
        let versions = self.publish(&minted.credentials, &set_tags).await?;
        let mut report = self.report(true, reason, &minted.credentials, versions, started, |r| {
            r.assumed_role_arn = minted.assumed_role_arn.clone();
            r.caller_arn = Some(caller.arn.clone());
            r.minted_at = Some(now);
        });
        self.finish_plan(plan.as_mut(), &mut report, now).await;
        Ok(report)
    }

    /// The source-key steps that follow a publish; their outcome goes into the report.
    async fn finish_plan(
        &self,
        plan: Option<&mut source_key::Plan>,
        report: &mut Report,
        now: DateTime<Utc>,
    ) {
        let Some(plan) = plan else { return };
        let warnings = self.finish_source_key(plan, now).await;
        report.warnings.extend(warnings);
        if !plan.report.actions.is_empty() {
            report.source_key = Some(plan.report.clone());
        }
    }

    /// An unforced run that found the set fresh: repair out-of-step secrets from the bundle.
    async fn fresh(
        &self,
        reason: String,
        current: Current,
        started: Instant,
    ) -> Result<Report, Failure> {
        let bundle = current.bundle.as_ref().expect("fresh implies a bundle");
        let credentials = SessionCredentials::from_process_json(bundle.value.expose_secret())
            .map_err(|e| {
                Failure::new(
                    Step::ReadCurrent,
                    Kind::Upstream,
                    "MalformedBundle",
                    format!("{}: {e}", self.settings.targets.bundle),
                )
            })?;
        let set_id = credentials.access_key_id.clone();
        let targets = &self.settings.targets;
        let stale = decide::out_of_step(
            &set_id,
            [
                (
                    targets.access_key_id.name.as_str(),
                    current.access_key_id.as_ref(),
                ),
                (
                    targets.secret_access_key.name.as_str(),
                    current.secret_access_key.as_ref(),
                ),
                (
                    targets.session_token.name.as_str(),
                    current.session_token.as_ref(),
                ),
            ]
            .map(|(n, s)| {
                (
                    n,
                    s.and_then(|s| s.tags.get(tags::ACCESS_KEY_ID))
                        .map(String::as_str),
                )
            }),
        );
        let mut versions: BTreeMap<String, String> = [
            (&targets.bundle, &current.bundle),
            (&targets.access_key_id, &current.access_key_id),
            (&targets.secret_access_key, &current.secret_access_key),
            (&targets.session_token, &current.session_token),
        ]
        .into_iter()
        .filter_map(|(t, s)| s.as_ref().map(|s| (t.name.clone(), s.version.clone())))
        .collect();
        let mut repaired = vec![];
        if !stale.is_empty() {
            let parts = separate_values(&credentials);
            let all = targets.all();
            let writes = all[1..]
                .iter()
                .zip(parts.iter())
                .filter(|(t, _)| stale.contains(&t.name))
                .map(|(t, (value, content_type))| {
                    let tags = &bundle.tags;
                    let expires = Some(credentials.expiration);
                    async move {
                        let r = self
                            .vaults
                            .set(
                                t,
                                NewVersion {
                                    value,
                                    content_type,
                                    tags,
                                    expires,
                                },
                            )
                            .await;
                        (t.name.clone(), r)
                    }
                });
            for (name, result) in futures::future::join_all(writes).await {
                match result {
                    Ok(v) => {
                        versions.insert(name.clone(), v);
                        repaired.push(name);
                    }
                    Err(e) => {
                        let mut f = Failure::from_vault(
                            Step::Publish,
                            "repairing the separate secrets",
                            &e,
                        );
                        f.published = repaired.clone();
                        f.stale = stale
                            .iter()
                            .filter(|s| !repaired.contains(s))
                            .cloned()
                            .collect();
                        return Err(f);
                    }
                }
            }
        }
        let mut report = self.report(false, reason, &credentials, versions, started, |_| {});
        report.repaired = repaired;
        Ok(report)
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
            ..Default::default()
        };
        extra(&mut report);
        report
    }

    /// Version hygiene, after a successful publish and off the critical path: every superseded
    /// version still holds credentials until they expire, and an hourly rotation adds ~96
    /// versions a day. Versions whose credentials have expired are disabled, except the newest
    /// `KeepEnabledVersions` (for consumers pinned to a version). Idempotent; a run that is cut
    /// short is finished by the next one.
    fn spawn_hygiene(self: &Arc<Self>, published: BTreeMap<String, String>) {
        let me = self.clone();
        let task = tokio::spawn(async move {
            let now = Utc::now();
            let keep = me.settings.keep_enabled_versions;
            let jobs = me.settings.targets.all().map(|t| {
                let me = me.clone();
                let t = t.clone();
                let current = published.get(&t.name).cloned().unwrap_or_default();
                async move {
                    let versions = match me.vaults.versions(&t).await {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!("version hygiene: {e}");
                            return;
                        }
                    };
                    for v in versions_to_disable(&versions, &current, keep, now) {
                        match me.vaults.disable(&t, &v).await {
                            Ok(()) => tracing::info!(
                                "version hygiene: disabled expired version {v} of {}",
                                t.name
                            ),
                            Err(e) => tracing::warn!("version hygiene: {e}"),
                        }
                    }
                }
            });
            futures::future::join_all(jobs).await;
        });
        if let Some(previous) = self
            .hygiene
            .lock()
            .expect("no panics while held")
            .replace(task)
        {
            // A newer pass covers everything the older one would have done.
            previous.abort();
        }
    }

    /// Waits for background work (version hygiene) to finish; the CLI calls it before exiting.
    pub async fn settle(&self) {
        let task = self.hygiene.lock().expect("no panics while held").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Reads the IAM user's key (both halves concurrently when they are in a vault).
    async fn read_source(&self) -> Result<Option<source_key::SourceRead>, Failure> {
        let Some(source) = self.settings.mode.source() else {
            return Ok(None);
        };
        let (id, secret) = tokio::join!(
            self.resolve_stored(&source.access_key_id, source.settings.0),
            self.resolve_stored(&source.secret_access_key, source.settings.1),
        );
        let (id_value, id) = id?;
        let (secret_value, secret) = secret?;
        Ok(Some(source_key::SourceRead {
            keys: AwsKeys {
                access_key_id: id_value.expose_secret().trim().to_string(),
                secret_access_key: secret_value,
            },
            id,
            secret,
        }))
    }

    async fn resolve(&self, value: &SourceValue, setting: &str) -> Result<SecretString, Failure> {
        self.resolve_stored(value, setting).await.map(|(v, _)| v)
    }

    /// A source value: as given, or read from Key Vault (then with its version and tags).
    async fn resolve_stored(
        &self,
        value: &SourceValue,
        setting: &str,
    ) -> Result<(SecretString, Option<StoredSecret>), Failure> {
        let r = match value {
            SourceValue::Plain(v) => return Ok((v.clone(), None)),
            SourceValue::KeyVault(r, _) => r,
        };
        let stored = self.vaults.get(r).await.map_err(|e| {
            let f = Failure::from_vault(Step::ReadSource, &format!("reading {setting} ({r})"), &e);
            match &e {
                VaultError::Refused { status: 403, .. } => f.with_hint(
                    "grant the app's identity get on this secret (Key Vault Secrets User, or Secrets Officer for key rotation)",
                ),
                VaultError::Refused { status: 404, .. } => {
                    f.with_hint(format!("create the secret, or point {setting} at the right one"))
                }
                _ => f,
            }
        })?;
        if stored.value.expose_secret().trim().is_empty() {
            return Err(Failure::new(
                Step::ReadSource,
                Kind::Upstream,
                "EmptySecret",
                format!("{setting} ({r}) is empty"),
            ));
        }
        Ok((stored.value.clone(), Some(stored)))
    }

    /// The claims of the Entra ID token web-identity mode would send (never the token): what
    /// an IAM OIDC provider and a role's trust policy must match.
    pub async fn web_identity_claims(&self) -> Result<Option<serde_json::Value>, Failure> {
        use base64::Engine;
        let Some(token) = self.web_identity_token().await? else {
            return Ok(None);
        };
        let claims = token
            .expose_secret()
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.trim_end_matches('='))
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .unwrap_or_default();
        let mut out = serde_json::Map::new();
        for claim in ["iss", "aud", "sub", "oid", "tid", "appid", "azp", "ver"] {
            if let Some(v) = claims.get(claim) {
                out.insert(claim.into(), v.clone());
            }
        }
        Ok(Some(serde_json::Value::Object(out)))
    }

    /// The Entra ID token for web-identity mode.
    async fn web_identity_token(&self) -> Result<Option<SecretString>, Failure> {
        let Mode::WebIdentity {
            audience,
            credential: kind,
            ..
        } = &self.settings.mode
        else {
            return Ok(None);
        };
        let scope = if audience.ends_with("/.default") {
            audience.clone()
        } else {
            format!("{}/.default", audience.trim_end_matches('/'))
        };
        let credential = match kind {
            WebIdentityCredential::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => {
                let secret = self.resolve(secret, "WebIdentityClientSecret").await?;
                let http = crate::azure::keyvault::http_client(std::time::Duration::from_secs(20));
                crate::azure::identity::client_secret_credential(
                    tenant_id,
                    client_id,
                    &secret,
                    crate::azure::keyvault::client_options(&http, &VaultOptions::default()),
                )
                .map_err(|e| {
                    Failure::new(
                        Step::Token,
                        Kind::Settings,
                        "CredentialError",
                        format!("{e:#}"),
                    )
                })?
            }
            _ => self
                .web_identity
                .clone()
                .expect("built for web-identity mode"),
        };
        let token = credential.get_token(&[scope.as_str()], None).await.map_err(|e| {
            let kind = match e.kind() {
                azure_core::error::ErrorKind::Connection | azure_core::error::ErrorKind::Io => Kind::Unreachable,
                _ => Kind::Upstream,
            };
            Failure::new(
                Step::Token,
                kind,
                "EntraTokenRefused",
                format!("getting an Entra ID token for {scope} ({}): {e}", kind_name(&self.settings)),
            )
            .with_hint("check WebIdentityAudience: the Entra ID application (Application ID URI or client id) must exist and the identity must be allowed to get tokens for it")
        })?;
        Ok(Some(SecretString::from(token.token.secret().to_string())))
    }

    async fn mint(
        &self,
        keys: Option<&AwsKeys>,
        token: Option<&SecretString>,
    ) -> Result<MintedCredentials, Failure> {
        let s = &self.settings;
        let d = s.session_duration_secs;
        let result = match (&s.mode, keys, token) {
            (Mode::SessionToken { .. }, Some(keys), _) => self.sts.get_session_token(keys, d).await,
            (Mode::AssumeRole { role, options, .. }, Some(keys), _) => {
                self.sts
                    .assume_role(keys, &role.arn, &role.session_name, options, d)
                    .await
            }
            (Mode::WebIdentity { role, .. }, _, Some(token)) => {
                self.sts
                    .assume_role_with_web_identity(&role.arn, &role.session_name, token, d)
                    .await
            }
            _ => unreachable!("read_source and web_identity_token follow the mode"),
        };
        result.map_err(|e| {
            let f = Failure::from_aws(Step::Mint, &e);
            match mint_hint(&s.mode, d, &e) {
                Some(h) => f.with_hint(h),
                None => f,
            }
        })
    }

    /// Writes the bundle and the three separate secrets concurrently.
    async fn publish(
        &self,
        credentials: &SessionCredentials,
        set_tags: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Failure> {
        let targets = &self.settings.targets;
        let bundle_value = credentials.to_process_json();
        let parts = separate_values(credentials);
        let mut writes: Vec<(&SecretRef, &SecretString, &str)> =
            vec![(&targets.bundle, &bundle_value, "application/json")];
        for (t, (v, ct)) in targets.all()[1..].iter().zip(parts.iter()) {
            writes.push((t, v, ct));
        }
        let results = futures::future::join_all(writes.into_iter().map(
            |(t, value, content_type)| async move {
                let r = self
                    .vaults
                    .set(
                        t,
                        NewVersion {
                            value,
                            content_type,
                            tags: set_tags,
                            expires: Some(credentials.expiration),
                        },
                    )
                    .await;
                (t.name.clone(), r)
            },
        ))
        .await;
        let mut versions = BTreeMap::new();
        let mut first_error: Option<VaultError> = None;
        let mut stale = vec![];
        for (name, r) in results {
            match r {
                Ok(v) => {
                    versions.insert(name, v);
                }
                Err(e) => {
                    stale.push(name);
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            let mut f = Failure::from_vault(Step::Publish, "publishing the new credentials", &e);
            f.published = versions.keys().cloned().collect();
            f.stale = stale;
            f.hint = Some(if f.stale.contains(&targets.bundle.name) {
                "the bundle still holds the previous set, which is whole and valid until it expires; the next run publishes a new one".into()
            } else {
                "the bundle holds the new set; the next run repairs the separate secrets from it"
                    .into()
            });
            return Err(f);
        }
        Ok(versions)
    }

    /// Reads the four published secrets concurrently (missing ones are `None`).
    async fn read_current(&self) -> Result<Current, Failure> {
        let t = &self.settings.targets;
        let (bundle, id, secret, token) = tokio::join!(
            self.vaults.get_optional(&t.bundle),
            self.vaults.get_optional(&t.access_key_id),
            self.vaults.get_optional(&t.secret_access_key),
            self.vaults.get_optional(&t.session_token),
        );
        let read = |r: Result<Option<StoredSecret>, VaultError>, what: &SecretRef| {
            r.map_err(|e| {
                Failure::from_vault(
                    Step::ReadCurrent,
                    &format!("reading the published {what}"),
                    &e,
                )
            })
        };
        Ok(Current {
            bundle: read(bundle, &t.bundle)?,
            access_key_id: read(id, &t.access_key_id)?,
            secret_access_key: read(secret, &t.secret_access_key)?,
            session_token: read(token, &t.session_token)?,
        })
    }

    /// The state of the published set, without minting.
    pub async fn state(&self) -> Result<State, Failure> {
        let current = self.read_current().await?;
        let now = Utc::now();
        let mut state = State::default();
        let t = &self.settings.targets;
        for (target, stored) in [
            (&t.bundle, &current.bundle),
            (&t.access_key_id, &current.access_key_id),
            (&t.secret_access_key, &current.secret_access_key),
            (&t.session_token, &current.session_token),
        ] {
            if let Some(s) = stored {
                state
                    .versions
                    .insert(target.name.clone(), s.version.clone());
            }
        }
        let Some(bundle) = current.bundle_published() else {
            state
                .warnings
                .push("no credentials are published yet".into());
            return Ok(state);
        };
        state.published = true;
        state.access_key_id = bundle.set_id().map(str::to_string);
        state.mode = bundle.tags.get(tags::MODE).cloned();
        state.role_arn = bundle.tags.get(tags::ROLE_ARN).cloned();
        state.minted_at = bundle
            .minted_at()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        if let Some(exp) = bundle.expires {
            let remaining = exp.signed_duration_since(now).num_seconds();
            state.expiration = Some(exp.to_rfc3339_opts(SecondsFormat::Secs, true));
            state.remaining_seconds = Some(remaining);
            if remaining <= 0 {
                state
                    .warnings
                    .push("the published credentials have expired".into());
            } else if remaining < self.settings.expiry_warning.as_secs() as i64 {
                state
                    .warnings
                    .push(format!("the published credentials expire in {remaining} s"));
            }
        }
        let set_id = bundle.set_id().unwrap_or_default();
        let stale = decide::out_of_step(
            set_id,
            [
                (t.access_key_id.name.as_str(), &current.access_key_id),
                (
                    t.secret_access_key.name.as_str(),
                    &current.secret_access_key,
                ),
                (t.session_token.name.as_str(), &current.session_token),
            ]
            .map(|(n, s)| {
                (
                    n,
                    s.as_ref()
                        .and_then(|s| s.tags.get(tags::ACCESS_KEY_ID))
                        .map(String::as_str),
                )
            }),
        );
        state.consistent = stale.is_empty();
        if !stale.is_empty() {
            state
                .warnings
                .push(format!("out of step with the bundle: {}", stale.join(", ")));
        }
        Ok(state)
    }
}

/// The published secrets as read.
struct Current {
    bundle: Option<StoredSecret>,
    access_key_id: Option<StoredSecret>,
    secret_access_key: Option<StoredSecret>,
    session_token: Option<StoredSecret>,
}

impl Current {
    fn bundle_published(&self) -> Option<Published> {
        self.bundle.as_ref().map(|b| Published {
            tags: b.tags.clone(),
            expires: b.expires,
        })
    }
}

/// The enabled versions whose credentials have expired, beyond the newest `keep` (pure).
/// `current` (the version just published) counts as the newest: Key Vault's timestamps have
/// one-second resolution, so creation times alone cannot order versions written together.
pub fn versions_to_disable(
    versions: &[crate::azure::keyvault::VersionInfo],
    current: &str,
    keep: usize,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut sorted: Vec<&crate::azure::keyvault::VersionInfo> = versions.iter().collect();
    sorted.sort_by_key(|v| (v.version != current, std::cmp::Reverse(v.created)));
    sorted
        .into_iter()
        .skip(keep)
        .filter(|v| v.enabled && v.expires.is_some_and(|e| e <= now))
        .map(|v| v.version.clone())
        .collect()
}

/// The values of the three separate secrets (seed 000's), with their content types.
fn separate_values(c: &SessionCredentials) -> [(SecretString, &'static str); 3] {
    [
        (SecretString::from(c.access_key_id.clone()), "text/plain"),
        (c.secret_access_key.clone(), "text/plain"),
        (c.session_token.clone(), "text/plain"),
    ]
}

fn kind_name(settings: &Settings) -> &'static str {
    match &settings.mode {
        Mode::WebIdentity { credential, .. } => credential.name(),
        _ => "",
    }
}

/// Which side to fix, for the errors users actually meet.
fn mint_hint(mode: &Mode, duration: u64, e: &AwsError) -> Option<String> {
    let AwsError::Refused { code, message, .. } = e else {
        return None;
    };
    let source_settings = |s: &SourceKeys| s.settings;
    Some(match (code.as_str(), mode) {
        ("InvalidClientTokenId", _) => {
            let (id, _) = mode.source().map(source_settings).unwrap_or(("UsernameFromKeyVault", ""));
            format!("AWS does not know this access key id, or it is inactive: check {id} and the IAM user's keys")
        }
        ("SignatureDoesNotMatch", _) => {
            let (_, secret) = mode.source().map(source_settings).unwrap_or(("", "PasswordFromKeyVault"));
            format!("the secret access key does not belong to the access key id: check {secret}")
        }
        ("ValidationError", _) if message.contains("MaxSessionDuration") || message.contains("DurationSeconds") => format!(
            "SessionDurationSeconds ({duration}) is more than the role allows: lower it, or raise the role's MaxSessionDuration (the templates in infra/aws set 14400)"
        ),
        ("InvalidIdentityToken", _) => "AWS did not accept the Entra ID token: the IAM OIDC provider's URL must equal the token's issuer (see `stsbridge check`) and its audience (client id list) must contain WebIdentityAudience".into(),
        ("IDPRejectedClaim", _) | ("AccessDenied", Mode::WebIdentity { .. }) => "the role's trust policy rejected the token's claims: its conditions on aud and sub must match the audience and the identity's object id shown by `stsbridge check`".into(),
        ("AccessDenied", Mode::AssumeRole { .. }) => "the role's trust policy must allow the IAM user, and the user needs sts:AssumeRole on the role (check RoleArn too)".into(),
        ("ExpiredToken" | "ExpiredTokenException", _) => "the token or key has expired".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::keyvault::VersionInfo;
    use chrono::TimeZone;

    fn v(id: &str, created_h: u32, expires_h: Option<u32>, enabled: bool) -> VersionInfo {
        let at = |h| Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap();
        VersionInfo {
            version: id.into(),
            enabled,
            created: Some(at(created_h)),
            expires: expires_h.map(at),
            tags: Default::default(),
        }
    }

    #[test]
    fn only_expired_enabled_versions_beyond_the_newest_are_disabled() {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0).unwrap();
        let versions = [
            v("newest", 9, Some(11), true),
            v("second", 8, Some(9), true), // expired, but among the newest two
            v("third", 7, Some(8), true),  // expired: disabled
            v("fourth", 6, Some(12), true), // still valid: kept
            v("fifth", 5, Some(6), false), // already disabled
            v("sixth", 4, None, true),     // never expires (not ours): kept
        ];
        assert_eq!(
            versions_to_disable(&versions, "newest", 2, now),
            vec!["third"]
        );
        assert_eq!(
            versions_to_disable(&versions, "newest", 1, now),
            vec!["second", "third"]
        );
    }

    #[test]
    fn the_version_just_published_is_kept_whatever_its_timestamp() {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0).unwrap();
        // Written in the same second as two expired ones.
        let versions = [
            v("old1", 9, Some(9), true),
            v("current", 9, Some(11), true),
            v("old2", 9, Some(9), true),
        ];
        assert_eq!(
            versions_to_disable(&versions, "current", 1, now),
            vec!["old1", "old2"]
        );
    }
}
