// stsbridge on Azure: a Flex Consumption Function App (custom handler, Linux) with a
// system-assigned managed identity, the Key Vault it reads the AWS source key from (or, in
// roles-anywhere mode, signs with a certificate's HSM key in) and publishes the session
// credentials to, identity-only storage, monitoring and three alerts.
//
// Deploy into an existing resource group (docs/deploy.md):
//   az deployment group create -g RG -f infra/azure/main.bicep -p @main.parameters.json
// This repository's CI validates the template offline with checkov (scripts/validate-infra.sh);
// `bicep build` / `az deployment group what-if` belong in your deployment pipeline.
//
// Design decisions (the why; docs/deploy.md has the longer version):
// - Flex Consumption (FC1): Linux Consumption gets no new features and retires in 2028; Flex
//   supports custom handlers (runtime `custom`) and identity-based host and deployment storage,
//   so the storage account can refuse shared keys altogether.
// - No secret in any app setting. UsernameFromKeyVault / PasswordFromKeyVault are VERSIONLESS
//   secret URIs that stsbridge reads itself with the managed identity. They are deliberately
//   not `@Microsoft.KeyVault(...)` references: the platform caches a resolved reference for up
//   to 24 h, so after stsbridge rotates the AWS key (a new secret version, then the old key is
//   deleted in AWS) the app would keep presenting a dead key until the cache refreshes.
// - Key Vault uses Azure RBAC (no access policies), soft delete and purge protection: the vault
//   holds the only long-lived AWS key, so neither a mistake nor an attacker may destroy it for
//   good. Purge protection reserves the vault name for the retention period after deletion.
// - The app's Key Vault role is scoped to the vault, not to individual secrets; see the comment
//   at appSecretsOfficer below. In roles-anywhere mode its roles on the certificate and its key
//   are scoped to those two objects (appRolesAnywhereSigner, appRolesAnywhereCertificateReader).
// - Key Vault certificates are not ARM resources: the roles-anywhere certificate is created with
//   `az keyvault certificate create` after the first deployment (docs/credential-modes.md), from
//   infra/azure/roles-anywhere-certificate-policy.json.
// - Accepted checkov findings are skipped inside each resource with the reason. checkov's Bicep
//   parser accepts at most four comment lines in a row inside a resource, hence their spread.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

@description('Azure region for every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Short lowercase prefix of the generated names (letters, digits, hyphens).')
@minLength(3)
@maxLength(12)
param baseName string = 'stsbridge'

@description('Function App name (global DNS name under azurewebsites.net). Empty: baseName plus a suffix unique to the resource group.')
@maxLength(60)
param functionAppName string = ''

@description('Key Vault name (3-24 characters, globally unique). Empty: generated. Purge protection reserves a deleted vault name for softDeleteRetentionInDays, so a redeployment after deleting everything needs a new name (or a recovered vault).')
@maxLength(24)
param keyVaultName string = ''

@description('Storage account name (3-24 lowercase letters and digits, globally unique). Empty: generated.')
@maxLength(24)
param storageAccountName string = ''

@description('How stsbridge gets AWS credentials (README "Credential modes"). web-identity needs no AWS key at all and is preferred; roles-anywhere needs none either: it signs with a non-exportable HSM key of a Key Vault certificate (a premium vault).')
@allowed([
  'session-token'
  'assume-role'
  'web-identity'
  'roles-anywhere'
])
param credentialMode string = 'session-token'

@description('assume-role, web-identity and roles-anywhere: the IAM role ARN (output RoleArn of infra/aws/federation.yaml or infra/aws/roles-anywhere.yaml, or your role). May be empty on the first deployment of web-identity mode, because the AWS side needs this deployment\'s principalId first; redeploy with it afterwards.')
param roleArn string = ''

@description('roles-anywhere: the trust anchor ARN (output RolesAnywhereTrustAnchorArn of infra/aws/roles-anywhere.yaml). Empty until the AWS side exists.')
param rolesAnywhereTrustAnchorArn string = ''

@description('roles-anywhere: the profile ARN (output RolesAnywhereProfileArn of infra/aws/roles-anywhere.yaml), in the trust anchor\'s region. Empty until the AWS side exists.')
param rolesAnywhereProfileArn string = ''

@description('roles-anywhere: the Key Vault certificate in this vault whose non-exportable HSM key signs CreateSession (the app setting RolesAnywhereCertificate). Key Vault certificates are not ARM resources: create it after the first deployment with az keyvault certificate create (docs/credential-modes.md).')
@minLength(1)
@maxLength(127)
param rolesAnywhereCertificateName string = 'stsbridge-roles-anywhere'

@description('roles-anywhere: true once that certificate exists (created and its signed certificate merged). Then the app gets Key Vault Crypto User on the certificate\'s key and Key Vault Certificate User on the certificate, each scoped to that one object; a role assignment needs its object to exist, so the first deployment leaves this false.')
param rolesAnywhereCertificateExists bool = false

@description('roles-anywhere: where the intermediate CA certificates sent with CreateSession come from (the app setting RolesAnywhereChain): certificate (the certificate\'s own PEM secret, the default), none, or a Key Vault secret holding them in PEM.')
param rolesAnywhereChain string = 'certificate'

@description('web-identity: the Entra ID application the token is requested for: its Application ID URI (v1 tokens) or client id (v2).')
param webIdentityAudience string = ''

@description('The STS regional endpoint stsbridge calls.')
param awsRegion string = 'us-east-1'

@description('Lifetime of the minted credentials. The default leaves an hour of overlap with the hourly timer; role modes are capped by the role\'s MaxSessionDuration (14400 in infra/aws).')
@minValue(900)
@maxValue(129600)
param sessionDurationSeconds int = 7200

@description('session-token and assume-role: stsbridge rotates the IAM user\'s access key when it is older than this many days; 0 = never.')
@minValue(0)
@maxValue(3650)
param sourceKeyMaxAgeDays int = 90

@description('Six-field NCRONTAB schedule of TimerRotate (hourly by default).')
param timerSchedule string = '0 0 * * * *'

@description('Key Vault secret holding the IAM user\'s access key id (session-token and assume-role). You store it after deployment (docs/deploy.md).')
param sourceAccessKeyIdSecretName string = 'AWS-Access-Key-ID'

@description('Key Vault secret holding the IAM user\'s secret access key.')
param sourceSecretAccessKeySecretName string = 'AWS-Secret-Access-Key'

@description('Names of App Service / Function Apps in THIS resource group that read the published secrets through Key Vault references (which the platform otherwise re-reads only every 24 h). stsbridge asks Resource Manager to re-resolve their references after every publish (RefreshAppSettingsOf), and the Function App gets Website Contributor on each app, scoped to the app: that role can also read the app\'s settings and deploy code to it (docs/consumers-azure.md, "What it costs"). Apps elsewhere: assign the role yourself and set RefreshAppSettingsOf through additionalAppSettings instead (not both).')
param consumerAppNames array = []

@description('Other stsbridge app settings (name -> string value), e.g. {"ExternalId": "...", "ExpiryWarningSeconds": "1800"}. Never put a secret here: use a secret URI instead.')
param additionalAppSettings object = {}

@description('Whether the vault accepts traffic from public networks. Disabled requires VNet integration of the Function App and a private endpoint for the vault, which this template does not create.')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

@description('Days a deleted vault or secret stays recoverable (and the vault name reserved).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Object id of a user or group that stores the AWS source key in the vault (Key Vault Secrets Officer on the vault); in roles-anywhere mode also creates and renews the certificate (Key Vault Certificates Officer on the vault). Empty: grant it yourself, e.g. just for the first `az keyvault secret set`.')
param operatorPrincipalId string = ''

@description('E-mail address for the alerts. Empty: the alerts still fire and show in Azure Monitor, without notification.')
param alertEmailAddress string = ''

@description('Alert when no TimerRotate execution succeeded for this many hours: the two other alerts need the app to run, this one also catches an app that never starts (a binary the workers cannot run, a stopped app, a broken deployment). Keep it above the TimerSchedule interval; 0: no such alert.')
@minValue(0)
@maxValue(24)
param rotationSilenceAlertHours int = 3

@description('Flex Consumption instance size. stsbridge needs far less than 512 MB; 2048 is available in every Flex region.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of Flex Consumption scale-out. stsbridge needs one instance; the bound limits cost if HttpRotate is hammered.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Log Analytics retention.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Tags applied to every resource.')
param tags object = {
  app: 'stsbridge'
}

// ---------------------------------------------------------------------------------------------
// Names and constants
// ---------------------------------------------------------------------------------------------

var suffix = uniqueString(resourceGroup().id)
var appName = empty(functionAppName) ? '${baseName}-${suffix}' : functionAppName
var vaultName = empty(keyVaultName) ? take('kv-${baseName}-${suffix}', 24) : keyVaultName
var storageName = empty(storageAccountName) ? take('st${replace(toLower(baseName), '-', '')}${suffix}', 24) : storageAccountName
// Flex Consumption pulls the deployment package from this container with the app's identity.
// Blob container names are 3-63 characters of lowercase letters, digits and single hyphens,
// starting and ending with a letter or digit; an app name may have upper-case letters, and
// take() may cut it right after a hyphen. The name earlier versions derived is kept wherever it
// is valid (every existing deployment's is: ARM refused the others), so redeploying never moves
// an app's package; otherwise the app name lower-cased without hyphens plus a hash of it.
// scripts/infra_checks/bicep_names.py evaluates both for representative app names.
var legacyDeploymentContainerName = 'app-package-${take(appName, 32)}'
var legacyDeploymentContainerNameIsValid = (toLower(legacyDeploymentContainerName) == legacyDeploymentContainerName) && !contains(legacyDeploymentContainerName, '--') && !endsWith(legacyDeploymentContainerName, '-')
var deploymentContainerName = legacyDeploymentContainerNameIsValid ? legacyDeploymentContainerName : 'app-package-${take(replace(toLower(appName), '-', ''), 24)}-${uniqueString(resourceGroup().id, appName)}'

// The vault URL the app sees; the DNS suffix follows the cloud (vault.azure.net in public Azure).
var vaultUrl = 'https://${vaultName}${environment().suffixes.keyvaultDns}'

// Built-in role definition ids (the same in every tenant).
var roleKeyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var roleKeyVaultCryptoUser = '12338af0-0e69-4776-bea7-57ae8d297424'
var roleKeyVaultCertificateUser = 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba'
var roleKeyVaultCertificatesOfficer = 'a4417e6f-fecd-4de8-b567-7b0420556985'
var roleStorageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var roleMonitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// The narrowest built-in role that certainly allows the (undocumented-RBAC) refresh of an app's
// Key Vault references; see docs/consumers-azure.md for what else it allows.
var roleWebsiteContributor = 'de139f84-1756-47ae-9be6-808fbbe84772'

var usesSourceKey = credentialMode == 'session-token' || credentialMode == 'assume-role'
var rolesAnywhere = credentialMode == 'roles-anywhere'
var actionGroupName = 'ag-${appName}'

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${appName}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${appName}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    // Telemetry is accepted only with an Entra token (the app's identity, Monitoring Metrics
    // Publisher below), so the connection string in the app settings is not a write key.
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------------------------------------
// Storage: host state (timer schedule status, function keys) and the deployment package
// ---------------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  // checkov:skip=CKV_AZURE_43:The name is computed (st + baseName + uniqueString, cut to 24 lowercase letters and digits) or given as a parameter, so checkov cannot read it; Azure validates it at deployment.
  // checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration reaches its storage over public endpoints; every request still needs the app's Entra identity, because shared keys are disabled.
  // checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: public endpoint, identity-only access (allowSharedKeyAccess false, no anonymous blob access).
  location: location
  // checkov:skip=CKV_AZURE_206:Holds only host state and the deployment package, both rebuilt by a redeployment; geo-replication would only add cost.
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Identity-based AzureWebJobsStorage and deployment storage: no account key is ever used.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// ---------------------------------------------------------------------------------------------
// Key Vault: the AWS source key (session-token, assume-role) or the roles-anywhere certificate,
// and the published credentials
// ---------------------------------------------------------------------------------------------

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_109:The Function App (Flex Consumption without VNet integration) has no fixed outbound address to allow; access is by Entra identity and RBAC. Set keyVaultPublicNetworkAccess to Disabled together with VNet integration and a private endpoint to close the network path.
  // checkov:skip=CKV_AZURE_189:Public network access is the keyVaultPublicNetworkAccess parameter (default Enabled for the same reason as CKV_AZURE_109).
  properties: {
    tenantId: subscription().tenantId
    // roles-anywhere: premium, the SKU whose keys can live in an HSM (RSA-HSM, EC-HSM); the
    // certificate's key never leaves it. Upgrading an existing vault to premium keeps its contents.
    sku: {
      family: 'A'
      name: rolesAnywhere ? 'premium' : 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: keyVaultPublicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: keyVaultPublicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

// Who read or wrote which secret, for as long as the workspace keeps logs.
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

// ---------------------------------------------------------------------------------------------
// The Function App (Flex Consumption, Linux, custom handler)
// ---------------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${appName}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  // checkov:skip=CKV_AZURE_225:Zone redundancy is not needed: a missed hourly run is retried by the next one, well inside SessionDurationSeconds, and consumers read Key Vault, not the app.
  properties: {
    reserved: true
  }
}

// Settings every mode needs. The connection string is not a secret (local auth is disabled on
// Application Insights); AzureWebJobsStorage__accountName makes host storage identity-based.
var baseAppSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'Authorization=AAD'
  }
  {
    name: 'KeyVaultUrl'
    value: vaultUrl
  }
  {
    name: 'TimerSchedule'
    value: timerSchedule
  }
  {
    name: 'CredentialMode'
    value: credentialMode
  }
  {
    name: 'AwsRegion'
    value: awsRegion
  }
  {
    name: 'SessionDurationSeconds'
    value: string(sessionDurationSeconds)
  }
]

// Versionless secret URIs the app reads (and, when it rotates the key, writes) itself - NOT
// @Microsoft.KeyVault(...) references, which the platform caches for up to 24 h and which could
// therefore not follow a key rotation.
var sourceKeyAppSettings = usesSourceKey ? [
  {
    name: 'UsernameFromKeyVault'
    value: '${vaultUrl}/secrets/${sourceAccessKeyIdSecretName}'
  }
  {
    name: 'PasswordFromKeyVault'
    value: '${vaultUrl}/secrets/${sourceSecretAccessKeySecretName}'
  }
  {
    name: 'SourceKeyMaxAgeDays'
    value: string(sourceKeyMaxAgeDays)
  }
] : []

var roleAppSettings = empty(roleArn) ? [] : [
  {
    name: 'RoleArn'
    value: roleArn
  }
]

// The token comes from the app's own system-assigned identity: the one whose object id the AWS
// trust policy names (ManagedIdentityObjectId of infra/aws/federation.yaml).
var webIdentityAppSettings = credentialMode == 'web-identity' ? [
  {
    name: 'WebIdentityAudience'
    value: webIdentityAudience
  }
  {
    name: 'WebIdentityCredential'
    value: 'managed-identity'
  }
] : []

// roles-anywhere: the app signs CreateSession with the certificate's key (in this vault, by name)
// and sends the certificate and its intermediates. The ARNs come from infra/aws/roles-anywhere.yaml
// and are set once known (the app reports the missing one by name until then).
var rolesAnywhereArnAppSettings = concat(empty(rolesAnywhereTrustAnchorArn) ? [] : [
  {
    name: 'RolesAnywhereTrustAnchorArn'
    value: rolesAnywhereTrustAnchorArn
  }
], empty(rolesAnywhereProfileArn) ? [] : [
  {
    name: 'RolesAnywhereProfileArn'
    value: rolesAnywhereProfileArn
  }
])
var rolesAnywhereAppSettings = rolesAnywhere ? concat([
  {
    name: 'RolesAnywhereCertificate'
    value: rolesAnywhereCertificateName
  }
  {
    name: 'RolesAnywhereChain'
    value: rolesAnywhereChain
  }
], rolesAnywhereArnAppSettings) : []

// Consumer apps whose Key Vault references stsbridge refreshes after every publish (issue #18).
var consumerAppIds = [for name in consumerAppNames: resourceId('Microsoft.Web/sites', name)]
var refreshAppSettings = empty(consumerAppNames) ? [] : [
  {
    name: 'RefreshAppSettingsOf'
    value: join(consumerAppIds, ',')
  }
]

var extraAppSettings = [for setting in items(additionalAppSettings): {
  name: setting.key
  value: string(setting.value)
}]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  // checkov:skip=CKV_AZURE_78:FTP is off through the ftp basicPublishingCredentialsPolicies resource (allow false) below; Flex Consumption rejects siteConfig.ftpsState (ARM error 51021), so the property checkov reads cannot be set.
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  // checkov:skip=CKV_AZURE_222:HttpRotate must stay reachable for manual rotations; it requires a function key over HTTPS. Add access restrictions or a private endpoint if your callers allow it.
  // checkov:skip=CKV_AZURE_17:Client certificates are not used: HttpRotate callers authenticate with a function key over HTTPS.
  kind: 'functionapp,linux'
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero on demand (scaleAndConcurrency); a missed hourly run is retried by the next one, so no always-ready instance is paid for.
  // checkov:skip=CKV_AZURE_213:No health check path: the instance scales to zero between runs and a failing rotation is caught by the TimerRotate alert instead.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      // No ftpsState (or any other property ARM rejects for Flex sites with error 51021, e.g.
      // use32BitWorkerProcess, netFrameworkVersion, linuxFxVersion, alwaysOn): FTP is off through
      // the ftp basicPublishingCredentialsPolicies below; scripts/infra_checks/flex_site_config.py.
      http20Enabled: true
      appSettings: concat(baseAppSettings, sourceKeyAppSettings, roleAppSettings, webIdentityAppSettings, rolesAnywhereAppSettings, refreshAppSettings, extraAppSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
  dependsOn: [
    deploymentContainer
  ]
}

// Basic (user name + password) publishing off for FTP and for the SCM site: deployments
// authenticate with Entra ID (az / func use your login), so no publishing password exists to leak.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// ---------------------------------------------------------------------------------------------
// Role assignments for the app's managed identity
// ---------------------------------------------------------------------------------------------

// Key Vault Secrets Officer at VAULT scope, not per secret - deliberately:
// - The app must read AND write the two source secrets (a key rotation stores a new version)
//   and write the four published ones (AccessKeyId, SecretAccessKey, SessionToken,
//   AwsSessionCredentials), so it needs Secrets Officer on all six anyway.
// - Per-secret scope needs the secrets to exist before the assignment. Creating them here as
//   placeholders would be destructive: ARM has no "create if absent" for secrets, so every
//   redeployment would write a new placeholder version over the real AWS key and over the
//   published credentials.
// - This vault is created for stsbridge alone and holds nothing else, so vault scope grants the
//   app nothing beyond those secrets. Do not put unrelated secrets in it. Consumers are the
//   opposite case: give them Key Vault Secrets User on the AwsSessionCredentials secret only
//   (per-secret scope, after the first rotation created it) so they can never read the source
//   key - docs/deploy.md shows the command.
resource appSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionApp.id, roleKeyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultSecretsOfficer)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'stsbridge: read and rotate the AWS source key, publish the session credentials'
  }
}

// roles-anywhere: the certificate and its key, each role scoped to that one object - the narrowest
// grant Key Vault RBAC has. A certificate's key and secret are objects of their own (same name):
// a role on the certificate does not reach its key, so signing needs Crypto User on
// .../vaults/VAULT/keys/NAME, and reading the certificate Certificate User on
// .../vaults/VAULT/certificates/NAME. (Its secret, the PEM chain, is covered by Secrets Officer
// above.) The key is non-exportable; these two roles read and sign, never create, import,
// delete or export. Crypto User also allows key update (attributes) and backup (a blob only
// Key Vault can restore): a custom role with keys/read and keys/sign/action is narrower still.
// A role assignment needs its object to exist: hence rolesAnywhereCertificateExists.
resource rolesAnywhereKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' existing = {
  parent: vault
  name: rolesAnywhereCertificateName
}

// Certificates have no ARM resource type (Bicep warns BCP081, no type information); this
// reference only builds the scope .../vaults/VAULT/certificates/NAME that Key Vault RBAC uses
// (the form the Bicep team recommends, Azure/bicep#5630).
resource rolesAnywhereCertificate 'Microsoft.KeyVault/vaults/certificates@2023-07-01' existing = {
  parent: vault
  name: rolesAnywhereCertificateName
}

resource appRolesAnywhereSigner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (rolesAnywhere && rolesAnywhereCertificateExists) {
  name: guid(rolesAnywhereKey.id, functionApp.id, roleKeyVaultCryptoUser)
  scope: rolesAnywhereKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultCryptoUser)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'stsbridge: sign Roles Anywhere CreateSession requests with this certificate\'s key'
  }
}

resource appRolesAnywhereCertificateReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (rolesAnywhere && rolesAnywhereCertificateExists) {
  name: guid(rolesAnywhereCertificate.id, functionApp.id, roleKeyVaultCertificateUser)
  scope: rolesAnywhereCertificate
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultCertificateUser)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'stsbridge: read the Roles Anywhere certificate (subject, serial, validity, key id)'
  }
}

// Identity-based AzureWebJobsStorage and deployment storage (Flex Consumption's documented role;
// the host keeps timer status, locks and function keys in blobs), scoped to this account only.
resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roleStorageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageBlobDataOwner)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'stsbridge: Functions host storage and deployment package'
  }
}

// Application Insights accepts only Entra-authenticated telemetry (DisableLocalAuth).
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionApp.id, roleMonitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleMonitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'stsbridge: send telemetry to Application Insights'
  }
}

// Each consumer app of consumerAppNames: Website Contributor scoped to that app alone (never the
// resource group), so stsbridge can ask Resource Manager to re-resolve its Key Vault references.
resource consumerApps 'Microsoft.Web/sites@2024-04-01' existing = [for name in consumerAppNames: {
  name: name
}]

resource appRefreshesConsumer 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in consumerAppNames: {
  name: guid(consumerApps[i].id, functionApp.id, roleWebsiteContributor)
  scope: consumerApps[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleWebsiteContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'stsbridge: refresh this app\'s Key Vault references after each new AWS credential set'
  }
}]

// The person or group that stores the AWS source key: RBAC vaults refuse data-plane writes even
// to subscription owners without a data role.
resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, roleKeyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultSecretsOfficer)
    principalId: operatorPrincipalId
    description: 'stsbridge operator: store the AWS source key'
  }
}

// roles-anywhere: the operator creates the certificate (its CSR), merges the CA-signed certificate
// and renews it. Certificates Officer acts on certificates only (no key operation): it cannot sign
// with the certificate's key.
resource operatorCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (rolesAnywhere && !empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, roleKeyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultCertificatesOfficer)
    principalId: operatorPrincipalId
    description: 'stsbridge operator: create, merge and renew the Roles Anywhere certificate'
  }
}

// ---------------------------------------------------------------------------------------------
// Alerts (log search alerts on Application Insights)
// ---------------------------------------------------------------------------------------------

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'stsbridge'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var alertActions = empty(alertEmailAddress) ? [] : [
  resourceId('Microsoft.Insights/actionGroups', actionGroupName)
]

// A failed TimerRotate answers HTTP 500 on purpose (README "The functions"), so the execution is
// recorded with success == false. Stateful (autoMitigate): one notification per incident,
// resolved by the next successful hour.
resource rotationFailedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-rotation-failed-${appName}'
  location: location
  tags: tags
  properties: {
    displayName: 'stsbridge: TimerRotate failed (${appName})'
    description: 'A scheduled rotation failed: nothing new was published. The failed execution\'s stderr traces name the step (read, mint, verify, publish) and the error.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'requests | where operation_Name == "TimerRotate" and success == false'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: alertActions
    }
  }
  dependsOn: [
    actionGroup
  ]
}

// The app warns when the published set has less than ExpiryWarningSeconds left or has expired
// (src/rotation: "the published credentials expire in 1200 s (ExpiryWarningSeconds is 1800)",
// "... and could not be replaced", "the published credentials have expired"; with a targets
// file the line starts with the target's name): consumers are about to fail, whatever the reason
// rotations did not replace the set.
resource expiryWarningAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-credentials-expiring-${appName}'
  location: location
  tags: tags
  properties: {
    displayName: 'stsbridge: published credentials expiring or expired (${appName})'
    description: 'The credentials in AwsSessionCredentials are close to expiry or expired and were not replaced. Check the TimerRotate failures and run HttpRotate?force=true.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'traces | where message contains "the published credentials expire in" or message contains "the published credentials have expired"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: alertActions
    }
  }
  dependsOn: [
    actionGroup
  ]
}

// Neither alert above fires when nothing runs at all. This one counts successes instead.
resource rotationSilenceAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (rotationSilenceAlertHours > 0) {
  name: 'alert-rotation-silent-${appName}'
  location: location
  tags: tags
  properties: {
    displayName: 'stsbridge: no successful TimerRotate for ${rotationSilenceAlertHours} h (${appName})'
    description: 'TimerRotate has not succeeded recently: the app may not start (check its logs for the custom handler\'s start-up), be stopped, or have lost its deployment package. The published credentials expire without it.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT${rotationSilenceAlertHours}H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'requests | where operation_Name == "TimerRotate" and success == true'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: alertActions
    }
  }
  dependsOn: [
    actionGroup
  ]
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

@description('The Function App to publish to (func azure functionapp publish NAME).')
output functionAppName string = functionApp.name

@description('https://HOST/api/HttpRotate is the manual trigger.')
output functionAppHostName string = functionApp.properties.defaultHostName

@description('Where the source key goes and the session credentials are published.')
output keyVaultName string = vault.name

@description('The KeyVaultUrl consumers pass to stsbridge credential-process / export.')
output keyVaultUri string = vault.properties.vaultUri

@description('Object id of the app\'s managed identity: the sub condition of the AWS trust policy (ManagedIdentityObjectId of infra/aws/federation.yaml).')
output principalId string = functionApp.identity.principalId

@description('The Entra ID tenant: TenantId of infra/aws/federation.yaml.')
output tenantId string = subscription().tenantId
