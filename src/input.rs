//! What the user wrote, and how a bad value is told: a value with its place
//! in the file ([`S`]), the context that turns it into a [`ConfigError`]
//! naming file:line:column, field and value ([`Ctx`]), the messages' care
//! (quoted values cut, the YAML library's internals in the config's terms),
//! and the value rules that more than one section uses (names, DNS names,
//! server addresses). `config` (the file and its generic sections) and each
//! service's own section (`service::*`) build on it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use crate::model::Expect;

/// A value as written, with its line and column.
pub type S<T> = Spanned<T>;

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}{}: {field}: {message}", fmt_location(*.location))]
    Invalid {
        path: String,
        location: Option<(u64, u64)>,
        field: String,
        message: String,
    },
}

fn fmt_location(location: Option<(u64, u64)>) -> String {
    match location {
        Some((line, column)) => format!(":{line}:{column}"),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Where a value stands, and the messages.

/// Collects the file's path for error messages and turns spans into
/// `(line, column)`.
pub struct Ctx<'a> {
    pub path: &'a str,
    pub base: Option<&'a Path>,
}

impl Ctx<'_> {
    pub fn err<T>(&self, spanned: &S<T>, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let loc = spanned.referenced;
        let location = (loc.line() > 0).then(|| (loc.line(), loc.column()));
        invalid(self.path, location, field.into(), message.into())
    }

    pub fn err_at_top(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        invalid(self.path, None, field.into(), message.into())
    }

    /// Resolves a path given in the config relative to the config's folder.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        match self.base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// Every validation error is built here, so every one gets the same care: a
/// value quoted in the message is cut to a readable length.
pub fn invalid(path: &str, location: Option<(u64, u64)>, field: String, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_string(),
        location,
        field,
        message: cut_quoted(&message),
    }
}

/// Longest quoted value shown whole in an error message, in characters.
const SHOWN_VALUE: usize = 64;

/// Cuts every `"…"` or `` `…` `` span longer than [`SHOWN_VALUE`] characters
/// to its start, an ellipsis and its length, so that a 5,000-character value
/// does not become a 5,000-character message.
fn cut_quoted(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len().min(512));
    let mut i = 0;
    while i < chars.len() {
        let q = chars[i];
        out.push(q);
        i += 1;
        if q != '"' && q != '`' {
            continue;
        }
        // The span up to the closing quote (a backslash escapes the next character).
        let mut end = i;
        while end < chars.len() && chars[end] != q {
            end += if chars[end] == '\\' { 2 } else { 1 };
        }
        let end = end.min(chars.len());
        let inner = &chars[i..end];
        if inner.len() > SHOWN_VALUE {
            out.extend(&inner[..SHOWN_VALUE - 16]);
            out.push('…');
            if end < chars.len() {
                out.push(q);
            }
            out.push_str(&format!(" ({} characters)", inner.len()));
        } else {
            out.extend(inner);
            if end < chars.len() {
                out.push(q);
            }
        }
        i = end + 1;
    }
    out
}

/// The messages of the YAML library's errors that would otherwise show its
/// internals (an option name, a Rust debug print), in the config's terms.
fn library_message(e: &serde_saphyr::Error) -> Option<String> {
    let mut e = e;
    while let serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } = e {
        e = error;
    }
    match e {
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => Some(match key {
            Some(k) => format!("the key `{k}` is given twice; each key may appear once"),
            None => "a key is given twice; each key may appear once".to_string(),
        }),
        serde_saphyr::Error::Budget { breach, .. } => {
            // `Nodes { nodes: 250001 }` -> "nodes"
            let debug = format!("{breach:?}");
            let what: String = debug
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("size")
                .chars()
                .flat_map(|c| {
                    let lower = c.to_ascii_lowercase();
                    if c.is_ascii_uppercase() {
                        vec![' ', lower]
                    } else {
                        vec![c]
                    }
                })
                .collect();
            Some(format!(
                "the document is too large for a netprobe configuration (too many {}); the YAML parser's safety limit stops it",
                what.trim()
            ))
        }
        _ => None,
    }
}

/// Turns a parser or type error into the same `file:line:col: field: message`
/// shape as the validation errors.
pub fn syntax_error(e: &serde_saphyr::Error, path: &str, field: &str) -> ConfigError {
    // serde-saphyr renders "error: line L column C: message" plus a snippet;
    // keep only the message.
    let rendered = e.to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim();
    let mut message = first.strip_prefix("error:").unwrap_or(first).trim();
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
    {
        message = after;
    }
    let location = e.location().filter(|l| l.line() > 0).map(|l| (l.line(), l.column()));
    let own = library_message(e);
    let message = own.as_deref().unwrap_or(message);
    // `Spanned<T>` adds a `.value` segment that the user never wrote.
    let field = field.replace(".value", "");
    let field = if field.is_empty() || field == "." || field == "?" {
        "(document)".to_string()
    } else {
        field
    };
    let message = match message {
        "expected sequence start" => "expected a list".to_string(),
        "expected mapping start" => "expected a mapping (key: value pairs)".to_string(),
        m if m.starts_with("multiple YAML documents") => {
            "the file holds several YAML documents (---); netprobe reads exactly one".to_string()
        }
        other => other.to_string(),
    };
    invalid(path, location, field, message)
}

// ---------------------------------------------------------------------------
// Value checks. Each returns a message saying what is expected.

/// A value quoted the way messages quote it.
pub struct Shown<'a>(pub &'a str);
impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A rule for a resource or object name: its length, the characters it may
/// hold, how it starts and ends, and what the message says is expected.
pub struct NameRule {
    pub what: &'static str,
    pub expected: &'static str,
    pub len: std::ops::RangeInclusive<usize>,
    pub chars: fn(char) -> bool,
    pub first: fn(char) -> bool,
    pub last: fn(char) -> bool,
    pub single_hyphens: bool,
}

fn any_char(_: char) -> bool {
    true
}

pub fn lower_or_digit(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

impl NameRule {
    pub const BASE: NameRule = NameRule {
        what: "",
        expected: "",
        len: 1..=64,
        chars: any_char,
        first: any_char,
        last: any_char,
        single_hyphens: false,
    };

    pub fn check(&self, s: &str) -> Result<(), String> {
        let ok = self.len.contains(&s.len())
            && s.chars().all(self.chars)
            && s.chars().next().is_some_and(self.first)
            && s.chars().last().is_some_and(self.last)
            && !(self.single_hyphens && s.contains("--"));
        if ok {
            Ok(())
        } else {
            Err(format!("{} is not {} ({})", Shown(s), self.what, self.expected))
        }
    }
}

pub const REGION: NameRule = NameRule {
    what: "an Azure region name",
    expected: "expected lower-case letters and digits, e.g. eastus, westeurope",
    len: 1..=40,
    chars: lower_or_digit,
    ..NameRule::BASE
};
pub const RESOLVER_NAME: NameRule = NameRule {
    what: "a valid resolver name",
    expected: "1-64 letters, digits, '-' or '_'",
    len: 1..=64,
    chars: |c| c.is_ascii_alphanumeric() || "-_".contains(c),
    ..NameRule::BASE
};

/// Validates a DNS name and returns it lower-cased without a trailing dot.
pub fn check_fqdn(s: &str) -> Result<String, String> {
    let trimmed = s.trim().trim_end_matches('.');
    let bad = || {
        format!(
            "{} is not a valid DNS name (labels of 1-63 letters, digits, '-' or '_', at most 253 characters, at least two labels)",
            Shown(s)
        )
    };
    if trimmed.is_empty() || trimmed.len() > 253 || !trimmed.contains('.') {
        return Err(bad());
    }
    for label in trimmed.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad());
        }
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// Parses `ip`, `ip:port` or `[v6]:port`; the port defaults to 53.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        if sa.port() == 0 {
            return Err(format!("{} has port 0", Shown(s)));
        }
        return Ok(sa);
    }
    Err(format!(
        "{} is not a DNS server address (expected an IP address or IP:port, e.g. 168.63.129.16 or [fd00::10]:53; host names are not accepted)",
        Shown(s)
    ))
}

/// A resource section's `expect` (private unless told).
pub fn expect_of(expect: Option<&S<Expect>>) -> Expect {
    expect.map_or(Expect::Private, |e| e.value)
}
