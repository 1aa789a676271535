//! The Azure ML workspace API: any answer is the workspace, except its
//! private-link denial.

use netprobe_sim::https::Reply;

use super::{AzureService, first_line};
use crate::model::Reach;
use crate::observation::HttpResponse;

pub struct Workspace;

/// Phrases with which an AML workspace denies access through private link.
const DENIALS: &[&str] = &[
    "access to workspace was denied based on workspace private link configuration",
    "none of the workspaces/registries are accessible from outside of the designated private link",
    "is not accessible from outside of the designated private link",
    "denied based on private link",
];

impl AzureService for Workspace {
    fn judge(&self, r: &HttpResponse) -> (Reach, Option<String>) {
        let body = r.body.to_ascii_lowercase();
        if DENIALS.iter().any(|d| body.contains(d)) {
            (
                Reach::Blocked,
                Some(format!(
                    "private-link denial (HTTP {}): {}",
                    r.status,
                    first_line(&r.body)
                )),
            )
        } else {
            (Reach::Ok, None)
        }
    }

    fn rejected(&self, _fqdn: &str, at: &str, detail: &str) -> String {
        format!(
            "{at}: {detail}. The workspace rejects requests that do not come through its private link. Fix: make \
             the workspace names resolve to its private endpoint through this DNS path."
        )
    }

    fn sim_reply(&self, _fqdn: &str) -> Reply {
        Reply::workspace_unauthorized()
    }
}
