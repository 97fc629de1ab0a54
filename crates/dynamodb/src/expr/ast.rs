//! The parsed forms of DynamoDB expressions: document paths, operands,
//! conditions and update actions. Placeholders are already substituted, so
//! these trees evaluate without the request's `ExpressionAttributeNames` and
//! `ExpressionAttributeValues`.

use std::fmt;

use crate::types::{AttributeValue, Item};

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// A map key (or, first, a top-level attribute name), already resolved.
    Attr(String),
    /// A list index.
    Index(usize),
}

/// A document path such as `a.b[1].c`; never empty, always starts with an
/// attribute name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path(pub(crate) Vec<PathElement>);

impl Path {
    /// A path to a top-level attribute.
    pub fn attr(name: impl Into<String>) -> Path {
        Path(vec![PathElement::Attr(name.into())])
    }

    /// The path's elements.
    pub fn elements(&self) -> &[PathElement] {
        &self.0
    }

    /// The top-level attribute the path starts at.
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElement::Attr(a)) => a,
            _ => "",
        }
    }

    /// True for a bare top-level attribute name.
    pub fn is_top_level(&self) -> bool {
        self.0.len() == 1
    }

    /// The value at this path, if every step exists and has the right type.
    pub fn get<'a>(&self, item: &'a Item) -> Option<&'a AttributeValue> {
        let mut it = self.0.iter();
        let mut cur = match it.next()? {
            PathElement::Attr(a) => item.get(a)?,
            PathElement::Index(_) => return None,
        };
        for el in it {
            cur = match (el, cur) {
                (PathElement::Attr(a), AttributeValue::M(m)) => m.get(a)?,
                (PathElement::Index(i), AttributeValue::L(l)) => l.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

impl fmt::Display for Path {
    /// DynamoDB's rendering in messages: `[a, b, [1]]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, el) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match el {
                PathElement::Attr(a) => f.write_str(a)?,
                PathElement::Index(n) => write!(f, "[{n}]")?,
            }
        }
        f.write_str("]")
    }
}

/// How two paths of one expression relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathRelation {
    /// Neither touches the other.
    Disjoint,
    /// Equal, or one is a prefix of the other.
    Overlap,
    /// At the same position one names a map key and the other a list index.
    Conflict,
}

pub(crate) fn relate(a: &Path, b: &Path) -> PathRelation {
    for (x, y) in a.0.iter().zip(b.0.iter()) {
        match (x, y) {
            (PathElement::Attr(p), PathElement::Attr(q)) if p == q => {}
            (PathElement::Index(p), PathElement::Index(q)) if p == q => {}
            (PathElement::Attr(_), PathElement::Attr(_))
            | (PathElement::Index(_), PathElement::Index(_)) => return PathRelation::Disjoint,
            _ => return PathRelation::Conflict,
        }
    }
    PathRelation::Overlap
}

/// DynamoDB's messages for two paths of one expression that touch.
pub(crate) fn check_paths(paths: &[&Path]) -> Result<(), String> {
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            match relate(a, b) {
                PathRelation::Disjoint => {}
                PathRelation::Overlap => {
                    return Err(format!(
                        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                    ))
                }
                PathRelation::Conflict => {
                    return Err(format!(
                        "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                    ))
                }
            }
        }
    }
    Ok(())
}

/// A value-producing part of an expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Path(Path),
    Value(AttributeValue),
    /// `size(operand)`.
    Size(Box<Operand>),
    /// `if_not_exists(path, operand)` (update expressions only).
    IfNotExists(Path, Box<Operand>),
    /// `list_append(a, b)` (update expressions only).
    ListAppend(Box<Operand>, Box<Operand>),
    /// `a + b` (update expressions only).
    Plus(Box<Operand>, Box<Operand>),
    /// `a - b` (update expressions only).
    Minus(Box<Operand>, Box<Operand>),
}

/// Comparators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The comparator with its operands swapped (`:v < a` is `a > :v`).
    pub(crate) fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

/// A boolean condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Const(bool),
    Cmp(CmpOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    Type(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// One action of an update.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UpdateAction {
    Set(Path, Operand),
    Remove(Path),
    Add(Path, AttributeValue),
    Delete(Path, AttributeValue),
}

impl UpdateAction {
    pub(crate) fn path(&self) -> &Path {
        match self {
            UpdateAction::Set(p, _)
            | UpdateAction::Remove(p)
            | UpdateAction::Add(p, _)
            | UpdateAction::Delete(p, _) => p,
        }
    }
}
