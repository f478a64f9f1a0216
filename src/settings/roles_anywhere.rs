//! Roles Anywhere mode's settings (issue #30): the trust anchor, the profile, the role, the Key
//! Vault certificate whose key signs, where its intermediates come from, and the endpoint.

use url::Url;

use super::reader::Reader;
use super::{ChainSource, RoleSettings, RolesAnywhereSettings};
use crate::aws::names::rolesanywhere_arn_region;
use crate::azure::reference::{looks_like_reference, parse_certificate, parse_reference};

/// Everything roles-anywhere mode needs; `None` after errors (each one recorded).
pub(super) fn read(
    r: &mut Reader,
    role: Option<RoleSettings>,
    home: &Url,
    suffix: &str,
) -> Option<RolesAnywhereSettings> {
    let arn = |r: &mut Reader, setting: &'static str, kind: &str, example: &str| match r
        .get(setting)
    {
        None => {
            r.error(
                setting,
                format!("is required in roles-anywhere mode: the ARN of the {example}"),
            );
            None
        }
        Some(v) => match rolesanywhere_arn_region(v, kind) {
            Some(region) => Some((v.to_string(), region.to_string())),
            None => {
                r.error(
                    setting,
                    format!("'{v}' is not a Roles Anywhere {example} ARN like arn:aws:rolesanywhere:REGION:123456789012:{kind}/ID"),
                );
                None
            }
        },
    };
    let anchor = arn(
        r,
        "RolesAnywhereTrustAnchorArn",
        "trust-anchor",
        "trust anchor",
    );
    let profile = arn(r, "RolesAnywhereProfileArn", "profile", "profile");
    if let (Some((_, a)), Some((_, p))) = (&anchor, &profile) {
        if a != p {
            r.error(
                "RolesAnywhereProfileArn",
                format!("is in {p} but RolesAnywhereTrustAnchorArn is in {a}: Roles Anywhere needs both in one region"),
            );
        }
    }
    let certificate = match r.get("RolesAnywhereCertificate") {
        None => {
            r.error("RolesAnywhereCertificate", "is required in roles-anywhere mode: the Key Vault certificate (a name in KeyVaultUrl's vault, or https://VAULT/certificates/NAME) whose key signs the requests");
            None
        }
        Some(v) => match parse_certificate(v, home) {
            Ok(c) => Some(c),
            Err(e) => {
                r.error("RolesAnywhereCertificate", e);
                None
            }
        },
    };
    let chain = match r.text("RolesAnywhereChain").unwrap_or("certificate") {
        c if c.eq_ignore_ascii_case("certificate") => Some(ChainSource::CertificateSecret),
        c if c.eq_ignore_ascii_case("none") => Some(ChainSource::None),
        c if looks_like_reference(c) => match parse_reference(c, Some(home), suffix) {
            Ok((secret, _)) => Some(ChainSource::Secret(secret)),
            Err(e) => {
                r.error("RolesAnywhereChain", e);
                None
            }
        },
        other => {
            r.error("RolesAnywhereChain", format!("'{other}' is not `certificate` (the intermediates from the certificate's own secret), `none`, or a Key Vault secret holding them in PEM"));
            None
        }
    };
    let role_session_name = r.get("RoleSessionName").map(str::to_string);
    let endpoint = match (r.get("AWS_ENDPOINT_URL_ROLESANYWHERE"), &anchor) {
        (Some(raw), _) => match Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Some(u),
            _ => {
                r.error(
                    "AWS_ENDPOINT_URL_ROLESANYWHERE",
                    format!("'{raw}' is not an http(s) URL"),
                );
                None
            }
        },
        (None, Some((_, region))) => {
            Url::parse(&format!("https://rolesanywhere.{region}.amazonaws.com")).ok()
        }
        (None, None) => None,
    };
    let ((trust_anchor_arn, region), (profile_arn, _)) = (anchor?, profile?);
    Some(RolesAnywhereSettings {
        role: role?,
        role_session_name,
        trust_anchor_arn,
        profile_arn,
        region,
        certificate: certificate?,
        chain: chain?,
        endpoint: endpoint?,
    })
}
