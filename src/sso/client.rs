//! The SSO OIDC and SSO portal adapters: `RegisterClient`, `StartDeviceAuthorization`,
//! `CreateToken` (device code and refresh token grants), `GetRoleCredentials`.
//!
//! Built on `aws-sdk-ssooidc` and `aws-sdk-sso` from the same [`aws_config::SdkConfig`] as STS
//! ([`crate::aws::sdk_config`]: the SSO region, no credentials — these operations are unsigned;
//! the portal takes the access token in `x-amz-sso_bearer_token`). Building from the `SdkConfig`
//! lets the SDK apply its own endpoint overrides, so `AWS_ENDPOINT_URL_SSO_OIDC`,
//! `AWS_ENDPOINT_URL_SSO` and `AWS_ENDPOINT_URL` (and `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`) mean
//! exactly what they mean to every AWS SDK.
//!
//! Errors are mapped once, by [`crate::aws::map_error`], from the error *metadata* only (code,
//! message, status), never from `Debug`, which could print a response body holding a token.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::cache::Registration;
use super::poll::Answer;
use crate::aws::{map_error, AwsError};
use crate::secrets::SessionCredentials;

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const REFRESH_TOKEN_GRANT: &str = "refresh_token";

fn missing(action: &'static str, what: &str) -> AwsError {
    AwsError::Unexpected {
        action,
        message: format!("the answer has no {what}"),
    }
}

/// A device authorization in progress. The device code is a bearer secret for polling; the
/// user code is meant to be shown.
pub struct DeviceAuthorization {
    pub device_code: SecretString,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: i32,
    pub interval: Option<i32>,
}

/// A token CreateToken issued.
pub struct Grant {
    pub access_token: SecretString,
    pub expires_in: i32,
    pub refresh_token: Option<SecretString>,
}

/// The SSO OIDC service.
pub struct Oidc {
    client: aws_sdk_ssooidc::Client,
}

impl Oidc {
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_ssooidc::Client::new(sdk_config),
        }
    }

    /// `RegisterClient` as a public client, with the registration scopes when given.
    pub async fn register(
        &self,
        client_name: &str,
        scopes: Option<&[String]>,
    ) -> Result<Registration, AwsError> {
        const ACTION: &str = "RegisterClient";
        let scopes = scopes.filter(|s| !s.is_empty());
        let out = self
            .client
            .register_client()
            .client_name(client_name)
            .client_type("public")
            .set_scopes(scopes.map(<[String]>::to_vec))
            .send()
            .await
            .map_err(|e| map_error(ACTION, e))?;
        let expires_at = DateTime::<Utc>::from_timestamp(out.client_secret_expires_at(), 0)
            .ok_or_else(|| missing(ACTION, "valid clientSecretExpiresAt"))?;
        Ok(Registration {
            client_id: out
                .client_id()
                .ok_or_else(|| missing(ACTION, "clientId"))?
                .to_string(),
            client_secret: SecretString::from(
                out.client_secret()
                    .ok_or_else(|| missing(ACTION, "clientSecret"))?
                    .to_string(),
            ),
            expires_at,
            scopes: scopes.map(<[String]>::to_vec),
            grant_types: None,
        })
    }

    /// `StartDeviceAuthorization` for `start_url`.
    pub async fn start_device_authorization(
        &self,
        registration: &Registration,
        start_url: &str,
    ) -> Result<DeviceAuthorization, AwsError> {
        const ACTION: &str = "StartDeviceAuthorization";
        let out = self
            .client
            .start_device_authorization()
            .client_id(&registration.client_id)
            .client_secret(registration.client_secret.expose_secret())
            .start_url(start_url)
            .send()
            .await
            .map_err(|e| map_error(ACTION, e))?;
        Ok(DeviceAuthorization {
            device_code: SecretString::from(
                out.device_code()
                    .ok_or_else(|| missing(ACTION, "deviceCode"))?
                    .to_string(),
            ),
            user_code: out
                .user_code()
                .ok_or_else(|| missing(ACTION, "userCode"))?
                .to_string(),
            verification_uri: out
                .verification_uri()
                .ok_or_else(|| missing(ACTION, "verificationUri"))?
                .to_string(),
            verification_uri_complete: out.verification_uri_complete().map(str::to_string),
            expires_in: out.expires_in(),
            interval: Some(out.interval()).filter(|i| *i > 0),
        })
    }

    /// One `CreateToken` with the device code: a token, or where the approval stands.
    pub async fn poll_device(
        &self,
        registration: &Registration,
        device: &DeviceAuthorization,
    ) -> Result<Answer<Grant>, AwsError> {
        const ACTION: &str = "CreateToken";
        let sent = self
            .client
            .create_token()
            .client_id(&registration.client_id)
            .client_secret(registration.client_secret.expose_secret())
            .grant_type(DEVICE_CODE_GRANT)
            .device_code(device.device_code.expose_secret())
            .send()
            .await;
        match sent {
            Ok(out) => grant(ACTION, &out).map(Answer::Token),
            Err(e) => {
                if let Some(service) = e.as_service_error() {
                    if service.is_authorization_pending_exception() {
                        return Ok(Answer::Pending);
                    }
                    if service.is_slow_down_exception() {
                        return Ok(Answer::SlowDown);
                    }
                    if service.is_expired_token_exception() {
                        return Ok(Answer::Expired);
                    }
                    if service.is_access_denied_exception() {
                        return Ok(Answer::Denied);
                    }
                }
                Err(map_error(ACTION, e))
            }
        }
    }

    /// `CreateToken` with the refresh token grant.
    pub async fn refresh(
        &self,
        registration: &Registration,
        refresh_token: &SecretString,
    ) -> Result<Grant, AwsError> {
        const ACTION: &str = "CreateToken (refresh_token)";
        let out = self
            .client
            .create_token()
            .client_id(&registration.client_id)
            .client_secret(registration.client_secret.expose_secret())
            .grant_type(REFRESH_TOKEN_GRANT)
            .refresh_token(refresh_token.expose_secret())
            .send()
            .await
            .map_err(|e| map_error(ACTION, e))?;
        grant(ACTION, &out)
    }
}

fn grant(
    action: &'static str,
    out: &aws_sdk_ssooidc::operation::create_token::CreateTokenOutput,
) -> Result<Grant, AwsError> {
    Ok(Grant {
        access_token: SecretString::from(
            out.access_token()
                .ok_or_else(|| missing(action, "accessToken"))?
                .to_string(),
        ),
        expires_in: out.expires_in(),
        refresh_token: out
            .refresh_token()
            .map(|t| SecretString::from(t.to_string())),
    })
}

/// The SSO portal (`GetRoleCredentials`).
pub struct Portal {
    client: aws_sdk_sso::Client,
}

impl Portal {
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_sso::Client::new(sdk_config),
        }
    }

    /// Role credentials for `role_name` in `account_id`, with the SSO access token.
    pub async fn role_credentials(
        &self,
        access_token: &SecretString,
        account_id: &str,
        role_name: &str,
    ) -> Result<SessionCredentials, AwsError> {
        const ACTION: &str = "GetRoleCredentials";
        let out = self
            .client
            .get_role_credentials()
            .access_token(access_token.expose_secret())
            .account_id(account_id)
            .role_name(role_name)
            .send()
            .await
            .map_err(|e| map_error(ACTION, e))?;
        let c = out
            .role_credentials()
            .ok_or_else(|| missing(ACTION, "roleCredentials"))?;
        let expiration = DateTime::<Utc>::from_timestamp_millis(c.expiration())
            .filter(|t| t.timestamp() > 0)
            .ok_or_else(|| missing(ACTION, "valid expiration"))?;
        SessionCredentials::new(
            c.access_key_id()
                .ok_or_else(|| missing(ACTION, "accessKeyId"))?,
            SecretString::from(
                c.secret_access_key()
                    .ok_or_else(|| missing(ACTION, "secretAccessKey"))?
                    .to_string(),
            ),
            SecretString::from(
                c.session_token()
                    .ok_or_else(|| missing(ACTION, "sessionToken"))?
                    .to_string(),
            ),
            expiration,
        )
        .map_err(|e| AwsError::Unexpected {
            action: ACTION,
            message: format!("the role credentials are not shaped like AWS's: {e}"),
        })
    }
}
