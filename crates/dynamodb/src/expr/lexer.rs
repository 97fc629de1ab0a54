//! Tokenizer shared by every expression kind. It never fails: a character
//! DynamoDB does not accept becomes an [`Tok::Unknown`] token, so the parser
//! reports it as a syntax error with DynamoDB's `token`/`near` context.

/// Token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare name: an ASCII letter, then letters, digits and `_`.
    Ident,
    /// `#name`.
    NameRef,
    /// `:value`.
    ValueRef,
    /// Decimal digits (list indexes).
    Number,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Plus,
    Minus,
    Unknown,
    Eof,
}

/// A token and its byte span in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Splits `src` into tokens, ending with one [`Tok::Eof`] at `src.len()`.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let kind = match c {
            b'a'..=b'z' | b'A'..=b'Z' => {
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
                Tok::Ident
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                Tok::Number
            }
            b'#' | b':' if i + 1 < b.len() && is_word(b[i + 1]) => {
                i += 1;
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
                if c == b'#' {
                    Tok::NameRef
                } else {
                    Tok::ValueRef
                }
            }
            b'<' if b.get(i + 1) == Some(&b'>') => {
                i += 2;
                Tok::Ne
            }
            b'<' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Le
            }
            b'>' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Ge
            }
            _ => {
                let kind = match c {
                    b'=' => Tok::Eq,
                    b'<' => Tok::Lt,
                    b'>' => Tok::Gt,
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b'[' => Tok::LBracket,
                    b']' => Tok::RBracket,
                    b',' => Tok::Comma,
                    b'.' => Tok::Dot,
                    b'+' => Tok::Plus,
                    b'-' => Tok::Minus,
                    _ => Tok::Unknown,
                };
                // One whole character, even a multi-byte one.
                i += src[i..].chars().next().map_or(1, char::len_utf8);
                kind
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out.push(Token {
        kind: Tok::Eof,
        start: b.len(),
        end: b.len(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens() {
        use Tok::*;
        assert_eq!(
            kinds("a.b[10] <> :v"),
            vec![Ident, Dot, Ident, LBracket, Number, RBracket, Ne, ValueRef, Eof]
        );
        assert_eq!(
            kinds("#n<=:v>=x<y>z=w"),
            vec![NameRef, Le, ValueRef, Ge, Ident, Lt, Ident, Gt, Ident, Eq, Ident, Eof]
        );
        assert_eq!(
            kinds("f(a, b) + c - d"),
            vec![Ident, LParen, Ident, Comma, Ident, RParen, Plus, Ident, Minus, Ident, Eof]
        );
        assert_eq!(kinds("_a"), vec![Unknown, Ident, Eof]);
        assert_eq!(
            kinds("# : |é"),
            vec![Unknown, Unknown, Unknown, Unknown, Eof]
        );
        assert_eq!(kinds(":_x #_1 a_b2"), vec![ValueRef, NameRef, Ident, Eof]);
        assert_eq!(kinds(""), vec![Eof]);
        assert_eq!(kinds(" \t\n"), vec![Eof]);
        let t = tokenize("ab  é");
        assert_eq!((t[1].start, t[1].end), (4, 6));
    }
}
