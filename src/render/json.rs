//! JSON output: the report as one pretty-printed document.

use crate::report::RoundReport;

pub fn render(report: &RoundReport) -> String {
    // Serialising plain structs of strings and numbers cannot fail.
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
