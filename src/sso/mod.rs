//! `stsbridge sso`: a developer's sign-in through AWS IAM Identity Center (SSO), feeding the same
//! outputs as the Key Vault bundle (issue #11; it replaces seed 002's PowerShell script).
//!
//! The flow, as the AWS CLI runs it: settings from flags or `~/.aws/config` ([`config`]) → an
//! access token from the shared cache, a refresh-token grant, or a new device authorization
//! ([`login`], over [`client`] and [`poll`]; the user sees [`prompt`]) → `GetRoleCredentials` →
//! the consumers' writers ([`crate::consumers`]).
//!
//! # Layout
//! - [`config`]: the AWS config file read as botocore reads it; profile → [`config::SsoSettings`].
//! - [`cache`]: `~/.aws/sso/cache`, file names and JSON exactly as the AWS CLI writes them.
//! - [`client`]: the SSO OIDC and SSO portal adapters (`aws-sdk-ssooidc`, `aws-sdk-sso`).
//! - [`poll`]: the device-code polling rules (pure state machine + driver with a clock).
//! - [`login`]: the use case: which token to use, when to refresh, when to ask the user.
//! - [`prompt`]: what the user sees on stderr, and opening the browser.

pub mod cache;
pub mod client;
pub mod config;
pub mod login;
pub mod poll;
pub mod prompt;
