//! Human output: one record per target, then the findings with their fixes.
//! Lines stay within 100 columns (long diagnoses are wrapped), and nothing
//! depends on colour, so the report reads the same in `kubectl logs`.

use std::fmt::Write;

use crate::report::{RoundReport, TargetReport};

/// Width the report is laid out for.
pub const WIDTH: usize = 100;

pub fn render(report: &RoundReport) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(
        out,
        "netprobe {} | {} | {} targets, {} unhealthy | {:.0} ms",
        report.version,
        report.started_at,
        s.targets,
        s.unhealthy,
        crate::report::ms(report.duration)
    );
    let legend = format!(
        "resolvers: {} (reachability via {}) | * = answer came through the privatelink zone",
        s.resolvers.join(", "),
        s.connect_via
    );
    for line in wrap(&legend, WIDTH) {
        let _ = writeln!(out, "{line}");
    }
    for r in &report.resolvers {
        let state = if r.up {
            let notes: String = r.notes().iter().map(|n| format!(", {n}")).collect();
            format!("up, {} of {} lookups answered{notes}", r.answered, r.lookups)
        } else {
            format!(
                "DOWN, no usable answer{}",
                r.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            )
        };
        let servers = if r.servers.is_empty() {
            "no servers".to_string()
        } else {
            r.servers.join(" ")
        };
        let line = format!("resolver {} ({servers}): {state}; {} queries", r.name, r.queries);
        for l in wrap(&line, WIDTH) {
            let _ = writeln!(out, "{l}");
        }
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<6} {:<9} {:<40} {:<11} SLOWEST",
        "STATUS", "SERVICE", "TARGET", "REACH"
    );
    for t in &report.targets {
        target_rows(&mut out, t, &s.connect_via);
    }
    if let Some(sc) = &report.scoring_service {
        let ips: Vec<String> = sc.ingress_ips.iter().map(|i| i.to_string()).collect();
        let _ = writeln!(
            out,
            "{:<6} {:<9} {:<40} {}",
            if sc.healthy { "ok" } else { "FAIL" },
            "k8s",
            truncate(&format!("service {}/{}", sc.namespace, sc.name), 40),
            if ips.is_empty() {
                "no ingress IP".to_string()
            } else {
                format!("ingress {}", ips.join(", "))
            }
        );
    }
    proxy(&mut out, report);
    findings(&mut out, report);
    out
}

/// The workloads' HTTP proxy, when the pod has one: the variables
/// (credentials hidden), and what NO_PROXY lacks.
fn proxy(out: &mut String, report: &RoundReport) {
    let Some(p) = &report.proxy else { return };
    out.push('\n');
    let vars: Vec<String> = p.variables.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let line = format!("HTTP proxy (the workloads' variables): {}", vars.join(" "));
    for l in wrap(&line, WIDTH) {
        let _ = writeln!(out, "{l}");
    }
    let line = if p.proxied_private.is_empty() {
        "NO_PROXY takes every private target off the proxy.".to_string()
    } else {
        format!(
            "{} private target(s) would go through it ({}){}: add to NO_PROXY {}",
            p.proxied_private.len(),
            p.proxied_private.join(", "),
            if p.probed { ", probed through it" } else { "" },
            p.add_to_no_proxy.join(",")
        )
    };
    for l in wrap(&line, WIDTH) {
        let _ = writeln!(out, "{l}");
    }
}

/// The findings, each with every cause's diagnosis.
fn findings(out: &mut String, report: &RoundReport) {
    let findings: Vec<&TargetReport> = report.targets.iter().filter(|t| !t.healthy).collect();
    let scoring_bad = report.scoring_service.as_ref().filter(|s| !s.healthy);
    let count = findings.len() + report.findings.len() + usize::from(scoring_bad.is_some());
    out.push('\n');
    if count == 0 {
        let _ = writeln!(out, "All {} targets healthy.", report.summary.targets);
        return;
    }
    let _ = writeln!(out, "Findings ({count}):");
    for f in &report.findings {
        let _ = writeln!(out, "  cluster [{}]", f.code);
        for line in wrap(&f.message, WIDTH - 4) {
            let _ = writeln!(out, "    {line}");
        }
    }
    if let Some(sc) = scoring_bad {
        let _ = writeln!(out, "  service {}/{} [{}]", sc.namespace, sc.name, sc.cause);
        for line in wrap(sc.diagnosis.as_deref().unwrap_or(""), WIDTH - 4) {
            let _ = writeln!(out, "    {line}");
        }
    }

    // A cause every target shares: said once, then the first target in
    // full and the others by name.
    if let Some(sc) = &report.shared_cause {
        let through = sc
            .resolver
            .as_deref()
            .map(|r| format!(", resolver {r}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  every target [{}{through}]", sc.cause);
        for line in wrap(&sc.diagnosis, WIDTH - 4) {
            let _ = writeln!(out, "    {line}");
        }
    }
    for (i, t) in findings.into_iter().enumerate() {
        let codes: Vec<&str> = t.causes.iter().map(|c| c.cause.as_str()).collect();
        let _ = writeln!(out, "  {} [{}]", t.name, codes.join(", "));
        if i > 0 && report.shared_cause.is_some() {
            continue;
        }
        let several = t.causes.len() > 1;
        for c in &t.causes {
            for (i, line) in wrap(&c.diagnosis, WIDTH - 6).iter().enumerate() {
                let bullet = match (several, i) {
                    (true, 0) => "- ",
                    (true, _) => "  ",
                    (false, _) => "",
                };
                let _ = writeln!(out, "    {bullet}{line}");
            }
        }
    }
}

fn target_rows(out: &mut String, t: &TargetReport, connect_via: &str) {
    let status = if t.healthy { "ok" } else { "FAIL" };
    let slowest = t
        .slowest
        .as_ref()
        .map(|p| format!("{} {}", p.phase, fmt_ms(crate::report::ms(p.duration))))
        .unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "{:<6} {:<9} {:<40} {:<11} {}",
        status,
        t.service.as_str(),
        truncate(&t.name, 40),
        t.reach.as_str(),
        slowest
    );
    let _ = writeln!(out, "{:7}{}:{}", "", t.fqdn, t.port);
    let mut dns = String::new();
    for d in &t.dns {
        let _ = write!(
            dns,
            "{}={}{} ",
            d.resolver,
            d.verdict,
            if d.privatelink { "*" } else { "" }
        );
    }
    let per_resolver: Vec<(String, String)> = t
        .dns
        .iter()
        .map(|d| {
            let list: Vec<String> = d.addresses.iter().map(|a| a.to_string()).collect();
            let shown = if list.is_empty() {
                "no address".to_string()
            } else {
                list.join(", ")
            };
            (d.resolver.clone(), shown)
        })
        .collect();
    let all_same = per_resolver.windows(2).all(|w| w[0].1 == w[1].1);
    let addrs = if all_same {
        per_resolver.first().map(|p| p.1.clone()).unwrap_or_default()
    } else {
        per_resolver
            .iter()
            .map(|(r, a)| format!("{r}: {a}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let line = format!("dns {dns}-> {addrs}");
    for l in wrap(&line, WIDTH - 7) {
        let _ = writeln!(out, "{:7}{}", "", l);
    }
    let tagged: Vec<String> = t
        .connect
        .iter()
        .filter_map(|c| c.service_tag.as_ref().map(|tag| format!("{} in {tag}", c.address)))
        .collect();
    if !tagged.is_empty() {
        let _ = writeln!(out, "{:7}service tag: {}", "", tagged.join(", "));
    }
    if let Some(via) = t.connect_resolver.as_deref().filter(|v| *v != connect_via) {
        let _ = writeln!(
            out,
            "{:7}reach tried with resolver {via}'s addresses ({connect_via} gave none)",
            ""
        );
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('~');
        t
    }
}

/// Greedy word wrap; words longer than the width are split.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
        let needed = if line.is_empty() {
            word.len()
        } else {
            line.len() + 1 + word.len()
        };
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_respects_width_and_keeps_words() {
        let text = "resolver 'system': a.b.c -> a.privatelink.b.c ends at public 20.1.2.3: the zone is not linked. Fix: link it.";
        let lines = wrap(text, 30);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        let long = "x".repeat(75);
        let lines = wrap(&long, 30);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines.concat(), long);
    }
}
