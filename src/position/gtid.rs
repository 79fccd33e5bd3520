//! Binlog positions as GTIDs, in both flavors.
//!
//! MariaDB names a position by the last GTID of each replication domain (`0-1-5,1-2-9`, its
//! `gtid_binlog_pos`). MySQL — and OceanBase Binlog Service, which speaks its protocol — names
//! it by the set of every transaction executed (`3e11fa47-…:1-5:7,…`, its `Executed_Gtid_Set`):
//! a replica that sends the set is streamed every transaction outside it.

use std::collections::BTreeMap;
use std::str::FromStr;

use mysql_common::packets::Sid;

/// A GTID position of either flavor, as the checkpoint stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum GtidPosition {
    MariaDb(MariaDbGtidPos),
    MySql(MysqlGtidSet),
}

impl GtidPosition {
    pub fn render(&self) -> Option<String> {
        match self {
            GtidPosition::MariaDb(pos) => pos.render(),
            GtidPosition::MySql(set) => (!set.is_empty()).then(|| set.render()),
        }
    }
}

/// MariaDB's GTID position: the last GTID per replication domain.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MariaDbGtidPos {
    domains: BTreeMap<u32, String>,
}

impl MariaDbGtidPos {
    /// Parses `domain-server-sequence[,...]`.
    pub fn parse(text: &str) -> Result<MariaDbGtidPos, String> {
        let mut domains = BTreeMap::new();
        for gtid in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let parts: Vec<&str> = gtid.split('-').collect();
            let numbers = (parts.len() == 3)
                .then(|| {
                    Some((
                        parts[0].parse::<u32>().ok()?,
                        parts[1].parse::<u32>().ok()?,
                        parts[2].parse::<u64>().ok()?,
                    ))
                })
                .flatten();
            let Some((domain, _, _)) = numbers else {
                return Err(format!(
                    "`{gtid}` is not a MariaDB GTID (domain-server-sequence, e.g. 0-1-42)"
                ));
            };
            domains.insert(domain, gtid.to_string());
        }
        Ok(MariaDbGtidPos { domains })
    }

    /// The GTID `domain-server-sequence` committed: it replaces its domain's last one.
    pub fn set(&mut self, domain: u32, server_id: u32, sequence: u64) {
        self.domains
            .insert(domain, format!("{domain}-{server_id}-{sequence}"));
    }

    pub fn render(&self) -> Option<String> {
        (!self.domains.is_empty())
            .then(|| self.domains.values().cloned().collect::<Vec<_>>().join(","))
    }
}

/// A MySQL GTID set: per source (UUID, with the tag of a MySQL 8.4 tagged GTID), the
/// transaction numbers executed, as sorted, disjoint, inclusive intervals.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MysqlGtidSet {
    sources: BTreeMap<String, Vec<(u64, u64)>>,
}

impl MysqlGtidSet {
    /// Parses MySQL's text form, `uuid:1-5:7[:tag:1-3][,uuid:...]`, as `gtid_executed` shows it
    /// (line breaks and spaces allowed).
    pub fn parse(text: &str) -> Result<MysqlGtidSet, String> {
        let mut set = MysqlGtidSet::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry: String = entry.chars().filter(|c| !c.is_whitespace()).collect();
            let mut parts = entry.split(':');
            let uuid = parts.next().unwrap_or_default().to_ascii_lowercase();
            if uuid.len() != 36 || uuid::Uuid::parse_str(&uuid).is_err() {
                return Err(format!(
                    "`{entry}` does not start with a server UUID \
                     (e.g. 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5)"
                ));
            }
            let mut source = uuid.clone();
            let mut any = false;
            for part in parts {
                if part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
                    source = format!("{uuid}:{part}");
                    continue;
                }
                let (start, end) = match part.split_once('-') {
                    Some((s, e)) => (s.parse::<u64>(), e.parse::<u64>()),
                    None => (part.parse::<u64>(), part.parse::<u64>()),
                };
                match (start, end) {
                    (Ok(start), Ok(end)) if start >= 1 && start <= end => {
                        set.add_interval(&source, start, end);
                        any = true;
                    }
                    _ => {
                        return Err(format!(
                            "`{part}` in `{entry}` is not a transaction number or range \
                             (e.g. 1-5 or 7; numbers start at 1)"
                        ));
                    }
                }
            }
            if !any {
                return Err(format!("`{entry}` names no transactions (e.g. {uuid}:1-5)"));
            }
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Adds transaction `gno` of `source` (`uuid` or `uuid:tag`).
    pub fn add(&mut self, source: &str, gno: u64) {
        self.add_interval(source, gno, gno);
    }

    fn add_interval(&mut self, source: &str, start: u64, end: u64) {
        let intervals = self.sources.entry(source.to_string()).or_default();
        intervals.push((start, end));
        intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
        for &(s, e) in intervals.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *intervals = merged;
    }

    /// Whether every transaction of `other` is in this set.
    pub fn contains(&self, other: &MysqlGtidSet) -> bool {
        other.sources.iter().all(|(source, wanted)| {
            let have = self.sources.get(source).map(Vec::as_slice).unwrap_or(&[]);
            wanted
                .iter()
                .all(|&(s, e)| have.iter().any(|&(hs, he)| hs <= s && e <= he))
        })
    }

    /// MySQL's text form, `uuid:1-5:7,uuid:tag:1-3`.
    pub fn render(&self) -> String {
        let entries: Vec<String> = self
            .sources
            .iter()
            .map(|(source, intervals)| {
                let ranges: Vec<String> = intervals
                    .iter()
                    .map(|&(s, e)| {
                        if s == e {
                            s.to_string()
                        } else {
                            format!("{s}-{e}")
                        }
                    })
                    .collect();
                format!("{source}:{}", ranges.join(":"))
            })
            .collect();
        entries.join(",")
    }

    /// The set as `COM_BINLOG_DUMP_GTID` sends it.
    pub fn sids(&self) -> Result<Vec<Sid<'static>>, String> {
        self.render()
            .split(',')
            .filter(|e| !e.is_empty())
            .map(|entry| Sid::from_str(entry).map_err(|e| format!("GTID set `{entry}`: {e}")))
            .collect()
    }
}

/// The text form of a MySQL GTID event's source: its UUID, and its tag when it has one.
pub fn source_name(uuid: [u8; 16], tag: Option<&str>) -> String {
    let uuid = uuid::Uuid::from_bytes(uuid).hyphenated().to_string();
    match tag {
        Some(tag) if !tag.is_empty() => format!("{uuid}:{tag}"),
        _ => uuid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "74726962-7574-6172-792d-6d7973716c38";

    #[test]
    fn mariadb_positions_keep_one_gtid_per_domain() {
        let mut pos = MariaDbGtidPos::parse("0-1-5, 1-2-9").unwrap();
        pos.set(0, 1, 6);
        assert_eq!(pos.render().as_deref(), Some("0-1-6,1-2-9"));
        assert_eq!(MariaDbGtidPos::parse("").unwrap().render(), None);
        assert!(MariaDbGtidPos::parse("0-1").unwrap_err().contains("0-1"));
        assert!(MariaDbGtidPos::parse(&format!("{A}:1")).is_err());
    }

    #[test]
    fn mysql_sets_merge_adjacent_transactions() {
        let mut set = MysqlGtidSet::parse(&format!("{A}:1-5:7, {B}:3")).unwrap();
        set.add(A, 6);
        set.add(A, 9);
        set.add(B, 1);
        assert_eq!(set.render(), format!("{A}:1-7:9,{B}:1:3"));
        set.add(B, 2);
        assert_eq!(set.render(), format!("{A}:1-7:9,{B}:1-3"));
        // Upper case and line breaks, as SHOW MASTER STATUS may print them.
        let shown = MysqlGtidSet::parse(&format!("{}:1-7:9,\n{B}:1-3", A.to_uppercase())).unwrap();
        assert_eq!(shown, set);
    }

    #[test]
    fn mysql_sets_know_what_they_contain() {
        let set = MysqlGtidSet::parse(&format!("{A}:1-10,{B}:1-3")).unwrap();
        assert!(set.contains(&MysqlGtidSet::parse(&format!("{A}:2-4:9")).unwrap()));
        assert!(set.contains(&MysqlGtidSet::default()));
        assert!(!set.contains(&MysqlGtidSet::parse(&format!("{A}:11")).unwrap()));
        assert!(!set.contains(&MysqlGtidSet::parse(&format!("{B}:1-4")).unwrap()));
    }

    #[test]
    fn mysql_sets_become_the_dump_request() {
        let set = MysqlGtidSet::parse(&format!("{A}:1-5:7,{B}:tx:1-2")).unwrap();
        let sids = set.sids().unwrap();
        assert_eq!(sids.len(), 2);
        assert_eq!(sids[0].to_string(), format!("{A}:1-5:7"));
        // The dump request's intervals end one past the last transaction.
        let ends: Vec<u64> = sids[0].intervals().iter().map(|i| i.end()).collect();
        assert_eq!(ends, [6, 8]);
        assert_eq!(sids[1].tag().map(|t| t.to_string()).as_deref(), Some("tx"));
    }

    #[test]
    fn bad_mysql_sets_say_what_is_wrong() {
        for (text, says) in [
            ("not-a-uuid:1-5", "server UUID"),
            (&format!("{A}:5-1"), "`5-1`"),
            (&format!("{A}:0"), "numbers start at 1"),
            (A, "names no transactions"),
        ] {
            let err = MysqlGtidSet::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn sources_render_as_mysql_does() {
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&uuid::Uuid::parse_str(A).unwrap().into_bytes());
        assert_eq!(source_name(uuid, None), A);
        assert_eq!(source_name(uuid, Some("tx")), format!("{A}:tx"));
    }
}
