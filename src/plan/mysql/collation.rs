//! MySQL collations, as far as row filters compare text: which strings are equal, which sorts
//! first, and what `LIKE` matches.
//!
//! A collation is evaluated exactly or not at all:
//! - `binary` (the character set of BINARY, VARBINARY and BLOB): bytes, trailing spaces count;
//! - `_bin` of a UTF-8 set (`utf8mb4_bin`, `utf8mb3_bin`, `ascii_bin`): code points, trailing
//!   spaces ignored (PAD SPACE) except under `utf8mb4_0900_bin` and MariaDB's `_nopad_bin`;
//! - `utf8mb4_general_ci` / `utf8mb3_general_ci` (MariaDB's and MySQL 5.7's default, OceanBase's):
//!   MySQL's own weight table ([`super::general_ci`]), one weight per character, every character
//!   beyond the BMP weighing U+FFFD, PAD SPACE;
//! - `utf8mb4_unicode_ci`, `_unicode_520_ci` and the default collations of the 8-bit and CJK
//!   sets (`latin1_swedish_ci`, `gbk_chinese_ci`, …; [`super::ascii_weights`]): exact for text of
//!   printable ASCII (plus tab, LF, CR), with the server's own weights for it — `gbk_chinese_ci`
//!   has `'~' = 'Y'`, `latin5_turkish_ci` has `'I' <> 'i'`;
//! - MySQL 8's `utf8mb4_0900_ai_ci` and MariaDB's `utf8mb4_uca1400_ai_ci`: equality of such ASCII
//!   text (case folded); their order is refused, UCA's order of ASCII punctuation not being
//!   tributary's to guess;
//! - the `_bin` collations of other sets: equality of any text, order of ASCII text.
//!
//! Text outside what its collation is exact for makes the comparison fail — the run stops and
//! says so — rather than guess. Any other collation (language-tailored ones such as
//! `utf8mb4_czech_ci`, accent-sensitive `_as_cs` ones) is refused by `check` wherever a filter
//! compares its text.

use std::cmp::Ordering;
use std::sync::OnceLock;

use super::{ascii_weights, general_ci};

/// How a collation weighs text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The `binary` character set: bytes, NO PAD.
    Bytes,
    /// Code points (a UTF-8 `_bin` collation).
    CodePoint,
    /// The `_bin` collation of a non-UTF-8 set: equal when the characters are; its order is
    /// its character set's byte order, which is code-point order for ASCII only.
    NarrowBin,
    /// `utf8mb4_general_ci`'s weight table.
    GeneralCi,
    /// The server's weights for printable ASCII, tab, LF and CR; nothing else.
    AsciiTable(&'static [u16; 128]),
    /// Equality of printable ASCII (tab, LF, CR) with case folded; no order.
    AsciiFold,
}

/// A collation as a filter uses it: its name (for messages), its rule and whether trailing spaces
/// are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Collation {
    pub name: String,
    pub rule: Rule,
    /// PAD SPACE: a string compares as if padded with spaces to the other's length.
    pub pad: bool,
}

/// A collation tributary does not evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedCollation(pub String);

/// A value a collation cannot weigh exactly (non-ASCII text under an ASCII-only rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inexact {
    pub collation: String,
    pub value: String,
}

impl std::fmt::Display for Inexact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the filter compares the text {:?} under collation {}, which tributary evaluates \
             exactly only for printable ASCII text (docs/project-language.md, row filters); add \
             COLLATE utf8mb4_general_ci or COLLATE utf8mb4_bin to the comparison, or change the \
             filter",
            self.value, self.collation
        )
    }
}

impl Collation {
    /// The collation called `name` in `information_schema` (case-insensitive).
    pub fn from_name(name: &str) -> Result<Collation, UnsupportedCollation> {
        let lower = name.to_ascii_lowercase();
        let charset = crate::plan::charset::Charset::of_collation(&lower);
        let unicode = matches!(charset.as_str(), "utf8mb4" | "utf8mb3" | "utf8");
        // Sets whose text is UTF-8 as tributary holds it: their `_bin` order is code-point order.
        let utf8 = unicode || charset == "ascii";
        let suffix = lower
            .strip_prefix(charset.as_str())
            .unwrap_or("")
            .trim_start_matches('_');
        let nopad = suffix.contains("nopad") || suffix.starts_with("0900");
        // `utf8mb3_unicode_ci` weighs as `utf8mb4_unicode_ci`; `_nopad_` changes padding only.
        let table_name = format!(
            "{}_{}",
            if unicode { "utf8mb4" } else { charset.as_str() },
            suffix.replace("nopad_", "")
        );
        let table = ascii_weights::TABLES
            .iter()
            .find(|(name, _)| *name == table_name)
            .map(|(_, weights)| weights);
        let rule = match (suffix, table) {
            _ if lower == "binary" => Rule::Bytes,
            ("bin" | "nopad_bin" | "0900_bin", _) if utf8 => Rule::CodePoint,
            ("bin" | "nopad_bin", _) => Rule::NarrowBin,
            ("general_ci" | "general_nopad_ci", _) if unicode => Rule::GeneralCi,
            (_, Some(weights)) => Rule::AsciiTable(weights),
            ("0900_ai_ci" | "uca1400_ai_ci" | "uca1400_nopad_ai_ci", None) if unicode => {
                Rule::AsciiFold
            }
            _ => return Err(UnsupportedCollation(name.to_string())),
        };
        Ok(Collation {
            name: lower,
            rule,
            pad: rule != Rule::Bytes && !nopad,
        })
    }

    /// `binary`, for BINARY/VARBINARY/BLOB values and `BINARY x`.
    pub fn binary() -> Collation {
        Collation {
            name: "binary".to_string(),
            rule: Rule::Bytes,
            pad: false,
        }
    }

    /// Whether `<`, `>`, BETWEEN under this collation can be evaluated at all.
    pub fn orders(&self) -> bool {
        self.rule != Rule::AsciiFold
    }

    /// Whether the collation ignores case (REGEXP matches case-insensitively then, as MySQL's
    /// does): `_ci` ones do.
    pub fn case_insensitive(&self) -> bool {
        self.name.ends_with("_ci")
    }

    /// The weight of one character, or `None` when this collation cannot weigh it exactly.
    #[inline]
    pub fn weight(&self, c: char, ordering: bool) -> Option<u32> {
        match self.rule {
            Rule::Bytes | Rule::CodePoint => Some(c as u32),
            Rule::NarrowBin if ordering && !c.is_ascii() => None,
            Rule::NarrowBin => Some(c as u32),
            Rule::GeneralCi => Some(general_ci_weight(c)),
            Rule::AsciiTable(weights) => weights
                .get(c as usize)
                .filter(|w| **w != ascii_weights::NONE)
                .map(|w| u32::from(*w)),
            Rule::AsciiFold => {
                if c.is_ascii_graphic() || matches!(c, ' ' | '\t' | '\n' | '\r') {
                    Some(c.to_ascii_uppercase() as u32)
                } else {
                    None
                }
            }
        }
    }

    fn inexact(&self, value: &str) -> Inexact {
        let mut shown: String = value.chars().take(40).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        Inexact {
            collation: self.name.clone(),
            value: shown,
        }
    }

    /// Compares two strings as MySQL does under this collation.
    pub fn compare(&self, a: &str, b: &str) -> Result<Ordering, Inexact> {
        if self.rule == Rule::Bytes {
            return Ok(a.as_bytes().cmp(b.as_bytes()));
        }
        let ordering = true;
        let mut left = a.chars();
        let mut right = b.chars();
        loop {
            match (left.next(), right.next()) {
                (Some(x), Some(y)) => {
                    let wx = self.weight(x, ordering).ok_or_else(|| self.inexact(a))?;
                    let wy = self.weight(y, ordering).ok_or_else(|| self.inexact(b))?;
                    match wx.cmp(&wy) {
                        Ordering::Equal => {}
                        other => return Ok(other),
                    }
                }
                (None, None) => return Ok(Ordering::Equal),
                (Some(x), None) => {
                    return self.rest_against_padding(x, left, a);
                }
                (None, Some(y)) => {
                    return self
                        .rest_against_padding(y, right, b)
                        .map(Ordering::reverse);
                }
            }
        }
    }

    /// The longer string's remaining characters against the shorter's (virtual) padding:
    /// PAD SPACE compares them with spaces, NO PAD makes the longer one greater.
    fn rest_against_padding(
        &self,
        first: char,
        rest: std::str::Chars<'_>,
        whole: &str,
    ) -> Result<Ordering, Inexact> {
        if !self.pad {
            return Ok(Ordering::Greater);
        }
        let space = self.weight(' ', true).unwrap_or(' ' as u32);
        for c in std::iter::once(first).chain(rest) {
            let w = self.weight(c, true).ok_or_else(|| self.inexact(whole))?;
            match w.cmp(&space) {
                Ordering::Equal => {}
                other => return Ok(other),
            }
        }
        Ok(Ordering::Equal)
    }

    /// Whether two strings are equal under this collation (no ordering needed, so the
    /// `_bin` collations of narrow sets are exact for every character).
    pub fn equal(&self, a: &str, b: &str) -> Result<bool, Inexact> {
        if self.rule == Rule::Bytes {
            return Ok(a.as_bytes() == b.as_bytes());
        }
        let (a_trim, b_trim) = if self.pad {
            (a.trim_end_matches(' '), b.trim_end_matches(' '))
        } else {
            (a, b)
        };
        if a_trim == b_trim {
            // Identical strings are equal under every collation; still check that they can be
            // weighed, so that the verdict does not depend on which side a value is on.
            return self.check(a_trim, a).map(|()| true);
        }
        let mut left = a_trim.chars();
        let mut right = b_trim.chars();
        loop {
            match (left.next(), right.next()) {
                (Some(x), Some(y)) => {
                    let wx = self.weight(x, false).ok_or_else(|| self.inexact(a))?;
                    let wy = self.weight(y, false).ok_or_else(|| self.inexact(b))?;
                    if wx != wy {
                        // The rest must still be weighable, for the same reason as above.
                        self.check(left.as_str(), a)?;
                        self.check(right.as_str(), b)?;
                        return Ok(false);
                    }
                }
                (None, None) => return Ok(true),
                (Some(_), None) | (None, Some(_)) => {
                    self.check(left.as_str(), a)?;
                    self.check(right.as_str(), b)?;
                    return Ok(false);
                }
            }
        }
    }

    fn check(&self, rest: &str, whole: &str) -> Result<(), Inexact> {
        match rest.chars().all(|c| self.weight(c, false).is_some()) {
            true => Ok(()),
            false => Err(self.inexact(whole)),
        }
    }

    /// The weights of `text` for LIKE (no padding), into `out`.
    pub fn weights_into(&self, text: &str, out: &mut Vec<u32>) -> Result<(), Inexact> {
        out.clear();
        if self.rule == Rule::Bytes {
            out.extend(text.bytes().map(u32::from));
            return Ok(());
        }
        for c in text.chars() {
            out.push(self.weight(c, false).ok_or_else(|| self.inexact(text))?);
        }
        Ok(())
    }
}

/// `utf8mb4_general_ci`'s weight of a character.
#[inline]
pub fn general_ci_weight(c: char) -> u32 {
    let code = c as u32;
    if code > 0xFFFF {
        return 0xFFFD;
    }
    if code < 0x80 {
        return (c.to_ascii_uppercase()) as u32;
    }
    static TABLE: OnceLock<Box<[u16]>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table: Vec<u16> = (0..=0xFFFFu32).map(|c| c as u16).collect();
        for &(c, w) in general_ci::WEIGHTS.iter() {
            table[c as usize] = w;
        }
        table.into_boxed_slice()
    });
    u32::from(table[code as usize])
}

/// A compiled LIKE pattern: `%` any run, `_` one character (one byte under `binary`), anything
/// else a weight; `escape` makes the next character literal (MySQL: an escape at the end is
/// itself literal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Any,
    One,
    Weight(u32),
}

impl LikePattern {
    pub fn compile(
        pattern: &str,
        escape: Option<char>,
        collation: &Collation,
    ) -> Result<LikePattern, Inexact> {
        let mut tokens = Vec::new();
        let literal = |c: char, tokens: &mut Vec<Token>| -> Result<(), Inexact> {
            if collation.rule == Rule::Bytes {
                let mut buf = [0u8; 4];
                tokens.extend(
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .map(|b| Token::Weight(b.into())),
                );
                Ok(())
            } else {
                let w = collation
                    .weight(c, false)
                    .ok_or_else(|| collation.inexact(pattern))?;
                tokens.push(Token::Weight(w));
                Ok(())
            }
        };
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if Some(c) == escape {
                match chars.next() {
                    Some(next) => literal(next, &mut tokens)?,
                    None => literal(c, &mut tokens)?,
                }
            } else if c == '%' {
                if tokens.last() != Some(&Token::Any) {
                    tokens.push(Token::Any);
                }
            } else if c == '_' {
                tokens.push(Token::One);
            } else {
                literal(c, &mut tokens)?;
            }
        }
        Ok(LikePattern { tokens })
    }

    /// Whether weights `text` match (the classic wildcard walk: on a mismatch, resume after the
    /// last `%`, one unit further on).
    pub fn matches(&self, text: &[u32]) -> bool {
        let pat = &self.tokens;
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match pat.get(p) {
                Some(Token::One) => {
                    t += 1;
                    p += 1;
                }
                Some(Token::Weight(w)) if *w == text[t] => {
                    t += 1;
                    p += 1;
                }
                Some(Token::Any) => {
                    star = Some((p, t));
                    p += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        pat[p..].iter().all(|t| *t == Token::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> Collation {
        Collation::from_name(name).unwrap()
    }

    #[test]
    fn names_map_to_rules() {
        assert_eq!(c("utf8mb4_general_ci").rule, Rule::GeneralCi);
        assert!(c("utf8mb4_general_ci").pad);
        assert_eq!(c("utf8mb4_bin").rule, Rule::CodePoint);
        assert!(c("utf8mb4_bin").pad);
        assert!(!c("utf8mb4_0900_bin").pad);
        assert!(!c("utf8mb4_0900_ai_ci").pad);
        assert_eq!(c("utf8mb4_0900_ai_ci").rule, Rule::AsciiFold);
        assert!(matches!(c("latin1_swedish_ci").rule, Rule::AsciiTable(_)));
        assert!(matches!(c("utf8mb3_unicode_ci").rule, Rule::AsciiTable(_)));
        assert!(!c("latin1_swedish_nopad_ci").pad);
        assert_eq!(c("latin1_bin").rule, Rule::NarrowBin);
        assert_eq!(c("binary").rule, Rule::Bytes);
        assert!(!c("binary").pad);
        assert!(Collation::from_name("utf8mb4_czech_ci").is_err());
        assert!(Collation::from_name("utf8mb4_0900_as_cs").is_err());
    }

    #[test]
    fn general_ci_folds_case_and_accents_and_pads() {
        let ci = c("utf8mb4_general_ci");
        assert!(ci.equal("Café", "CAFE").unwrap());
        assert!(ci.equal("straße", "STRASSE").is_ok_and(|e| !e));
        assert!(ci.equal("ß", "s").unwrap());
        assert!(ci.equal("a  ", "A").unwrap());
        assert!(ci.equal("😀", "😁").unwrap());
        assert_eq!(ci.compare("a", "a\t").unwrap(), Ordering::Greater);
        assert_eq!(ci.compare("a", "a ").unwrap(), Ordering::Equal);
        assert_eq!(ci.compare("abc", "ABD").unwrap(), Ordering::Less);
        assert_eq!(ci.compare("_", "a").unwrap(), Ordering::Greater);
    }

    #[test]
    fn bin_and_binary_keep_case_and_binary_keeps_spaces() {
        let bin = c("utf8mb4_bin");
        assert!(!bin.equal("a", "A").unwrap());
        assert!(bin.equal("a ", "a").unwrap());
        assert!(!Collation::binary().equal("a ", "a").unwrap());
        assert!(!c("utf8mb4_0900_bin").equal("a ", "a").unwrap());
    }

    #[test]
    fn ascii_only_collations_refuse_other_text() {
        let uca = c("utf8mb4_0900_ai_ci");
        assert!(uca.equal("Paid", "PAID").unwrap());
        assert!(!uca.equal("paid ", "paid").unwrap());
        assert!(uca.equal("é", "e").is_err());
        assert!(uca.equal("e", "é").is_err());
        assert!(uca.equal("x", "é").is_err());
        assert!(!uca.orders());
        let gbk = c("gbk_chinese_ci");
        assert!(gbk.equal("~", "y").unwrap());
        assert!(gbk.equal("中", "中").is_err());
        let turkish = c("latin5_turkish_ci");
        assert!(!turkish.equal("I", "i").unwrap());
    }

    #[test]
    fn like_matches_as_mysql_does() {
        let ci = c("utf8mb4_general_ci");
        let m = |text: &str, pattern: &str| {
            let p = LikePattern::compile(pattern, Some('\\'), &ci).unwrap();
            let mut w = Vec::new();
            ci.weights_into(text, &mut w).unwrap();
            p.matches(&w)
        };
        assert!(m("ABC", "a%"));
        assert!(m("é", "e"));
        assert!(!m("a ", "a"));
        assert!(!m("a", "a "));
        assert!(m("a_b", "a\\_b"));
        assert!(!m("axb", "a\\_b"));
        assert!(m("mississippi", "%iss%ppi"));
        assert!(m("abc", "%%c"));
        assert!(m("ab\\", "ab\\"));
        assert!(!m("", "_"));
        assert!(m("", "%"));
        assert!(m("héllo", "h_llo"));
        let binary = Collation::binary();
        let p = LikePattern::compile("h_llo", None, &binary).unwrap();
        let mut w = Vec::new();
        binary.weights_into("héllo", &mut w).unwrap();
        assert!(!p.matches(&w));
    }
}
