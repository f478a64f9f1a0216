//! AWS's naming rules, as the SDKs do not check them before a call: role ARNs, role session
//! names, Roles Anywhere ARNs (pure). The app settings and the consumers' flags both validate with
//! these, each naming its own setting or flag.

/// An IAM role ARN (`arn:aws…:iam::123456789012:role/NAME`).
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_lit, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    *arn_lit == "arn"
        && partition.starts_with("aws")
        && *service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(|name| {
            !name.is_empty()
                && name.len() <= 512
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c))
        })
}

/// A role session name as STS accepts it (2-64 of letters, digits and `+=,.@-_`).
pub fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
}

/// A session name from the Function App's name (or the host name), sanitised to STS's rules.
pub fn default_session_name(site: Option<&str>) -> String {
    let base = site.unwrap_or("stsbridge");
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.len() < 2 {
        name = "stsbridge".into();
    }
    name
}

/// A Roles Anywhere resource ARN: `arn:aws…:rolesanywhere:REGION:ACCOUNT:KIND/ID`; its region.
pub fn rolesanywhere_arn_region<'a>(arn: &'a str, kind: &str) -> Option<&'a str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_lit, partition, service, region, account, resource] = parts.as_slice() else {
        return None;
    };
    let id_ok = resource
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    (*arn_lit == "arn"
        && partition.starts_with("aws")
        && *service == "rolesanywhere"
        && !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && id_ok)
        .then_some(*region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_anywhere_arns_are_checked_and_give_their_region() {
        assert_eq!(
            rolesanywhere_arn_region(
                "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/0c1f4b9e-1a2b-4c3d-8e9f-001122334455",
                "trust-anchor"
            ),
            Some("eu-west-1")
        );
        assert_eq!(
            rolesanywhere_arn_region(
                "arn:aws-us-gov:rolesanywhere:us-gov-west-1:123456789012:profile/p1",
                "profile"
            ),
            Some("us-gov-west-1")
        );
        for bad in [
            "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/p1",
            "arn:aws:iam::123456789012:trust-anchor/x",
            "arn:aws:rolesanywhere::123456789012:trust-anchor/x",
            "arn:aws:rolesanywhere:eu-west-1:1234:trust-anchor/x",
            "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/",
            "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/a b",
        ] {
            assert_eq!(rolesanywhere_arn_region(bad, "trust-anchor"), None, "{bad}");
        }
    }
}
