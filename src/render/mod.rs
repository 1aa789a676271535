//! Output renderers. They format a [`RoundReport`](crate::report::RoundReport)
//! and never probe anything.

pub mod html;
pub mod human;
pub mod json;

use clap::ValueEnum;

/// How a report is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for terminals and `kubectl logs`.
    #[default]
    Human,
    /// One JSON document.
    Json,
}
