//! netprobe: proves, from an AKS node, that an Azure Machine Learning
//! workspace and its Storage, Key Vault and Container Registry resolve
//! through their private DNS zones and answer on their private endpoints.
//!
//! Layout: `config` (what to probe) is apart from `probe` (doing it, one
//! module per phase), `verdict` (pure judgement of observations), `report`
//! (the round document) and `render` (human and JSON output). `demo` is the
//! simulated VNet of `netprobe demo`, built from the `netprobe-sim` crate.

#![forbid(unsafe_code)]

pub mod agent;
pub mod azure;
pub mod catalogue;
pub mod cli;
pub mod cluster;
pub mod config;
#[cfg(feature = "sim")]
pub mod demo;
pub mod fleet;
pub mod input;
pub mod judge;
pub mod metrics;
pub mod model;
pub mod nodefiles;
pub mod observation;
pub mod probe;
pub mod proxy;
pub mod render;
pub mod report;
pub mod round;
pub mod service;
pub mod servicetags;
pub mod text;
pub mod verdict;
