//! Consumers of the published bundle: `credential_process`, `export`, profile sync,
//! `launchSettings.json` (issue #5).
