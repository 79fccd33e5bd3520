//! The SQL dialect row filters are parsed with: sqlparser's MySQL dialect, with MySQL's
//! precedence where sqlparser's differs.
//!
//! - `a DIV b` binds like `*` and `/` (sqlparser reads `a DIV 2 = 1` as `a DIV (2 = 1)`);
//! - `a MOD b` is `a % b` (sqlparser knows only the function `MOD(a, b)`);
//! - `BINARY a = b` is `(BINARY a) = b` (sqlparser reads `BINARY (a = b)`);
//! - `a > 2 XOR b` is `(a > 2) XOR b`: XOR binds between AND and OR (sqlparser: above `=`).
//!
//! Everything else is delegated to [`MySqlDialect`], which the parser also sees it as.

use std::any::TypeId;

use sqlparser::ast::{BinaryOperator, CastKind, DataType, Expr};
use sqlparser::dialect::{Dialect, MySqlDialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

/// Words that join operands and so never start one (MOD does: `MOD(a, b)`).
const OPERATOR_WORDS: &[Keyword] = &[
    Keyword::AND,
    Keyword::OR,
    Keyword::XOR,
    Keyword::IS,
    Keyword::IN,
    Keyword::BETWEEN,
    Keyword::LIKE,
    Keyword::REGEXP,
    Keyword::RLIKE,
    Keyword::DIV,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::END,
    Keyword::WHEN,
];

/// MySQL, as row filters read it.
#[derive(Debug, Default)]
pub struct FilterDialect;

const MYSQL: MySqlDialect = MySqlDialect {};

fn is_mod(token: &Token) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("MOD"))
}

impl Dialect for FilterDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<MySqlDialect>()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        MYSQL.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        MYSQL.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        MYSQL.is_delimited_identifier_start(ch)
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        MYSQL.identifier_quote_style(identifier)
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        MYSQL.supports_string_literal_backslash_escape()
    }

    fn supports_string_literal_concatenation(&self) -> bool {
        MYSQL.supports_string_literal_concatenation()
    }

    fn ignores_wildcard_escapes(&self) -> bool {
        MYSQL.ignores_wildcard_escapes()
    }

    fn supports_numeric_prefix(&self) -> bool {
        MYSQL.supports_numeric_prefix()
    }

    fn supports_bitwise_shift_operators(&self) -> bool {
        MYSQL.supports_bitwise_shift_operators()
    }

    fn supports_multiline_comment_hints(&self) -> bool {
        MYSQL.supports_multiline_comment_hints()
    }

    fn require_interval_qualifier(&self) -> bool {
        MYSQL.require_interval_qualifier()
    }

    fn requires_single_line_comment_whitespace(&self) -> bool {
        MYSQL.requires_single_line_comment_whitespace()
    }

    fn supports_match_against(&self) -> bool {
        MYSQL.supports_match_against()
    }

    fn supports_data_type_signed_suffix(&self) -> bool {
        MYSQL.supports_data_type_signed_suffix()
    }

    fn supports_double_ampersand_operator(&self) -> bool {
        MYSQL.supports_double_ampersand_operator()
    }

    /// `BINARY` is read by [`Dialect::parse_prefix`] below.
    fn supports_binary_kw_as_cast(&self) -> bool {
        false
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        // sqlparser would read `qty > AND sku = 'x'` as `qty > "AND"`, an identifier, and then
        // blame `sku`: where an operand belongs, an operator word means the operand is missing.
        let next = parser.peek_token();
        if let Token::Word(w) = &next.token
            && w.quote_style.is_none()
            && OPERATOR_WORDS.contains(&w.keyword)
        {
            let at = next.span.start;
            return Some(Err(ParserError::ParserError(format!(
                "an operand is missing before `{}` at Line: {}, Column: {}",
                w.value, at.line, at.column
            ))));
        }
        if !parser.parse_keyword(Keyword::BINARY) {
            return None;
        }
        let operand = parser.parse_subexpr(self.prec_value(Precedence::MulDivModOp));
        Some(operand.map(|expr| Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(expr),
            data_type: DataType::Binary(None),
            array: false,
            format: None,
        }))
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        let token = parser.peek_token().token;
        if is_mod(&token) {
            return Some(Ok(self.prec_value(Precedence::MulDivModOp)));
        }
        // MySQL's XOR binds looser than AND and tighter than OR (sqlparser's, tighter than `=`).
        if matches!(&token, Token::Word(w) if w.keyword == Keyword::XOR) {
            let between = (self.prec_value(Precedence::And) + self.prec_value(Precedence::Or)) / 2;
            return Some(Ok(between));
        }
        None
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let op = if parser.parse_keyword(Keyword::DIV) {
            BinaryOperator::MyIntegerDivide
        } else if is_mod(&parser.peek_token().token) {
            parser.next_token();
            BinaryOperator::Modulo
        } else {
            return None;
        };
        Some(
            parser
                .parse_subexpr(precedence)
                .map(|right| Expr::BinaryOp {
                    left: Box::new(expr.clone()),
                    op,
                    right: Box::new(right),
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expression with every operation in parentheses.
    fn shape(expr: &Expr) -> String {
        match expr {
            Expr::BinaryOp { left, op, right } => {
                format!("({} {op} {})", shape(left), shape(right))
            }
            Expr::Nested(inner) => shape(inner),
            Expr::Cast {
                expr, data_type, ..
            } => format!("CAST({} AS {data_type})", shape(expr)),
            other => other.to_string(),
        }
    }

    fn parse(text: &str) -> String {
        let mut parser = Parser::new(&FilterDialect).try_with_sql(text).unwrap();
        let expr = parser.parse_expr().unwrap();
        assert_eq!(parser.peek_token().token, Token::EOF, "{text}");
        shape(&expr)
    }

    #[test]
    fn div_mod_and_binary_bind_as_in_mysql() {
        assert_eq!(parse("a DIV 2 = 1"), "((a DIV 2) = 1)");
        assert_eq!(parse("a + b DIV c * d"), "(a + ((b DIV c) * d))");
        assert_eq!(parse("a MOD 2 = 1"), "((a % 2) = 1)");
        assert_eq!(parse("MOD(a, 2) = 1"), "(MOD(a, 2) = 1)");
        assert_eq!(
            parse("BINARY a = 'x' AND b = 1"),
            "((CAST(a AS BINARY) = 'x') AND (b = 1))"
        );
        assert_eq!(parse("a = BINARY 'x'"), "(a = CAST('x' AS BINARY))");
        assert_eq!(parse("CAST(a AS BINARY)"), "CAST(a AS BINARY)");
        assert_eq!(parse("a > 2 XOR b"), "((a > 2) XOR b)");
        assert_eq!(parse("a XOR b AND c OR d"), "((a XOR (b AND c)) OR d)");
    }
}
