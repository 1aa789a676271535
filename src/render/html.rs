//! The agent's status page: the last round per target, coloured by health,
//! refreshing itself. Self-contained (no scripts, no external assets), and
//! every string that came from DNS or the config is HTML-escaped.

use std::fmt::Write;

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
code{font-size:.85em;word-break:break-all}.muted{color:#666}.diag{max-width:40em}";

/// Renders the page; `report` is `None` before the first round completes.
pub fn render(report: Option<&RoundReport>, refresh_secs: u64) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{refresh_secs}\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>netprobe</title><style>{STYLE}</style></head><body>"
    );
    let Some(r) = report else {
        h.push_str("<h1>netprobe</h1><p id=\"waiting\">Waiting for the first round to complete.</p></body></html>");
        return h;
    };
    let _ = write!(
        h,
        "<h1>netprobe: <span id=\"overall\">{}</span></h1><p class=\"muted\">Round started {} &middot; {:.0} ms &middot; {} targets, {} unhealthy &middot; resolvers {} (reachability via {}) &middot; version {}</p>",
        if r.healthy { "all healthy" } else { "findings" },
        escape(&r.started_at),
        crate::report::ms(r.duration),
        r.summary.targets,
        r.summary.unhealthy,
        escape(&r.summary.resolvers.join(", ")),
        escape(&r.summary.connect_via),
        escape(r.version),
    );
    resolvers_table(&mut h, r);
    h.push_str("<table id=\"targets\"><thead><tr><th>Status</th><th>Target</th><th>Service</th><th>DNS per resolver</th><th>Reach</th><th>Cause and diagnosis</th></tr></thead><tbody>");
    for t in &r.targets {
        target_row(&mut h, t, &r.summary.connect_via);
    }
    h.push_str("</tbody></table><p class=\"muted\">JSON: <a href=\"status\">/status</a> &middot; metrics: <a href=\"metrics\">/metrics</a></p></body></html>");
    h
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
                format!("up: {} of {} lookups answered", res.answered, res.lookups)
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
fn target_row(h: &mut String, t: &TargetReport, connect_via: &str) {
    let class = if t.healthy { "ok" } else { "fail" };
    let _ = write!(
        h,
        "<tr class=\"{class}\" data-target=\"{}\"><td class=\"status\">{}</td><td><b>{}</b><br><code>{}:{}</code></td><td>{}</td><td>",
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
    let _ = write!(h, "</td><td>{}{via}</td><td class=\"diag\">", t.reach.as_str());
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
        let page = render(None, 5);
        assert!(page.contains("Waiting for the first round"));
        assert!(page.contains("content=\"5\""));
    }
}
