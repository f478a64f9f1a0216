//! The sign-in use case: which access token to use, when to refresh it, when to ask the user,
//! and the role credentials it buys.
//!
//! The order is the AWS CLI's, so the two tools can share one sign-in (awscli v2
//! `botocore/utils.py` `SSOTokenFetcher`, botocore `tokens.py` `SSOTokenProvider`):
//! 1. the cached token, while it has more than 15 minutes left;
//! 2. otherwise, when the cached token carries a refresh token and its client registration is
//!    still valid (sso-sessions with registration scopes), the refresh-token grant;
//! 3. otherwise — `sso login` only — a new device authorization: the cached client registration
//!    (or a new `RegisterClient`), `StartDeviceAuthorization`, the code shown to the user, and
//!    `CreateToken` polled by [`super::poll`]. `credential-process` never prompts: it reports
//!    that a sign-in is needed.
//!
//! Every token obtained is written to the cache in the AWS CLI's format, registration included,
//! so the CLI (and the next `stsbridge` run) can use and refresh it. A cache that cannot be
//! written is a warning, not a failure: the token in hand still works for this run.

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::SecretString;

use super::cache::{self, Cache, CachedToken, Read, Registration};
use super::client::{Grant, Oidc, Portal};
use super::config::SsoSettings;
use super::poll::{poll, Clock, Ended, PollError, Schedule};
use super::prompt::Prompter;
use crate::aws::AwsError;
use crate::secrets::SessionCredentials;

/// How the access token in hand was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obtained {
    /// From the cache, unchanged.
    Cached,
    /// With the refresh-token grant.
    Refreshed,
    /// With a new device authorization the user approved.
    Authorized,
}

/// An access token, good for at least this run.
pub struct Token {
    pub access_token: SecretString,
    pub expires_at: DateTime<Utc>,
    pub obtained: Obtained,
}

/// One sign-in's collaborators.
pub struct Signer<'a> {
    pub settings: &'a SsoSettings,
    pub cache: &'a Cache,
    pub oidc: &'a Oidc,
    pub clock: &'a dyn Clock,
    pub ui: &'a dyn Prompter,
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The token the cache would hold for `grant`, obtained at `now` with `registration`.
fn to_cached(
    s: &SsoSettings,
    grant: Grant,
    registration: &Registration,
    now: DateTime<Utc>,
) -> CachedToken {
    CachedToken {
        start_url: Some(s.start_url.clone()),
        region: Some(s.region.clone()),
        access_token: grant.access_token,
        expires_at: now + chrono::Duration::seconds(i64::from(grant.expires_in.max(0))),
        client_id: Some(registration.client_id.clone()),
        client_secret: Some(registration.client_secret.clone()),
        registration_expires_at: Some(registration.expires_at),
        refresh_token: grant.refresh_token,
    }
}

impl Signer<'_> {
    fn token_key(&self) -> String {
        cache::token_key(
            &self.settings.start_url,
            self.settings.session_name.as_deref(),
        )
    }

    fn registration_key(&self) -> String {
        cache::registration_key(
            &self.settings.start_url,
            &self.settings.region,
            self.settings.registration_scopes.as_deref(),
            self.settings.session_name.as_deref(),
        )
    }

    /// What to call the sign-in in messages.
    fn describe(&self) -> String {
        match &self.settings.session_name {
            Some(s) => format!("sso-session '{s}' ({})", self.settings.start_url),
            None => self.settings.start_url.clone(),
        }
    }

    /// The cached token for these settings, if there is a readable one for this start URL.
    fn cached(&self) -> Option<CachedToken> {
        match self.cache.read_token(&self.token_key()) {
            Read::Found(t) => {
                if t.start_url
                    .as_deref()
                    .is_some_and(|u| u != self.settings.start_url)
                {
                    self.ui.note(&format!(
                        "the cached sign-in for {} was for another start URL; it is not used",
                        self.describe()
                    ));
                    return None;
                }
                Some(t)
            }
            Read::Absent => None,
            Read::Unreadable(why) => {
                self.ui.note(&format!("ignoring the cached sign-in: {why}"));
                None
            }
        }
    }

    fn save(&self, token: &CachedToken) {
        if let Err(e) = self.cache.write_token(&self.token_key(), token) {
            self.ui.note(&format!(
                "the sign-in works for this run but could not be cached: {e:#}"
            ));
        }
    }

    /// The refresh-token grant, when the cached token allows it. `None` when it does not, or
    /// when the service refuses (the caller falls back, as the AWS CLI does).
    async fn refresh(&self, cached: &CachedToken) -> Option<Token> {
        let now = self.clock.now();
        let (registration, refresh_token) = cached.refresh_with(now)?;
        match self.oidc.refresh(&registration, &refresh_token).await {
            Ok(grant) => {
                let token = to_cached(self.settings, grant, &registration, now);
                self.save(&token);
                self.ui.note(&format!(
                    "refreshed the sign-in to {}; valid until {}",
                    self.describe(),
                    when(token.expires_at)
                ));
                Some(Token {
                    access_token: token.access_token,
                    expires_at: token.expires_at,
                    obtained: Obtained::Refreshed,
                })
            }
            Err(e) => {
                self.ui.note(&format!(
                    "the cached sign-in could not be refreshed ({}); it needs a new sign-in",
                    e.code()
                ));
                None
            }
        }
    }

    /// A token without asking the user: cached, refreshed, or the cached one while it has not
    /// expired (botocore uses it until then too). For `credential-process`.
    pub async fn silent(&self) -> anyhow::Result<Token> {
        let hint = self.settings.login_hint();
        let Some(cached) = self.cached() else {
            anyhow::bail!(
                "not signed in to {} (no cached sign-in in {}): run `{hint}` first",
                self.describe(),
                self.cache.dir.display()
            );
        };
        let now = self.clock.now();
        if cached.is_fresh(now) {
            return Ok(Token {
                access_token: cached.access_token,
                expires_at: cached.expires_at,
                obtained: Obtained::Cached,
            });
        }
        if let Some(token) = self.refresh(&cached).await {
            return Ok(token);
        }
        if cached.is_unexpired(now) {
            return Ok(Token {
                access_token: cached.access_token,
                expires_at: cached.expires_at,
                obtained: Obtained::Cached,
            });
        }
        anyhow::bail!(
            "the sign-in to {} expired at {}: run `{hint}` to sign in again",
            self.describe(),
            when(cached.expires_at)
        )
    }

    /// A token for `sso login`: cached or refreshed unless `force`, else a device authorization.
    pub async fn interactive(&self, force: bool) -> anyhow::Result<Token> {
        if !force {
            if let Some(cached) = self.cached() {
                if cached.is_fresh(self.clock.now()) {
                    self.ui.note(&format!(
                        "using the cached sign-in to {}; valid until {}",
                        self.describe(),
                        when(cached.expires_at)
                    ));
                    return Ok(Token {
                        access_token: cached.access_token,
                        expires_at: cached.expires_at,
                        obtained: Obtained::Cached,
                    });
                }
                if let Some(token) = self.refresh(&cached).await {
                    return Ok(token);
                }
            }
        }
        self.authorize().await
    }

    /// The client registration: the cached one while usable, unless `renew`.
    async fn registration(&self, renew: bool) -> anyhow::Result<(Registration, bool)> {
        let key = self.registration_key();
        if !renew {
            match self.cache.read_registration(&key) {
                Read::Found(r) if r.is_usable(self.clock.now()) => return Ok((r, true)),
                Read::Unreadable(why) => self
                    .ui
                    .note(&format!("ignoring the cached client registration: {why}")),
                _ => {}
            }
        }
        let name = match &self.settings.session_name {
            Some(s) => format!("stsbridge-client-{s}"),
            None => format!("stsbridge-client-{}", self.clock.now().timestamp()),
        };
        let registration = self
            .oidc
            .register(&name, self.settings.registration_scopes.as_deref())
            .await
            .context("registering stsbridge with IAM Identity Center")?;
        if let Err(e) = self.cache.write_registration(&key, &registration) {
            self.ui.note(&format!(
                "the client registration could not be cached: {e:#}"
            ));
        }
        self.ui.note(&format!(
            "registered this device with IAM Identity Center (the registration is valid until {})",
            when(registration.expires_at)
        ));
        Ok((registration, false))
    }

    /// A new device authorization, approved by the user in a browser.
    async fn authorize(&self) -> anyhow::Result<Token> {
        let s = self.settings;
        self.ui.note(&format!(
            "signing in to {} (region {})",
            self.describe(),
            s.region
        ));
        let (mut registration, reused) = self.registration(false).await?;
        let device = match self
            .oidc
            .start_device_authorization(&registration, &s.start_url)
            .await
        {
            // A cached registration the service no longer knows (deleted, or another region's):
            // register again once, as a fresh one cannot have that problem.
            Err(e) if reused && e.code() == "InvalidClientException" => {
                self.ui.note(
                    "IAM Identity Center no longer accepts the cached client registration; registering again",
                );
                registration = self.registration(true).await?.0;
                self.oidc
                    .start_device_authorization(&registration, &s.start_url)
                    .await
            }
            other => other,
        }
        .context("starting the sign-in")?;

        let mut schedule = Schedule::new(device.interval, device.expires_in, self.clock.now());
        let lifetime_minutes = device.expires_in.max(60) / 60;
        let outcome = poll(
            &mut schedule,
            self.clock,
            || self.oidc.poll_device(&registration, &device),
            || self.ui.device_code(&device),
            |interval| {
                self.ui.note(&format!(
                    "IAM Identity Center asked to poll more slowly; now every {} s",
                    interval.as_secs()
                ))
            },
        )
        .await;
        let hint = s.login_hint();
        let grant = match outcome {
            Ok(grant) => grant,
            Err(PollError::Ended(Ended::Expired)) => anyhow::bail!(
                "the sign-in code {} expired before it was approved (ExpiredTokenException; a code is valid for about {lifetime_minutes} min): run `{hint}` again and approve it in the browser in time",
                device.user_code
            ),
            Err(PollError::Ended(Ended::Denied)) => anyhow::bail!(
                "the sign-in with code {} was denied in the browser (AccessDeniedException); nothing was cached: run `{hint}` again to retry",
                device.user_code
            ),
            Err(PollError::Failed(e)) => {
                return Err(e).context("waiting for the sign-in to be approved")
            }
        };
        let token = to_cached(s, grant, &registration, self.clock.now());
        self.save(&token);
        self.ui.note(&format!(
            "signed in to {}; valid until {} (cached in {}, shared with the AWS CLI)",
            self.describe(),
            when(token.expires_at),
            self.cache.dir.display()
        ));
        Ok(Token {
            access_token: token.access_token,
            expires_at: token.expires_at,
            obtained: Obtained::Authorized,
        })
    }
}

/// `GetRoleCredentials`'s errors, said for a user.
fn explain_portal(e: AwsError, settings: &SsoSettings, account: &str, role: &str) -> anyhow::Error {
    let code = e.code().to_string();
    match code.as_str() {
        "ForbiddenException" | "ResourceNotFoundException" => anyhow::anyhow!(
            "IAM Identity Center gives you no role '{role}' in account {account} ({code}): check the account id and role name (the AWS access portal lists your roles)"
        ),
        "UnauthorizedException" => anyhow::anyhow!(
            "IAM Identity Center no longer accepts the sign-in ({code}): run `{} --force` to sign in again",
            settings.login_hint()
        ),
        _ => anyhow::Error::new(e).context("getting the role credentials"),
    }
}

/// `sso login`: a token (asking the user when needed), then the role's credentials. A cached or
/// refreshed token the portal refuses (revoked, signed out elsewhere) gets one new device
/// authorization.
pub async fn login(
    signer: &Signer<'_>,
    portal: &Portal,
    force: bool,
) -> anyhow::Result<(Token, SessionCredentials)> {
    let (account, role) = signer.settings.role()?;
    let token = signer.interactive(force).await?;
    match portal
        .role_credentials(&token.access_token, account, role)
        .await
    {
        Ok(c) => Ok((token, c)),
        Err(e) if e.code() == "UnauthorizedException" && token.obtained != Obtained::Authorized => {
            signer.ui.note(
                "IAM Identity Center no longer accepts the cached sign-in (UnauthorizedException); signing in again",
            );
            let token = signer.interactive(true).await?;
            let c = portal
                .role_credentials(&token.access_token, account, role)
                .await
                .map_err(|e| explain_portal(e, signer.settings, account, role))?;
            Ok((token, c))
        }
        Err(e) => Err(explain_portal(e, signer.settings, account, role)),
    }
}

/// `sso credential-process`: the role's credentials from the existing sign-in, never a prompt.
pub async fn credentials(
    signer: &Signer<'_>,
    portal: &Portal,
) -> anyhow::Result<SessionCredentials> {
    let (account, role) = signer.settings.role()?;
    let token = signer.silent().await?;
    portal
        .role_credentials(&token.access_token, account, role)
        .await
        .map_err(|e| match e.code() {
            "UnauthorizedException" => anyhow::anyhow!(
                "IAM Identity Center no longer accepts the sign-in to {} (UnauthorizedException): run `{} --force` to sign in again",
                signer.describe(),
                signer.settings.login_hint()
            ),
            _ => explain_portal(e, signer.settings, account, role),
        })
}
