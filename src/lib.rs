//! netprobe: proves, from an AKS node, that an Azure Machine Learning
//! workspace and its Storage, Key Vault and Container Registry resolve
//! through their private DNS zones and answer on their private endpoints.
//!
//! Layout: `config` (what to probe) is apart from `probe` (doing it, one
//! module per phase), `verdict` (pure judgement of observations), `report`
//! (the round document) and `render` (human and JSON output). `sim` is a
//! simulated VNet on loopback for the demo and the tests.

#![forbid(unsafe_code)]

pub mod agent;
pub mod azure;
pub mod cli;
pub mod cluster;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
pub mod model;
pub mod nodefiles;
pub mod observation;
pub mod probe;
pub mod render;
pub mod report;
pub mod sim;
pub mod verdict;
