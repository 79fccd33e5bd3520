//! The project language (design.md §3): tokenized with sqlparser's MySQL tokenizer, statements
//! read by a small recursive-descent parser, and `WHERE` handed to sqlparser's expression parser.

use std::path::Path;

use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::options::{
    Choice, DmlType, IncrementalKind, LakeMode, Located, OptionEntry, Options, Parsed, SinkKind,
    SourceType, SyncType, Value,
};
use super::{
    DmlTypes, Filter, IncrementalContent, LAKE_PROPERTIES, LakeDef, NamePattern, Pos, ProjectDef,
    ProjectFile, SinkDef, SourceDef, SourceKind, Spanned, StartPoint, SyncDef, SyncTypes,
    TablePattern, Zone,
};
use crate::error::{Error, Result};

/// Parses a project file's text. `path` is only used in messages.
pub fn parse_project(path: &Path, text: &str) -> Result<ProjectFile> {
    parse(text)
        .map_err(|e| Error::Project {
            file: path.to_path_buf(),
            line: e.pos.line,
            column: e.pos.column,
            message: e.message,
        })
        .and_then(|parts| parts.into_project(path))
}

fn pos_of(token: &TokenWithSpan) -> Pos {
    Pos {
        line: token.span.start.line,
        column: token.span.start.column,
    }
}

fn end_of(token: &TokenWithSpan) -> Pos {
    Pos {
        line: token.span.end.line,
        column: token.span.end.column,
    }
}

fn describe(token: Option<&TokenWithSpan>) -> String {
    match token.map(|t| &t.token) {
        None | Some(Token::EOF) => "the end of the statement".to_string(),
        Some(Token::SemiColon) => "`;`".to_string(),
        Some(t) => format!("`{t}`"),
    }
}

/// Everything a file declared, before cross-statement checks.
#[derive(Default)]
struct Parts {
    sources: Vec<SourceDef>,
    sinks: Vec<SinkDef>,
    projects: Vec<ProjectParts>,
    syncs: Vec<SyncDef>,
    end: Pos,
}

fn parse(text: &str) -> Parsed<Parts> {
    let dialect = MySqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| {
            let at = Pos {
                line: e.location.line,
                column: e.location.column,
            };
            if e.message.starts_with("Unterminated string") {
                return unterminated_string(text, at);
            }
            Located::new(at, e.message)
        })?;

    let mut parts = Parts {
        end: tokens
            .last()
            .map(end_of)
            .unwrap_or(Pos { line: 1, column: 1 }),
        ..Parts::default()
    };
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        if token.token == Token::SemiColon {
            parse_statement(&tokens[start..i], pos_of(token), &mut parts)?;
            start = i + 1;
        }
    }
    let rest = &tokens[start..];
    if let Some(first) = rest.iter().find(|t| !is_trivia(&t.token)) {
        return Err(Located::new(
            pos_of(first),
            "this statement does not end with `;`; end every statement with a semicolon",
        ));
    }
    Ok(parts)
}

/// Where a string that never ends really opens. Quotes pair up from the top of the file, so the
/// tokenizer blames the last quote of the file when an earlier one lacks its partner; the
/// first string that runs over a line break is where the partner is missing (a project's
/// strings fit on a line), else the tokenizer's own place is right.
fn unterminated_string(text: &str, reported: Pos) -> Located {
    let mut pos = Pos { line: 1, column: 1 };
    let mut chars = text.chars().peekable();
    // The quote of the string being read and where it opened.
    let mut open: Option<(char, Pos)> = None;
    let mut comment = false;
    let mut block = false;
    while let Some(c) = chars.next() {
        let here = pos;
        if c == '\n' {
            pos.line += 1;
            pos.column = 1;
        } else {
            pos.column += 1;
        }
        match open {
            Some((quote, start)) => {
                // A backslash escape or a doubled quote: the next character is the string's.
                if c == '\\' || (c == quote && chars.peek() == Some(&quote)) {
                    if chars.next() == Some('\n') {
                        pos.line += 1;
                        pos.column = 1;
                    } else {
                        pos.column += 1;
                    }
                } else if c == quote {
                    open = None;
                } else if c == '\n' && quote != '`' {
                    let quote = if quote == '"' { "\"" } else { "'" };
                    return Located::new(
                        start,
                        format!(
                            "this string is not closed on its line: a closing `{quote}` is \
                             probably missing (the file's quotes no longer pair up after it)"
                        ),
                    );
                }
            }
            None if comment => comment = c != '\n',
            None if block => {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    pos.column += 1;
                    block = false;
                }
            }
            None => match c {
                '/' if chars.peek() == Some(&'*') => block = true,
                '\'' | '"' | '`' => open = Some((c, here)),
                '-' if chars.peek() == Some(&'-') => comment = true,
                '#' => comment = true,
                _ => {}
            },
        }
    }
    Located::new(
        reported,
        "this string is never closed; add the closing quote",
    )
}

fn is_trivia(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_) | Token::EOF)
}

/// A position in one statement's tokens.
struct Cursor<'a> {
    tokens: &'a [TokenWithSpan],
    i: usize,
    /// Where the statement's `;` is, for "expected X, found the end" messages.
    end: Pos,
}

impl<'a> Cursor<'a> {
    fn skip_trivia(&mut self) {
        while self.i < self.tokens.len() && is_trivia(&self.tokens[self.i].token) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<&'a TokenWithSpan> {
        self.skip_trivia();
        self.tokens.get(self.i)
    }

    fn next(&mut self) -> Option<&'a TokenWithSpan> {
        let token = self.peek();
        self.i += 1;
        token
    }

    fn pos(&mut self) -> Pos {
        self.peek().map(pos_of).unwrap_or(self.end)
    }

    fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    fn peek_keyword(&mut self, keyword: &str) -> bool {
        matches!(self.peek().map(|t| &t.token),
            Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(keyword))
    }

    fn error_here(&mut self, expected: &str) -> Located {
        let found = describe(self.peek());
        Located::new(self.pos(), format!("expected {expected}, found {found}"))
    }

    fn keyword(&mut self, keyword: &str) -> Parsed<Pos> {
        let pos = self.pos();
        if self.peek_keyword(keyword) {
            self.i += 1;
            Ok(pos)
        } else {
            Err(self.error_here(&format!("`{keyword}`")))
        }
    }

    fn token(&mut self, expected: Token) -> Parsed<Pos> {
        let pos = self.pos();
        match self.peek() {
            Some(t) if t.token == expected => {
                self.i += 1;
                Ok(pos)
            }
            _ => Err(self.error_here(&format!("`{expected}`"))),
        }
    }

    /// A name: a plain word or one quoted with backticks.
    fn ident(&mut self, what: &str) -> Parsed<Spanned<String>> {
        match self.peek() {
            Some(t) => match &t.token {
                Token::Word(w) if w.quote_style.is_none() || w.quote_style == Some('`') => {
                    self.i += 1;
                    Ok(Spanned {
                        value: w.value.clone(),
                        pos: pos_of(t),
                    })
                }
                _ => Err(self.error_here(what)),
            },
            None => Err(self.error_here(what)),
        }
    }

    fn string(&mut self, what: &str) -> Parsed<Spanned<String>> {
        match self.peek() {
            Some(t) => match &t.token {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => {
                    self.i += 1;
                    Ok(Spanned {
                        value: s.clone(),
                        pos: pos_of(t),
                    })
                }
                _ => Err(self.error_here(what)),
            },
            None => Err(self.error_here(what)),
        }
    }

    fn finish(&mut self, what: &str) -> Parsed<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error_here(&format!("the end of {what} (`;`)")))
        }
    }
}

fn parse_statement(tokens: &[TokenWithSpan], end: Pos, parts: &mut Parts) -> Parsed<()> {
    let mut c = Cursor { tokens, i: 0, end };
    if c.at_end() {
        return Ok(()); // an empty statement, e.g. `;;` or a trailing comment
    }
    const EXPECTED: &str = "CREATE SOURCE, CREATE SINK, CREATE PROJECT or SYNC TABLE";
    if c.peek_keyword("SYNC") {
        let pos = c.pos();
        c.i += 1;
        c.keyword("TABLE")?;
        let number = parts.syncs.len() + 1;
        let sync = parse_sync(&mut c, number, pos)?;
        parts.syncs.push(sync);
        return Ok(());
    }
    if !c.peek_keyword("CREATE") {
        return Err(c.error_here(EXPECTED));
    }
    c.i += 1;
    if c.peek_keyword("SOURCE") {
        c.i += 1;
        let source = parse_source(&mut c)?;
        parts.sources.push(source);
    } else if c.peek_keyword("SINK") {
        c.i += 1;
        let sink = parse_sink(&mut c)?;
        parts.sinks.push(sink);
    } else if c.peek_keyword("PROJECT") {
        c.i += 1;
        let project = parse_project_statement(&mut c)?;
        parts.projects.push(project);
    } else {
        return Err(c.error_here("SOURCE, SINK or PROJECT after CREATE"));
    }
    Ok(())
}

/// `WITH ( key = value, ... )`; `None` when there is no WITH clause.
fn parse_with(c: &mut Cursor) -> Parsed<Vec<OptionEntry>> {
    if !c.peek_keyword("WITH") {
        return Ok(Vec::new());
    }
    c.i += 1;
    c.token(Token::LParen)?;
    let mut entries = Vec::new();
    if c.peek().map(|t| &t.token) == Some(&Token::RParen) {
        c.i += 1;
        return Ok(entries);
    }
    loop {
        let key_token = c.peek();
        let (key, quoted) = match key_token.map(|t| &t.token) {
            Some(Token::Word(w)) if w.quote_style.is_none() => {
                (w.value.to_ascii_lowercase(), false)
            }
            Some(Token::SingleQuotedString(s)) => (s.clone(), true),
            _ => return Err(c.error_here("an option name")),
        };
        let key = Spanned {
            value: key,
            pos: c.pos(),
        };
        c.i += 1;
        c.token(Token::Eq)?;
        let (value, env) = parse_value(c, &key.value)?;
        entries.push(OptionEntry {
            key,
            quoted,
            value,
            env,
        });
        match c.next().map(|t| &t.token) {
            Some(Token::Comma) => continue,
            Some(Token::RParen) => break,
            _ => {
                c.i -= 1;
                return Err(c.error_here("`,` or `)` after an option"));
            }
        }
    }
    Ok(entries)
}

/// An option value, and the environment variable it was read from, if any.
fn parse_value(c: &mut Cursor, key: &str) -> Parsed<(Spanned<Value>, Option<String>)> {
    let pos = c.pos();
    let expected = "an option value: a 'string', a number, true/false or env('NAME')";
    let Some(token) = c.next() else {
        c.i -= 1;
        return Err(c.error_here(expected));
    };
    let mut env = None;
    let value = match &token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Value::Str(s.clone()),
        Token::Number(n, _) => Value::Num(n.clone()),
        Token::Minus => match c.next().map(|t| &t.token) {
            Some(Token::Number(n, _)) => Value::Num(format!("-{n}")),
            _ => {
                c.i -= 1;
                return Err(c.error_here("a number after `-`"));
            }
        },
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("true") => {
            Value::Bool(true)
        }
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("false") => {
            Value::Bool(false)
        }
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("env") => {
            c.token(Token::LParen)?;
            let name = c.string("the name of an environment variable in quotes")?;
            c.token(Token::RParen)?;
            match std::env::var(&name.value) {
                Ok(v) => {
                    env = Some(name.value.clone());
                    Value::Str(v)
                }
                Err(_) => {
                    return Err(Located::new(
                        name.pos,
                        format!(
                            "environment variable `{}` is not set (option `{key}` reads it); \
                             export it before running tributary",
                            name.value
                        ),
                    ));
                }
            }
        }
        _ => {
            c.i -= 1;
            return Err(c.error_here(expected));
        }
    };
    Ok((Spanned { value, pos }, env))
}

fn missing(owner: &str, pos: Pos, option: &str, hint: &str) -> Located {
    Located::new(pos, format!("{owner} needs option `{option}` ({hint})"))
}

fn check_object_name(name: &Spanned<String>, what: &str) -> Parsed<()> {
    if let Some(bad) = name.value.chars().find(|c| !c.is_ascii()) {
        return Err(Located::new(
            name.pos,
            format!(
                "{what} `{}` contains the non-ASCII character '{bad}'; names must be ASCII \
                 (as OMS requires)",
                name.value
            ),
        ));
    }
    Ok(())
}

fn parse_source(c: &mut Cursor) -> Parsed<SourceDef> {
    let name = c.ident("a source name")?;
    check_object_name(&name, "source name")?;
    let owner = format!("CREATE SOURCE {}", name.value);
    let entries = parse_with(c)?;
    c.finish(&owner)?;
    let mut o = Options::new(&owner, entries)?;
    let kind = o.choice::<SourceType>("type")?;
    let host = o.string("host")?;
    let port = o.integer("port", 1, 65535)?.map(|p| p as u16);
    let user = o
        .string("user")?
        .map(|u| u.value)
        .unwrap_or_else(|| "root".to_string());
    let password = o.string("password")?.map(|p| p.value);
    let binlog_host = o.string("binlog_host")?.map(|h| h.value);
    let binlog_port = o.integer("binlog_port", 1, 65535)?.map(|p| p as u16);
    // 0 until the project's name is known: see `default_server_id`.
    let server_id = o.integer("server_id", 1, u32::MAX as i64)?.unwrap_or(0) as u32;
    let timezone = o.string("timezone")?;
    if let Some(tz) = &timezone
        && crate::temporal::parse_offset(&tz.value).is_none()
    {
        return Err(Located::new(
            tz.pos,
            format!(
                "option `timezone` of {owner} expects an offset like '+08:00' or '-05:30', \
                 found '{}'",
                tz.value
            ),
        ));
    }
    o.finish()?;
    // Required options are checked after unknown ones, so a typo (`hots`) is reported as such.
    let kind = match kind {
        Some(SourceType::OceanBase) => SourceKind::OceanBase,
        Some(SourceType::MySql) => SourceKind::MySql,
        Some(SourceType::MariaDb) => SourceKind::MariaDb,
        None => {
            return Err(missing(
                &owner,
                name.pos,
                "type",
                "'oceanbase', 'mysql' or 'mariadb'",
            ));
        }
    };
    let host = host
        .map(|h| h.value)
        .ok_or_else(|| missing(&owner, name.pos, "host", "the server's address"))?;
    let port = port.unwrap_or(match kind {
        SourceKind::OceanBase => 2881,
        SourceKind::MySql | SourceKind::MariaDb => 3306,
    });
    Ok(SourceDef {
        name,
        kind,
        binlog_host: binlog_host.unwrap_or_else(|| host.clone()),
        binlog_port: binlog_port.unwrap_or(port),
        host,
        port,
        user,
        password,
        server_id,
        zone: Zone::Offset(
            timezone
                .as_ref()
                .and_then(|tz| crate::temporal::parse_offset(&tz.value))
                .unwrap_or(0),
        ),
        timezone,
    })
}

fn parse_sink(c: &mut Cursor) -> Parsed<SinkDef> {
    let name = c.ident("a sink name")?;
    check_object_name(&name, "sink name")?;
    let owner = format!("CREATE SINK {}", name.value);
    let entries = parse_with(c)?;
    c.finish(&owner)?;
    let mut o = Options::new(&owner, entries)?;
    let kind = match o.string("type")? {
        Some(t) => SinkKind::parse(t.value.trim()).ok_or_else(|| {
            Located::new(
                t.pos,
                format!(
                    "option `type` of {owner} does not accept '{}'; the sink types are 'kafka', \
                     'parquet' and 'delta'",
                    t.value
                ),
            )
        })?,
        None => {
            return Err(missing(
                &owner,
                name.pos,
                "type",
                "'kafka', 'parquet' or 'delta'",
            ));
        }
    };
    let lake = match kind {
        SinkKind::Kafka => None,
        SinkKind::Parquet | SinkKind::Delta => {
            let path = o.string("path")?.ok_or_else(|| {
                missing(
                    &owner,
                    name.pos,
                    "path",
                    "where the tables go, e.g. 'file:///data/lake' or 's3://bucket/prefix'",
                )
            })?;
            check_lake_path(&path)?;
            let file_mb = o.integer("file_size_mb", 1, 16_384)?.unwrap_or(128) as u64;
            let commit_interval_ms = o
                .integer("commit_interval_ms", 100, 3_600_000)?
                .unwrap_or(1000) as u64;
            Some(LakeDef {
                path,
                file_bytes: file_mb << 20,
                commit_interval_ms,
            })
        }
    };
    let properties: Vec<(Spanned<String>, String)> = o
        .take_quoted()
        .into_iter()
        .map(|(k, v)| {
            let text = match v.value {
                Value::Str(s) | Value::Num(s) => s,
                Value::Bool(b) => b.to_string(),
            };
            (k, text)
        })
        .collect();
    let quoted_hint = match kind {
        SinkKind::Kafka => "librdkafka properties go in single quotes, e.g. 'bootstrap.servers'",
        _ => "object store properties go in single quotes, e.g. 's3.endpoint'",
    };
    o.finish().map_err(|e| Located {
        message: format!("{}; {quoted_hint}", e.message),
        ..e
    })?;
    if kind != SinkKind::Kafka {
        if let Some((key, _)) = properties
            .iter()
            .find(|(k, _)| !LAKE_PROPERTIES.contains(&k.value.to_ascii_lowercase().as_str()))
        {
            return Err(Located::new(
                key.pos,
                format!(
                    "{owner} is a {kind} sink, which takes no property '{}'; its quoted \
                     properties are {}",
                    key.value,
                    LAKE_PROPERTIES
                        .iter()
                        .map(|p| format!("'{p}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    } else if !properties
        .iter()
        .any(|(k, _)| k.value == "bootstrap.servers")
    {
        return Err(missing(
            &owner,
            name.pos,
            "'bootstrap.servers'",
            "the Kafka brokers, e.g. '127.0.0.1:9092'",
        ));
    }
    Ok(SinkDef {
        name,
        kind,
        properties,
        lake,
    })
}

/// A lake sink's `path`: a local directory (`file:///...` or a plain path) or `s3://bucket/...`.
fn check_lake_path(path: &Spanned<String>) -> Parsed<()> {
    let value = path.value.trim();
    let ok = if let Some(rest) = value.strip_prefix("s3://") {
        rest.split('/')
            .next()
            .is_some_and(|bucket| !bucket.is_empty())
    } else if let Some(rest) = value.strip_prefix("file://") {
        rest.starts_with('/')
    } else {
        !value.is_empty() && !value.contains("://")
    };
    if ok {
        Ok(())
    } else {
        Err(Located::new(
            path.pos,
            format!(
                "option `path` expects a local directory ('file:///data/lake' or '/data/lake') or \
                 's3://bucket/prefix', found '{}'",
                path.value
            ),
        ))
    }
}

type ProjectParts = (
    ProjectDef,
    Spanned<String>,
    Spanned<String>,
    Option<Spanned<Value>>,
    // Where `mode` was given: it applies to lake sinks only.
    Option<Pos>,
);

fn parse_project_statement(c: &mut Cursor) -> Parsed<ProjectParts> {
    let name = c.ident("a project name")?;
    check_object_name(&name, "project name")?;
    if name.value.len() > 64 {
        return Err(Located::new(
            name.pos,
            format!(
                "project name `{}` is {} characters long; use at most 64",
                name.value,
                name.value.len()
            ),
        ));
    }
    let owner = format!("CREATE PROJECT {}", name.value);
    c.keyword("FROM")?;
    let source = c.ident("the name of a source after FROM")?;
    c.keyword("TO")?;
    let sink = c.ident("the name of a sink after TO")?;
    let entries = parse_with(c)?;
    c.finish(&owner)?;
    let mut o = Options::new(&owner, entries)?;

    let sync = o
        .set::<SyncType>("sync")?
        .map(|s| SyncTypes::from_list(&s))
        .unwrap_or(SyncTypes {
            schema: true,
            full: true,
            incremental: true,
        });
    let incremental = o
        .set::<IncrementalKind>("incremental")?
        .map(|s| IncrementalContent::from_list(&s))
        .unwrap_or(IncrementalContent {
            dml: true,
            ddl: false,
        });
    let dml = o
        .set::<DmlType>("dml")?
        .map(|s| DmlTypes::from_list(&s))
        .unwrap_or(DmlTypes {
            insert: true,
            update: true,
            delete: true,
        });
    let format = o.choice("format")?.unwrap_or(super::Format::Default);
    let partitioning = o
        .choice("partitioning")?
        .unwrap_or(super::Partitioning::Hash);
    let partition = o.integer("partition", 0, i32::MAX as i64)?.unwrap_or(0) as i32;
    let start_timestamp = o.text_or_number("start_timestamp")?;
    let start_position = o.string("start_position")?;
    let start_gtid = o.string("start_gtid")?;
    let business_system_id = o.string("business_system_id")?;
    if let Some(id) = &business_system_id
        && (id.value.is_empty() || id.value.chars().count() > 20)
    {
        return Err(Located::new(
            id.pos,
            "option `business_system_id` must be 1 to 20 characters (as in OMS)",
        ));
    }
    let topic_partitions = o.integer("topic_partitions", 1, 100_000)?.unwrap_or(3) as i32;
    let topic_replication = o.integer("topic_replication", 1, 32)?.unwrap_or(1) as i32;
    let full_concurrency = o.integer("full_concurrency", 1, 64)?.unwrap_or(4) as usize;
    let batch_rows = o.integer("batch_rows", 1, 1_000_000)?.unwrap_or(8192) as usize;
    let chunk_rows = o
        .integer("chunk_rows", 1, 1_000_000_000)?
        .unwrap_or(100_000) as u64;
    let exactly_once = o.boolean("exactly_once")?.unwrap_or(false);
    let max_rows_per_second = o
        .integer("max_rows_per_second", 1, 1_000_000_000)?
        .map(|n| n as u64);
    let max_bytes_per_second = o
        .integer("max_bytes_per_second", 1, 1_000_000_000_000)?
        .map(|n| n as u64);
    let mode = o.located_choice::<LakeMode>("mode")?;
    let mode_pos = mode.as_ref().map(|m| m.pos);
    let before_images = o.boolean("before_images")?.unwrap_or(false);
    o.finish()?;

    let starts: Vec<&Pos> = [
        start_timestamp.as_ref().map(|s| &s.pos),
        start_position.as_ref().map(|s| &s.pos),
        start_gtid.as_ref().map(|s| &s.pos),
    ]
    .into_iter()
    .flatten()
    .collect();
    if starts.len() > 1 {
        return Err(Located::new(
            *starts[1],
            "give only one of `start_timestamp`, `start_position` and `start_gtid`",
        ));
    }
    if let Some(at) = starts.first() {
        if !sync.incremental {
            return Err(Located::new(
                **at,
                "a start point applies to incremental sync, which this project does not run; \
                 add 'incremental' to `sync` or remove the start option",
            ));
        }
        if sync.full {
            return Err(Located::new(
                **at,
                "with full sync, incremental sync starts where the snapshot began (as in OMS); \
                 remove the start option or remove 'full' from `sync`",
            ));
        }
    }
    let start = match (start_position, start_gtid) {
        (Some(p), _) => Some(parse_start_position(p)?),
        (_, Some(g)) => Some(Spanned {
            value: StartPoint::Gtid(g.value),
            pos: g.pos,
        }),
        _ => None,
    };

    let project = ProjectDef {
        name,
        sync,
        incremental,
        dml,
        format,
        partitioning,
        partition,
        start,
        business_system_id: business_system_id.map(|b| b.value),
        topic_partitions,
        topic_replication,
        full_concurrency,
        batch_rows,
        chunk_rows,
        exactly_once,
        max_rows_per_second,
        max_bytes_per_second,
        mode: mode.map_or(LakeMode::Changelog, |m| m.value),
        before_images,
    };
    Ok((project, source, sink, start_timestamp, mode_pos))
}

fn parse_start_position(p: Spanned<String>) -> Parsed<Spanned<StartPoint>> {
    let parsed = p
        .value
        .rsplit_once(':')
        .and_then(|(file, pos)| Some((file, pos.parse::<u64>().ok()?)))
        .filter(|(file, _)| !file.is_empty());
    match parsed {
        Some((file, pos)) => Ok(Spanned {
            value: StartPoint::Position {
                file: file.to_string(),
                pos,
            },
            pos: p.pos,
        }),
        None => Err(Located::new(
            p.pos,
            format!(
                "option `start_position` expects 'binlog-file:position', e.g. \
                 'mysql-bin.000003:4', found '{}'",
                p.value
            ),
        )),
    }
}

fn parse_sync(c: &mut Cursor, number: usize, pos: Pos) -> Parsed<SyncDef> {
    let tables = parse_table_pattern(c, true)?;
    let mut except = Vec::new();
    if c.peek_keyword("EXCEPT") {
        c.i += 1;
        loop {
            // EXCEPT is how a non-ASCII table is left out of a wildcard, so it may name one.
            except.push(parse_table_pattern(c, false)?);
            if c.peek().map(|t| &t.token) != Some(&Token::Comma) {
                break;
            }
            c.i += 1;
        }
    }
    c.keyword("TO")?;
    let to_table = if c.peek_keyword("TABLE") {
        c.i += 1;
        true
    } else if c.peek_keyword("TOPIC") {
        c.i += 1;
        false
    } else {
        return Err(c.error_here("TOPIC (a Kafka sink) or TABLE (a lake sink)"));
    };
    let topic = if to_table {
        let path = c.string("a table path in single quotes, e.g. '${database}/${table}'")?;
        check_table_template(&path)?;
        path
    } else {
        let topic = c.string("a topic name in single quotes, e.g. 'orders'")?;
        check_topic_template(&topic)?;
        topic
    };

    let mut sync = SyncDef {
        number,
        pos,
        tables,
        except,
        topic,
        to_table,
        columns: None,
        filter: None,
        shard_by: None,
        format: None,
        partitioning: None,
        partition: None,
    };
    let owner = format!("SYNC TABLE {}", sync.tables.text);
    let mut with = None;
    loop {
        if c.at_end() {
            break;
        }
        let clause_pos = c.pos();
        if c.peek_keyword("COLUMNS") {
            c.i += 1;
            if sync.columns.is_some() {
                return Err(Located::new(clause_pos, "COLUMNS is given twice"));
            }
            let columns = parse_name_list(c, "a column name")?;
            if columns.is_empty() {
                return Err(Located::new(
                    clause_pos,
                    "COLUMNS () names no column; leave COLUMNS out to sync every column",
                ));
            }
            sync.columns = Some(columns);
        } else if c.peek_keyword("WHERE") {
            c.i += 1;
            if sync.filter.is_some() {
                return Err(Located::new(clause_pos, "WHERE is given twice"));
            }
            sync.filter = Some(parse_filter(c, clause_pos)?);
        } else if c.peek_keyword("SHARD") {
            c.i += 1;
            c.keyword("BY")?;
            if sync.shard_by.is_some() {
                return Err(Located::new(clause_pos, "SHARD BY is given twice"));
            }
            let columns = parse_name_list(c, "a column name")?;
            if columns.is_empty() {
                return Err(Located::new(
                    clause_pos,
                    "SHARD BY () names no column; leave SHARD BY out to shard by the key",
                ));
            }
            sync.shard_by = Some(columns);
        } else if c.peek_keyword("WITH") {
            if with.is_some() {
                return Err(Located::new(clause_pos, "WITH is given twice"));
            }
            with = Some(parse_with(c)?);
        } else {
            return Err(c.error_here("COLUMNS, WHERE, SHARD BY, WITH or `;`"));
        }
    }
    let mut o = Options::new(&owner, with.unwrap_or_default())?;
    sync.format = o.choice("format")?;
    sync.partitioning = o.choice("partitioning")?;
    sync.partition = o
        .integer("partition", 0, i32::MAX as i64)?
        .map(|p| p as i32);
    o.finish()?;
    Ok(sync)
}

/// `( name, name, ... )`, names unique.
fn parse_name_list(c: &mut Cursor, what: &str) -> Parsed<Vec<Spanned<String>>> {
    c.token(Token::LParen)?;
    let mut names: Vec<Spanned<String>> = Vec::new();
    if c.peek().map(|t| &t.token) == Some(&Token::RParen) {
        c.i += 1;
        return Ok(names);
    }
    loop {
        let name = c.ident(what)?;
        check_object_name(&name, "column")?;
        if names
            .iter()
            .any(|n| n.value.eq_ignore_ascii_case(&name.value))
        {
            return Err(Located::new(
                name.pos,
                format!("column `{}` is listed twice", name.value),
            ));
        }
        names.push(name);
        match c.next().map(|t| &t.token) {
            Some(Token::Comma) => continue,
            Some(Token::RParen) => break,
            _ => {
                c.i -= 1;
                return Err(c.error_here("`,` or `)`"));
            }
        }
    }
    Ok(names)
}

/// A table pattern such as `shop.orders`, `shop.*`, `shop.log_%` or `` `shop`.`a%b` ``: the
/// tokens up to the next whitespace, split at the one unquoted `.`.
fn parse_table_pattern(c: &mut Cursor, ascii_only: bool) -> Parsed<TablePattern> {
    let pos = c.pos();
    c.skip_trivia();
    let start = c.i;
    while c.i < c.tokens.len() {
        match &c.tokens[c.i].token {
            Token::Whitespace(_) | Token::EOF | Token::Comma | Token::SemiColon => break,
            _ => c.i += 1,
        }
    }
    let run = &c.tokens[start..c.i];
    let text: String = run.iter().map(|t| t.token.to_string()).collect();
    let expected = "a table pattern `database.table` (e.g. shop.orders, shop.*, shop.log_%)";
    if run.is_empty() {
        return Err(c.error_here(expected));
    }
    let dots: Vec<usize> = run
        .iter()
        .enumerate()
        .filter(|(_, t)| t.token == Token::Period)
        .map(|(i, _)| i)
        .collect();
    if dots.len() != 1 {
        return Err(Located::new(
            pos,
            format!("expected {expected}, found `{text}`"),
        ));
    }
    let database = name_pattern(&run[..dots[0]], pos, &text, ascii_only)?;
    let table = name_pattern(&run[dots[0] + 1..], pos, &text, ascii_only)?;
    if database == NamePattern::Any {
        return Err(Located::new(
            pos,
            format!(
                "`{text}`: the database part cannot be `*`; name the database, or use `%` in it"
            ),
        ));
    }
    Ok(TablePattern {
        database,
        table,
        text,
        pos,
    })
}

fn name_pattern(
    tokens: &[TokenWithSpan],
    pos: Pos,
    whole: &str,
    ascii_only: bool,
) -> Parsed<NamePattern> {
    let bad = || {
        Located::new(
            pos,
            format!("`{whole}` is not a valid table pattern; write `database.table`"),
        )
    };
    match tokens {
        [] => Err(bad()),
        [t] if t.token == Token::Mul => Ok(NamePattern::Any),
        [t] if matches!(&t.token, Token::Word(w) if w.quote_style == Some('`')) => {
            let Token::Word(w) = &t.token else {
                return Err(bad());
            };
            if ascii_only {
                check_object_name(
                    &Spanned {
                        value: w.value.clone(),
                        pos,
                    },
                    "name",
                )?;
            }
            Ok(NamePattern::Exact(w.value.clone()))
        }
        _ => {
            let mut text = String::new();
            for t in tokens {
                match &t.token {
                    Token::Word(w) if w.quote_style.is_none() => text.push_str(&w.value),
                    Token::Number(n, _) => text.push_str(n),
                    Token::Mod => text.push('%'),
                    _ => return Err(bad()),
                }
            }
            if ascii_only {
                check_object_name(
                    &Spanned {
                        value: text.clone(),
                        pos,
                    },
                    "name",
                )?;
            }
            if text.contains(['%', '_']) {
                Ok(NamePattern::Like(text))
            } else {
                Ok(NamePattern::Exact(text))
            }
        }
    }
}

/// Checks the fixed part of a topic name and its `${...}` placeholders.
fn check_topic_template(topic: &Spanned<String>) -> Parsed<()> {
    let fixed = template_fixed_text(topic, "topic")?;
    if topic.value.is_empty() {
        return Err(Located::new(topic.pos, "the topic name is empty"));
    }
    if let Some(bad) = fixed
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Located::new(
            topic.pos,
            format!(
                "topic '{}' contains '{bad}'; topic names may use only letters, digits, `.`, `_` \
                 and `-`",
                topic.value
            ),
        ));
    }
    Ok(())
}

/// Checks a lake table's path template: relative to the sink's path, segments of letters,
/// digits, `.`, `_` and `-` separated by `/`.
fn check_table_template(path: &Spanned<String>) -> Parsed<()> {
    let fixed = template_fixed_text(path, "table path")?;
    let bad_segment = path
        .value
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if path.value.is_empty() || bad_segment {
        return Err(Located::new(
            path.pos,
            format!(
                "table path '{}' must be a relative path without empty, `.` or `..` parts, \
                 e.g. '${{database}}/${{table}}'",
                path.value
            ),
        ));
    }
    if let Some(bad) = fixed
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(Located::new(
            path.pos,
            format!(
                "table path '{}' contains '{bad}'; table paths may use only letters, digits, \
                 `.`, `_`, `-` and `/`",
                path.value
            ),
        ));
    }
    Ok(())
}

/// A template's text without its `${database}` / `${table}` placeholders, which it checks.
fn template_fixed_text(template: &Spanned<String>, what: &str) -> Parsed<String> {
    let mut rest = template.value.as_str();
    let mut fixed = String::new();
    while let Some(start) = rest.find("${") {
        fixed.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            return Err(Located::new(
                template.pos,
                format!(
                    "{what} '{}' has a `${{` without a closing `}}`",
                    template.value
                ),
            ));
        };
        let placeholder = &rest[start + 2..start + len];
        if !placeholder.eq_ignore_ascii_case("database")
            && !placeholder.eq_ignore_ascii_case("table")
        {
            return Err(Located::new(
                template.pos,
                format!(
                    "{what} '{}' uses `${{{placeholder}}}`; the placeholders are ${{database}} \
                     and ${{table}}",
                    template.value
                ),
            ));
        }
        rest = &rest[start + len + 1..];
    }
    fixed.push_str(rest);
    Ok(fixed)
}

/// The WHERE expression: the tokens up to the next top-level COLUMNS / SHARD BY / WITH clause,
/// parsed by sqlparser's MySQL expression parser.
fn parse_filter(c: &mut Cursor, where_pos: Pos) -> Parsed<Filter> {
    c.skip_trivia();
    let start = c.i;
    let mut depth = 0i32;
    while c.i < c.tokens.len() {
        let token = &c.tokens[c.i].token;
        match token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Word(w) if depth == 0 && w.quote_style.is_none() => {
                let word = w.value.to_ascii_uppercase();
                let next = c.tokens[c.i + 1..]
                    .iter()
                    .find(|t| !is_trivia(&t.token))
                    .map(|t| &t.token);
                let clause = match word.as_str() {
                    "SHARD" => {
                        matches!(next, Some(Token::Word(n)) if n.value.eq_ignore_ascii_case("BY"))
                    }
                    "WITH" | "COLUMNS" => next == Some(&Token::LParen),
                    _ => false,
                };
                if clause {
                    break;
                }
            }
            _ => {}
        }
        c.i += 1;
    }
    let tokens: Vec<TokenWithSpan> = c.tokens[start..c.i].to_vec();
    // One line, whatever the layout: whitespace and comments between tokens become one space.
    let text = tokens
        .iter()
        .map(|t| match t.token {
            Token::Whitespace(_) => " ".to_string(),
            ref token => token.to_string(),
        })
        .collect::<String>()
        .split(' ')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        return Err(Located::new(where_pos, "WHERE needs a condition"));
    }
    let pos = tokens
        .iter()
        .find(|t| !is_trivia(&t.token))
        .map(pos_of)
        .unwrap_or(where_pos);
    let dialect = super::dialect::FilterDialect;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(|e| parser_error(e, pos))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(Located::new(
            pos_of(&next),
            format!(
                "unexpected `{}` in the WHERE condition; the condition ends before COLUMNS, \
                 SHARD BY, WITH or `;`",
                next.token
            ),
        ));
    }
    Ok(Filter { expr, text, pos })
}

/// sqlparser reports "… at Line: L, Column: C"; turn that into our position.
fn parser_error(error: ParserError, fallback: Pos) -> Located {
    let text = match error {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => {
            return Located::new(fallback, "the WHERE condition is nested too deeply");
        }
    };
    let (message, pos) = match text.rsplit_once(" at Line: ") {
        Some((message, location)) => {
            let mut numbers = location
                .split(", Column: ")
                .map(|n| n.trim().parse::<u64>().ok());
            match (numbers.next().flatten(), numbers.next().flatten()) {
                (Some(line), Some(column)) if line > 0 => (message, Pos { line, column }),
                _ => (message, fallback),
            }
        }
        None => (text.as_str(), fallback),
    };
    Located::new(
        pos,
        format!(
            "the WHERE condition does not parse: {}",
            message
                .replace("Expected: ", "expected ")
                .replace(", found: ", ", found ")
        ),
    )
}

impl Parts {
    /// Cross-statement checks: exactly one project, whose source and sink exist.
    fn into_project(self, path: &Path) -> Result<ProjectFile> {
        let located = |pos: Pos, message: String| Error::Project {
            file: path.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message,
        };
        let mut projects = self.projects.into_iter();
        let Some((mut project, source_name, sink_name, start_timestamp, mode_pos)) =
            projects.next()
        else {
            return Err(located(
                self.end,
                "the file has no CREATE PROJECT statement; add one, e.g. \
                 `CREATE PROJECT p FROM src TO kafka;`"
                    .to_string(),
            ));
        };
        if let Some((second, ..)) = projects.next() {
            return Err(located(
                second.name.pos,
                format!(
                    "a file holds one project, but `{}` follows `{}`; put each project in its own file",
                    second.name.value, project.name.value
                ),
            ));
        }
        let unique = |names: Vec<&Spanned<String>>, what: &str| -> Result<()> {
            for (i, n) in names.iter().enumerate() {
                if let Some(first) = names[..i]
                    .iter()
                    .find(|m| m.value.eq_ignore_ascii_case(&n.value))
                {
                    return Err(located(
                        n.pos,
                        format!(
                            "{what} `{}` is defined twice (first at line {})",
                            n.value, first.pos.line
                        ),
                    ));
                }
            }
            Ok(())
        };
        unique(self.sources.iter().map(|s| &s.name).collect(), "source")?;
        unique(self.sinks.iter().map(|s| &s.name).collect(), "sink")?;
        let mut source = self
            .sources
            .into_iter()
            .find(|s| s.name.value.eq_ignore_ascii_case(&source_name.value))
            .ok_or_else(|| {
                located(
                    source_name.pos,
                    format!(
                        "project `{}` reads from source `{}`, which no CREATE SOURCE defines",
                        project.name.value, source_name.value
                    ),
                )
            })?;
        let sink = self
            .sinks
            .into_iter()
            .find(|s| s.name.value.eq_ignore_ascii_case(&sink_name.value))
            .ok_or_else(|| {
                located(
                    sink_name.pos,
                    format!(
                        "project `{}` writes to sink `{}`, which no CREATE SINK defines",
                        project.name.value, sink_name.value
                    ),
                )
            })?;
        if let Some(ts) = start_timestamp {
            // A date-time is read in the source's `timezone`; without one, in the server's,
            // which only planning knows.
            let offset = source
                .timezone
                .as_ref()
                .and_then(|tz| crate::temporal::parse_offset(&tz.value));
            let (epoch, start) = match &ts.value {
                Value::Num(n) => (n.parse::<i64>().ok(), StartPoint::Timestamp as fn(i64) -> _),
                Value::Str(s) => match offset {
                    Some(offset) => (
                        crate::temporal::parse_datetime_seconds(s).map(|t| t - offset),
                        StartPoint::Timestamp as fn(i64) -> _,
                    ),
                    None => (
                        crate::temporal::parse_datetime_seconds(s),
                        StartPoint::WallClock as fn(i64) -> _,
                    ),
                },
                Value::Bool(_) => (None, StartPoint::Timestamp as fn(i64) -> _),
            };
            let Some(epoch) = epoch.filter(|e| *e >= 0) else {
                return Err(located(
                    ts.pos,
                    "option `start_timestamp` expects 'YYYY-MM-DD HH:MM:SS' (in the source's \
                     `timezone`, by default the server's) or Unix epoch seconds"
                        .to_string(),
                ));
            };
            project.start = Some(Spanned {
                value: start(epoch),
                pos: ts.pos,
            });
        }
        if let Some(Spanned {
            value: StartPoint::Gtid(gtid),
            pos,
        }) = &project.start
        {
            check_start_gtid(gtid, source.kind).map_err(|e| located(*pos, e))?;
        }
        if source.server_id == 0 {
            source.server_id = default_server_id(&project.name.value);
        }
        if self.syncs.is_empty() {
            let example = match sink.kind {
                SinkKind::Kafka => "SYNC TABLE db.table TO TOPIC 'topic';",
                _ => "SYNC TABLE db.table TO TABLE '${database}/${table}';",
            };
            return Err(located(
                self.end,
                format!("the project syncs no table; add a `{example}` statement"),
            ));
        }
        // Lake sinks take tables, Kafka takes topics.
        if let Some(sync) = self.syncs.iter().find(|s| s.to_table != sink.is_lake()) {
            let message = match sink.kind {
                SinkKind::Kafka => format!(
                    "SYNC TABLE {} writes TO TABLE, but sink `{}` is Kafka, which takes TO TOPIC \
                     'topic'; write TO TOPIC, or use a sink with type = 'parquet' or 'delta'",
                    sync.tables.text, sink.name.value
                ),
                kind => format!(
                    "SYNC TABLE {} writes TO TOPIC, but sink `{}` is a {kind} sink, which takes \
                     TO TABLE 'path' (e.g. TO TABLE '${{database}}/${{table}}')",
                    sync.tables.text, sink.name.value
                ),
            };
            return Err(located(sync.topic.pos, message));
        }
        if let Some(pos) = mode_pos {
            let wrong = match (sink.kind, project.mode) {
                (SinkKind::Kafka, _) => Some(format!(
                    "option `mode` applies to lake sinks, but sink `{}` is Kafka; remove it",
                    sink.name.value
                )),
                (SinkKind::Parquet, LakeMode::Upsert) => Some(format!(
                    "mode 'upsert' keeps the current state by key, which needs a Delta table; \
                     sink `{}` writes plain Parquet: use type = 'delta' or mode = 'changelog'",
                    sink.name.value
                )),
                _ => None,
            };
            if let Some(message) = wrong {
                return Err(located(pos, message));
            }
        }
        Ok(ProjectFile {
            path: path.to_path_buf(),
            source,
            sink,
            project,
            syncs: self.syncs,
        })
    }
}

/// The replica id a project's binlog connection uses when the source sets no `server_id`: a
/// hash of the project's name, so two projects streaming from one server do not take each
/// other's place, and a project keeps its id from run to run. Far above the small ids servers
/// usually have.
pub fn default_server_id(project: &str) -> u32 {
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in project.to_ascii_lowercase().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    const LOW: u32 = 100_000;
    LOW + hash % (i32::MAX as u32 - LOW)
}

/// `start_gtid` in the source's flavor: MariaDB's `domain-server-sequence` list, or a MySQL
/// GTID set (MySQL and OceanBase Binlog Service).
fn check_start_gtid(gtid: &str, kind: super::SourceKind) -> std::result::Result<(), String> {
    use crate::position::gtid::{MariaDbGtidPos, MysqlGtidSet};
    let parsed = match kind {
        super::SourceKind::MariaDb => MariaDbGtidPos::parse(gtid).map(|p| p.render().is_some()),
        _ => MysqlGtidSet::parse(gtid).map(|s| !s.is_empty()),
    };
    match parsed {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err("option `start_gtid` is empty; give the GTID position to start after".to_string())
        }
        Err(e) => Err(format!(
            "option `start_gtid` takes {} for a source of type '{}': {e}",
            match kind {
                super::SourceKind::MariaDb => "a MariaDB GTID position",
                _ => "a MySQL GTID set",
            },
            kind.name(),
        )),
    }
}

/// Parses a stand-alone row filter (e.g. from an imported CSV); the error has no file location.
pub(crate) fn check_filter_text(text: &str) -> std::result::Result<(), String> {
    let dialect = MySqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| e.message)?;
    let mut c = Cursor {
        tokens: &tokens,
        i: 0,
        end: Pos::default(),
    };
    parse_filter(&mut c, Pos { line: 1, column: 1 }).map_err(|e| e.message)?;
    if c.at_end() {
        Ok(())
    } else {
        Err(format!(
            "unexpected {} after the condition",
            describe(c.peek())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "CREATE SOURCE src WITH (type = 'mariadb', host = 'h', user = 'u');\n";

    fn lake_error(text: &str) -> (u64, String) {
        match parse_project(Path::new("p.sql"), &format!("{SOURCE}{text}")) {
            Err(Error::Project { line, message, .. }) => (line, message),
            other => panic!("expected a located error, got {other:?}"),
        }
    }

    #[test]
    fn lake_sinks_take_tables_and_kafka_sinks_topics() {
        let ok = parse_project(
            Path::new("p.sql"),
            &format!(
                "{SOURCE}CREATE SINK lake WITH (type = 'delta', path = 's3://b/raw', \
                 's3.endpoint' = 'http://127.0.0.1:8333', file_size_mb = 64);
CREATE PROJECT p FROM src TO lake WITH (mode = 'changelog', before_images = true);
SYNC TABLE shop.* TO TABLE '${{database}}/${{table}}';"
            ),
        )
        .expect("a lake project");
        let lake = ok.sink.lake.as_ref().expect("lake options");
        assert_eq!(ok.sink.kind, SinkKind::Delta);
        assert_eq!(lake.file_bytes, 64 << 20);
        assert_eq!(lake.commit_interval_ms, 1000);
        assert_eq!(
            ok.sink.property("s3.endpoint"),
            Some("http://127.0.0.1:8333")
        );
        assert_eq!(ok.project.mode, LakeMode::Changelog);
        assert!(ok.project.before_images && ok.syncs[0].to_table);

        let (line, message) = lake_error(
            "CREATE SINK lake WITH (type = 'parquet', path = '/data/lake');
CREATE PROJECT p FROM src TO lake;
SYNC TABLE shop.t TO TOPIC 't';",
        );
        assert_eq!(line, 4);
        assert!(
            message.contains("parquet sink, which takes TO TABLE"),
            "{message}"
        );

        let (line, message) = lake_error(
            "CREATE SINK k WITH (type = 'kafka', 'bootstrap.servers' = 'b:9092');
CREATE PROJECT p FROM src TO k;
SYNC TABLE shop.t TO TABLE 't';",
        );
        assert_eq!(line, 4);
        assert!(
            message.contains("is Kafka, which takes TO TOPIC"),
            "{message}"
        );

        let (line, message) = lake_error(
            "CREATE SINK lake WITH (type = 'parquet', path = '/data/lake');
CREATE PROJECT p FROM src TO lake WITH (mode = 'upsert');
SYNC TABLE shop.t TO TABLE 't';",
        );
        assert_eq!(line, 3);
        assert!(message.contains("needs a Delta table"), "{message}");

        let upsert = parse_project(
            Path::new("p.sql"),
            &format!(
                "{SOURCE}CREATE SINK lake WITH (type = 'delta', path = '/data/lake');
CREATE PROJECT p FROM src TO lake WITH (mode = 'upsert');
SYNC TABLE shop.t TO TABLE 't';"
            ),
        )
        .expect("an upsert project");
        assert_eq!(upsert.project.mode, LakeMode::Upsert);

        let (line, message) = lake_error(
            "CREATE SINK lake WITH (type = 'delta', path = '/d', 's3.endpoint' = 'x', \
             'bootstrap.servers' = 'b');",
        );
        assert_eq!(line, 2);
        assert!(
            message.contains("takes no property 'bootstrap.servers'"),
            "{message}"
        );

        let (_, message) = lake_error("CREATE SINK lake WITH (type = 'delta');");
        assert!(message.contains("`path`"), "{message}");
        let (_, message) = lake_error("CREATE SINK lake WITH (type = 'delta', path = 'http://x');");
        assert!(message.contains("expects a local directory"), "{message}");
        let (_, message) = lake_error(
            "CREATE SINK lake WITH (type = 'delta', path = '/d');
CREATE PROJECT p FROM src TO lake;
SYNC TABLE shop.t TO TABLE '../t';",
        );
        assert!(
            message.contains("without empty, `.` or `..` parts"),
            "{message}"
        );
    }

    #[test]
    fn default_server_ids_differ_by_project_and_stay_put() {
        let orders = default_server_id("shop_orders");
        assert_eq!(
            orders,
            default_server_id("SHOP_ORDERS"),
            "names are case-insensitive"
        );
        assert_eq!(
            orders,
            default_server_id("shop_orders"),
            "the same on every run"
        );
        assert_ne!(orders, default_server_id("shop_users"));
        for name in ["a", "shop_orders", "x".repeat(300).as_str()] {
            let id = default_server_id(name);
            assert!((100_000..i32::MAX as u32).contains(&id), "{name}: {id}");
        }
    }
}
