//! End-to-end tests: a real `stsbridge` process against the test bed's real protocol servers
//! (Key Vault over TLS with the bearer challenge, the managed-identity endpoint, STS via moto).
//!
//! Where new tests go:
//! - `azure_consumers`: refreshing App Service apps' Key Vault references after a publish (ARM);
//! - `consumers`: credential-process, export, sync-profile, write-launch-settings, show (with the AWS CLI);
//! - `http_rotate`: the HTTP function (POST/GET, force, statuses, the body shapes);
//! - `targets`: many targets from a targets file (selection, per-target outcomes, pacing);
//! - `timer_rotate`: the timer function;
//! - `side_work`: what comes after the answer (bookkeeping, hygiene) and the start-up warm-up;
//! - `source_forms`: every way to give the IAM user's key;
//! - `sso`: `stsbridge sso login`/`credential-process` against the IAM Identity Center fakes, with the AWS CLI;
//! - `source_key`: rotating the IAM user's own key (create, store, verify, deactivate, delete; crashes);
//! - `endpoint`: `serve-credentials`, `exec` and `--web-identity` (issue #19), with the AWS CLI,
//!   boto3 and the AWS SDK for Rust configured only through the container-provider variables;
//! - `docs`: the shell blocks of README.md and docs/ marked `<!-- testbed: runs -->`, run;
//! - `failures`: upstream refusals, unreachable services, partial publish, bad settings, bad input;
//! - `lease`: one rotation across instances: `serve` processes sharing a storage account (Azurite)
//!   and its blob lease per target;
//! - `lifecycle`: process start, readiness, SIGTERM, `check`;
//! - `modes`: assume-role and web-identity;
//! - `package`: the deployment package, unpacked and run as the Functions host runs it;
//! - `properties`: property tests of the parsers of outside input (never panic);
//! - `revoke`: `stsbridge revoke`: deny policies (parsed back from moto), re-issue, old sets dead, prune;
//!   nothing from the vault taken on trust (issue #26: proven users, bounded cut-offs), `--function-url`;
//! - `roles_anywhere`: roles-anywhere mode and `--roles-anywhere`, signed by a non-exportable
//!   Key Vault key, against the test bed's Roles Anywhere endpoint (issues #30, #31);
//! - `reliability`: single flight, instances, retries, budget, expiry warnings, version hygiene;
//! - `secret_search`: that every test here ends with a secret search (a check of the sources);
//! - `security`: the security reviews' findings (issues #15, #26): crafted bundles, lost answers, live
//!   markers, forced triggers, bad local settings, real readers of every output format, sets
//!   claiming a life no AWS session has.

mod azure_consumers;
mod consumers;
mod docs;
mod endpoint;
mod failures;
mod http_rotate;
mod lease;
mod lifecycle;
mod modes;
mod package;
mod properties;
mod reliability;
mod revoke;
mod roles_anywhere;
mod secret_search;
mod security;
mod side_work;
mod source_forms;
mod source_key;
mod sso;
mod support;
mod targets;
mod timer_rotate;
