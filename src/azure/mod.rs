//! Azure adapters: identity selection, Key Vault, Key Vault reference parsing, and Resource
//! Manager (re-resolving consumer apps' Key Vault references), and the rotation lease in Blob
//! storage (with the SAS it signs for connection strings).

pub mod arm;
pub mod identity;
pub mod keys;
pub mod keyvault;
pub mod lease;
pub mod reference;
pub mod sas;
