//! Any other endpoint: an HTTP answer of any kind proves it reachable.

use netprobe_sim::https::Reply;

use super::AzureService;
use crate::model::Reach;
use crate::observation::HttpResponse;

pub struct Custom;

impl AzureService for Custom {
    fn judge(&self, _r: &HttpResponse) -> (Reach, Option<String>) {
        (Reach::Ok, None)
    }

    fn rejected(&self, _fqdn: &str, at: &str, detail: &str) -> String {
        format!("{at}: {detail}.")
    }

    fn sim_reply(&self, _fqdn: &str) -> Reply {
        Reply::new(200, "")
    }
}
