//! The Azure Resource Manager adapter: asks App Service / Functions apps to re-resolve their Key
//! Vault references, and reads what each reference resolved to (issue #18).
//!
//! Microsoft documents these two calls only in "Use Key Vault references as app settings"
//! (<https://learn.microsoft.com/azure/app-service/app-service-key-vault-references>), not in the
//! App Service REST reference:
//! - `POST {endpoint}{siteId}/config/configreferences/appsettings/refresh?api-version=2022-03-01`
//! - `GET {endpoint}{siteId}/config/configreferences/appsettings?api-version=2022-03-01`, whose
//!   `value[].properties.status` is `Resolved`, `AccessToKeyVaultDenied`, `SecretNotFound`, …
//!
//! The token is the app's own identity's, for `{endpoint}/.default`, so sovereign clouds and the
//! test bed work alike. Bearer tokens go over https only. Errors keep ARM's code and message
//! (never a token); a 429 is retried once after its `Retry-After` when that fits the caller's
//! time bound.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use serde_json::Value;
use url::Url;

pub const API_VERSION: &str = "2022-03-01";
pub const PUBLIC_CLOUD_ENDPOINT: &str = "https://management.azure.com";

/// An App Service / Function App (or one of its deployment slots), by resource ID:
/// `/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}[/slots/{slot}]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AppId(String);

impl AppId {
    /// Checks the shape (literal segments compare case-insensitively, as ARM does).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let id = raw.trim().trim_end_matches('/');
        let parts: Vec<&str> = id.split('/').collect();
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 90
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c))
        };
        let lit = |i: usize, want: &str| parts.get(i).is_some_and(|p| p.eq_ignore_ascii_case(want));
        let shape = parts.first() == Some(&"")
            && lit(1, "subscriptions")
            && parts.get(2).is_some_and(|s| is_guid(s))
            && lit(3, "resourceGroups")
            && parts.get(4).is_some_and(|s| ok_name(s))
            && lit(5, "providers")
            && lit(6, "Microsoft.Web")
            && lit(7, "sites")
            && parts.get(8).is_some_and(|s| ok_name(s))
            && match parts.len() {
                9 => true,
                11 => lit(9, "slots") && ok_name(parts[10]),
                _ => false,
            };
        if shape {
            Ok(Self(id.to_string()))
        } else {
            Err(format!("'{raw}' is not an App Service resource ID like /subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.Web/sites/<app>[/slots/<slot>]"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The app's name (and slot), for messages.
    pub fn short(&self) -> String {
        let parts: Vec<&str> = self.0.split('/').collect();
        match parts.len() {
            11 => format!("{}/{}", parts[8], parts[10]),
            _ => parts.get(8).unwrap_or(&"?").to_string(),
        }
    }

    /// The same app whatever the case of its ID.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Why ARM did not do what we asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArmError {
    #[error("Azure Resource Manager refused to {op} {app}: {status} {code}: {message}")]
    Refused {
        op: &'static str,
        app: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("Azure Resource Manager unreachable to {op} {app}: {message}")]
    Unreachable {
        op: &'static str,
        app: String,
        message: String,
    },
    #[error("could not {op} {app}: {message}")]
    Other {
        op: &'static str,
        app: String,
        message: String,
    },
}

impl ArmError {
    pub fn code(&self) -> &str {
        match self {
            ArmError::Refused { code, .. } => code,
            ArmError::Unreachable { .. } => "Unreachable",
            ArmError::Other { .. } => "ArmError",
        }
    }
}

/// One Key Vault reference of an app, as ARM reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceStatus {
    /// The app setting's name.
    pub setting: String,
    pub status: String,
    pub secret_name: Option<String>,
}

/// The ARM client: an endpoint, the app's identity, and an HTTP client with timeouts.
pub struct Arm {
    endpoint: Url,
    credential: Arc<dyn TokenCredential>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arm")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl Arm {
    pub fn new(endpoint: Url, credential: Arc<dyn TokenCredential>, http: reqwest::Client) -> Self {
        Self {
            endpoint,
            credential,
            http,
        }
    }

    fn scope(&self) -> String {
        format!("{}/.default", self.endpoint.as_str().trim_end_matches('/'))
    }

    fn url(&self, app: &AppId, path: &str) -> String {
        format!(
            "{}{}{path}?api-version={API_VERSION}",
            self.endpoint.as_str().trim_end_matches('/'),
            app.as_str()
        )
    }

    /// Asks the app to re-resolve its Key Vault references now.
    pub async fn refresh(&self, app: &AppId, bound: Duration) -> Result<(), ArmError> {
        let url = self.url(app, "/config/configreferences/appsettings/refresh");
        self.send("refresh the Key Vault references of", app, bound, |http| {
            http.post(&url).header("content-length", "0")
        })
        .await
        .map(|_| ())
    }

    /// What each Key Vault reference of the app resolved to.
    pub async fn references(
        &self,
        app: &AppId,
        bound: Duration,
    ) -> Result<Vec<ReferenceStatus>, ArmError> {
        let url = self.url(app, "/config/configreferences/appsettings");
        let body = self
            .send("read the Key Vault references of", app, bound, |http| {
                http.get(&url)
            })
            .await?;
        let doc: Value = serde_json::from_str(&body).map_err(|_| ArmError::Other {
            op: "read the Key Vault references of",
            app: app.short(),
            message: "the answer is not JSON".into(),
        })?;
        Ok(doc["value"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| ReferenceStatus {
                setting: item["name"]
                    .as_str()
                    .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
                    .unwrap_or_default(),
                status: item["properties"]["status"]
                    .as_str()
                    .unwrap_or("Unknown")
                    .to_string(),
                secret_name: item["properties"]["secretName"]
                    .as_str()
                    .map(str::to_string),
            })
            .collect())
    }

    /// One call with a bearer token; a 429 is retried once after `Retry-After` when that fits
    /// in `bound`. Returns the body of a 2xx answer.
    async fn send(
        &self,
        op: &'static str,
        app: &AppId,
        bound: Duration,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<String, ArmError> {
        let name = app.short();
        if self.endpoint.scheme() != "https" {
            return Err(ArmError::Other {
                op,
                app: name,
                message: "AzureResourceManagerEndpoint must be https (a bearer token is sent)"
                    .into(),
            });
        }
        let started = std::time::Instant::now();
        let token = self
            .credential
            .get_token(&[self.scope().as_str()], None)
            .await
            .map_err(|e| ArmError::Other {
                op,
                app: name.clone(),
                message: format!("getting a token for {}: {e}", self.scope()),
            })?;
        let mut retried = false;
        loop {
            let sent = build(&self.http)
                .bearer_auth(token.token.secret())
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    return Err(ArmError::Unreachable {
                        op,
                        app: name,
                        message: if e.is_timeout() {
                            "timed out".into()
                        } else {
                            "could not connect".into()
                        },
                    })
                }
            };
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.text().await.unwrap_or_default();
            if (200..300).contains(&status) {
                return Ok(body);
            }
            if let (429, false, Some(wait)) = (status, retried, retry_after) {
                if started.elapsed() + wait < bound {
                    tokio::time::sleep(wait).await;
                    retried = true;
                    continue;
                }
            }
            let doc: Value = serde_json::from_str(&body).unwrap_or_default();
            return Err(ArmError::Refused {
                op,
                app: name,
                status,
                code: doc["error"]["code"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| status.to_string()),
                message: doc["error"]["message"]
                    .as_str()
                    .map(crate::redact::scrub)
                    .unwrap_or_default(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "00000000-1111-2222-3333-444444444444";

    #[test]
    fn app_ids_have_the_site_or_slot_shape() {
        let site = format!(
            "/subscriptions/{SUB}/resourceGroups/rg-1/providers/Microsoft.Web/sites/consumer-app"
        );
        let id = AppId::parse(&site).unwrap();
        assert_eq!(id.short(), "consumer-app");
        let slot = format!("{site}/slots/staging");
        assert_eq!(AppId::parse(&slot).unwrap().short(), "consumer-app/staging");
        let lower = site.to_lowercase();
        assert_eq!(AppId::parse(&lower).unwrap().key(), id.key());
        for bad in [
            "consumer-app".to_string(),
            "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.Web/sites/a"
                .to_string(),
            format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/a"),
            format!("{site}/config/appsettings"),
            format!("{site}/slots/"),
        ] {
            assert!(AppId::parse(&bad).is_err(), "{bad}");
        }
    }
}
