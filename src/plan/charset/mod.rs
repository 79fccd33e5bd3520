//! MySQL character sets → Unicode, for the binlog: a snapshot reads text over a utf8mb4
//! connection (the server converts it), but row events carry each column's bytes in the column's
//! own character set. This module names the decoder for a character set and decodes with it, so
//! that the stream gives the text the snapshot gives.
//!
//! Decoding is encoding_rs (the WHATWG Encoding Standard), with MySQL's own mapping where the two
//! differ: a few bytes of some single-byte sets, a few codes of `sjis` and `gb2312`, and the
//! tables of [`mysql_tables`] for `big5`, `ujis` and `eucjpms`. The
//! `charsets_decode_as_the_server_does` test compares every code of every supported set with the
//! server's own conversion. A character set encoding_rs cannot decode (utf32, armscii8, dec8, …)
//! is refused by name rather than decoded by guess.
//!
//! The planner refuses a column it would send in a set tributary cannot decode. Where a column's
//! character set comes from — the table-map event's optional metadata, or the schema history —
//! is the binlog reader's and the stream's business; see docs/types.md.

mod mysql_tables;

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use encoding_rs::{DecoderResult, Encoding};

use super::ColumnDef;

/// How a character set's bytes become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// utf8mb4, utf8mb3 (utf8), ascii: the bytes are UTF-8 already; checked, never copied.
    Utf8,
    /// `binary`: bytes, not text.
    Binary,
    /// Decoded to UTF-8.
    Decoded(&'static Decoding),
}

/// A character set other than UTF-8: encoding_rs's decoder, corrected where MySQL maps a code
/// differently.
#[derive(Debug)]
pub struct Decoding {
    /// The MySQL name, for messages.
    pub name: &'static str,
    encoding: &'static Encoding,
    /// Codes (their bytes, big-endian) that MySQL decodes to another character than
    /// encoding_rs does, sorted.
    overrides: &'static [(u32, char)],
    /// The length of the character a byte starts (the set's byte structure), to find codes of
    /// `overrides` in a value.
    width: fn(u8) -> usize,
}

impl PartialEq for Decoding {
    fn eq(&self, other: &Decoding) -> bool {
        self.name == other.name
    }
}

impl Eq for Decoding {}

/// A MySQL character set that tributary cannot decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "character set {} has no decoder in tributary (encoding_rs knows no such encoding)",
            self.0
        )
    }
}

fn single(_: u8) -> usize {
    1
}

/// big5, gbk, gb2312, euckr: a byte from 0x81 leads a two-byte code.
fn double_from_81(byte: u8) -> usize {
    if (0x81..=0xfe).contains(&byte) { 2 } else { 1 }
}

/// sjis, cp932: two-byte codes start at 0x81–0x9F and 0xE0–0xFC; 0xA1–0xDF are single bytes.
fn shift_jis(byte: u8) -> usize {
    if matches!(byte, 0x81..=0x9f | 0xe0..=0xfc) {
        2
    } else {
        1
    }
}

/// ujis, eucjpms: 0x8F leads three bytes (JIS X 0212), 0x8E and 0xA1–0xFE two.
fn euc_jp(byte: u8) -> usize {
    match byte {
        0x8f => 3,
        0x8e | 0xa1..=0xfe => 2,
        _ => 1,
    }
}

macro_rules! decoding {
    ($name:literal, $encoding:ident) => {
        decoding!($name, $encoding, &[], single)
    };
    ($name:literal, $encoding:ident, $overrides:expr, $width:expr) => {{
        static DECODING: Decoding = Decoding {
            name: $name,
            encoding: encoding_rs::$encoding,
            overrides: $overrides,
            width: $width,
        };
        Charset::Decoded(&DECODING)
    }};
}

/// Bytes 0x80–0x9F that MySQL reads as the C1 control of the same number, where the WHATWG
/// encoding (a Windows code page) has printable characters.
const C1_LATIN5: &[(u32, char)] = &[
    (0x80, '\u{80}'),
    (0x82, '\u{82}'),
    (0x83, '\u{83}'),
    (0x84, '\u{84}'),
    (0x85, '\u{85}'),
    (0x86, '\u{86}'),
    (0x87, '\u{87}'),
    (0x88, '\u{88}'),
    (0x89, '\u{89}'),
    (0x8a, '\u{8a}'),
    (0x8b, '\u{8b}'),
    (0x8c, '\u{8c}'),
    (0x91, '\u{91}'),
    (0x92, '\u{92}'),
    (0x93, '\u{93}'),
    (0x94, '\u{94}'),
    (0x95, '\u{95}'),
    (0x96, '\u{96}'),
    (0x97, '\u{97}'),
    (0x98, '\u{98}'),
    (0x99, '\u{99}'),
    (0x9a, '\u{9a}'),
    (0x9b, '\u{9b}'),
    (0x9c, '\u{9c}'),
    (0x9f, '\u{9f}'),
];
const C1_TIS620: &[(u32, char)] = &[
    (0x80, '\u{80}'),
    (0x85, '\u{85}'),
    (0x91, '\u{91}'),
    (0x92, '\u{92}'),
    (0x93, '\u{93}'),
    (0x94, '\u{94}'),
    (0x95, '\u{95}'),
    (0x96, '\u{96}'),
    (0x97, '\u{97}'),
];
/// CP866 as IBM defined it (ⁿ, ²); WHATWG's IBM866 has the Russian variant's № and ¤ there.
const CP866: &[(u32, char)] = &[(0xfc, '\u{207f}'), (0xfd, '\u{b2}')];
/// ISO 8859-7:1987's modifier letters; the 2003 edition (WHATWG) has quotation marks.
const GREEK: &[(u32, char)] = &[(0xa1, '\u{2bd}'), (0xa2, '\u{2bc}')];
const HEBREW: &[(u32, char)] = &[(0xaf, '\u{203e}')];
/// KOI8-U proper; WHATWG's KOI8-U is KOI8-RU (Belarusian ў at 0xAE, 0xBE).
const KOI8U: &[(u32, char)] = &[(0x95, '\u{2022}'), (0xae, '\u{255d}'), (0xbe, '\u{256c}')];
/// JIS X 0208 as MySQL's `sjis` maps it; WHATWG's Shift_JIS is Windows-31J (MySQL's `cp932`).
const SJIS: &[(u32, char)] = &[
    (0x815f, '\u{5c}'),
    (0x8160, '\u{301c}'),
    (0x8161, '\u{2016}'),
    (0x817c, '\u{2212}'),
    (0x8191, '\u{a2}'),
    (0x8192, '\u{a3}'),
    (0x81ca, '\u{ac}'),
];
/// GB 2312's own two codes that GBK (a superset otherwise) maps elsewhere.
const GB2312: &[(u32, char)] = &[(0xa1a4, '\u{30fb}'), (0xa1aa, '\u{2015}')];

impl Charset {
    /// The decoder for a MySQL, MariaDB or OceanBase (MySQL mode) character set, by its name in
    /// `information_schema` (case-insensitive).
    pub fn from_name(name: &str) -> Result<Charset, Unsupported> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "utf8mb4" | "utf8mb3" | "utf8" | "ascii" => Charset::Utf8,
            "binary" => Charset::Binary,
            // MySQL's latin1 is Windows-1252, with 0x81, 0x8D, 0x8F, 0x90, 0x9D as the C1
            // controls of those numbers, which is what WHATWG's windows-1252 does too.
            "latin1" => decoding!("latin1", WINDOWS_1252),
            "latin2" => decoding!("latin2", ISO_8859_2),
            // ISO 8859-9: Windows-1254 above 0x9F, C1 controls below.
            "latin5" => decoding!("latin5", WINDOWS_1254, C1_LATIN5, single),
            "latin7" => decoding!("latin7", ISO_8859_13),
            "cp1250" => decoding!("cp1250", WINDOWS_1250),
            "cp1251" => decoding!("cp1251", WINDOWS_1251),
            "cp1256" => decoding!("cp1256", WINDOWS_1256),
            "cp1257" => decoding!("cp1257", WINDOWS_1257),
            "cp866" => decoding!("cp866", IBM866, CP866, single),
            "koi8r" => decoding!("koi8r", KOI8_R),
            "koi8u" => decoding!("koi8u", KOI8_U, KOI8U, single),
            "greek" => decoding!("greek", ISO_8859_7, GREEK, single),
            "hebrew" => decoding!("hebrew", ISO_8859_8, HEBREW, single),
            "macroman" => decoding!("macroman", MACINTOSH),
            // TIS-620: Windows-874 above 0x9F, C1 controls below.
            "tis620" => decoding!("tis620", WINDOWS_874, C1_TIS620, single),
            "gbk" => decoding!("gbk", GBK, &[], double_from_81),
            "gb2312" => decoding!("gb2312", GBK, GB2312, double_from_81),
            // OceanBase has both; encoding_rs decodes GB 18030-2022.
            "gb18030" => decoding!("gb18030", GB18030),
            "gb18030_2022" => decoding!("gb18030_2022", GB18030),
            "big5" => decoding!("big5", BIG5, mysql_tables::BIG5, double_from_81),
            // OceanBase's Big5-HKSCS sets: WHATWG's Big5 is Big5-HKSCS.
            "hkscs" => decoding!("hkscs", BIG5),
            "hkscs31" => decoding!("hkscs31", BIG5),
            "euckr" => decoding!("euckr", EUC_KR),
            "sjis" => decoding!("sjis", SHIFT_JIS, SJIS, shift_jis),
            "cp932" => decoding!("cp932", SHIFT_JIS),
            "ujis" => decoding!("ujis", EUC_JP, mysql_tables::UJIS, euc_jp),
            "eucjpms" => decoding!("eucjpms", EUC_JP, mysql_tables::EUCJPMS, euc_jp),
            // UCS-2 is UTF-16 without surrogates; MySQL stores both big-endian.
            "ucs2" => decoding!("ucs2", UTF_16BE),
            "utf16" => decoding!("utf16", UTF_16BE),
            "utf16le" => decoding!("utf16le", UTF_16LE),
            // utf32, armscii8, keybcs2, dec8, hp8, swe7, geostd8, cp850, cp852, macce, and any
            // set a newer server adds.
            _ => return Err(Unsupported(name.to_string())),
        })
    }

    /// The character set a collation belongs to: MySQL names every collation after its set
    /// (`latin1_swedish_ci`, `utf8mb4_0900_ai_ci`), except `binary`.
    pub fn of_collation(collation: &str) -> String {
        let lower = collation.to_ascii_lowercase();
        // The longest known name that prefixes it (`gb18030_2022_bin` is gb18030_2022's).
        const KNOWN: &[&str] = &[
            "gb18030_2022",
            "utf8mb4",
            "utf8mb3",
            "utf16le",
            "eucjpms",
            "armscii8",
            "macroman",
            "keybcs2",
            "geostd8",
            "gb18030",
            "hkscs31",
        ];
        if let Some(name) = KNOWN
            .iter()
            .find(|name| lower.starts_with(&format!("{name}_")))
        {
            return name.to_string();
        }
        lower.split('_').next().unwrap_or_default().to_string()
    }

    /// The text of `bytes`: borrowed when they are UTF-8 already (or ASCII in an
    /// ASCII-compatible set), decoded otherwise. The error says where the bytes stop making
    /// sense.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, str>, String> {
        match self {
            Charset::Utf8 | Charset::Binary => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|e| not_valid("UTF-8", bytes, e.valid_up_to(), 0)),
            Charset::Decoded(decoding) => decoding.decode(bytes),
        }
    }

    /// The set's name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Charset::Utf8 => "utf8mb4",
            Charset::Binary => "binary",
            Charset::Decoded(decoding) => decoding.name,
        }
    }
}

impl Decoding {
    /// The text of `bytes`, borrowed when they are ASCII; the error says where they stop making
    /// sense in this set.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, str>, String> {
        if self.encoding.is_ascii_compatible() && bytes.is_ascii() {
            // ASCII is UTF-8 in every ASCII-compatible set: no copy.
            return Ok(Cow::Borrowed(
                std::str::from_utf8(bytes).map_err(|e| e.to_string())?,
            ));
        }
        let mut out = String::with_capacity(bytes.len() * 3);
        if self.overrides.is_empty() {
            self.decode_span(bytes, 0, &mut out)?;
            return Ok(Cow::Owned(out));
        }
        // Walk the codes: the spans between MySQL's own codes go to encoding_rs whole.
        let (mut span, mut at) = (0, 0);
        while at < bytes.len() {
            let byte = bytes[at];
            if byte < 0x80 {
                at += 1;
                continue;
            }
            let width = (self.width)(byte).min(bytes.len() - at);
            let code = bytes[at..at + width]
                .iter()
                .fold(0u32, |code, b| code << 8 | u32::from(*b));
            if let Ok(i) = self.overrides.binary_search_by_key(&code, |(c, _)| *c) {
                self.decode_span(&bytes[span..at], span, &mut out)?;
                out.push(self.overrides[i].1);
                span = at + width;
            }
            at += width;
        }
        self.decode_span(&bytes[span..], span, &mut out)?;
        Ok(Cow::Owned(out))
    }

    fn decode_span(&self, span: &[u8], offset: usize, out: &mut String) -> Result<(), String> {
        let mut decoder = self.encoding.new_decoder_without_bom_handling();
        let needed = decoder
            .max_utf8_buffer_length_without_replacement(span.len())
            .unwrap_or(usize::MAX);
        out.reserve(needed.min(span.len() * 4 + 16));
        let mut read = 0;
        loop {
            let (result, n) =
                decoder.decode_to_string_without_replacement(&span[read..], out, true);
            read += n;
            match result {
                DecoderResult::InputEmpty => return Ok(()),
                DecoderResult::OutputFull => out.reserve(span.len() - read + 16),
                DecoderResult::Malformed(bad, after) => {
                    let at = read - bad as usize - after as usize;
                    return Err(not_valid(self.name, span, at, offset));
                }
            }
        }
    }
}

/// "not valid UTF-8 from byte 3 on (e9 20 63 …)": `at` in `bytes`, which start at `offset` of
/// the value.
fn not_valid(what: &str, bytes: &[u8], at: usize, offset: usize) -> String {
    let rest = bytes.get(at..).unwrap_or_default();
    let excerpt: Vec<String> = rest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "the bytes are not valid {what} from byte {} on ({}{})",
        offset + at,
        excerpt.join(" "),
        if rest.len() > 8 { " …" } else { "" }
    )
}

/// What the stream does with one column's binlog value before it reaches the batch builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnText {
    /// Not text, or not sent (an opaque placeholder), or already UTF-8 (the batch builder
    /// checks it): nothing to do.
    Keep,
    /// Text in another character set: decoded to UTF-8.
    Decode(&'static Decoding),
    /// Text whose character set nobody recorded (a schema history from before tributary kept
    /// character sets, and no table-map metadata): UTF-8, or a definite error.
    Unknown,
    /// Text in a character set tributary cannot decode (named by the table-map event; the
    /// planner refuses the ones the catalog names).
    Unsupported(String),
}

/// Each column's character set as a table-map event names it (`None`: not a character column,
/// or a collation the server did not list), shared by the rows of the event.
pub type BinlogCharsets = Arc<[Option<Arc<str>>]>;

impl ColumnText {
    /// What to do with each column of a table: the table-map event's character set where it
    /// names one, else the schema's (`columns`), for the text columns that `schema` decodes
    /// as text.
    pub fn resolve(
        columns: &[ColumnDef],
        schema: &Schema,
        binlog: Option<&[Option<Arc<str>>]>,
    ) -> Vec<ColumnText> {
        columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let is_text = column.is_text()
                    && schema
                        .fields()
                        .get(i)
                        .is_some_and(|f| f.data_type() == &DataType::Utf8);
                if !is_text {
                    return ColumnText::Keep;
                }
                let named = binlog
                    .and_then(|charsets| charsets.get(i).cloned().flatten())
                    .map(|name| name.to_string())
                    .or_else(|| column.charset.clone());
                match named.as_deref().map(Charset::from_name) {
                    None => ColumnText::Unknown,
                    Some(Ok(Charset::Decoded(decoding))) => ColumnText::Decode(decoding),
                    Some(Ok(Charset::Utf8 | Charset::Binary)) => ColumnText::Keep,
                    Some(Err(Unsupported(name))) => ColumnText::Unsupported(name),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(charset: &str, bytes: &[u8]) -> Result<String, String> {
        Charset::from_name(charset)
            .map_err(|e| e.to_string())?
            .decode(bytes)
            .map(Cow::into_owned)
    }

    #[test]
    fn latin1_is_windows_1252_with_c1_controls_where_it_has_no_character() {
        assert_eq!(decode("latin1", b"caf\xe9 cr\xe8me").unwrap(), "café crème");
        assert_eq!(decode("latin1", b"\x80").unwrap(), "€");
        for byte in [0x81u8, 0x8d, 0x8f, 0x90, 0x9d] {
            assert_eq!(
                decode("latin1", &[byte]).unwrap(),
                char::from(byte).to_string()
            );
        }
        // latin5 is ISO 8859-9: C1 controls below 0xA0, unlike Windows-1254.
        assert_eq!(decode("latin5", b"\x80\xd0").unwrap(), "\u{80}Ğ");
    }

    #[test]
    fn multibyte_sets_decode_and_mysql_codes_win() {
        assert_eq!(decode("gbk", &[0xd6, 0xd0, 0xce, 0xc4]).unwrap(), "中文");
        assert_eq!(decode("big5", &[0xa4, 0xa4, 0xa4, 0xe5]).unwrap(), "中文");
        // MySQL's sjis maps 0x815F to a backslash, Windows-31J to a fullwidth one.
        assert_eq!(decode("sjis", b"a\x81\x5fb").unwrap(), "a\\b");
        assert_eq!(decode("cp932", b"a\x81\x5fb").unwrap(), "a＼b");
        assert_eq!(decode("gb2312", &[0xa1, 0xa4]).unwrap(), "・");
        assert_eq!(
            decode("utf16", &[0x00, 0x41, 0xd8, 0x3d, 0xde, 0x00]).unwrap(),
            "A😀"
        );
        assert_eq!(decode("utf16le", &[0x41, 0x00]).unwrap(), "A");
        assert_eq!(
            decode("gb18030", &[0x81, 0x30, 0x81, 0x30]).unwrap(),
            "\u{80}"
        );
    }

    #[test]
    fn bad_bytes_and_unknown_sets_are_errors_not_replacement_characters() {
        let error = decode("gbk", &[b'a', 0xd6]).unwrap_err();
        assert!(error.contains("not valid gbk from byte 1"), "{error}");
        let error = decode("utf8mb4", b"caf\xe9").unwrap_err();
        assert!(
            error.contains("not valid UTF-8 from byte 3 on (e9)"),
            "{error}"
        );
        for name in [
            "utf32", "armscii8", "keybcs2", "dec8", "hp8", "swe7", "geostd8", "cp850", "cp852",
            "macce",
        ] {
            assert_eq!(
                Charset::from_name(name),
                Err(Unsupported(name.to_string())),
                "{name}"
            );
        }
    }

    #[test]
    fn collations_name_their_set() {
        assert_eq!(Charset::of_collation("latin1_swedish_ci"), "latin1");
        assert_eq!(Charset::of_collation("utf8mb4_0900_ai_ci"), "utf8mb4");
        assert_eq!(Charset::of_collation("gb18030_2022_bin"), "gb18030_2022");
        assert_eq!(Charset::of_collation("binary"), "binary");
        assert_eq!(Charset::of_collation("UTF16LE_GENERAL_CI"), "utf16le");
    }

    const SUPPORTED: &[&str] = &[
        "latin1", "latin2", "latin5", "latin7", "cp1250", "cp1251", "cp1256", "cp1257", "cp866",
        "koi8r", "koi8u", "greek", "hebrew", "macroman", "tis620", "gbk", "gb2312", "gb18030",
        "big5", "euckr", "sjis", "cp932", "ujis", "eucjpms", "ucs2", "utf16", "utf16le",
    ];

    proptest::proptest! {
        /// Whatever the bytes, a decoder answers with text or an error, never a panic (a code
        /// cut off at the end of a value included), and text never holds U+FFFD that the bytes
        /// did not spell.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            for name in SUPPORTED {
                let charset = Charset::from_name(name).unwrap();
                if let Ok(text) = charset.decode(&bytes) {
                    let spelled = matches!(*name, "gb18030" | "ucs2" | "utf16" | "utf16le");
                    proptest::prop_assert!(spelled || !text.contains('\u{FFFD}'), "{name}: {bytes:02x?}");
                }
            }
        }
    }

    #[test]
    fn ascii_text_is_borrowed_not_copied() {
        let latin1 = Charset::from_name("latin1").unwrap();
        assert!(matches!(
            latin1.decode(b"plain"),
            Ok(Cow::Borrowed("plain"))
        ));
        assert!(matches!(
            Charset::Utf8.decode("é".as_bytes()),
            Ok(Cow::Borrowed("é"))
        ));
    }
}
