//! AWS adapters: STS (minting and verification).

pub mod sts;
