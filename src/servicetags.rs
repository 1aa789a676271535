//! Azure's published Service Tags file (`service_tags_file`): which Azure
//! service, in which region, an address belongs to.
//!
//! The file is Microsoft's weekly JSON download (`ServiceTags_Public_YYYYMMDD.json`,
//! and its US Government and China counterparts), or a trimmed copy of it
//! (`scripts/trim-service-tags`). It is read once per (re)load into a prefix
//! index (sorted rows, one binary search per prefix length). Entries are matched on `properties.systemService` and
//! `properties.region`, never on the spelling of `name` (`AzureCloud.eastus2`
//! next to `AzureContainerRegistry.EastUS`); `name` is what the report shows,
//! because that is what an NSG or firewall rule is written with.
//!
//! Nothing here does I/O but [`ServiceTags::load`]; the parser and the index
//! are pure and fuzzed (`fuzz/fuzz_targets/service_tags.rs`).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::Deserialize;

/// Largest file read: the full public file is about 4 MB.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// Most address prefixes kept; the full public file has about 60,000 once
/// the duplicates of the per-region `AzureCloud` entries are counted.
pub const MAX_PREFIXES: usize = 500_000;

/// Where the publication date comes from, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishedFrom {
    /// `netprobe.published` in the file, written by `scripts/trim-service-tags`.
    File,
    /// The `YYYYMMDD` of Microsoft's file name (`ServiceTags_Public_20261102.json`).
    FileName,
    /// The file's modification time: a lower bound of its age at best.
    Mtime,
}

impl PublishedFrom {
    pub const fn as_str(self) -> &'static str {
        match self {
            PublishedFrom::File => "file",
            PublishedFrom::FileName => "file_name",
            PublishedFrom::Mtime => "mtime",
        }
    }
}

/// One entry (`values[]`) of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// As published, e.g. `AzureContainerRegistry.EastUS`: what a rule names.
    pub name: String,
    /// `properties.region`, lower case; empty for a global tag.
    pub region: String,
    /// `properties.systemService`, e.g. `AzureContainerRegistry`; empty for `AzureCloud`.
    pub system_service: String,
}

/// The parsed file and its prefix index.
#[derive(Clone, Debug)]
pub struct ServiceTags {
    /// Top-level `changeNumber`.
    pub change_number: u64,
    /// Top-level `cloud` (`Public`, `AzureGovernment`, `China`).
    pub cloud: String,
    /// When the file was published (Unix seconds), and how that is known.
    pub published: (i64, PublishedFrom),
    tags: Vec<Tag>,
    /// Every `systemService` of the file, lower case: whether the file
    /// knows a service is asked per target and round.
    services: std::collections::BTreeSet<String>,
    /// The prefixes, per address family (IPv4 in the low bits of a u128).
    v4: Index,
    v6: Index,
}

/// One address family's prefixes: `(length, network, tag)` rows sorted by
/// length then network, and the lengths present, longest first. A lookup is
/// one binary search per length present (at most 33 or 129). 32 bytes per
/// prefix: the full public file's 60,000 prefixes take about 2 MB.
#[derive(Clone, Debug, Default)]
struct Index {
    rows: Vec<(u8, u128, u32)>,
    lens: Vec<u8>,
}

impl Index {
    fn insert(&mut self, len: u8, net: u128, tag: u32) {
        self.rows.push((len, net, tag));
    }

    /// Sorts the rows and lists the lengths; call once after the inserts.
    fn finish(&mut self) {
        self.rows.sort_unstable();
        self.rows.dedup();
        self.rows.shrink_to_fit();
        self.lens = self.rows.iter().map(|r| r.0).collect();
        self.lens.dedup();
        self.lens.reverse();
    }

    /// Every (tag, prefix length) whose prefix holds `addr` (`bits` wide).
    fn lookup(&self, addr: u128, bits: u8) -> impl Iterator<Item = (u32, u8)> + '_ {
        self.lens.iter().flat_map(move |&len| {
            let net = mask(addr, len, bits);
            let start = self.rows.partition_point(|r| (r.0, r.1) < (len, net));
            self.rows[start..]
                .iter()
                .take_while(move |r| r.0 == len && r.1 == net)
                .map(move |r| (r.2, len))
        })
    }
}

fn mask(addr: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let keep = u128::MAX << (128 - u32::from(len));
    let shift = 128 - u32::from(bits);
    ((addr << shift) & keep) >> shift
}

/// Why a Service Tags file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ServiceTagsError {
    pub path: String,
    pub message: String,
}

mod raw {
    use std::borrow::Cow;

    use super::*;

    // Strings borrow from the file's bytes where they can (no escapes), so
    // that the full public file's tens of thousands of prefixes cost no
    // allocation each while parsing.
    #[derive(Deserialize)]
    pub struct File<'a> {
        #[serde(rename = "changeNumber")]
        pub change_number: u64,
        pub cloud: String,
        #[serde(borrow)]
        pub values: Vec<Value<'a>>,
        #[serde(default)]
        pub netprobe: Option<Meta>,
    }

    #[derive(Deserialize)]
    pub struct Value<'a> {
        pub name: String,
        #[serde(borrow)]
        pub properties: Properties<'a>,
    }

    #[derive(Deserialize)]
    pub struct Properties<'a> {
        #[serde(default)]
        pub region: String,
        #[serde(rename = "systemService", default)]
        pub system_service: String,
        #[serde(rename = "addressPrefixes", default, borrow)]
        pub address_prefixes: Vec<Cow<'a, str>>,
    }

    /// What `scripts/trim-service-tags` adds.
    #[derive(Deserialize)]
    pub struct Meta {
        /// `YYYY-MM-DD`.
        pub published: Option<String>,
    }
}

/// How a tag ranks for an address: lower is better.
fn rank(tag: &Tag, services: &[&str], region: Option<&str>) -> u8 {
    let service =
        !tag.system_service.is_empty() && services.iter().any(|s| s.eq_ignore_ascii_case(&tag.system_service));
    let same_region = region.is_some_and(|r| r.eq_ignore_ascii_case(&tag.region));
    match (service, tag.region.is_empty(), same_region) {
        (true, _, true) => 0,
        (true, true, _) => 1,
        (true, false, false) => 2,
        (false, _, _) if !tag.system_service.is_empty() => 3,
        _ => 4,
    }
}

impl ServiceTags {
    /// Reads and indexes a file. `shown` names it in messages.
    pub fn load(path: &Path, shown: &str) -> Result<ServiceTags, ServiceTagsError> {
        let err = |message: String| ServiceTagsError {
            path: shown.to_string(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read the service tags file: {e}")))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(err(format!(
                "{} bytes is more than a Service Tags file holds (at most {MAX_FILE_BYTES})",
                meta.len()
            )));
        }
        let data = crate::nodefiles::read_bounded(path, MAX_FILE_BYTES)
            .map_err(|e| err(format!("cannot read the service tags file: {e}")))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let mtime = meta.modified().ok();
        ServiceTags::parse(&data, shown, name, mtime)
    }

    /// Parses file contents; `file_name` and `mtime` date it when the file
    /// itself does not.
    pub fn parse(
        data: &[u8],
        shown: &str,
        file_name: &str,
        mtime: Option<SystemTime>,
    ) -> Result<ServiceTags, ServiceTagsError> {
        let err = |message: String| ServiceTagsError {
            path: shown.to_string(),
            message,
        };
        let mut de = serde_json::Deserializer::from_slice(data);
        let file: raw::File = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = printable(&e.path().to_string());
            let inner = e.into_inner();
            let what = printable(first_clause(&inner.to_string()));
            if at.is_empty() || at == "." {
                err(format!("not a Service Tags JSON file: {what}"))
            } else {
                err(format!("{at}: {what}"))
            }
        })?;
        let published = published(&file, file_name, mtime).map_err(err)?;
        let mut tags = ServiceTags {
            change_number: file.change_number,
            cloud: file.cloud,
            published,
            tags: Vec::with_capacity(file.values.len()),
            services: Default::default(),
            v4: Index::default(),
            v6: Index::default(),
        };
        let mut prefixes = 0usize;
        for (i, value) in file.values.into_iter().enumerate() {
            let idx = u32::try_from(tags.tags.len()).map_err(|_| err("too many entries".into()))?;
            for (j, p) in value.properties.address_prefixes.iter().enumerate() {
                prefixes += 1;
                if prefixes > MAX_PREFIXES {
                    return Err(err(format!(
                        "more than {MAX_PREFIXES} address prefixes: not a Service Tags file, or trim it (scripts/trim-service-tags)"
                    )));
                }
                let net: IpNet = p.trim().parse().map_err(|_| {
                    err(format!(
                        "values[{i}].properties.addressPrefixes[{j}]: {:?} is not a CIDR",
                        cut(p)
                    ))
                })?;
                let net = net.trunc();
                match net {
                    IpNet::V4(n) => tags.v4.insert(n.prefix_len(), u128::from(u32::from(n.network())), idx),
                    IpNet::V6(n) => tags.v6.insert(n.prefix_len(), u128::from(n.network()), idx),
                }
            }
            tags.tags.push(Tag {
                name: value.name,
                region: value.properties.region.to_ascii_lowercase(),
                system_service: value.properties.system_service,
            });
        }
        tags.services = tags
            .tags
            .iter()
            .map(|t| t.system_service.to_ascii_lowercase())
            .collect();
        tags.v4.finish();
        tags.v6.finish();
        Ok(tags)
    }

    /// Every entry, in file order.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    fn candidates(&self, ip: IpAddr) -> Vec<(u32, u8)> {
        match canonical(ip) {
            IpAddr::V4(v4) => self.v4.lookup(u128::from(u32::from(v4)), 32).collect(),
            IpAddr::V6(v6) => self.v6.lookup(u128::from(v6), 128).collect(),
        }
    }

    /// The tag to name for `ip`: one of `services` in `region` first, then
    /// one of `services` without a region, then in another region, then any
    /// service's tag, then `AzureCloud`; the longest prefix within a rank.
    pub fn tag_for(&self, ip: IpAddr, services: &[&str], region: Option<&str>) -> Option<&Tag> {
        self.candidates(ip)
            .into_iter()
            .map(|(t, len)| (&self.tags[t as usize], len))
            .min_by(|(a, la), (b, lb)| {
                rank(a, services, region)
                    .cmp(&rank(b, services, region))
                    .then(lb.cmp(la))
                    .then(a.name.cmp(&b.name))
            })
            .map(|(t, _)| t)
    }

    /// True when some entry belongs to one of `services`: only then can an
    /// address be said to lie outside them.
    pub fn knows_any(&self, services: &[&str]) -> bool {
        services.iter().any(|s| self.services.contains(&s.to_ascii_lowercase()))
    }

    /// True when `ip` lies in a range of one of `services`.
    pub fn in_services(&self, ip: IpAddr, services: &[&str]) -> bool {
        self.candidates(ip).into_iter().any(|(t, _)| {
            let tag = &self.tags[t as usize];
            services.iter().any(|s| s.eq_ignore_ascii_case(&tag.system_service))
        })
    }

    /// The file's age at `now`.
    pub fn age(&self, now: SystemTime) -> Duration {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        Duration::from_secs(now.saturating_sub(self.published.0).max(0) as u64)
    }
}

/// IPv4-mapped IPv6 addresses are looked up as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Control characters (a JSON key may hold a newline) escaped, so that a
/// message stays one line.
/// Text from the file as an error shows it: control characters escaped, then
/// cut to 200 characters (escaping can make a short key six times longer, so
/// the cut comes after it).
fn printable(s: &str) -> String {
    crate::text::shown(s, 200)
}

fn cut(s: &str) -> String {
    s.chars().take(48).collect()
}

/// serde_json's message without its " at line L column C" tail, which the
/// JSON path replaces.
fn first_clause(s: &str) -> &str {
    s.split(" at line ").next().unwrap_or(s)
}

fn published(file: &raw::File, file_name: &str, mtime: Option<SystemTime>) -> Result<(i64, PublishedFrom), String> {
    if let Some(p) = file.netprobe.as_ref().and_then(|m| m.published.as_deref()) {
        let digits: String = p.chars().filter(char::is_ascii_digit).collect();
        return date_unix(&digits)
            .map(|t| (t, PublishedFrom::File))
            .ok_or_else(|| format!("netprobe.published: {:?} is not a date (YYYY-MM-DD)", cut(p)));
    }
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    if let Some((_, tail)) = stem.rsplit_once('_')
        && tail.len() == 8
        && let Some(t) = date_unix(tail)
    {
        return Ok((t, PublishedFrom::FileName));
    }
    let t = mtime
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    Ok((t, PublishedFrom::Mtime))
}

/// `YYYYMMDD` at midnight UTC, in Unix seconds.
fn date_unix(digits: &str) -> Option<i64> {
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..].parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"{
      "changeNumber": 420, "cloud": "Public",
      "values": [
        {"name": "AzureCloud.eastus", "id": "AzureCloud.eastus",
         "properties": {"changeNumber": 9, "region": "eastus", "regionId": 1, "platform": "Azure",
                        "systemService": "", "addressPrefixes": ["20.0.0.0/8", "2603:1030::/32"],
                        "networkFeatures": ["API", "NSG"]}},
        {"name": "AzureContainerRegistry", "id": "AzureContainerRegistry",
         "properties": {"region": "", "systemService": "AzureContainerRegistry",
                        "addressPrefixes": ["20.42.0.0/16", "20.62.0.0/16"]}},
        {"name": "AzureContainerRegistry.EastUS", "id": "AzureContainerRegistry.EastUS",
         "properties": {"region": "eastus", "systemService": "AzureContainerRegistry",
                        "addressPrefixes": ["20.42.0.0/16", "2603:1030:1::/48"]}},
        {"name": "AzureContainerRegistry.WestEurope", "id": "AzureContainerRegistry.WestEurope",
         "properties": {"region": "westeurope", "systemService": "AzureContainerRegistry",
                        "addressPrefixes": ["20.62.0.0/16"]}},
        {"name": "Storage.EastUS", "id": "Storage.EastUS",
         "properties": {"region": "eastus", "systemService": "AzureStorage",
                        "addressPrefixes": ["20.38.0.0/16"]}}
      ]}"#;

    fn fixture() -> ServiceTags {
        ServiceTags::parse(
            FIXTURE.as_bytes(),
            "tags.json",
            "ServiceTags_Public_20261102.json",
            None,
        )
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_tag_named_is_the_services_own_in_the_region_first() {
        let t = fixture();
        let acr = &["AzureContainerRegistry"];
        let name = |a: &str, region: Option<&str>| t.tag_for(ip(a), acr, region).map(|t| t.name.clone());
        assert_eq!(
            name("20.42.1.1", Some("eastus")).as_deref(),
            Some("AzureContainerRegistry.EastUS")
        );
        assert_eq!(
            name("20.42.1.1", Some("EastUS")).as_deref(),
            Some("AzureContainerRegistry.EastUS")
        );
        // No regional entry in the node's region: the global one.
        assert_eq!(
            name("20.42.1.1", Some("westus")).as_deref(),
            Some("AzureContainerRegistry")
        );
        assert_eq!(
            name("20.62.1.1", Some("eastus")).as_deref(),
            Some("AzureContainerRegistry")
        );
        // Another service's range: its tag, not AzureCloud.
        assert_eq!(name("20.38.0.9", Some("eastus")).as_deref(), Some("Storage.EastUS"));
        // Only AzureCloud holds it.
        assert_eq!(name("20.1.2.3", Some("eastus")).as_deref(), Some("AzureCloud.eastus"));
        assert_eq!(name("8.8.8.8", Some("eastus")), None);
        assert_eq!(
            t.tag_for(ip("2603:1030:1::5"), acr, Some("eastus"))
                .map(|t| t.name.as_str()),
            Some("AzureContainerRegistry.EastUS")
        );
        assert_eq!(
            t.tag_for(ip("::ffff:20.42.1.1"), acr, Some("eastus"))
                .map(|t| t.name.as_str()),
            Some("AzureContainerRegistry.EastUS")
        );
    }

    #[test]
    fn membership_is_by_system_service_not_by_name() {
        let t = fixture();
        assert!(t.knows_any(&["AzureContainerRegistry"]));
        assert!(!t.knows_any(&["AzureKeyVault"]));
        assert!(t.in_services(ip("20.42.9.9"), &["azurecontainerregistry"]));
        assert!(!t.in_services(ip("20.1.2.3"), &["AzureContainerRegistry"]));
        assert!(t.in_services(ip("20.38.0.1"), &["AzureStorage"]));
        assert!(
            !t.in_services(ip("20.38.0.1"), &["Storage"]),
            "`Storage` is a name, not a systemService"
        );
    }

    #[test]
    fn the_date_comes_from_the_file_then_its_name_then_its_mtime() {
        let t = fixture();
        assert_eq!(t.published, (1_793_577_600, PublishedFrom::FileName));
        assert_eq!(t.change_number, 420);
        assert_eq!(t.cloud, "Public");
        let with_meta = FIXTURE.replacen('{', r#"{"netprobe": {"published": "2026-11-16"},"#, 1);
        let t = ServiceTags::parse(with_meta.as_bytes(), "x", "tags.json", None).unwrap();
        assert_eq!(t.published, (1_793_577_600 + 14 * 86_400, PublishedFrom::File));
        let mtime = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t = ServiceTags::parse(FIXTURE.as_bytes(), "x", "tags.json", Some(mtime)).unwrap();
        assert_eq!(t.published, (1_800_000_000, PublishedFrom::Mtime));
        assert_eq!(t.age(mtime + Duration::from_secs(86_400)), Duration::from_secs(86_400));
    }

    /// Every part of an error that comes from the file is bounded after
    /// escaping: a key of control characters grows sixfold when escaped
    /// (found by the fuzzer: fuzz/regressions/service_tags/).
    #[test]
    fn errors_stay_short_whatever_the_keys_and_values() {
        let long = "k".repeat(5000);
        let controls = "\u{7f}".repeat(2000);
        for input in [
            format!(r#"{{"{long}": }}"#),
            format!(r#"{{"{controls}": }}"#),
            format!(r#"{{"values": [{{"{controls}": }}]}}"#),
            format!(r#"{{"changeNumber": "{controls}"}}"#),
        ] {
            let e = ServiceTags::parse(input.as_bytes(), "tags.json", "tags.json", None).unwrap_err();
            let msg = e.to_string();
            assert!(msg.chars().count() <= 450, "{} chars: {msg}", msg.chars().count());
            assert!(!msg.contains('\n') && !msg.contains('\u{7f}'), "{msg}");
        }
    }

    #[test]
    fn bad_files_name_the_field_and_value() {
        let bad = |text: &str| {
            ServiceTags::parse(text.as_bytes(), "tags.json", "tags.json", None)
                .unwrap_err()
                .to_string()
        };
        let e = bad(&FIXTURE.replace("20.62.0.0/16\"]}}", "20.62.0.0/33\"]}}"));
        assert_eq!(
            e,
            "tags.json: values[1].properties.addressPrefixes[1]: \"20.62.0.0/33\" is not a CIDR"
        );
        let e = bad(r#"{"cloud": "Public", "values": []}"#);
        assert!(
            e.starts_with("tags.json: not a Service Tags JSON file: missing field `changeNumber`"),
            "{e}"
        );
        let e = bad(r#"{"changeNumber": "x", "cloud": "Public", "values": []}"#);
        assert!(e.starts_with("tags.json: changeNumber: invalid type"), "{e}");
        let e = bad("<html>");
        assert!(e.starts_with("tags.json: not a Service Tags JSON file"), "{e}");
        let e = bad(&FIXTURE.replacen('{', r#"{"netprobe": {"published": "last week"},"#, 1));
        assert!(e.contains("netprobe.published: \"last week\" is not a date"), "{e}");
    }

    /// The index against a linear scan of every prefix, for random prefixes
    /// (nested, overlapping, both families) and random addresses, many of
    /// them inside the prefixes.
    #[test]
    fn the_index_finds_exactly_what_a_linear_scan_finds() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut values = Vec::new();
        let mut nets: Vec<(IpNet, usize)> = Vec::new();
        for t in 0..40 {
            let mut prefixes = Vec::new();
            for _ in 0..12 {
                let r = next();
                let net: IpNet = if r % 4 == 0 {
                    let a = u128::from(next()) << 64 | u128::from(next());
                    let a = (a & !(u128::MAX >> 16)) | (0x2001_0db8u128 << 96);
                    format!("{}/{}", std::net::Ipv6Addr::from(a), 32 + r % 97)
                        .parse()
                        .unwrap()
                } else {
                    // A few /8s so that prefixes nest and overlap.
                    let a = ((10 + (r >> 8) % 3) as u32) << 24 | (next() as u32 & 0x00ff_ffff);
                    format!("{}/{}", std::net::Ipv4Addr::from(a), 8 + r % 25)
                        .parse()
                        .unwrap()
                };
                prefixes.push(net.to_string());
                nets.push((net.trunc(), t));
            }
            values.push(serde_json::json!({"name": format!("T{t}"), "properties": {
                "region": if t % 2 == 0 { "eastus" } else { "" },
                "systemService": format!("S{}", t % 5), "addressPrefixes": prefixes}}));
        }
        let doc = serde_json::json!({"changeNumber": 1, "cloud": "Public", "values": values});
        let tags = ServiceTags::parse(doc.to_string().as_bytes(), "t", "t.json", None).unwrap();
        for _ in 0..5000 {
            // Half the addresses inside a known prefix, half anywhere.
            let r = next();
            let (base, _) = nets[(r % nets.len() as u64) as usize];
            let ip: IpAddr = match base {
                IpNet::V4(n) if r % 2 == 0 => {
                    IpAddr::V4((u32::from(n.network()) | (next() as u32 & !u32::from(n.netmask()))).into())
                }
                IpNet::V6(n) if r % 2 == 0 => {
                    IpAddr::V6((u128::from(n.network()) | (u128::from(next()) & !u128::from(n.netmask()))).into())
                }
                _ => IpAddr::V4(((10 + (next() % 4) as u32) << 24 | (next() as u32 & 0x00ff_ffff)).into()),
            };
            let mut want: Vec<(u32, u8)> = nets
                .iter()
                .filter(|(n, _)| n.contains(&ip))
                .map(|(n, t)| (*t as u32, n.prefix_len()))
                .collect();
            want.sort_unstable();
            want.dedup();
            let mut got = tags.candidates(ip);
            got.sort_unstable();
            assert_eq!(got, want, "{ip}");
            let services = ["S1"];
            let in_s1 = want.iter().any(|(t, _)| t % 5 == 1);
            assert_eq!(tags.in_services(ip, &services), in_s1, "{ip}");
            match tags.tag_for(ip, &services, Some("eastus")) {
                None => assert!(want.is_empty(), "{ip}"),
                Some(t) if in_s1 => assert_eq!(t.system_service, "S1", "{ip}"),
                Some(_) => {}
            }
        }
    }

    #[test]
    fn masks_cover_every_prefix_length() {
        for len in 0..=32u8 {
            let net = mask(u128::from(u32::MAX), len, 32);
            assert_eq!(net.count_ones(), u32::from(len), "/{len}");
        }
        assert_eq!(mask(u128::MAX, 128, 128), u128::MAX);
        assert_eq!(mask(u128::MAX, 1, 128), 1 << 127);
    }
}
