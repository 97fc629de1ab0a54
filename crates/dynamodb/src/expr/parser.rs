//! Recursive-descent parser for condition, update and projection expressions.
//!
//! Errors follow DynamoDB's order: a syntax error anywhere wins; otherwise the
//! first semantic problem met left to right (reserved word, undefined
//! placeholder, bad function, operand type, overlapping paths) is reported.
//! Semantic problems are therefore recorded ("deferred") and parsing goes on.

use super::ast::{check_paths, CmpOp, Cond, Operand, Path, PathElement, UpdateAction};
use super::lexer::{tokenize, Tok, Token};
use super::reserved::is_reserved;
use super::{ExprError, ExprInput, UsedPlaceholders};
use crate::types::{AttributeValue, TYPE_NAMES};

/// DynamoDB's limit on document path depth.
const MAX_DEPTH: usize = 32;
/// Our limit on expression nesting (parentheses, NOT, calls); real expressions stay far below it.
const MAX_NESTING: usize = 64;

/// Which grammar is being parsed; decides keywords and allowed functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Condition,
    Update,
    Projection,
}

const CONDITION_FUNCTIONS: [&str; 5] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
];

pub(crate) struct Parser<'a, 'u> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    kind: &'static str,
    mode: Mode,
    input: ExprInput<'a>,
    used: &'u mut UsedPlaceholders,
    deferred: Option<String>,
    /// Current nesting of parentheses, NOTs and calls (bounded, so hostile
    /// input cannot exhaust the stack).
    depth: usize,
}

/// Message for an operand of the wrong type in an expression.
pub(crate) fn operand_type_msg(op: &str, v: &AttributeValue) -> String {
    format!("Incorrect operand type for operator or function; operator or function: {op}, operand type: {}", v.type_name())
}

impl<'a, 'u> Parser<'a, 'u> {
    fn new(
        src: &'a str,
        kind: &'static str,
        mode: Mode,
        input: &ExprInput<'a>,
        used: &'u mut UsedPlaceholders,
    ) -> Result<Self, ExprError> {
        let p = Parser {
            src,
            toks: tokenize(src),
            pos: 0,
            kind,
            mode,
            input: *input,
            used,
            deferred: None,
            depth: 0,
        };
        if src.trim().is_empty() {
            return Err(p.invalid("The expression can not be empty;"));
        }
        Ok(p)
    }

    fn invalid(&self, msg: &str) -> ExprError {
        ExprError::Validation(format!("Invalid {}: {}", self.kind, msg))
    }

    fn defer(&mut self, msg: String) {
        if self.deferred.is_none() {
            self.deferred = Some(msg);
        }
    }

    fn finish<T>(self, v: T) -> Result<T, ExprError> {
        match &self.deferred {
            Some(m) => Err(self.invalid(m)),
            None => Ok(v),
        }
    }

    fn peek(&self) -> Token {
        self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> Token {
        self.toks[(self.pos + ahead).min(self.toks.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: Token) -> &'a str {
        &self.src[t.start..t.end]
    }

    fn is_word(&self, t: Token, word: &str) -> bool {
        t.kind == Tok::Ident && self.text(t).eq_ignore_ascii_case(word)
    }

    /// Words that end a path or operand in this grammar.
    fn is_keyword(&self, t: Token) -> bool {
        if t.kind != Tok::Ident {
            return false;
        }
        let words: &[&str] = match self.mode {
            Mode::Condition => &["AND", "OR", "NOT", "BETWEEN", "IN"],
            Mode::Update => &["SET", "REMOVE", "ADD", "DELETE"],
            Mode::Projection => &[],
        };
        words.iter().any(|w| self.is_word(t, w))
    }

    /// DynamoDB's syntax error at the current token.
    fn syntax(&self) -> ExprError {
        let idx = self.pos.min(self.toks.len() - 1);
        let t = self.toks[idx];
        let token = if t.kind == Tok::Eof {
            "<EOF>"
        } else {
            self.text(t)
        };
        // From the previous token (or the start) to the next token (or the end).
        let from = if idx > 0 { self.toks[idx - 1].start } else { 0 };
        let to = match self.toks.get(idx + 1) {
            Some(n) if n.kind != Tok::Eof => n.end,
            _ => self.src.len(),
        };
        let near = &self.src[from..to];
        self.invalid(&format!(
            "Syntax error; token: \"{token}\", near: \"{near}\""
        ))
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.invalid(&format!(
                "The expression is nested too deeply; maximum nesting: {MAX_NESTING}"
            )));
        }
        Ok(())
    }

    fn expect(&mut self, kind: Tok) -> Result<Token, ExprError> {
        if self.peek().kind == kind {
            Ok(self.advance())
        } else {
            Err(self.syntax())
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<(), ExprError> {
        if self.is_word(self.peek(), word) {
            self.advance();
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    fn expect_end(&self) -> Result<(), ExprError> {
        if self.peek().kind == Tok::Eof {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    /// An attribute name from an identifier or `#placeholder` token.
    fn name(&mut self, t: Token) -> String {
        let text = self.text(t);
        if t.kind == Tok::NameRef {
            match self.input.names.and_then(|m| m.get(text)) {
                Some(v) => {
                    self.used.names.insert(text.to_owned());
                    v.clone()
                }
                None => {
                    self.defer(format!("An expression attribute name used in the document path is not defined; attribute name: {text}"));
                    text.to_owned()
                }
            }
        } else {
            if is_reserved(text) {
                self.defer(format!(
                    "Attribute name is a reserved keyword; reserved keyword: {text}"
                ));
            }
            text.to_owned()
        }
    }

    fn value(&mut self, t: Token) -> AttributeValue {
        let text = self.text(t);
        match self.input.values.and_then(|m| m.get(text)) {
            Some(v) => {
                self.used.values.insert(text.to_owned());
                v.clone()
            }
            None => {
                self.defer(format!("An expression attribute value used in expression is not defined; attribute value: {text}"));
                AttributeValue::Null
            }
        }
    }

    fn path(&mut self) -> Result<Path, ExprError> {
        let t = self.peek();
        let first = match t.kind {
            Tok::Ident if !self.is_keyword(t) => self.name(t),
            Tok::NameRef => self.name(t),
            _ => return Err(self.syntax()),
        };
        self.advance();
        let mut els = vec![PathElement::Attr(first)];
        loop {
            match self.peek().kind {
                Tok::Dot => {
                    self.advance();
                    let t = self.peek();
                    if !matches!(t.kind, Tok::Ident | Tok::NameRef) {
                        return Err(self.syntax());
                    }
                    let n = self.name(t);
                    self.advance();
                    els.push(PathElement::Attr(n));
                }
                Tok::LBracket => {
                    self.advance();
                    let t = self.peek();
                    let idx = match (t.kind, self.text(t).parse::<usize>()) {
                        (Tok::Number, Ok(i)) => i,
                        _ => return Err(self.syntax()),
                    };
                    self.advance();
                    self.expect(Tok::RBracket)?;
                    els.push(PathElement::Index(idx));
                }
                _ => break,
            }
        }
        if els.len() > MAX_DEPTH {
            self.defer(format!(
                "The document path has too many nesting levels; nesting levels: {}",
                els.len()
            ));
        }
        Ok(Path(els))
    }

    /// `( operand, … )` after a function name.
    fn args(&mut self) -> Result<Vec<Operand>, ExprError> {
        self.enter()?;
        self.expect(Tok::LParen)?;
        let mut args = vec![self.operand()?];
        while self.peek().kind == Tok::Comma {
            self.advance();
            args.push(self.operand()?);
        }
        self.expect(Tok::RParen)?;
        self.depth -= 1;
        Ok(args)
    }

    fn arity(&mut self, f: &str, args: &[Operand], n: usize) -> bool {
        if args.len() != n {
            self.defer(format!(
                "Incorrect number of operands for operator or function; operator or function: {f}, number of operands: {}",
                args.len()
            ));
            return false;
        }
        true
    }

    fn require_path(&mut self, f: &str, op: &Operand) -> Option<Path> {
        match op {
            Operand::Path(p) => Some(p.clone()),
            _ => {
                self.defer(format!(
                    "Operator or function requires a document path; operator or function: {f}"
                ));
                None
            }
        }
    }

    fn check_value_type(&mut self, f: &str, op: &Operand, ok: &[&str]) {
        if let Operand::Value(v) = op {
            if !ok.contains(&v.type_name()) {
                self.defer(operand_type_msg(f, v));
            }
        }
    }

    /// A path, a value placeholder or a value-producing function call.
    fn operand(&mut self) -> Result<Operand, ExprError> {
        let t = self.peek();
        match t.kind {
            Tok::ValueRef => {
                self.advance();
                Ok(Operand::Value(self.value(t)))
            }
            Tok::Ident if self.peek_at(1).kind == Tok::LParen && !self.is_keyword(t) => {
                let f = self.text(t);
                self.advance();
                let args = self.args()?;
                self.call_operand(f, args)
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    /// The operand for a call `f(args)`; unknown or misplaced functions are
    /// recorded as errors and yield a placeholder.
    fn call_operand(&mut self, f: &str, mut args: Vec<Operand>) -> Result<Operand, ExprError> {
        let dummy = Operand::Value(AttributeValue::Null);
        {
            {
                match (f, self.mode) {
                    ("size", Mode::Condition) => {
                        if !self.arity(f, &args, 1) {
                            return Ok(dummy);
                        }
                        let arg = args.remove(0);
                        self.check_value_type(f, &arg, &["S", "B", "SS", "NS", "BS", "L", "M"]);
                        Ok(Operand::Size(Box::new(arg)))
                    }
                    ("if_not_exists", Mode::Update) => {
                        if !self.arity(f, &args, 2) {
                            return Ok(dummy);
                        }
                        let dflt = args.remove(1);
                        match self.require_path(f, &args[0]) {
                            Some(p) => Ok(Operand::IfNotExists(p, Box::new(dflt))),
                            None => Ok(dummy),
                        }
                    }
                    ("list_append", Mode::Update) => {
                        if !self.arity(f, &args, 2) {
                            return Ok(dummy);
                        }
                        let b = args.remove(1);
                        let a = args.remove(0);
                        self.check_value_type(f, &a, &["L"]);
                        self.check_value_type(f, &b, &["L"]);
                        Ok(Operand::ListAppend(Box::new(a), Box::new(b)))
                    }
                    ("size", _) | ("if_not_exists", _) | ("list_append", _) => {
                        let msg = if self.mode == Mode::Update {
                            format!("The function is not allowed in an update expression; function: {f}")
                        } else {
                            format!("The function is not allowed to be used this way in an expression; function: {f}")
                        };
                        self.defer(msg);
                        Ok(dummy)
                    }
                    _ if CONDITION_FUNCTIONS.contains(&f) => {
                        let msg = if self.mode == Mode::Update {
                            format!("The function is not allowed in an update expression; function: {f}")
                        } else {
                            format!("The function is not allowed to be used this way in an expression; function: {f}")
                        };
                        self.defer(msg);
                        Ok(dummy)
                    }
                    _ => {
                        self.defer(format!("Invalid function name; function: {f}"));
                        Ok(dummy)
                    }
                }
            }
        }
    }

    // ----- conditions -----

    fn or_cond(&mut self) -> Result<Cond, ExprError> {
        let mut left = self.and_cond()?;
        while self.is_word(self.peek(), "OR") {
            self.advance();
            let right = self.and_cond()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_cond(&mut self) -> Result<Cond, ExprError> {
        let mut left = self.not_cond()?;
        while self.is_word(self.peek(), "AND") {
            self.advance();
            let right = self.not_cond()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_cond(&mut self) -> Result<Cond, ExprError> {
        if self.is_word(self.peek(), "NOT") {
            self.advance();
            self.enter()?;
            let inner = self.not_cond()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.primary()
    }

    /// Index of the `)` matching the `(` at `open`.
    fn matching_paren(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for (i, t) in self.toks.iter().enumerate().skip(open) {
            match t.kind {
                Tok::LParen => depth += 1,
                Tok::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn primary(&mut self) -> Result<Cond, ExprError> {
        let t = self.peek();
        if t.kind == Tok::LParen {
            let open = self.pos;
            self.advance();
            self.enter()?;
            let inner = self.or_cond()?;
            self.depth -= 1;
            let close = self.pos;
            self.expect(Tok::RParen)?;
            if self.toks[open + 1].kind == Tok::LParen
                && self.matching_paren(open + 1) == Some(close - 1)
            {
                self.defer("The expression has redundant parentheses;".to_owned());
            }
            return Ok(inner);
        }
        // A call is a condition unless a comparison follows it.
        let left =
            if t.kind == Tok::Ident && self.peek_at(1).kind == Tok::LParen && !self.is_keyword(t) {
                let f = self.text(t);
                self.advance();
                let args = self.args()?;
                let next = self.peek();
                let compared = matches!(
                    next.kind,
                    Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
                ) || self.is_word(next, "BETWEEN")
                    || self.is_word(next, "IN");
                if !compared {
                    return self.condition_function(f, args);
                }
                self.call_operand(f, args)?
            } else {
                self.operand()?
            };
        let t = self.peek();
        let op = match t.kind {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.advance();
            let right = self.operand()?;
            if op != CmpOp::Eq && op != CmpOp::Ne {
                self.check_value_type(op.symbol(), &left, &["S", "N", "B"]);
                self.check_value_type(op.symbol(), &right, &["S", "N", "B"]);
            }
            return Ok(Cond::Cmp(op, left, right));
        }
        if self.is_word(t, "BETWEEN") {
            self.advance();
            let lo = self.operand()?;
            self.expect_word("AND")?;
            let hi = self.operand()?;
            for o in [&left, &lo, &hi] {
                self.check_value_type("BETWEEN", o, &["S", "N", "B"]);
            }
            if let (Operand::Value(l), Operand::Value(h)) = (&lo, &hi) {
                if l.scalar_cmp(h) == Some(std::cmp::Ordering::Greater) {
                    self.defer(format!(
                        "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower operand: AttributeValue: {}, upper operand: AttributeValue: {}",
                        l.brief(),
                        h.brief()
                    ));
                }
            }
            return Ok(Cond::Between(left, lo, hi));
        }
        if self.is_word(t, "IN") {
            self.advance();
            self.expect(Tok::LParen)?;
            let mut list = vec![self.operand()?];
            while self.peek().kind == Tok::Comma {
                self.advance();
                list.push(self.operand()?);
            }
            self.expect(Tok::RParen)?;
            if list.len() > 100 {
                self.defer(format!(
                    "Too many operands for the IN operator; number of operands: {}, maximum: 100",
                    list.len()
                ));
            }
            return Ok(Cond::In(left, list));
        }
        Err(self.syntax())
    }

    /// The condition for a call `f(args)` used as a condition.
    fn condition_function(&mut self, f: &str, mut args: Vec<Operand>) -> Result<Cond, ExprError> {
        let dummy = Cond::Const(false);
        match f {
            "attribute_exists" | "attribute_not_exists" => {
                if !self.arity(f, &args, 1) {
                    return Ok(dummy);
                }
                match self.require_path(f, &args[0]) {
                    Some(p) if f == "attribute_exists" => Ok(Cond::Exists(p)),
                    Some(p) => Ok(Cond::NotExists(p)),
                    None => Ok(dummy),
                }
            }
            "attribute_type" => {
                if !self.arity(f, &args, 2) {
                    return Ok(dummy);
                }
                let ty = args.remove(1);
                let Some(p) = self.require_path(f, &args[0]) else {
                    return Ok(dummy);
                };
                match &ty {
                    Operand::Value(AttributeValue::S(s)) if !TYPE_NAMES.contains(&s.as_str()) => {
                        self.defer(format!("Invalid attribute type name found; type: {s}, valid types: {{ B,NULL,SS,BOOL,L,BS,N,NS,S,M }}"));
                    }
                    Operand::Value(AttributeValue::S(_)) => {}
                    Operand::Value(v) => {
                        let msg = operand_type_msg(f, v);
                        self.defer(msg);
                    }
                    _ => {}
                }
                Ok(Cond::Type(p, ty))
            }
            "begins_with" | "contains" => {
                if !self.arity(f, &args, 2) {
                    return Ok(dummy);
                }
                let b = args.remove(1);
                let a = args.remove(0);
                if f == "begins_with" {
                    self.check_value_type(f, &a, &["S", "B"]);
                    self.check_value_type(f, &b, &["S", "B"]);
                    Ok(Cond::BeginsWith(a, b))
                } else {
                    Ok(Cond::Contains(a, b))
                }
            }
            "size" | "if_not_exists" | "list_append" => {
                self.defer(format!("The function is not allowed to be used this way in an expression; function: {f}"));
                Ok(dummy)
            }
            _ => {
                self.defer(format!("Invalid function name; function: {f}"));
                Ok(dummy)
            }
        }
    }

    // ----- updates -----

    fn set_value(&mut self) -> Result<Operand, ExprError> {
        let left = self.operand()?;
        let t = self.peek();
        let (sym, plus) = match t.kind {
            Tok::Plus => ("+", true),
            Tok::Minus => ("-", false),
            _ => return Ok(left),
        };
        self.advance();
        let right = self.operand()?;
        self.check_value_type(sym, &left, &["N"]);
        self.check_value_type(sym, &right, &["N"]);
        Ok(if plus {
            Operand::Plus(Box::new(left), Box::new(right))
        } else {
            Operand::Minus(Box::new(left), Box::new(right))
        })
    }

    fn update(&mut self) -> Result<Vec<UpdateAction>, ExprError> {
        const CLAUSES: [&str; 4] = ["SET", "REMOVE", "ADD", "DELETE"];
        let mut seen = [false; 4];
        let mut actions = Vec::new();
        loop {
            let t = self.peek();
            if t.kind == Tok::Eof && !actions.is_empty() {
                break;
            }
            let Some(which) = CLAUSES.iter().position(|w| self.is_word(t, w)) else {
                return Err(self.syntax());
            };
            self.advance();
            if seen[which] {
                self.defer(format!(
                    "The \"{}\" section can only be used once in an update expression;",
                    CLAUSES[which]
                ));
            }
            seen[which] = true;
            loop {
                let path = self.path()?;
                let action = match which {
                    0 => {
                        self.expect(Tok::Eq)?;
                        UpdateAction::Set(path, self.set_value()?)
                    }
                    1 => UpdateAction::Remove(path),
                    _ => {
                        let t = self.expect(Tok::ValueRef)?;
                        let v = self.value(t);
                        let (op, ok): (&str, &[&str]) = if which == 2 {
                            ("ADD", &["N", "SS", "NS", "BS"])
                        } else {
                            ("DELETE", &["SS", "NS", "BS"])
                        };
                        if self.deferred.is_none() && !ok.contains(&v.type_name()) {
                            self.defer(format!(
                                "Incorrect operand type for operator or function; operator: {op}, operand type: {}, typeSet: ALLOWED_FOR_{op}_OPERAND",
                                type_word(&v)
                            ));
                        }
                        if which == 2 {
                            UpdateAction::Add(path, v)
                        } else {
                            UpdateAction::Delete(path, v)
                        }
                    }
                };
                actions.push(action);
                if self.peek().kind == Tok::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
            let t = self.peek();
            if t.kind != Tok::Eof && !CLAUSES.iter().any(|w| self.is_word(t, w)) {
                return Err(self.syntax());
            }
        }
        let paths: Vec<&Path> = actions.iter().map(UpdateAction::path).collect();
        if let Err(m) = check_paths(&paths) {
            self.defer(m);
        }
        Ok(actions)
    }

    // ----- projections -----

    fn projection(&mut self) -> Result<Vec<Path>, ExprError> {
        let mut paths = vec![self.path()?];
        while self.peek().kind == Tok::Comma {
            self.advance();
            paths.push(self.path()?);
        }
        self.expect_end()?;
        let refs: Vec<&Path> = paths.iter().collect();
        if let Err(m) = check_paths(&refs) {
            self.defer(m);
        }
        Ok(paths)
    }
}

/// DynamoDB's upper-case type words in ADD/DELETE operand messages.
pub(crate) fn type_word(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::Null => "NULL",
        AttributeValue::M(_) => "MAP",
        AttributeValue::L(_) => "LIST",
        AttributeValue::Ss(_) => "STRING_SET",
        AttributeValue::Ns(_) => "NUMBER_SET",
        AttributeValue::Bs(_) => "BINARY_SET",
    }
}

pub(crate) fn parse_condition_tree(
    src: &str,
    kind: &'static str,
    input: &ExprInput<'_>,
    used: &mut UsedPlaceholders,
) -> Result<Cond, ExprError> {
    let mut p = Parser::new(src, kind, Mode::Condition, input, used)?;
    let c = p.or_cond()?;
    p.expect_end()?;
    p.finish(c)
}

pub(crate) fn parse_update_actions(
    src: &str,
    input: &ExprInput<'_>,
    used: &mut UsedPlaceholders,
) -> Result<Vec<UpdateAction>, ExprError> {
    let mut p = Parser::new(src, "UpdateExpression", Mode::Update, input, used)?;
    let a = p.update()?;
    p.finish(a)
}

pub(crate) fn parse_projection_paths(
    src: &str,
    input: &ExprInput<'_>,
    used: &mut UsedPlaceholders,
) -> Result<Vec<Path>, ExprError> {
    let mut p = Parser::new(src, "ProjectionExpression", Mode::Projection, input, used)?;
    let paths = p.projection()?;
    p.finish(paths)
}
