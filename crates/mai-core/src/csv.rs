//! CSV cells, the one way every export writes them (usage exports in mai-ops, the month
//! report in mai-billing): RFC 4180 quoting, and text from outside the operator's hands
//! (chat users' names and ids, model names, chat titles) defused so a spreadsheet does
//! not run it as a formula (CSV injection: a user named `=HYPERLINK(...)` would otherwise
//! become a live link in finance's spreadsheet).

use std::borrow::Cow;

/// Quotes a field when it holds the separator, a quote or a line break (RFC 4180).
pub fn field(s: &str, sep: char) -> Cow<'_, str> {
    if s.contains(sep) || s.contains(['"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// A text cell: defused, then quoted as needed. Never for numbers, whose leading minus is
/// data.
pub fn text_field(s: &str, sep: char) -> Cow<'_, str> {
    match defuse(s) {
        Cow::Borrowed(s) => field(s, sep),
        Cow::Owned(s) => Cow::Owned(field(&s, sep).into_owned()),
    }
}

/// Prefixes `'` to text a spreadsheet would read as a formula: a first character of
/// `=`, `+`, `-`, `@`, tab or carriage return (OWASP's list). Spreadsheets show the
/// text as typed and hide the apostrophe.
pub fn defuse(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(field("plain", ','), "plain");
        assert_eq!(field("a,b", ','), "\"a,b\"");
        assert_eq!(field("a;b", ','), "a;b");
        assert_eq!(field("a;b", ';'), "\"a;b\"");
        assert_eq!(field("say \"hi\"", ','), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines", ','), "\"two\nlines\"");
    }

    #[test]
    fn formulas_are_defused_text_is_not_touched() {
        assert_eq!(
            text_field("=HYPERLINK(\"http://x\",\"y\")", ','),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(text_field("+48 600", ','), "'+48 600");
        assert_eq!(text_field("-2+3", ','), "'-2+3");
        assert_eq!(text_field("@SUM(A1)", ','), "'@SUM(A1)");
        assert_eq!(text_field("\tx", ','), "'\tx");
        assert_eq!(text_field("anna@acme.pl", ','), "anna@acme.pl");
        assert_eq!(text_field("openai/gpt-4o", ','), "openai/gpt-4o");
        assert_eq!(text_field("", ','), "");
    }
}
