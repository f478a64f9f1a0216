//! `testbed up`: starts the local Key Vault, managed-identity endpoint, STS front and moto, the
//! IAM Identity Center fakes and IAM Roles Anywhere; prints the settings a handler needs, the
//! endpoints `stsbridge sso` needs and a ready Roles Anywhere configuration (trust anchor, profile,
//! role, and vault certificate `stsbridge-demo` with a non-exportable P-256 key), and runs until
//! Ctrl-C (or SIGTERM), then stops everything.
//!
//! Usage: `testbed up [--env-file PATH] [--settings-file PATH] [--latency-ms N] [--storage]
//! [--consumer-app NAME]`
//! - `--env-file`: also write the settings (and the SSO endpoints) as `export K='V'` lines (for
//!   `source`); they include `HTTPS_PROXY`/`NO_PROXY`, the bed's proxy that tunnels the vault's
//!   name (`kv.vault.test`) so the challenge check stays on (https traffic to anywhere else is
//!   refused by it: use that shell for the test bed only);
//! - `--settings-file`: also write them as a Core Tools `local.settings.json`;
//! - `--latency-ms`: add this latency to every request to every server (Key Vault, the identity
//!   endpoints, STS/IAM, Roles Anywhere, Resource Manager, IAM Identity Center, storage);
//! - `--storage`: also start Azurite (the Azure Storage emulator) as `AzureWebJobsStorage`, so
//!   rotations take the rotation lease as in Azure;
//! - `--consumer-app NAME`: register an App Service app NAME in the Resource Manager fake, whose
//!   Key Vault references read the published secrets, and set `RefreshAppSettingsOf` to it, so
//!   every new set is pushed to it as in Azure (docs/consumers-azure.md).

use std::time::Duration;

use anyhow::{bail, Context};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("testbed: {e:#}");
        std::process::exit(1);
    }
}

fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("up") {
        bail!("usage: testbed up [--env-file PATH] [--settings-file PATH] [--latency-ms N] [--storage] [--consumer-app NAME]");
    }
    let (mut env_file, mut settings_file, mut latency) = (None, None, 0u64);
    let (mut storage, mut consumer_app) = (false, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--env-file" => env_file = Some(value()?),
            "--settings-file" => settings_file = Some(value()?),
            "--latency-ms" => latency = value()?.parse().context("--latency-ms")?,
            "--storage" => storage = true,
            "--consumer-app" => consumer_app = Some(value()?),
            other => bail!("unknown option {other}"),
        }
    }
    let bed = testbed::TestBed::start_with(testbed::Options {
        storage,
        ..Default::default()
    })
    .await?;
    let ra = bed
        .setup_roles_anywhere("stsbridge-demo", testbed::KeySpec::EcP256)
        .await
        .context("the Roles Anywhere demo configuration")?;
    bed.set_latency(Duration::from_millis(latency));
    let mut env = bed.env();
    if let Some(name) = &consumer_app {
        let id = format!(
            "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg-demo/providers/Microsoft.Web/sites/{name}"
        );
        bed.arm.add_app(
            &id,
            &[("AWS_CREDENTIALS", "AwsSessionCredentials", "Initialized")],
        );
        env.push(("RefreshAppSettingsOf".into(), id));
    }
    let export = |vars: &[(String, String)]| -> String {
        vars.iter()
            .map(|(k, v)| format!("export {k}={}\n", shell_quote(v)))
            .collect()
    };
    let lines = export(&env);
    let sso_lines = export(&bed.sso_env());
    if let Some(path) = &settings_file {
        let mut values = serde_json::Map::new();
        for (k, v) in &env {
            values.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        values.insert("FUNCTIONS_WORKER_RUNTIME".into(), "custom".into());
        // Core Tools needs storage for the timer: the bed's Azurite with --storage, else the
        // developer's own (`azurite` on its default ports).
        values
            .entry("AzureWebJobsStorage")
            .or_insert_with(|| "UseDevelopmentStorage=true".into());
        values.insert("TimerSchedule".into(), "0 0 * * * *".into());
        let doc = serde_json::json!({"IsEncrypted": false, "Values": values});
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {path}"))?;
    }
    if let Some(path) = &env_file {
        // Written last: its appearance tells a waiting script that everything is up.
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, format!("{lines}{sso_lines}"))
            .with_context(|| format!("writing {tmp}"))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {path}"))?;
    }
    println!("# stsbridge test bed is up (Ctrl-C stops it). Settings for a handler:");
    print!("{lines}");
    println!(
        "# The vault is {} through the proxy above (HTTPS_PROXY): the challenge check stays on.",
        bed.vault_url()
    );
    println!(
        "# IAM user {} in moto; its key is stored as {} / {} in the vault.",
        bed.source.user_name,
        testbed::SOURCE_KEY_ID_SECRET,
        testbed::SOURCE_SECRET_KEY_SECRET
    );
    println!("# IAM Identity Center (SSO OIDC and portal fakes) for `stsbridge sso`:");
    print!("{sso_lines}");
    println!(
        "# stsbridge sso login --start-url {} --sso-region us-east-1 --account-id {} --role-name {}",
        testbed::sso::START_URL,
        testbed::sso::ACCOUNT_ID,
        testbed::sso::ROLE_NAME
    );
    println!(
        "# approve its code at {}/device (or: curl -d user_code=CODE {}/device)",
        bed.sso_oidc_url(),
        bed.sso_oidc_url()
    );
    println!(
        "# IAM Roles Anywhere (AWS_ENDPOINT_URL_ROLESANYWHERE above): vault certificate {} (a non-exportable P-256 key)",
        ra.certificate.name
    );
    println!("#   trust anchor {}", ra.trust_anchor_arn);
    println!("#   profile      {}", ra.profile_arn);
    println!("#   role         {}", ra.role_arn);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    drop(bed);
    Ok(())
}
