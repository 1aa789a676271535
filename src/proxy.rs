//! The HTTP proxy a workload on this node would use, and whether it would
//! use it for a target: the proxy variables of the agent's own pod (AKS's
//! `httpProxyConfig` injects the same `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`
//! and their lower-case forms into every pod), evaluated the way three
//! clients do, for an `https://<fqdn>/` URL:
//!
//! - **Go** (`net/http`, `golang.org/x/net/http/httpproxy`): `HTTPS_PROXY`
//!   then `https_proxy`; `NO_PROXY` then `no_proxy`; an entry `*` anywhere
//!   bypasses everything; `name` matches the name and its subdomains,
//!   `.name` and `*.name` only subdomains; an entry may carry a port
//!   (`name:443`); CIDR and IP entries match only IP-literal hosts;
//!   `localhost` and loopback addresses never go through a proxy.
//! - **curl** (`lib/noproxy.c`): `https_proxy` then `HTTPS_PROXY`, then
//!   `all_proxy`/`ALL_PROXY`; `no_proxy` then `NO_PROXY`; only a whole value
//!   of `*` bypasses everything; a leading dot is dropped and the rest
//!   matches the name and its subdomains; no wildcards (`*.name` matches
//!   nothing) and no ports (`name:443` matches nothing).
//! - **Python** (`requests`, which most Azure SDK and AML code uses, over
//!   `urllib.request`): lower-case variables win over upper-case ones (an
//!   empty lower-case one unsets the proxy); `https`, then `all`; only a
//!   whole value of `*` bypasses everything; an entry matches when the host
//!   name ends with it, without a dot boundary (`blob.core.windows.net`
//!   also matches `xblob.core.windows.net`), or by urllib's rule (a leading
//!   dot dropped, the name or a subdomain); no wildcards; a port only against
//!   a URL with an explicit port.
//!
//! Pure: the variables in ([`ProxyEnv`]), decisions out. Reading them from
//! the process is [`ProxyEnv::from_env`], at the edge.

use serde::{Deserialize, Serialize};

use crate::model::string_enum;

/// The variables read, in the order they are reported.
pub const VARIABLES: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The longest value kept of one variable (AKS's NO_PROXY lists CIDRs and
/// names: a few hundred bytes; anything longer is cut, not refused).
pub const MAX_VALUE_BYTES: usize = 16 << 10;

string_enum! {
    /// An HTTP client whose proxy rules are evaluated.
    Client {
        Go => "go",
        Curl => "curl",
        Python => "python",
    }
}

/// The proxy variables as this process has them: `(name, value)` for each
/// of [`VARIABLES`] that is set (empty values included: Python reads an
/// empty lower-case variable as "no proxy").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyEnv {
    pub vars: Vec<(String, String)>,
}

/// What one client would do with an `https://<host>/` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub client: Client,
    /// The proxy it would send the request to (credentials hidden); `None`:
    /// it connects directly.
    pub proxy: Option<String>,
    /// Why it connects directly when a proxy is set: the NO_PROXY entry
    /// that matched (`*` for all).
    pub bypassed_by: Option<String>,
}

impl ProxyEnv {
    /// The variables of this process.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv::from_pairs(VARIABLES.iter().filter_map(|name| {
            let value = std::env::var_os(name)?;
            Some((*name, value.to_string_lossy().into_owned()))
        }))
    }

    /// The variables given (the names of [`VARIABLES`] only), values cut to
    /// [`MAX_VALUE_BYTES`].
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> ProxyEnv {
        let mut vars: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(n, _)| VARIABLES.contains(n))
            .map(|(n, mut v)| {
                if v.len() > MAX_VALUE_BYTES {
                    let mut end = MAX_VALUE_BYTES;
                    while !v.is_char_boundary(end) {
                        end -= 1;
                    }
                    v.truncate(end);
                }
                (n.to_string(), v)
            })
            .collect();
        vars.sort_by_key(|(n, _)| VARIABLES.iter().position(|v| v == n));
        vars.dedup_by(|a, b| a.0 == b.0);
        ProxyEnv { vars }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())
    }

    /// The first of `names` that is set and not empty.
    fn first(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.raw(n).filter(|v| !v.is_empty()))
    }

    /// Python's reading of a variable `key` (`https`, `all`, `no`): the
    /// lower-case form when it is set (an empty one unsets), else the
    /// upper-case form.
    fn python(&self, key: &str) -> Option<&str> {
        let lower = format!("{key}_proxy");
        match self.raw(&lower) {
            Some(v) => Some(v).filter(|v| !v.is_empty()),
            None => self.raw(&lower.to_ascii_uppercase()).filter(|v| !v.is_empty()),
        }
    }

    /// The proxy for HTTPS, and the NO_PROXY value, as `client` reads them.
    fn settings(&self, client: Client) -> (Option<&str>, Option<&str>) {
        match client {
            Client::Go => (
                self.first(&["HTTPS_PROXY", "https_proxy"]),
                self.first(&["NO_PROXY", "no_proxy"]),
            ),
            Client::Curl => (
                self.first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]),
                self.first(&["no_proxy", "NO_PROXY"]),
            ),
            Client::Python => (self.python("https").or_else(|| self.python("all")), self.python("no")),
        }
    }

    /// The proxy URL `client` uses for HTTPS, as written (credentials
    /// included: for the proxy probe's own request, never for a report).
    pub fn proxy_url(&self, client: Client) -> Option<&str> {
        self.settings(client).0
    }

    /// Whether any client has a proxy for HTTPS at all.
    pub fn configured(&self) -> bool {
        Client::ALL.iter().any(|c| self.settings(*c).0.is_some())
    }

    /// The NO_PROXY value Go reads (the upper-case form first), for reports.
    pub fn no_proxy(&self) -> Option<&str> {
        self.settings(Client::Go).1
    }

    /// The variables as reported: proxy URLs with their credentials hidden.
    pub fn shown(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .map(|(n, v)| {
                let v = if n.eq_ignore_ascii_case("no_proxy") {
                    crate::text::shown(v, 2048)
                } else {
                    redact(v)
                };
                (n.clone(), v)
            })
            .collect()
    }

    /// What `client` would do with `https://<host>/` (port 443).
    pub fn decide(&self, client: Client, host: &str) -> Decision {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let (proxy, no_proxy) = self.settings(client);
        let Some(proxy) = proxy else {
            return Decision {
                client,
                proxy: None,
                bypassed_by: None,
            };
        };
        let bypassed_by = if client == Client::Go && is_loopback(&host) {
            Some("localhost".to_string())
        } else {
            no_proxy.and_then(|list| bypass(client, list, &host, 443))
        };
        Decision {
            client,
            proxy: bypassed_by.is_none().then(|| redact(proxy)),
            bypassed_by,
        }
    }

    /// Every client's decision for `host`, in [`Client::ALL`] order.
    pub fn decide_all(&self, host: &str) -> Vec<Decision> {
        Client::ALL.iter().map(|c| self.decide(*c, host)).collect()
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The NO_PROXY entry of `list` that makes `client` connect to `host`
/// (port `port`) directly, if any.
fn bypass(client: Client, list: &str, host: &str, port: u16) -> Option<String> {
    if list.trim() == "*" {
        return Some("*".into());
    }
    let sep = |c: char| c == ',' || (client == Client::Curl && c.is_whitespace());
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    list.split(sep)
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .find(|entry| {
            let e = entry.to_ascii_lowercase();
            match client {
                Client::Go => go_matches(&e, host, port, is_ip),
                Client::Curl => !is_ip && curl_matches(&e, host),
                Client::Python => !is_ip && python_matches(&e, host),
            }
        })
        .map(str::to_string)
}

fn go_matches(entry: &str, host: &str, port: u16, is_ip: bool) -> bool {
    if entry == "*" {
        return true;
    }
    if entry.contains('/') || entry.parse::<std::net::IpAddr>().is_ok() {
        // CIDR and IP entries: IP-literal hosts only (none of ours).
        return is_ip
            && entry
                .parse::<std::net::IpAddr>()
                .ok()
                .is_some_and(|ip| ip.to_string() == host);
    }
    let (name, entry_port) = match entry.rsplit_once(':') {
        Some((n, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => (n, Some(p)),
        _ => (entry, None),
    };
    let name = name.strip_prefix('*').unwrap_or(name);
    let (suffix, match_host) = match name.strip_prefix('.') {
        Some(rest) => (format!(".{rest}"), false),
        None => (format!(".{name}"), true),
    };
    let named = host.ends_with(&suffix) || (match_host && host == &suffix[1..]);
    named && entry_port.is_none_or(|p| p == port.to_string())
}

fn curl_matches(entry: &str, host: &str) -> bool {
    let name = entry.strip_prefix('.').unwrap_or(entry).trim_end_matches('.');
    !name.is_empty() && (host == name || host.strip_suffix(name).is_some_and(|rest| rest.ends_with('.')))
}

fn python_matches(entry: &str, host: &str) -> bool {
    // requests: the host name ends with the entry, no dot boundary.
    if host.ends_with(entry) {
        return true;
    }
    // urllib: a leading dot dropped, the name or a subdomain.
    let name = entry.trim_start_matches('.');
    !name.is_empty() && (host == name || host.ends_with(&format!(".{name}")))
}

/// A proxy URL with its user and password hidden (`http://***@proxy:3128`),
/// fit for a report or a log.
pub fn redact(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => rest.to_string(),
    };
    let shown = match scheme {
        Some(s) => format!("{s}://{rest}"),
        None => rest,
    };
    crate::text::shown(&shown, 256)
}

/// The NO_PROXY entry that takes `fqdn` (and its service's other names) off
/// the proxy for every client: a leading-dot domain, which Go, curl and
/// Python all read as "this domain's names" (`*.` is Go's only). The
/// service's public zone when the name is in one of the clouds' zones
/// (`.blob.core.windows.net`, `.vault.azure.net`, `.azurecr.io`,
/// `.api.azureml.ms`, `.notebooks.azure.net`), else the name itself.
pub fn bypass_entry(fqdn: &str) -> String {
    let fqdn = fqdn.trim_end_matches('.').to_ascii_lowercase();
    let zones = crate::azure::Cloud::ALL.iter().flat_map(|c| {
        let z = c.zones();
        [z.aml_api, z.notebooks, z.keyvault, z.acr]
            .into_iter()
            .map(str::to_string)
            .chain(
                crate::azure::StorageService::ALL
                    .iter()
                    .map(move |s| format!("{}.{}", s.as_str(), z.storage)),
            )
            .collect::<Vec<_>>()
    });
    zones
        .filter(|z| fqdn.ends_with(&format!(".{z}")))
        .max_by_key(String::len)
        .map_or(fqdn.clone(), |z| format!(".{z}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &str)]) -> ProxyEnv {
        ProxyEnv::from_pairs(pairs.iter().map(|(n, v)| (*n, v.to_string())))
    }

    /// (NO_PROXY, host, proxied by [Go, curl, Python])
    #[test]
    fn no_proxy_table() {
        let acct = "stacct.blob.core.windows.net";
        let cases: &[(&str, &str, [bool; 3])] = &[
            // AKS's own NO_PROXY: CIDRs and names, not the private endpoints'.
            (
                "localhost,127.0.0.1,10.0.0.0/16,10.224.0.0/16,168.63.129.16,169.254.169.254,konnectivity,.svc,.cluster.local",
                acct,
                [true, true, true],
            ),
            (".blob.core.windows.net", acct, [false, false, false]),
            ("blob.core.windows.net", acct, [false, false, false]),
            // A wildcard: Go only.
            ("*.blob.core.windows.net", acct, [false, true, true]),
            // A port: Go only (the URL has no explicit port).
            ("stacct.blob.core.windows.net:443", acct, [false, true, true]),
            ("stacct.blob.core.windows.net:8443", acct, [true, true, true]),
            // No dot boundary: requests only.
            ("acct.blob.core.windows.net", acct, [true, true, false]),
            // The whole value `*`, or `*` among others: Go reads both.
            ("*", acct, [false, false, false]),
            ("localhost,*", acct, [false, true, true]),
            // Spaces separate entries for curl only.
            ("localhost .blob.core.windows.net", acct, [true, false, true]),
            // CIDRs never match a name.
            ("0.0.0.0/0", acct, [true, true, true]),
            // Case does not matter.
            (".BLOB.core.windows.NET", acct, [false, false, false]),
        ];
        for (no_proxy, host, want) in cases {
            let e = env(&[("HTTPS_PROXY", "http://10.0.0.30:3128"), ("NO_PROXY", no_proxy)]);
            let got: Vec<bool> = e.decide_all(host).iter().map(|d| d.proxy.is_some()).collect();
            assert_eq!(got, want, "NO_PROXY={no_proxy} host={host}");
        }
    }

    #[test]
    fn which_variables_each_client_reads() {
        let host = "kv.vault.azure.net";
        let proxied = |pairs: &[(&'static str, &str)]| -> Vec<bool> {
            env(pairs).decide_all(host).iter().map(|d| d.proxy.is_some()).collect()
        };
        // HTTP_PROXY alone is not used for HTTPS.
        assert_eq!(proxied(&[("HTTP_PROXY", "http://p:1")]), [false, false, false]);
        // ALL_PROXY: curl and Python, not Go.
        assert_eq!(proxied(&[("ALL_PROXY", "http://p:1")]), [false, true, true]);
        // Lower case only: everyone.
        assert_eq!(proxied(&[("https_proxy", "http://p:1")]), [true, true, true]);
        // An empty lower-case variable unsets it for Python only.
        assert_eq!(
            proxied(&[("HTTPS_PROXY", "http://p:1"), ("https_proxy", "")]),
            [true, true, false]
        );
        // NO_PROXY upper for Go, lower first for curl and Python.
        assert_eq!(
            proxied(&[
                ("HTTPS_PROXY", "http://p:1"),
                ("NO_PROXY", ".vault.azure.net"),
                ("no_proxy", "localhost")
            ]),
            [false, true, true]
        );
        assert!(!env(&[("HTTP_PROXY", "http://p:1")]).configured());
        // Go never proxies localhost.
        let d = env(&[("HTTPS_PROXY", "http://p:1")]).decide(Client::Go, "localhost");
        assert_eq!(d.bypassed_by.as_deref(), Some("localhost"));
    }

    #[test]
    fn credentials_are_hidden() {
        assert_eq!(
            redact("http://user:s3cret@proxy.corp:3128"),
            "http://***@proxy.corp:3128"
        );
        assert_eq!(redact("proxy.corp:3128"), "proxy.corp:3128");
        let e = env(&[("HTTPS_PROXY", "http://u:p@10.0.0.30:3128"), ("NO_PROXY", "localhost")]);
        let shown = format!("{:?} {:?}", e.shown(), e.decide_all("x.azurecr.io"));
        assert!(
            !shown.contains("u:p") && shown.contains("***@10.0.0.30:3128"),
            "{shown}"
        );
    }

    #[test]
    fn the_entry_to_add_covers_the_service_for_every_client() {
        for (fqdn, want) in [
            ("stacct.blob.core.windows.net", ".blob.core.windows.net"),
            ("stacct.file.core.windows.net", ".file.core.windows.net"),
            ("kv01.vault.azure.net", ".vault.azure.net"),
            ("reg01.azurecr.io", ".azurecr.io"),
            ("reg01.westeurope.data.azurecr.io", ".azurecr.io"),
            ("0f1e.workspace.westeurope.api.azureml.ms", ".api.azureml.ms"),
            (
                "ml-ws-westeurope-0f1e.westeurope.notebooks.azure.net",
                ".notebooks.azure.net",
            ),
            ("kv01.vault.azure.cn", ".vault.azure.cn"),
            ("api.contoso.example", "api.contoso.example"),
        ] {
            let entry = bypass_entry(fqdn);
            assert_eq!(entry, want, "{fqdn}");
            let e = env(&[
                ("HTTPS_PROXY", "http://p:1"),
                ("NO_PROXY", &format!("localhost,{entry}")),
            ]);
            assert!(e.decide_all(fqdn).iter().all(|d| d.proxy.is_none()), "{fqdn}: {entry}");
        }
    }
}
