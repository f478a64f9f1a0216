//! Azure adapters: identity selection, Key Vault, Key Vault reference parsing, and Resource
//! Manager (re-resolving consumer apps' Key Vault references).

pub mod arm;
pub mod identity;
pub mod keyvault;
pub mod reference;
