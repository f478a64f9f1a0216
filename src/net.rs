//! Which hosts count as "this machine", for the rules that relax a check only there: the Key
//! Vault challenge check (`KeyVaultVerifyChallengeResource=false`), plain-http AWS endpoint
//! overrides, and the local credentials endpoint.

use url::{Host, Url};

/// 127.0.0.0/8, `::1`, or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A warning when an endpoint override sends requests in plain http to another machine (they
/// carry signed requests, and the answers carry credentials).
pub fn plain_http_warning(setting: &str, endpoint: &str) -> Option<String> {
    let url = Url::parse(endpoint).ok()?;
    (url.scheme() == "http" && !is_loopback(&url)).then(|| {
        format!(
            "{setting} is plain http to {}: requests and the credentials in the answers cross the network unencrypted; use https outside this machine",
            url.host_str().unwrap_or("?")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_127_slash_8_ipv6_one_and_localhost() {
        for yes in [
            "https://127.0.0.1:8443",
            "https://127.3.4.5",
            "http://[::1]:80",
            "https://LOCALHOST:1",
        ] {
            assert!(is_loopback(&Url::parse(yes).unwrap()), "{yes}");
        }
        for no in [
            "https://kv.vault.azure.net",
            "https://128.0.0.1",
            "https://localhost.evil.com",
            "https://[::2]",
        ] {
            assert!(!is_loopback(&Url::parse(no).unwrap()), "{no}");
        }
    }

    #[test]
    fn plain_http_is_warned_about_only_off_this_machine() {
        assert!(plain_http_warning("AWS_ENDPOINT_URL_STS", "http://10.0.0.5:4566").is_some());
        assert!(plain_http_warning("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566").is_none());
        assert!(plain_http_warning("AWS_ENDPOINT_URL_STS", "https://sts.example.com").is_none());
    }
}
