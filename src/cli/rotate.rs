//! `stsbridge rotate` (one rotation, printing the JSON report) and `stsbridge check` (the
//! settings validated and what a rotation would do, minting nothing).

use std::process::ExitCode;

use crate::rotation::fleet::{summarize, Fleet};
use crate::rotation::{Outcome, Request, RotationService};
use crate::settings::{Settings, SourceValue};
use crate::targets::{self as targets_file, TargetsConfig};

fn invalid(e: crate::settings::SettingsErrors) -> anyhow::Error {
    let lines: Vec<String> =
        e.0.iter()
            .map(|e| format!("  {}: {}", e.setting, e.message))
            .collect();
    anyhow::anyhow!("invalid settings:\n{}", lines.join("\n"))
}

pub fn load_targets() -> anyhow::Result<TargetsConfig> {
    targets_file::load(&std::env::vars().collect()).map_err(invalid)
}

/// The outcome with the run's side work, which the CLI waits for before it prints.
fn with_side_work(outcome: &Outcome, service: &RotationService) -> Outcome {
    let mut outcome = outcome.as_ref().clone();
    if let Ok(report) = &mut outcome {
        report.side_work = service.last_side_work();
    }
    std::sync::Arc::new(outcome)
}

pub async fn rotate(
    force: bool,
    rotate_source_key: bool,
    target: &[String],
) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(true);
    let config = load_targets()?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let request = Request {
        force: force || rotate_source_key,
        rotate_source_key,
        ..Request::default()
    };
    let fleet = Fleet::new(config).await?;
    let selection = (!target.is_empty()).then(|| target.join(","));
    if let Some(service) = fleet.single() {
        if selection
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("default"))
        {
            anyhow::bail!("--target needs a targets file (StsbridgeTargetsFile or targets.json); without one the only target is the app settings");
        }
        let outcome = fleet.rotate_one(service, request).await;
        service.settle().await;
        let outcome = with_side_work(&outcome, service);
        return match outcome.as_ref() {
            Ok(report) => {
                println!("{}", serde_json::to_string_pretty(report)?);
                Ok(ExitCode::SUCCESS)
            }
            Err(failure) => {
                println!("{}", serde_json::to_string_pretty(&failure.body())?);
                eprintln!("stsbridge: {failure}");
                Ok(ExitCode::from(1))
            }
        };
    }
    let selected = fleet
        .select(selection.as_deref())
        .map_err(anyhow::Error::msg)?;
    let mut outcomes = fleet.rotate(&selected, request).await;
    fleet.settle().await;
    for (t, service) in outcomes.iter_mut().zip(&selected) {
        t.outcome = with_side_work(&t.outcome, service);
    }
    let (ok, body, lines) = summarize(&outcomes);
    println!("{}", serde_json::to_string_pretty(&body)?);
    for line in lines {
        eprintln!("stsbridge: {line}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn check() -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(false);
    let config = load_targets()?;
    println!("settings are valid");
    if let Some(file) = &config.file {
        println!(
            "targets:   {} from {} (at most {} at once; Key Vault writes paced to {} per 10 s per vault)",
            config.targets.len(),
            file.display(),
            config.max_concurrent,
            config.writes_per_10s
        );
    }
    let implicit = config.implicit;
    for s in config.targets {
        if !implicit {
            println!();
            println!("target:    {}", s.name.as_deref().unwrap_or("?"));
        }
        let code = check_target(s).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What is refreshed after a publish, and how old each kind of Azure consumer's credentials can
/// get with these settings.
fn print_consumers(s: &Settings) {
    use crate::schedule::human;
    for app in &s.refresh_apps {
        println!(
            "refreshes: the Key Vault references of app {} ({app}) after every publish, through {}",
            app.short(),
            s.arm_endpoint
        );
    }
    let lifetime = std::time::Duration::from_secs(s.session_duration_secs);
    let timer = s.timer_interval;
    let given = if s.timer_schedule_given {
        "TimerSchedule"
    } else {
        "hourly: TimerSchedule is not set here"
    };
    println!(
        "consumers: how old the credentials an Azure consumer holds can get (the timer runs at least every {} ({given}); credentials live {}):",
        human(timer),
        human(lifetime)
    );
    for row in crate::staleness::table(timer, !s.refresh_apps.is_empty()) {
        let worst = row.worst.map(human).unwrap_or_else(|| "unbounded".into());
        let verdict = match row.expired_for(lifetime) {
            None => "fresh".to_string(),
            Some(d) if d == std::time::Duration::MAX => "can hold expired credentials".to_string(),
            Some(d) => format!("can hold expired credentials for up to {}", human(d)),
        };
        println!(
            "           {:<54} re-reads {:<52} up to {worst:<10} {verdict}",
            row.consumer, row.rereads
        );
    }
    let session_token = matches!(s.mode, crate::settings::Mode::SessionToken { .. });
    if let Some(w) = crate::staleness::app_service_warning(
        timer,
        lifetime,
        !s.refresh_apps.is_empty(),
        session_token,
    ) {
        println!("warning:   {w}");
    }
}

pub async fn check_target(s: Settings) -> anyhow::Result<ExitCode> {
    println!("mode:      {}", s.mode.name());
    if let Some(source) = s.mode.source() {
        for (setting, value) in [
            (source.settings.0, &source.access_key_id),
            (source.settings.1, &source.secret_access_key),
        ] {
            let describe = match value {
                SourceValue::Plain(_) => "a value in the setting".to_string(),
                other => other.describe(),
            };
            println!("source:    {setting}: {describe}");
        }
    }
    match (&s.mode, s.mode.role()) {
        (crate::settings::Mode::RolesAnywhere(ra), Some(role)) => {
            let session = match &ra.role_session_name {
                Some(name) => format!("session name {name}: the profile must accept it"),
                None => "session name: the certificate's serial number, as AWS sets it".into(),
            };
            println!("role:      {} ({session})", role.arn);
            println!("anchor:    {}", ra.trust_anchor_arn);
            println!("profile:   {}", ra.profile_arn);
            println!("endpoint:  {} (region {})", ra.endpoint, ra.region);
        }
        (_, Some(role)) => println!(
            "role:      {} (session name {})",
            role.arn, role.session_name
        ),
        _ => {}
    }
    println!("identity:  {}", s.identity.describe());
    println!(
        "sts:       region {}{}",
        s.region,
        s.sts_endpoint
            .as_deref()
            .map(|e| format!(", endpoint {e}"))
            .unwrap_or_default()
    );
    for t in s.targets.all() {
        println!("publishes: {t}");
    }
    match &s.lease_store {
        Some(store) => println!(
            "lease:     {}; blob {}/{} for {} s, renewed while a run lasts",
            store.describe(),
            crate::azure::lease::CONTAINER,
            crate::rotation::lease::blob_name(&s),
            s.lease_duration.as_secs()
        ),
        None => println!(
            "lease:     none (AzureWebJobsStorage is not set): rotations are not coordinated across instances"
        ),
    }
    println!(
        "duration:  {} s; a set younger than {} s is fresh",
        s.session_duration_secs,
        s.min_rotation_interval.as_secs()
    );
    for w in &s.warnings {
        println!("warning:   {w}");
    }
    print_consumers(&s);
    if let crate::settings::Mode::RolesAnywhere(ra) = &s.mode {
        // Roles Anywhere: the certificate is read (never its private key, which cannot leave
        // the vault) and described, since the AWS side's trust anchor and conditions must match it.
        let certificate = ra.certificate.clone();
        let chain = match &ra.chain {
            crate::settings::ChainSource::CertificateSecret => {
                "intermediates from the certificate's own secret (PEM)".to_string()
            }
            crate::settings::ChainSource::None => {
                "no intermediates (RolesAnywhereChain=none)".into()
            }
            crate::settings::ChainSource::Secret(secret) => format!("intermediates from {secret}"),
        };
        let service = RotationService::new(s).await?;
        match service.roles_anywhere_certificate().await {
            Ok(Some(c)) => {
                let now = chrono::Utc::now();
                println!("certificate: {certificate} (version {})", c.vault.version);
                println!("           subject {}", c.info.subject);
                println!("           issuer  {}", c.info.issuer);
                println!(
                    "           serial  {} (the credential scope's)",
                    c.info.serial
                );
                println!(
                    "           valid   {} to {} ({} days left)",
                    c.info
                        .not_before
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    c.info
                        .not_after
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    c.info.days_left(now)
                );
                println!(
                    "           key     {}/keys/{}/{} signs with {} ({}); it never leaves the vault",
                    certificate.vault_origin(),
                    c.vault.key_name,
                    c.vault.key_version,
                    c.algorithm.key_vault_name(),
                    c.algorithm.aws_name()
                );
                println!("           chain   {chain}: {} sent", c.chain.len());
                println!("           the app's identity needs Key Vault Certificate User on the certificate and Key Vault Crypto User on its key (sign); nothing may export it");
                if c.info.days_left(now) < 30 {
                    println!("warning:   the certificate expires in {} days: renew it (a Key Vault certificate policy can renew it automatically)", c.info.days_left(now));
                }
            }
            Ok(None) => {}
            Err(f) => {
                eprintln!("stsbridge: {f}");
                return Ok(ExitCode::from(1));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(s.mode, crate::settings::Mode::WebIdentity { .. }) {
        // The one network call `check` makes: the token's claims are what the AWS side must
        // trust, and users need them to write the trust policy. The token itself is not shown.
        let service = RotationService::new(s).await?;
        match service.web_identity_claims().await {
            Ok(Some(claims)) => {
                println!("token:     an Entra ID token was issued; AWS will see these claims:");
                for (k, v) in claims.as_object().into_iter().flatten() {
                    println!(
                        "           {k} = {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    );
                }
                println!("           the IAM OIDC provider's URL must equal iss; the role's trust policy should match aud and sub");
            }
            Ok(None) => {}
            Err(f) => {
                eprintln!("stsbridge: {f}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
