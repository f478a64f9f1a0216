//! stsbridge keeps fresh, short-lived AWS credentials in Azure Key Vault.
//!
//! The flow: the Functions host POSTs an invocation → [`functions`] parses the envelope → the
//! [`rotation`] service reads the IAM user's key ([`azure::keyvault`], or a plain setting), mints
//! temporary credentials with STS ([`aws::sts`]), verifies them, and publishes them back to Key
//! Vault → [`functions`] answers with an envelope. Consumers ([`consumers`]) read the published
//! bundle for the AWS CLI and SDKs.
//!
//! # Layout
//! Imports run one way: entry ([`cli`], [`functions`]) → use cases ([`rotation`], [`revoke`],
//! [`consumers`], [`sso`]) → adapters ([`aws`], [`azure`]) and the formats ([`secrets`], [`tags`]). [`settings`]
//! and [`targets`] are read by the entry points and build the plain values the rest takes.
//! - [`cli`]: every command, one module per command group (`main.rs` only parses and calls it).
//! - [`functions`]: the custom-handler protocol (envelope, router, one module per function).
//! - [`settings`]: every app setting, declared once in a table, read and validated once; errors
//!   name their setting. [`targets`]: the optional targets file.
//! - [`rotation`]: the use case, one file per stage: read → decide (pure) → mint, verify →
//!   publish → report; single flight, version hygiene, the IAM user's key rotation.
//! - [`aws`]: the STS and IAM adapters.
//! - [`azure`]: identity selection, the Key Vault adapter, Key Vault reference parsing.
//! - [`secrets`]: the types that hold key material, and the bundle format.
//! - [`certificate`]: X.509 certificates as Roles Anywhere mode reads them (serial, names, validity).
//! - [`tags`]: the names of the tags on published secrets (the rest of the published format).
//! - [`consumers`]: `credential_process`, `export`, profile and `launchSettings.json` writers.
//! - [`revoke`]: `stsbridge revoke`: a deny policy on every principal the sets act as (with the
//!   operator's AWS credentials, never the minting ones), then a forced re-issue.
//! - [`consumers`]: `credential_process`, `export`, profile and `launchSettings.json` writers;
//!   the local credentials endpoint (`serve-credentials`, `exec --ecs-server`) and its sources,
//!   `--web-identity` federation without a vault among them.
//! - [`roles_anywhere`]: IAM Roles Anywhere with a Key Vault key (the certificate kept, every
//!   request signed by the vault), shared by the rotation's roles-anywhere mode and the
//!   consumers' `--roles-anywhere`.
//! - [`sso`]: `stsbridge sso`: a developer's IAM Identity Center sign-in into those same writers.
//! - [`logging`]: where log lines go (stdout/stderr) and which SDK logs are capped.
//! - [`net`]: which hosts count as this machine (loopback), for checks relaxed only there.
//! - [`redact`]: key material taken out of the services' error messages (both clouds use it).
//! - [`staleness`]: how old an Azure consumer's credentials can get (for `check`).
//! - [`schedule`]: `TimerSchedule` read as NCRONTAB (the timer interval, for `check`).

// `rotation::Failure` is a large error type; it is the cold path of an hourly operation, and
// boxing it would add noise to every `?` for no measurable gain.
#![allow(clippy::result_large_err)]

pub mod aws;
pub mod azure;
pub mod certificate;
pub mod cli;
pub mod consumers;
pub mod functions;
pub mod logging;
pub mod net;
pub mod redact;
pub mod revoke;
pub mod roles_anywhere;
pub mod rotation;
pub mod schedule;
pub mod secrets;
pub mod settings;
pub mod sso;
pub mod staleness;
pub mod tags;
pub mod targets;
