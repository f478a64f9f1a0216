//! Azure adapters: identity selection, Key Vault, and Key Vault reference parsing.

pub mod identity;
pub mod keyvault;
pub mod reference;
