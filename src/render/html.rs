//! The agent's status page: the last round per target, coloured by health,
//! refreshing itself. Self-contained (no scripts, no external assets), and
//! every string that came from DNS or the config is HTML-escaped.

use std::fmt::Write;

use bytes::Bytes;

use crate::report::{RoundReport, TargetReport};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#1b1b1b}\
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.35em .5em;vertical-align:top;text-align:left;font-size:.9em}\
th{background:#f2f2f2}tr.ok td.status{background:#d8f5d0}tr.fail td.status{background:#f9d0d0}\
code{font-size:.85em;word-break:break-all}.muted{color:#666}.diag{max-width:40em}\
#summary{font-size:1.6em;font-weight:bold;padding:.3em .6em;display:inline-block;border-radius:.2em}\
#summary.ok{background:#d8f5d0}#summary.fail{background:#f9d0d0}\
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.5em .8em}.stale{color:#b00020;font-weight:bold}\
ul.findings li.fail{color:#b00020}";

/// What the page shows besides the round: facts the agent knows at the time
/// of the request.
#[derive(Clone, Debug, Default)]
pub struct PageContext {
    /// Seconds between the page's refreshes.
    pub refresh_secs: u64,
    /// How long ago the shown round completed.
    pub age: Option<std::time::Duration>,
    /// The round interval: a round older than three of them is stale.
    pub interval: Option<std::time::Duration>,
    /// The last configuration reload's error, while the previous
    /// configuration keeps running.
    pub reload_error: Option<String>,
}

/// Renders the page; `report` is `None` before the first round completes.
/// Failing targets come first. The agent serves the same text in parts
/// ([`parts`]): the round's parts ([`RoundPage`]) built once per round and
/// shared by every reader.
pub fn render(report: Option<&RoundReport>, page: &PageContext) -> String {
    let round = report.map(|r| {
        let p = RoundPage::new(r);
        (Bytes::from(p.top), Bytes::from(p.rest))
    });
    parts(page, round).iter().map(|b| String::from_utf8_lossy(b)).collect()
}

/// The page in order: [`head`] and [`age`], made for this request, around
/// the round's parts (`top`, `rest`), or [`WAITING`] before the first round.
pub fn parts(page: &PageContext, round: Option<(Bytes, Bytes)>) -> Vec<Bytes> {
    let head = Bytes::from(head(page));
    match round {
        Some((top, rest)) => vec![head, top, age(page).into(), rest],
        None => vec![head, Bytes::from_static(WAITING.as_bytes())],
    }
}

/// The page before the first round, after [`head`].
pub const WAITING: &str =
    "<h1>netprobe</h1><p id=\"waiting\">Waiting for the first round to complete.</p></body></html>";

/// What depends on the request's moment: the refresh, a rejected reload.
pub fn head(page: &PageContext) -> String {
    let mut h = String::with_capacity(STYLE.len() + 512);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{}\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>netprobe</title><style>{STYLE}</style></head><body>",
        page.refresh_secs
    );
    if let Some(e) = &page.reload_error {
        let _ = write!(
            h,
            "<p id=\"reload-error\" class=\"banner\"><b>Configuration reload rejected</b>: {}. The previous configuration keeps running.</p>",
            escape(e)
        );
    }
    h
}

/// How long ago the shown round completed, and whether that is stale.
pub fn age(page: &PageContext) -> String {
    let Some(a) = page.age else { return String::new() };
    let secs = a.as_secs();
    if page.interval.is_some_and(|i| a > 3 * i) {
        format!(
            "<p class=\"muted\"><span id=\"age\" class=\"stale\">completed {secs} s ago: stale (3 intervals without a round)</span></p>"
        )
    } else {
        format!("<p class=\"muted\"><span id=\"age\">completed {secs} s ago</span></p>")
    }
}

/// The parts of the page that depend on the round only: before the age
/// line (`top`) and after it (`rest`).
#[derive(Clone, Debug, Default)]
pub struct RoundPage {
    pub top: String,
    pub rest: String,
}

impl RoundPage {
    pub fn new(r: &RoundReport) -> RoundPage {
        let mut top = String::new();
        header(&mut top, r);
        let mut h = String::new();
        cluster_section(&mut h, r);
        proxy_section(&mut h, r);
        resolvers_table(&mut h, r);
        h.push_str("<table id=\"targets\"><thead><tr><th>Status</th><th>Target</th><th>Service</th><th>DNS per resolver</th><th>Reach</th><th>Cause and diagnosis</th></tr></thead><tbody>");
        let failing = r.targets.iter().filter(|t| !t.healthy);
        let healthy = r.targets.iter().filter(|t| t.healthy);
        for t in failing.chain(healthy) {
            target_row(&mut h, t, &r.summary.connect_via, &r.started_at);
        }
        h.push_str("</tbody></table><p class=\"muted\">JSON: <a href=\"status\">/status</a> &middot; metrics: <a href=\"metrics\">/metrics</a></p></body></html>");
        RoundPage { top, rest: h }
    }
}

/// The node, the count of failing targets, the round's facts.
fn header(h: &mut String, r: &RoundReport) {
    let node = r.node.as_ref().map(|n| {
        let place: Vec<&str> = [n.region.as_deref(), n.zone.as_deref()].into_iter().flatten().collect();
        if place.is_empty() {
            escape(&n.name)
        } else {
            format!(
                "{} <span class=\"muted\">({})</span>",
                escape(&n.name),
                escape(&place.join(", "))
            )
        }
    });
    let _ = write!(
        h,
        "<h1>netprobe{}</h1>",
        node.map(|n| format!(" on <span id=\"node\">{n}</span>"))
            .unwrap_or_default()
    );
    let unhealthy = r.summary.unhealthy;
    let findings = r.findings.len() + r.scoring_service.as_ref().map_or(0, |s| usize::from(!s.healthy));
    let (class, text) = match (unhealthy, findings) {
        (0, 0) => ("ok", format!("All {} targets healthy", r.summary.targets)),
        (0, f) => (
            "fail",
            format!("All {} targets healthy; {f} cluster finding(s)", r.summary.targets),
        ),
        (u, _) => ("fail", format!("{u} of {} targets failing", r.summary.targets)),
    };
    let _ = write!(h, "<p id=\"summary\" class=\"{class}\">{text}</p>");
    if let Some(sc) = &r.shared_cause {
        let _ = write!(
            h,
            "<p id=\"shared-cause\" class=\"fail\"><b>{}</b>: {}</p>",
            sc.cause.as_str(),
            escape(&sc.diagnosis)
        );
    }
    let _ = write!(
        h,
        "<p class=\"muted\">Last round started {} &middot; took {:.0} ms &middot; resolvers {} (reachability via {}) &middot; version {}</p>",
        escape(&r.started_at),
        crate::report::ms(r.duration),
        escape(&r.summary.resolvers.join(", ")),
        escape(&r.summary.connect_via),
        escape(&r.version),
    );
}

/// The workloads' HTTP proxy, when the pod has one: its variables, each
/// private target's fate per client, and what NO_PROXY lacks.
fn proxy_section(h: &mut String, r: &RoundReport) {
    let Some(p) = &r.proxy else { return };
    h.push_str("<h2>HTTP proxy</h2><ul id=\"proxy\" class=\"findings\">");
    for (name, value) in &p.variables {
        let _ = write!(h, "<li><code>{}={}</code></li>", escape(name), escape(value));
    }
    for t in r.targets.iter().filter(|t| t.expect == crate::model::Expect::Private) {
        let Some(tp) = &t.proxy else { continue };
        let proxied: Vec<&str> = tp
            .clients
            .iter()
            .filter(|d| d.proxy.is_some())
            .map(|d| d.client.as_str())
            .collect();
        if proxied.is_empty() {
            continue;
        }
        let through = tp.via_proxy.as_ref().map_or(String::new(), |v| {
            format!(
                "; through the proxy: {}",
                escape(v.detail.as_deref().unwrap_or(v.reach.as_str()))
            )
        });
        let _ = write!(
            h,
            "<li class=\"fail\" data-proxied=\"{}\"><b>{}</b>: proxied by {}{}{}</li>",
            escape(&t.name),
            escape(&t.fqdn),
            escape(&proxied.join(", ")),
            if tp.disagree { " (the clients disagree)" } else { "" },
            through
        );
    }
    if !p.add_to_no_proxy.is_empty() {
        let _ = write!(
            h,
            "<li class=\"fail\" id=\"no-proxy-add\">Add to NO_PROXY (httpProxyConfig.noProxy; changing it reimages the node pools): <code>{}</code></li>",
            escape(&p.add_to_no_proxy.join(","))
        );
    }
    h.push_str("</ul>");
}

/// Findings about the cluster: region mismatch, the inference router.
fn cluster_section(h: &mut String, r: &RoundReport) {
    if r.findings.is_empty() && r.scoring_service.is_none() {
        return;
    }
    h.push_str("<h2>Cluster</h2><ul id=\"cluster\" class=\"findings\">");
    for f in &r.findings {
        let _ = write!(
            h,
            "<li class=\"fail\" data-finding=\"{}\"><b>{}</b>: {}</li>",
            f.code.as_str(),
            f.code.as_str(),
            escape(&f.message)
        );
    }
    if let Some(s) = &r.scoring_service {
        let _ = write!(
            h,
            "<li class=\"{}\" data-finding=\"inference_router\"><b>inference router {}/{}</b>: {}{}</li>",
            if s.healthy { "ok" } else { "fail" },
            escape(&s.namespace),
            escape(&s.name),
            if s.healthy {
                "private (internal load balancer)"
            } else {
                s.cause.as_str()
            },
            s.diagnosis
                .as_deref()
                .map(|d| format!(": {}", escape(d)))
                .unwrap_or_default(),
        );
    }
    h.push_str("</ul>");
}

/// Each resolver's state this round: servers, up or down (and why), queries.
fn resolvers_table(h: &mut String, r: &RoundReport) {
    h.push_str("<table id=\"resolvers\"><thead><tr><th>Resolver</th><th>Servers</th><th>State</th><th>Queries</th></tr></thead><tbody>");
    for res in &r.resolvers {
        let _ = write!(
            h,
            "<tr class=\"{}\" data-resolver=\"{}\"><td><b>{}</b></td><td><code>{}</code></td><td class=\"status\">{}</td><td>{}</td></tr>",
            if res.up { "ok" } else { "fail" },
            escape(&res.name),
            escape(&res.name),
            escape(&res.servers.join(" ")),
            if res.up {
                let notes: String = res.notes().iter().map(|n| format!("; {}", escape(n))).collect();
                format!("up: {} of {} lookups answered{notes}", res.answered, res.lookups)
            } else {
                format!(
                    "DOWN: no usable answer{}",
                    res.detail
                        .as_deref()
                        .map(|d| format!(" ({})", escape(d)))
                        .unwrap_or_default()
                )
            },
            res.queries,
        );
    }
    h.push_str("</tbody></table><br>");
}

/// One target: status, name and FQDN, each resolver's answer, reach and every cause.
fn target_row(h: &mut String, t: &TargetReport, connect_via: &str, round_started: &str) {
    let class = if t.healthy { "ok" } else { "fail" };
    let since = t.since_line(round_started).map_or(String::new(), |l| {
        format!("<br><span class=\"muted since\">{}</span>", escape(&l))
    });
    let _ = write!(
        h,
        "<tr class=\"{class}\" data-target=\"{}\"><td class=\"status\">{}{since}</td><td><b>{}</b><br><code>{}:{}</code></td><td>{}</td><td>",
        escape(&t.name),
        if t.healthy { "ok" } else { "FAIL" },
        escape(&t.name),
        escape(&t.fqdn),
        t.port,
        t.service.as_str(),
    );
    for d in &t.dns {
        let chain = if d.cname_chain.is_empty() {
            String::new()
        } else {
            format!(
                " via {}",
                d.cname_chain
                    .iter()
                    .map(|c| escape(c))
                    .collect::<Vec<_>>()
                    .join(" &rarr; ")
            )
        };
        let addrs: Vec<String> = d.addresses.iter().map(|a| a.to_string()).collect();
        let _ = write!(
            h,
            "<div><b>{}</b>: {}{}<br><code>{}{}</code></div>",
            escape(&d.resolver),
            d.verdict.as_str(),
            if d.privatelink { " (privatelink)" } else { "" },
            escape(&addrs.join(", ")),
            chain,
        );
    }
    let via = match &t.connect_resolver {
        Some(v) if v != connect_via => {
            format!("<br><span class=\"muted\">via {}'s addresses</span>", escape(v))
        }
        _ => String::new(),
    };
    let tags: String = t
        .connect
        .iter()
        .filter_map(|c| {
            c.service_tag.as_ref().map(|tag| {
                format!(
                    "<br><span class=\"muted\">{} in <b>{}</b></span>",
                    c.address,
                    escape(tag)
                )
            })
        })
        .collect();
    let _ = write!(h, "</td><td>{}{via}{tags}</td><td class=\"diag\">", t.reach.as_str());
    if t.causes.is_empty() {
        h.push_str("<b>none</b>");
    }
    for c in &t.causes {
        let _ = write!(
            h,
            "<div class=\"cause\"><b>{}</b><br>{}</div>",
            c.cause.as_str(),
            escape(&c.diagnosis)
        );
    }
    h.push_str("</td></tr>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(escape("a\u{7}b"), "a&#7;b");
    }

    #[test]
    fn waiting_page_before_the_first_round() {
        let ctx = PageContext {
            refresh_secs: 5,
            reload_error: Some("bad <yaml>".into()),
            ..PageContext::default()
        };
        let page = render(None, &ctx);
        assert!(page.contains("Waiting for the first round"));
        assert!(page.contains("content=\"5\""));
        assert!(page.contains("reload rejected</b>: bad &lt;yaml&gt;"), "{page}");
    }
}
