//! Hostile credential values for the writers' property tests (issue #15 M1).
//!
//! The writers get credentials that passed [`crate::secrets::SessionCredentials::new`], so none
//! of these reach them in use; the tests build credentials directly to prove that each writer is
//! safe on its own (a value either reads back exactly as given, or is refused).

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use secrecy::SecretString;

use crate::secrets::SessionCredentials;

/// Characters that mean something to one of the formats written.
const DANGEROUS: &[&str] = &[
    "'",
    "\"",
    "\n",
    "\r",
    "\r\n",
    "[",
    "]",
    "=",
    ":",
    "$",
    "`",
    "\\",
    "#",
    ";",
    " ",
    "\t",
    "\u{2018}",
    "\u{2019}",
    "\u{201A}",
    "\u{201B}",
    "\0",
    "$(id)",
    "'; calc; '",
    "\n[bridged]\ncredential_process = sh -c id\n",
    "${HOME}",
    "\u{feff}",
    "\u{85}",
    "\u{2028}",
];

/// A value built from dangerous pieces and ordinary text, or any string at all.
pub fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(DANGEROUS).prop_map(str::to_string),
                "[A-Za-z0-9+/=]{0,8}",
            ],
            0..12
        )
        .prop_map(|parts| parts.concat()),
        any::<String>(),
    ]
}

/// Credentials holding hostile values (built directly, bypassing the parse-time checks).
pub fn credentials() -> impl Strategy<Value = SessionCredentials> {
    (value(), value(), value()).prop_map(|(id, secret, token)| SessionCredentials {
        access_key_id: id,
        secret_access_key: SecretString::from(secret),
        session_token: SecretString::from(token),
        expiration: Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap(),
    })
}
