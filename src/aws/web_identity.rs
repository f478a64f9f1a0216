//! What the rotator's web-identity mode and the consumers' `--web-identity` share: the Entra ID
//! scope for an audience, the token's public claims (what a trust policy must match), and the
//! hints for STS's refusals of `AssumeRoleWithWebIdentity`.
//!
//! Entra ID → AWS federation facts: `../shared/PROTOCOL.md` §3 (issuer, `aud`, `sub`).

use secrecy::{ExposeSecret, SecretString};

use super::AwsError;

/// The Entra ID scope for an audience: the Application ID URI (or client id) + `/.default`.
pub fn scope(audience: &str) -> String {
    if audience.ends_with("/.default") {
        audience.to_string()
    } else {
        format!("{}/.default", audience.trim_end_matches('/'))
    }
}

/// The claims of an Entra ID token that an IAM OIDC provider and a role's trust policy match
/// (never the token, and never its signature).
pub fn claims(token: &SecretString) -> serde_json::Value {
    use base64::Engine;
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
    serde_json::Value::Object(out)
}

/// Which side to fix when STS refuses `AssumeRoleWithWebIdentity`. `audience` names the setting
/// or flag that holds the audience; `claims_hint` says where the user sees the token's claims.
pub fn hint(e: &AwsError, audience: &str, claims_hint: &str) -> Option<String> {
    let AwsError::Refused { code, .. } = e else {
        return None;
    };
    Some(match code.as_str() {
        "InvalidIdentityToken" => format!("AWS did not accept the Entra ID token: the IAM OIDC provider's URL must equal the token's issuer ({claims_hint}) and its audience (client id list) must contain {audience}"),
        "IDPRejectedClaim" | "AccessDenied" => format!("the role's trust policy rejected the token's claims: its conditions on aud and sub must match the audience and the identity's object id ({claims_hint})"),
        "ExpiredToken" | "ExpiredTokenException" => "the token or key has expired".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_becomes_its_default_scope_once() {
        assert_eq!(scope("api://stsbridge"), "api://stsbridge/.default");
        assert_eq!(scope("api://stsbridge/"), "api://stsbridge/.default");
        assert_eq!(
            scope("api://stsbridge/.default"),
            "api://stsbridge/.default"
        );
    }

    #[test]
    fn only_public_claims_are_kept() {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            br#"{"iss":"https://sts.windows.net/t/","aud":"api://x","sub":"oid","nonce":"n"}"#,
        );
        let token = SecretString::from(format!("e30.{payload}.c2ln"));
        let c = claims(&token);
        assert_eq!(c["aud"], "api://x");
        assert!(c.get("nonce").is_none());
    }
}
