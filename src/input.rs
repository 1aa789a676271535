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

use serde_saphyr::{Location, Spanned};

use crate::model::Expect;

/// A value as written, with its line and column: the YAML library's
/// `Spanned`, in a type of ours so that the configuration's JSON Schema
/// (`config::json_schema`) sees the value's own schema through it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S<T> {
    pub value: T,
    /// Where the value is used (an alias's use, not its anchor).
    pub referenced: Location,
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for S<T> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = Spanned::<T>::deserialize(de)?;
        Ok(S {
            value: s.value,
            referenced: s.referenced,
        })
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for S<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

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
    /// Every error found in one file, in the file's order: one per line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// The single errors (a `Several` opened up).
    pub fn into_list(self) -> Vec<ConfigError> {
        match self {
            ConfigError::Several(list) => list,
            e => vec![e],
        }
    }
}

/// Collects a file's errors, so that one run of `check-config` tells all.
#[derive(Debug, Default)]
pub struct Errors(Vec<ConfigError>);

impl Errors {
    /// The value, or `None` with its error(s) kept.
    pub fn keep<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.extend(e.into_list());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was kept; otherwise the error, or all of them.
    pub fn finish<T>(mut self, value: T) -> Result<T, ConfigError> {
        match self.0.len() {
            0 => Ok(value),
            1 => Err(self.0.remove(0)),
            _ => Err(ConfigError::Several(self.0)),
        }
    }
}

/// Runs `f` on each entry of a list section, collecting every entry's
/// targets and every entry's error (not only the first).
pub fn each<E, T>(
    entries: &[E],
    mut f: impl FnMut(usize, &E) -> Result<Vec<T>, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    let mut errors = Errors::default();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(v) = errors.keep(f(i, e)) {
            out.extend(v);
        }
    }
    errors.finish(out)
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
        m if m.starts_with("unknown field `") => unknown_key(m),
        other => other.to_string(),
    };
    invalid(path, location, field, message)
}

/// serde's "unknown field `servces`, expected one of `name`, `services`"
/// (or "expected `a` or `b`"), with the closest known key when one is near:
/// "unknown key `servces`: did you mean `services`? (keys here: ...)".
fn unknown_key(message: &str) -> String {
    let Some((head, expected)) = message.split_once(", expected ") else {
        return message.to_string();
    };
    let key = head.trim_start_matches("unknown field `").trim_end_matches('`');
    let known: Vec<&str> = expected
        .trim_start_matches("one of ")
        .split([',', ' '])
        .map(|k| k.trim_matches('`'))
        .filter(|k| !k.is_empty() && *k != "or")
        .collect();
    let near = known
        .iter()
        .map(|k| (edit_distance(&key.to_ascii_lowercase(), k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    match near {
        Some((_, k)) => format!(
            "unknown key `{key}`: did you mean `{k}`? (keys here: {})",
            known.join(", ")
        ),
        None => format!("unknown key `{key}` (keys here: {})", known.join(", ")),
    }
}

/// Levenshtein distance, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
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
    /// The same rule but the length, as a JSON Schema (ECMA/RE2) pattern:
    /// the configuration's schema checks names with it at `helm install`
    /// (a property test keeps it equal to `check`).
    pub pattern: &'static str,
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
        pattern: "^.*$",
    };

    /// The rule as a JSON Schema for a string.
    pub fn schema(&self) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": self.len.start(),
            "maxLength": self.len.end(),
            "pattern": self.pattern,
            "description": format!("{} ({})", self.what, self.expected),
        })
    }

    pub fn check(&self, s: &str) -> Result<(), String> {
        let ok = self.len.contains(&s.len())
            && s.chars().all(self.chars)
            && s.chars().next().is_some_and(self.first)
            && s.chars().last().is_some_and(self.last)
            && !(self.single_hyphens && s.contains("--"));
        if ok {
            return Ok(());
        }
        let mut message = format!("{} is not {} ({})", Shown(s), self.what, self.expected);
        // A URL, login server or host name pasted for the name: say the name.
        let host = s.split_once("://").map_or(s, |(_, rest)| rest);
        if let Some((first, _)) = host.split_once(['.', '/', ':'])
            && first != s
            && self.check(first).is_ok()
        {
            message.push_str(&format!(
                "; it looks like a URL or host name: the name is {}",
                Shown(first)
            ));
        }
        Err(message)
    }
}

pub const REGION: NameRule = NameRule {
    what: "an Azure region name",
    expected: "expected lower-case letters and digits, e.g. eastus, westeurope",
    len: 1..=40,
    chars: lower_or_digit,
    pattern: "^[a-z0-9]+$",
    ..NameRule::BASE
};
pub const RESOLVER_NAME: NameRule = NameRule {
    what: "a valid resolver name",
    expected: "1-64 letters, digits, '-' or '_'",
    len: 1..=64,
    chars: |c| c.is_ascii_alphanumeric() || "-_".contains(c),
    pattern: "^[A-Za-z0-9_-]+$",
    ..NameRule::BASE
};

/// JSON Schema patterns (ECMA and RE2 alike, no look-around) of the values
/// that are not names: each accepts all that its parser accepts and rejects
/// the common mistakes (a host name for a DNS server, a prefix past /32).
/// Property tests hold them to the parsers.
pub mod patterns {
    const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    /// IPv6, loosely: hex digits, colons (at least one) and an IPv4 tail.
    const V6: &str = "[0-9A-Fa-f]*:[0-9A-Fa-f:.]*";
    const PORT: &str = "[0-9]{1,5}";

    fn v4() -> String {
        format!("({OCTET}\\.){{3}}{OCTET}")
    }

    /// An IP address (`expected_ips`).
    pub fn ip() -> String {
        format!("^\\s*({}|{V6})\\s*$", v4())
    }

    /// A DNS server: `ip`, `ip:port` or `[v6]:port` ([`super::parse_server`]).
    pub fn server() -> String {
        format!("^\\s*({}(:{PORT})?|{V6}|\\[{V6}\\]:{PORT})\\s*$", v4())
    }

    /// A CIDR range (`private_ranges`).
    pub fn cidr() -> String {
        format!(
            "^\\s*({}/0*(3[0-2]|[12]?[0-9])|{V6}/0*(12[0-8]|1[01][0-9]|[1-9]?[0-9]))\\s*$",
            v4()
        )
    }

    /// A DNS name ([`super::check_fqdn`]): at least two labels.
    pub const FQDN: &str =
        "^ *([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\\.)+[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\\.* *$";

    /// A duration (`humantime`: `5s`, `1500ms`, `1m 30s`).
    pub const DURATION: &str = "^ *[0-9][0-9A-Za-zµ. ]*$";
}

/// The JSON Schema of single values, for `#[schemars(schema_with = ...)]`
/// on the configuration's types (`config::json_schema`).
pub mod schema {
    use super::patterns;
    use schemars::{Schema, SchemaGenerator, json_schema};

    pub fn region(_: &mut SchemaGenerator) -> Schema {
        let mut s = super::REGION.schema();
        s.insert(
            "description".into(),
            "The Azure region (e.g. eastus, westeurope), or `auto`: the node's region label".into(),
        );
        s
    }
    pub fn regions(g: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "array", "items": region(g) })
    }
    pub fn resolver_name(_: &mut SchemaGenerator) -> Schema {
        super::RESOLVER_NAME.schema()
    }
    pub fn fqdn(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 260,
            "pattern": patterns::FQDN,
            "description": "A DNS name (at least two labels)",
        })
    }
    pub fn duration(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": patterns::DURATION,
            "description": "A duration: 5s, 1500ms, 1m 30s",
        })
    }
    pub fn servers(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "string",
                "pattern": patterns::server(),
                "description": "A DNS server's IP address, or IP:port ([v6]:port); not a host name",
            },
        })
    }
    pub fn ips(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "minItems": 1,
            "items": { "type": "string", "pattern": patterns::ip(), "description": "An IP address" },
        })
    }
    pub fn cidrs(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "string",
                "pattern": patterns::cidr(),
                "description": "A CIDR range: 10.0.0.0/8, fc00::/7",
            },
        })
    }
    pub fn port(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": 65535 })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings over an alphabet that crosses every rule's edges, of 0 to
    /// `max` characters, from a fixed seed (xorshift: the same every run).
    fn strings(alphabet: &[&str], max: usize, n: usize) -> Vec<String> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|_| {
                let len = (next() % (max as u64 + 1)) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    fn matches(pattern: &str, s: &str) -> bool {
        thread_local! {
            static COMPILED: std::cell::RefCell<std::collections::HashMap<String, regex::Regex>> =
                Default::default();
        }
        COMPILED.with_borrow_mut(|c| {
            c.entry(pattern.to_string())
                .or_insert_with(|| regex::Regex::new(pattern).unwrap())
                .is_match(s)
        })
    }

    /// A name rule's schema (pattern and length) accepts exactly what the
    /// rule accepts: `helm install` and the agent never disagree on a name.
    #[test]
    fn each_name_rules_schema_is_the_rule() {
        use crate::service::{acr, custom, keyvault, storage, workspace};
        let rules = [
            &REGION,
            &RESOLVER_NAME,
            &storage::STORAGE_NAME,
            &keyvault::VAULT_NAME,
            &acr::REGISTRY_NAME,
            &workspace::WORKSPACE_NAME,
            &custom::TARGET_NAME,
        ];
        // Broad, and narrow enough that long valid names come up too.
        let broad = ["a", "z", "K", "0", "9", "-", "--", "_", ".", " ", "é"];
        let narrow = ["a", "z", "0", "9", "-"];
        for rule in rules {
            let schema = rule.schema().to_value();
            let pattern = schema["pattern"].as_str().unwrap();
            let (min, max) = (
                schema["minLength"].as_u64().unwrap(),
                schema["maxLength"].as_u64().unwrap(),
            );
            let mut samples = strings(&broad, *rule.len.end() + 3, 20_000);
            samples.extend(strings(&narrow, *rule.len.end() + 3, 20_000));
            let mut accepted = 0;
            for s in samples
                .iter()
                .map(String::as_str)
                .chain(["", "abc", "a-b-c", "a--b", "abc-", "-abc"])
            {
                let chars = s.chars().count() as u64;
                let by_schema = matches(pattern, s) && (min..=max).contains(&chars);
                assert_eq!(by_schema, rule.check(s).is_ok(), "{}: {s:?}", rule.what);
                accepted += usize::from(by_schema);
            }
            assert!(accepted > 100, "{}: only {accepted} samples valid", rule.what);
        }
    }

    /// What the parsers accept, the schema's patterns accept (a schema that
    /// refused a valid value would block an install the agent would run);
    /// the mistakes the schema is there for, it refuses.
    #[test]
    fn value_patterns_accept_all_their_parsers_accept() {
        type Case = (String, fn(&str) -> bool, &'static [&'static str]);
        let cases: [Case; 4] = [
            (
                patterns::server(),
                |s| parse_server(s).is_ok(),
                &["dns.corp.example", "10.0.0.1:x", "[fd00::1]"],
            ),
            (
                patterns::ip(),
                |s| s.parse::<IpAddr>().is_ok(),
                &["10.0.0.300", "host", "10.0.0.0/8"],
            ),
            (
                patterns::cidr(),
                |s| s.parse::<ipnet::IpNet>().is_ok(),
                &["172.16.0.0/33", "10.0.0.0", "fd00::/129"],
            ),
            (
                patterns::FQDN.to_string(),
                |s| check_fqdn(s).is_ok(),
                &["localhost", "-a.b", "a..b", "a b.c"],
            ),
        ];
        let alphabet = [
            "1", "2", "25", "0", "9", ".", ":", "::", "/", "3", "f", "a", "-", "[", "]", "_", "x", " ",
        ];
        for (pattern, parses, refused) in cases {
            let mut parsed = 0;
            for s in strings(&alphabet, 24, 200_000) {
                if parses(&s) {
                    parsed += 1;
                    assert!(matches(&pattern, &s), "{pattern}: refuses {s:?}, which parses");
                }
            }
            assert!(parsed > 20, "{pattern}: only {parsed} samples parsed");
            for s in [
                "10.0.0.1",
                "fd00::53",
                "168.63.129.16:53",
                "[fd00::53]:53",
                "10.0.0.0/8",
                "fc00::/7",
                "a.b.c",
            ] {
                if parses(s) {
                    assert!(matches(&pattern, s), "{pattern}: refuses {s:?}");
                }
            }
            for s in refused {
                assert!(!parses(s) && !matches(&pattern, s), "{pattern}: {s:?}");
            }
        }
    }

    /// Every duration humantime reads, the schema's pattern accepts.
    #[test]
    fn the_duration_pattern_accepts_what_humantime_reads() {
        let alphabet = [
            "1", "0", "5", "ms", "s", "m", "h", "d", " ", "min", "sec", "us", "x", ".",
        ];
        let mut parsed = 0;
        for s in strings(&alphabet, 8, 50_000) {
            if humantime::parse_duration(s.trim()).is_ok() {
                parsed += 1;
                assert!(matches(patterns::DURATION, &s), "refuses {s:?}");
            }
        }
        assert!(parsed > 100, "{parsed}");
        assert!(!matches(patterns::DURATION, "soon"));
    }
}
