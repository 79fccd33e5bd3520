//! `WITH (...)` options: pulled one by one by name; whatever is left over is an error that names
//! it and lists the valid ones. Also the closed sets of option values (formats, partitioning, ...).

use std::fmt;

use super::{Pos, Spanned};

/// An option value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// The literal text of a number, e.g. `2881` or `-1`.
    Num(String),
    Bool(bool),
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("string '{s}'"),
            Value::Num(n) => format!("number {n}"),
            Value::Bool(b) => format!("{b}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OptionEntry {
    pub key: Spanned<String>,
    /// `'bootstrap.servers'` rather than `port`: quoted keys pass through to librdkafka.
    pub quoted: bool,
    pub value: Spanned<Value>,
    /// The variable the value was read from with `env('NAME')`: messages name it, never the value.
    pub env: Option<String>,
}

/// A located error message; the parser adds the file name.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub pos: Pos,
    pub message: String,
}

impl Located {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Located {
            pos,
            message: message.into(),
        }
    }
}

pub type Parsed<T> = Result<T, Located>;

/// The options of one `WITH (...)` clause, consumed by the statement that owns them.
#[derive(Debug)]
pub struct Options {
    /// What the options belong to, e.g. "CREATE SOURCE ob", for messages.
    owner: String,
    entries: Vec<Option<OptionEntry>>,
    valid: Vec<&'static str>,
}

impl Options {
    pub fn new(owner: impl Into<String>, entries: Vec<OptionEntry>) -> Parsed<Self> {
        for (i, entry) in entries.iter().enumerate() {
            if let Some(earlier) = entries[..i]
                .iter()
                .find(|e| e.key.value.eq_ignore_ascii_case(&entry.key.value))
            {
                return Err(Located::new(
                    entry.key.pos,
                    format!(
                        "option `{}` is given twice (first at line {}); keep one",
                        entry.key.value, earlier.key.pos.line
                    ),
                ));
            }
        }
        Ok(Options {
            owner: owner.into(),
            entries: entries.into_iter().map(Some).collect(),
            valid: Vec::new(),
        })
    }

    fn take(&mut self, key: &'static str) -> Option<OptionEntry> {
        self.valid.push(key);
        self.entries
            .iter_mut()
            .find(|e| {
                e.as_ref()
                    .is_some_and(|e| !e.quoted && e.key.value.eq_ignore_ascii_case(key))
            })
            .and_then(Option::take)
    }

    fn type_error(&self, entry: &OptionEntry, expected: &str) -> Located {
        Located::new(
            entry.value.pos,
            format!(
                "option `{}` of {} expects {expected}, found {}",
                entry.key.value,
                self.owner,
                match &entry.env {
                    Some(name) => format!("the value of env('{name}')"),
                    None => entry.value.value.describe(),
                }
            ),
        )
    }

    pub fn string(&mut self, key: &'static str) -> Parsed<Option<Spanned<String>>> {
        match self.take(key) {
            None => Ok(None),
            Some(entry) => match &entry.value.value {
                Value::Str(s) => Ok(Some(Spanned {
                    value: s.clone(),
                    pos: entry.value.pos,
                })),
                _ => Err(self.type_error(&entry, "a string in single quotes")),
            },
        }
    }

    /// An integer option within `min..=max`.
    pub fn integer(&mut self, key: &'static str, min: i64, max: i64) -> Parsed<Option<i64>> {
        let Some(entry) = self.take(key) else {
            return Ok(None);
        };
        let expected = format!("an integer from {min} to {max}");
        let parsed = match &entry.value.value {
            Value::Num(n) => n.parse::<i64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(self.type_error(&entry, &expected)),
        }
    }

    pub fn boolean(&mut self, key: &'static str) -> Parsed<Option<bool>> {
        let Some(entry) = self.take(key) else {
            return Ok(None);
        };
        match &entry.value.value {
            Value::Bool(b) => Ok(Some(*b)),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            _ => Err(self.type_error(&entry, "true or false")),
        }
    }

    /// A string option, or a number written without quotes (for timestamps and ids).
    pub fn text_or_number(&mut self, key: &'static str) -> Parsed<Option<Spanned<Value>>> {
        let Some(entry) = self.take(key) else {
            return Ok(None);
        };
        match entry.value.value {
            Value::Bool(_) => Err(self.type_error(&entry, "a string or a number")),
            _ => Ok(Some(entry.value)),
        }
    }

    /// One of a closed set of words, e.g. `format = 'canal'`.
    pub fn choice<T: Choice>(&mut self, key: &'static str) -> Parsed<Option<T>> {
        Ok(self.located_choice(key)?.map(|c| c.value))
    }

    /// [`Options::choice`], with where the value was written.
    pub fn located_choice<T: Choice>(&mut self, key: &'static str) -> Parsed<Option<Spanned<T>>> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        T::parse(value.value.trim())
            .map(|choice| {
                Some(Spanned {
                    value: choice,
                    pos: value.pos,
                })
            })
            .ok_or_else(|| unknown_value(key, &value, T::NAMES))
    }

    /// A comma-separated set of words, e.g. `sync = 'schema, full'`.
    pub fn set<T: Choice>(&mut self, key: &'static str) -> Parsed<Option<Vec<T>>> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        let mut items = Vec::new();
        for word in value.value.split(',').map(str::trim) {
            let item = T::parse(word).ok_or_else(|| {
                unknown_value(
                    key,
                    &Spanned {
                        value: word.to_string(),
                        pos: value.pos,
                    },
                    T::NAMES,
                )
            })?;
            items.push(item);
        }
        if items.is_empty() || value.value.trim().is_empty() {
            return Err(Located::new(
                value.pos,
                format!(
                    "option `{key}` must name at least one of: {}",
                    T::NAMES.join(", ")
                ),
            ));
        }
        Ok(Some(items))
    }

    /// Quoted keys that are left, for pass-through properties (the sink's librdkafka settings).
    pub fn take_quoted(&mut self) -> Vec<(Spanned<String>, Spanned<Value>)> {
        self.entries
            .iter_mut()
            .filter(|e| e.as_ref().is_some_and(|e| e.quoted))
            .filter_map(Option::take)
            .map(|e| (e.key, e.value))
            .collect()
    }

    /// Fails on the first option nobody took, naming it and listing the valid ones.
    pub fn finish(self) -> Parsed<()> {
        let Some(entry) = self.entries.into_iter().flatten().next() else {
            return Ok(());
        };
        let key = &entry.key.value;
        let hint = closest(key, &self.valid)
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        Err(Located::new(
            entry.key.pos,
            format!(
                "unknown option `{key}` for {}; {hint}valid options are: {}",
                self.owner,
                self.valid.join(", ")
            ),
        ))
    }
}

fn unknown_value(key: &str, value: &Spanned<String>, names: &[&str]) -> Located {
    let hint = closest(&value.value, names)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default();
    Located::new(
        value.pos,
        format!(
            "option `{key}` does not accept '{}'{hint}; valid values are: {}",
            value.value,
            names.join(", ")
        ),
    )
}

/// The valid name closest to a mistyped one, if it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A closed set of option values.
pub trait Choice: Sized + Copy {
    const NAMES: &'static [&'static str];
    fn from_index(i: usize) -> Self;
    fn parse(word: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(word))
            .map(Self::from_index)
    }
}

macro_rules! choice_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl Choice for $name {
            const NAMES: &'static [&'static str] = &[$($text),+];
            fn from_index(i: usize) -> Self {
                Self::ALL[i]
            }
        }

        impl $name {
            /// Every value, in the order of `NAMES`.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

choice_enum!(
    /// The message format (design.md §5).
    Format {
        Default = "default",
        DefaultExtendColumnType = "default_extend_column_type",
        Canal = "canal",
        DataworksV2 = "dataworks_v2",
        Shareplex = "shareplex",
        Debezium = "debezium",
        DebeziumFlatten = "debezium_flatten",
        DebeziumSmt = "debezium_smt",
        Maxwell = "maxwell",
    }
);

choice_enum!(
    /// How rows are spread over a topic's partitions (design.md §4).
    Partitioning {
        Hash = "hash",
        Table = "table",
        One = "one",
    }
);

choice_enum!(
    /// What a sink writes to.
    SinkKind {
        Kafka = "kafka",
        Parquet = "parquet",
        Delta = "delta",
    }
);

choice_enum!(
    /// How a lake sink writes incremental changes: a changelog of every change, or (Delta) the
    /// current state of each key.
    LakeMode {
        Changelog = "changelog",
        Upsert = "upsert",
    }
);

choice_enum!(SyncType {
    Schema = "schema",
    Full = "full",
    Incremental = "incremental",
});

choice_enum!(IncrementalKind {
    Dml = "dml",
    Ddl = "ddl",
});

choice_enum!(DmlType {
    Insert = "insert",
    Update = "update",
    Delete = "delete",
});

choice_enum!(SourceType {
    OceanBase = "oceanbase",
    MySql = "mysql",
    MariaDb = "mariadb",
});

/// Which sync types a project runs, in the order schema → full → incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTypes {
    pub schema: bool,
    pub full: bool,
    pub incremental: bool,
}

impl SyncTypes {
    pub fn from_list(items: &[SyncType]) -> Self {
        SyncTypes {
            schema: items.contains(&SyncType::Schema),
            full: items.contains(&SyncType::Full),
            incremental: items.contains(&SyncType::Incremental),
        }
    }
}

impl fmt::Display for SyncTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.schema, "schema"),
            (self.full, "full"),
            (self.incremental, "incremental"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        f.write_str(&names.join(", "))
    }
}

/// What incremental sync carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncrementalContent {
    pub dml: bool,
    pub ddl: bool,
}

impl IncrementalContent {
    pub fn from_list(items: &[IncrementalKind]) -> Self {
        IncrementalContent {
            dml: items.contains(&IncrementalKind::Dml),
            ddl: items.contains(&IncrementalKind::Ddl),
        }
    }
}

impl fmt::Display for IncrementalContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.dml, self.ddl) {
            (true, true) => f.write_str("dml, ddl"),
            (true, false) => f.write_str("dml"),
            (false, true) => f.write_str("ddl"),
            (false, false) => f.write_str("nothing"),
        }
    }
}

/// The DML filter: which statement types incremental sync sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmlTypes {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

impl DmlTypes {
    pub fn from_list(items: &[DmlType]) -> Self {
        DmlTypes {
            insert: items.contains(&DmlType::Insert),
            update: items.contains(&DmlType::Update),
            delete: items.contains(&DmlType::Delete),
        }
    }
}

impl fmt::Display for DmlTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.insert, "insert"),
            (self.update, "update"),
            (self.delete, "delete"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(
            closest("full_concurency", &["full_concurrency", "format"]),
            Some("full_concurrency")
        );
        assert_eq!(
            closest("partiton", &["partition", "format"]),
            Some("partition")
        );
        assert_eq!(closest("zzz", &["partition", "format"]), None);
    }

    #[test]
    fn choices_parse_case_insensitively() {
        assert_eq!(Format::parse("CANAL"), Some(Format::Canal));
        assert_eq!(Format::parse("avro"), None);
        assert_eq!(Partitioning::parse("one"), Some(Partitioning::One));
    }
}
