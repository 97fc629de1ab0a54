//! DynamoDB attribute values and items: the data model every other part of the
//! tables service is written against.
//!
//! - [`Number`] is an exact decimal with DynamoDB's limits (38 significant
//!   digits, magnitudes from 1E-130 to 9.99…E+125); it never touches floating
//!   point, and prints in DynamoDB's normalized form ("1.50" → "1.5").
//! - [`AttributeValue`] (de)serializes as DynamoDB JSON (`{"S":"x"}`, `{"N":"1"}`,
//!   …) and validates exactly as DynamoDB does, with DynamoDB's messages
//!   ([`AttributeValue::from_json`] returns them undecorated; the serde
//!   `Deserialize` impl carries the same text).
//! - [`item_size`] / [`attribute_size`] follow DynamoDB's published size rules
//!   (used for the 400 KB item limit and for capacity units).
//! - [`encode_key`] / [`encode_key_delimited`] turn key attributes into bytes
//!   whose byte order is DynamoDB's key order.
//!
//! Sets are kept sorted and duplicate-free (by their DynamoDB order), so two
//! equal sets are equal values whatever order a client sent them in.
//!
//! This module does no I/O and knows nothing of tables or requests.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::de::Error as _;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

/// An item: attribute name → value. A `BTreeMap` so items serialize, compare
/// and hash deterministically (attribute order carries no meaning in DynamoDB).
pub type Item = BTreeMap<String, AttributeValue>;

/// Maximum number of significant decimal digits in a DynamoDB number.
pub const MAX_DIGITS: usize = 38;
/// Largest decimal exponent of a number's leading digit (9.99…E+125).
const MAX_LEADING_EXP: i64 = 125;
/// Smallest decimal exponent of a number's leading digit (1E-130).
const MIN_LEADING_EXP: i64 = -130;
/// 10^38: every mantissa is strictly below it.
const MANTISSA_LIMIT: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;

/// A validation failure of a value, with DynamoDB's exact message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// Reported by DynamoDB as `ValidationException`.
    #[error("{0}")]
    Validation(String),
    /// The JSON had the wrong shape; DynamoDB reports `SerializationException`.
    #[error("{0}")]
    Serialization(String),
}

impl TypeError {
    /// The message, without the error kind.
    pub fn message(&self) -> &str {
        match self {
            TypeError::Validation(m) | TypeError::Serialization(m) => m,
        }
    }
}

fn validation(msg: impl Into<String>) -> TypeError {
    TypeError::Validation(msg.into())
}

/// Message for more than 38 significant digits.
pub const MSG_PRECISION: &str = "Attempting to store more than 38 significant digits in a Number";
/// Message for a magnitude above 9.99…E+125.
pub const MSG_OVERFLOW: &str =
    "Number overflow. Attempting to store a number with magnitude larger than supported range";
/// Message for a non-zero magnitude below 1E-130.
pub const MSG_UNDERFLOW: &str =
    "Number underflow. Attempting to store a number with magnitude smaller than supported range";

/// An exact decimal number as DynamoDB stores it.
///
/// Invariant (so derived equality and hashing are numeric): the value is
/// `(-1)^negative × mantissa × 10^exponent`, `mantissa < 10^38`, and either
/// `mantissa == 0` with `exponent == 0` and `negative == false`, or the mantissa
/// has no trailing zero digit.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    mantissa: u128,
    exponent: i32,
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

fn digit_count(m: u128) -> u32 {
    if m == 0 {
        0
    } else {
        m.ilog10() + 1
    }
}

impl Number {
    /// Zero.
    pub const ZERO: Number = Number {
        negative: false,
        mantissa: 0,
        exponent: 0,
    };

    /// Parses a DynamoDB number string: optional sign, digits with an optional
    /// decimal point, optional exponent. No whitespace, no `inf`/`nan`.
    pub fn parse(s: &str) -> Result<Number, TypeError> {
        let bad = || {
            validation(format!(
                "The parameter cannot be converted to a numeric value: {s}"
            ))
        };
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = bytes.first() {
            if c == b'+' || c == b'-' {
                negative = c == b'-';
                i = 1;
            }
        }
        // Significant digits with leading zeros dropped; `frac` counts digits
        // after the point (including dropped leading zeros' positions).
        let mut digits: Vec<u8> = Vec::new();
        let mut any_digit = false;
        let mut seen_point = false;
        let mut frac: i64 = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c.is_ascii_digit() {
                any_digit = true;
                if seen_point {
                    frac += 1;
                }
                if !(digits.is_empty() && c == b'0') {
                    digits.push(c - b'0');
                }
            } else if c == b'.' && !seen_point {
                seen_point = true;
            } else {
                break;
            }
            i += 1;
        }
        if !any_digit {
            return Err(bad());
        }
        let mut exp: i64 = 0;
        if i < bytes.len() {
            if bytes[i] != b'e' && bytes[i] != b'E' {
                return Err(bad());
            }
            i += 1;
            let mut eneg = false;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                eneg = bytes[i] == b'-';
                i += 1;
            }
            if i >= bytes.len() {
                return Err(bad());
            }
            while i < bytes.len() {
                let c = bytes[i];
                if !c.is_ascii_digit() {
                    return Err(bad());
                }
                // Saturate: anything this large is out of range anyway.
                exp = (exp * 10 + i64::from(c - b'0')).min(1_000_000_000);
                i += 1;
            }
            if eneg {
                exp = -exp;
            }
        }
        exp -= frac;
        while digits.last() == Some(&0) {
            digits.pop();
            exp += 1;
        }
        if digits.is_empty() {
            return Ok(Number::ZERO);
        }
        if digits.len() > MAX_DIGITS {
            return Err(validation(MSG_PRECISION));
        }
        let mantissa = digits.iter().fold(0u128, |m, &d| m * 10 + u128::from(d));
        Number::checked_new(negative, mantissa, exp)
    }

    /// Builds a number from an exact mantissa and exponent, normalizing and
    /// range-checking it.
    fn checked_new(negative: bool, mut mantissa: u128, mut exp: i64) -> Result<Number, TypeError> {
        if mantissa == 0 {
            return Ok(Number::ZERO);
        }
        while mantissa.is_multiple_of(10) {
            mantissa /= 10;
            exp += 1;
        }
        if mantissa >= MANTISSA_LIMIT {
            return Err(validation(MSG_PRECISION));
        }
        let leading = exp + i64::from(digit_count(mantissa)) - 1;
        if leading > MAX_LEADING_EXP {
            return Err(validation(MSG_OVERFLOW));
        }
        if leading < MIN_LEADING_EXP {
            return Err(validation(MSG_UNDERFLOW));
        }
        Ok(Number {
            negative,
            mantissa,
            // In range by the checks above.
            exponent: exp as i32,
        })
    }

    /// The number for an integer.
    pub fn from_i64(v: i64) -> Number {
        let n = Number::from_u128(u128::from(v.unsigned_abs()));
        if v < 0 {
            n.neg()
        } else {
            n
        }
    }

    /// The number for a count or size.
    pub fn from_u64(v: u64) -> Number {
        Number::from_u128(u128::from(v))
    }

    fn from_u128(v: u128) -> Number {
        // Any u64 has at most 20 digits: always valid.
        Number::checked_new(false, v, 0).unwrap_or(Number::ZERO)
    }

    /// The number with its sign flipped.
    pub fn neg(&self) -> Number {
        let mut n = self.clone();
        if n.mantissa != 0 {
            n.negative = !n.negative;
        }
        n
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// True for numbers below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Number of significant digits (0 for zero).
    pub fn significant_digits(&self) -> u32 {
        digit_count(self.mantissa)
    }

    /// The value as an `i64`, if it is an integer in range.
    pub fn to_i64(&self) -> Option<i64> {
        if self.exponent < 0 {
            return None;
        }
        let mut m = self.mantissa;
        for _ in 0..self.exponent {
            m = m.checked_mul(10)?;
        }
        let v = i64::try_from(m).ok()?;
        Some(if self.negative { -v } else { v })
    }

    /// Exact sum; errors as DynamoDB does when the result needs more than 38
    /// digits or leaves the supported range.
    pub fn checked_add(&self, o: &Number) -> Result<Number, TypeError> {
        if self.is_zero() {
            return Ok(o.clone());
        }
        if o.is_zero() {
            return Ok(self.clone());
        }
        // Align to the smaller exponent. If the larger-exponent operand does not
        // fit once scaled, the exact result has more than 38 digits (the other
        // operand's last digit is non-zero, so nothing cancels).
        let (hi, lo) = if self.exponent >= o.exponent {
            (self, o)
        } else {
            (o, self)
        };
        let shift = (hi.exponent - lo.exponent) as u32;
        let scaled = 10u128
            .checked_pow(shift)
            .and_then(|p| hi.mantissa.checked_mul(p))
            .ok_or_else(|| validation(MSG_PRECISION))?;
        let (neg, mag) = if hi.negative == lo.negative {
            let sum = scaled
                .checked_add(lo.mantissa)
                .ok_or_else(|| validation(MSG_PRECISION))?;
            (hi.negative, sum)
        } else if scaled >= lo.mantissa {
            (hi.negative, scaled - lo.mantissa)
        } else {
            (lo.negative, lo.mantissa - scaled)
        };
        Number::checked_new(neg, mag, i64::from(lo.exponent))
    }

    /// Exact difference `self - o`.
    pub fn checked_sub(&self, o: &Number) -> Result<Number, TypeError> {
        self.checked_add(&o.neg())
    }

    /// The mantissa scaled to exactly 38 digits and the leading-digit exponent
    /// plus one; compares magnitudes lexicographically. Zero is `(0, 0)`.
    fn normalized(&self) -> (i32, u128) {
        if self.mantissa == 0 {
            return (0, 0);
        }
        let nd = digit_count(self.mantissa);
        let m = self.mantissa * 10u128.pow(MAX_DIGITS as u32 - nd);
        (self.exponent + nd as i32, m)
    }

    /// Size in bytes as DynamoDB counts it: one byte per two significant
    /// digits (digits paired around the decimal point) plus one.
    pub fn storage_size(&self) -> usize {
        if self.mantissa == 0 {
            return 1;
        }
        let lead = i64::from(self.exponent) + i64::from(digit_count(self.mantissa)) - 1;
        let trail = i64::from(self.exponent);
        let pairs = lead.div_euclid(2) - trail.div_euclid(2) + 1;
        pairs as usize + 1
    }
}

impl fmt::Display for Number {
    /// DynamoDB's normalized plain form: no exponent, no trailing fractional
    /// zeros, no leading zeros, no "-0".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mantissa == 0 {
            return f.write_str("0");
        }
        let digits = self.mantissa.to_string();
        let mut out = String::with_capacity(digits.len() + 4);
        if self.negative {
            out.push('-');
        }
        if self.exponent >= 0 {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', self.exponent as usize));
        } else {
            let frac = (-self.exponent) as usize;
            if digits.len() > frac {
                let (int, rest) = digits.split_at(digits.len() - frac);
                out.push_str(int);
                out.push('.');
                out.push_str(rest);
            } else {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', frac - digits.len()));
                out.push_str(&digits);
            }
        }
        f.write_str(&out)
    }
}

impl std::str::FromStr for Number {
    type Err = TypeError;
    fn from_str(s: &str) -> Result<Number, TypeError> {
        Number::parse(s)
    }
}

impl Ord for Number {
    fn cmp(&self, o: &Number) -> Ordering {
        let sign = |n: &Number| -> i8 {
            if n.mantissa == 0 {
                0
            } else if n.negative {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(o)) {
            Ordering::Equal => {}
            other => return other,
        }
        let mag = self.normalized().cmp(&o.normalized());
        if self.negative {
            mag.reverse()
        } else {
            mag
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, o: &Number) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The scalar types a key attribute can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarType {
    S,
    N,
    B,
}

impl ScalarType {
    /// The DynamoDB type descriptor ("S", "N", "B").
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }

    /// Parses "S", "N" or "B".
    pub fn parse(s: &str) -> Option<ScalarType> {
        match s {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }
}

/// A DynamoDB attribute value.
#[derive(Debug, Clone)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(BTreeMap<String, AttributeValue>),
    L(Vec<AttributeValue>),
    /// A string set; kept sorted by UTF-8 bytes and duplicate-free by
    /// [`AttributeValue::from_json`] and the set operations.
    Ss(Vec<String>),
    /// A number set; kept sorted numerically.
    Ns(Vec<Number>),
    /// A binary set; kept sorted by bytes.
    Bs(Vec<Vec<u8>>),
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn same_set<T: Ord + Clone>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && (a == b || sorted(a) == sorted(b))
}

impl PartialEq for AttributeValue {
    /// Type and value equality; sets compare as sets (order ignored).
    fn eq(&self, o: &AttributeValue) -> bool {
        use AttributeValue::*;
        match (self, o) {
            (S(a), S(b)) => a == b,
            (N(a), N(b)) => a == b,
            (B(a), B(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Null, Null) => true,
            (M(a), M(b)) => a == b,
            (L(a), L(b)) => a == b,
            (Ss(a), Ss(b)) => same_set(a, b),
            (Ns(a), Ns(b)) => same_set(a, b),
            (Bs(a), Bs(b)) => same_set(a, b),
            _ => false,
        }
    }
}

impl Eq for AttributeValue {}

/// Type descriptors accepted by `attribute_type` and `AttributeType`.
pub const TYPE_NAMES: [&str; 10] = ["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

impl AttributeValue {
    /// The DynamoDB type descriptor: "S", "N", "B", "BOOL", "NULL", "M", "L",
    /// "SS", "NS" or "BS".
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// The scalar type, for S, N and B values.
    pub fn scalar_type(&self) -> Option<ScalarType> {
        match self {
            AttributeValue::S(_) => Some(ScalarType::S),
            AttributeValue::N(_) => Some(ScalarType::N),
            AttributeValue::B(_) => Some(ScalarType::B),
            _ => None,
        }
    }

    /// Convenience constructor for a string value.
    pub fn s(v: impl Into<String>) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    /// Convenience constructor for a number value from its text.
    pub fn n(v: &str) -> Result<AttributeValue, TypeError> {
        Number::parse(v).map(AttributeValue::N)
    }

    /// Orders two scalar values of the same type the way DynamoDB orders keys
    /// and `<`/`BETWEEN` operands: S by UTF-8 bytes, N numerically, B by
    /// unsigned bytes. `None` for other or mixed types.
    pub fn scalar_cmp(&self, o: &AttributeValue) -> Option<Ordering> {
        match (self, o) {
            (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (AttributeValue::N(a), AttributeValue::N(b)) => Some(a.cmp(b)),
            (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Parses one DynamoDB-JSON attribute value (`{"S": "x"}`), validating it
    /// as DynamoDB does. Messages are DynamoDB's, without any operation prefix.
    pub fn from_json(v: &Json) -> Result<AttributeValue, TypeError> {
        let obj = match v {
            Json::Object(o) => o,
            other => return Err(TypeError::Serialization(unexpected(other, "Structure"))),
        };
        let mut found: Option<(&str, &Json)> = None;
        for (k, val) in obj {
            if val.is_null()
                || !matches!(
                    k.as_str(),
                    "S" | "N" | "B" | "BOOL" | "NULL" | "M" | "L" | "SS" | "NS" | "BS"
                )
            {
                continue;
            }
            if found.is_some() {
                return Err(validation(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                ));
            }
            found = Some((k.as_str(), val));
        }
        let Some((kind, val)) = found else {
            return Err(validation(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ));
        };
        AttributeValue::from_kind(kind, val)
    }

    /// The value of one datatype member (`kind` is one of [`TYPE_NAMES`]).
    fn from_kind(kind: &str, val: &Json) -> Result<AttributeValue, TypeError> {
        Ok(match kind {
            "S" => AttributeValue::S(json_str(val)?.to_owned()),
            "N" => AttributeValue::N(Number::parse(json_str(val)?)?),
            "B" => AttributeValue::B(json_b64(val)?),
            "BOOL" => AttributeValue::Bool(json_bool(val)?),
            "NULL" => {
                if !json_bool(val)? {
                    return Err(validation(
                        "One or more parameter values were invalid: Null attribute value types must have the value of true",
                    ));
                }
                AttributeValue::Null
            }
            "M" => {
                let Json::Object(m) = val else {
                    return Err(TypeError::Serialization(unexpected(val, "Map")));
                };
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    out.insert(k.clone(), AttributeValue::from_json(v)?);
                }
                AttributeValue::M(out)
            }
            "L" => AttributeValue::L(
                json_array(val)?
                    .iter()
                    .map(AttributeValue::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            "SS" => {
                let raw = json_array(val)?;
                let items = raw
                    .iter()
                    .map(|x| json_str(x).map(str::to_owned))
                    .collect::<Result<Vec<_>, _>>()?;
                check_set("string", &items, |s| s.clone())?;
                AttributeValue::Ss(normalize_set(items))
            }
            "NS" => {
                let raw = json_array(val)?;
                let strs = raw.iter().map(json_str).collect::<Result<Vec<_>, _>>()?;
                if strs.is_empty() {
                    return Err(empty_set("number"));
                }
                let nums = strs
                    .iter()
                    .map(|s| Number::parse(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut sorted_nums = nums.clone();
                sorted_nums.sort();
                if sorted_nums.windows(2).any(|w| w[0] == w[1]) {
                    return Err(duplicates(strs.iter().map(|s| s.to_string())));
                }
                AttributeValue::Ns(sorted_nums)
            }
            "BS" => {
                let raw = json_array(val)?;
                let strs = raw.iter().map(json_str).collect::<Result<Vec<_>, _>>()?;
                let items = raw.iter().map(json_b64).collect::<Result<Vec<_>, _>>()?;
                if items.is_empty() {
                    return Err(empty_set("binary"));
                }
                let mut s = items.clone();
                s.sort();
                if s.windows(2).any(|w| w[0] == w[1]) {
                    return Err(duplicates(strs.iter().map(|s| s.to_string())));
                }
                AttributeValue::Bs(s)
            }
            other => return Err(validation(format!("unsupported datatype {other}"))),
        })
    }

    /// The DynamoDB-JSON form of this value.
    pub fn to_json(&self) -> Json {
        let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
        let (k, v) = match self {
            AttributeValue::S(s) => ("S", Json::String(s.clone())),
            AttributeValue::N(n) => ("N", Json::String(n.to_string())),
            AttributeValue::B(b) => ("B", b64(b)),
            AttributeValue::Bool(b) => ("BOOL", Json::Bool(*b)),
            AttributeValue::Null => ("NULL", Json::Bool(true)),
            AttributeValue::M(m) => (
                "M",
                Json::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            ),
            AttributeValue::L(l) => (
                "L",
                Json::Array(l.iter().map(AttributeValue::to_json).collect()),
            ),
            AttributeValue::Ss(s) => (
                "SS",
                Json::Array(s.iter().map(|x| Json::String(x.clone())).collect()),
            ),
            AttributeValue::Ns(s) => (
                "NS",
                Json::Array(s.iter().map(|x| Json::String(x.to_string())).collect()),
            ),
            AttributeValue::Bs(s) => ("BS", Json::Array(s.iter().map(|x| b64(x)).collect())),
        };
        let mut o = serde_json::Map::with_capacity(1);
        o.insert(k.to_owned(), v);
        Json::Object(o)
    }

    /// Short rendering used inside DynamoDB messages, e.g. `{N:5}`, `{S:abc}`.
    pub fn brief(&self) -> String {
        let inner = match self {
            AttributeValue::S(s) => s.clone(),
            AttributeValue::N(n) => n.to_string(),
            AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
            AttributeValue::Bool(b) => b.to_string(),
            AttributeValue::Null => "true".to_owned(),
            other => other.to_json().to_string(),
        };
        format!("{{{}:{}}}", self.type_name(), inner)
    }
}

fn normalize_set<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

fn empty_set(kind: &str) -> TypeError {
    // DynamoDB's message really has two spaces and "An".
    validation(format!(
        "One or more parameter values were invalid: An {kind} set  may not be empty"
    ))
}

fn duplicates(items: impl Iterator<Item = String>) -> TypeError {
    let list: Vec<String> = items.collect();
    validation(format!(
        "One or more parameter values were invalid: Input collection [{}] contains duplicates.",
        list.join(", ")
    ))
}

fn check_set<T: Ord + Clone>(
    kind: &str,
    items: &[T],
    show: impl Fn(&T) -> String,
) -> Result<(), TypeError> {
    if items.is_empty() {
        return Err(empty_set(kind));
    }
    let mut s = items.to_vec();
    s.sort();
    if s.windows(2).any(|w| w[0] == w[1]) {
        return Err(duplicates(items.iter().map(show)));
    }
    Ok(())
}

fn json_token(v: &Json) -> &'static str {
    match v {
        Json::Null => "VALUE_NULL",
        Json::Bool(true) => "VALUE_TRUE",
        Json::Bool(false) => "VALUE_FALSE",
        Json::Number(_) => "NUMBER_VALUE",
        Json::String(_) => "STRING_VALUE",
        Json::Array(_) => "START_ARRAY",
        Json::Object(_) => "START_OBJECT",
    }
}

fn unexpected(v: &Json, wanted: &str) -> String {
    match v {
        Json::Object(_) => "Start of structure or map found where not expected".to_owned(),
        Json::Array(_) => "Start of list found where not expected".to_owned(),
        other => format!("{} cannot be converted to {wanted}", json_token(other)),
    }
}

fn json_str(v: &Json) -> Result<&str, TypeError> {
    match v {
        Json::String(s) => Ok(s),
        other => Err(TypeError::Serialization(unexpected(other, "String"))),
    }
}

fn json_bool(v: &Json) -> Result<bool, TypeError> {
    match v {
        Json::Bool(b) => Ok(*b),
        other => Err(TypeError::Serialization(unexpected(other, "Boolean"))),
    }
}

fn json_array(v: &Json) -> Result<&Vec<Json>, TypeError> {
    match v {
        Json::Array(a) => Ok(a),
        other => Err(TypeError::Serialization(unexpected(other, "List"))),
    }
}

fn json_b64(v: &Json) -> Result<Vec<u8>, TypeError> {
    let s = match v {
        Json::String(s) => s,
        other => return Err(TypeError::Serialization(unexpected(other, "Blob"))),
    };
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| {
            TypeError::Serialization(
                "Base64 encoded length is expected a multiple of 4 bytes but found: ".to_owned()
                    + &s.len().to_string(),
            )
        })
}

/// Parses a DynamoDB-JSON item (`{"name": {"S": "x"}, …}`).
pub fn item_from_json(v: &Json) -> Result<Item, TypeError> {
    let Json::Object(o) = v else {
        return Err(TypeError::Serialization(unexpected(v, "Map")));
    };
    let mut out = Item::new();
    for (k, v) in o {
        out.insert(k.clone(), AttributeValue::from_json(v)?);
    }
    Ok(out)
}

/// The DynamoDB-JSON form of an item.
pub fn item_to_json(item: &Item) -> Json {
    Json::Object(item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct B64Seq<'a>(&'a [Vec<u8>]);
        impl Serialize for B64Seq<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for b in self.0 {
                    seq.serialize_element(&base64::engine::general_purpose::STANDARD.encode(b))?;
                }
                seq.end()
            }
        }
        let mut m = s.serialize_map(Some(1))?;
        match self {
            AttributeValue::S(v) => m.serialize_entry("S", v)?,
            AttributeValue::N(v) => m.serialize_entry("N", v)?,
            AttributeValue::B(v) => {
                m.serialize_entry("B", &base64::engine::general_purpose::STANDARD.encode(v))?
            }
            AttributeValue::Bool(v) => m.serialize_entry("BOOL", v)?,
            AttributeValue::Null => m.serialize_entry("NULL", &true)?,
            AttributeValue::M(v) => m.serialize_entry("M", v)?,
            AttributeValue::L(v) => m.serialize_entry("L", v)?,
            AttributeValue::Ss(v) => m.serialize_entry("SS", v)?,
            AttributeValue::Ns(v) => m.serialize_entry("NS", v)?,
            AttributeValue::Bs(v) => m.serialize_entry("BS", &B64Seq(v))?,
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for AttributeValue {
    /// Validates as [`AttributeValue::from_json`] (same results, same messages; serde_json
    /// may append a position to them), but reads an object's members straight from the
    /// input instead of building a `serde_json::Value` of it first: every item and key of
    /// every request goes through here.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AttributeValue, D::Error> {
        d.deserialize_any(AttributeValueVisitor)
    }
}

/// The datatype members of an attribute value, in [`TYPE_NAMES`] order; any other member
/// name is ignored (as [`AttributeValue::from_json`] ignores it).
fn kind_index(name: &str) -> Option<usize> {
    TYPE_NAMES.iter().position(|t| *t == name)
}

/// A member name of an attribute value: its index in [`TYPE_NAMES`], if it is a datatype.
struct MemberName(Option<usize>);

impl<'de> Deserialize<'de> for MemberName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MemberName, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = MemberName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MemberName, E> {
                Ok(MemberName(kind_index(v)))
            }
        }
        d.deserialize_str(V)
    }
}

struct AttributeValueVisitor;

impl AttributeValueVisitor {
    /// Anything but an object: the same error [`AttributeValue::from_json`] gives.
    fn not_object<E: serde::de::Error>(v: Json) -> Result<AttributeValue, E> {
        AttributeValue::from_json(&v).map_err(|e| E::custom(e.message()))
    }
}

impl<'de> serde::de::Visitor<'de> for AttributeValueVisitor {
    type Value = AttributeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<AttributeValue, A::Error> {
        // One slot per datatype; a repeated member replaces the earlier one, as in a JSON
        // object read into a map.
        let mut slots: [Option<Json>; TYPE_NAMES.len()] = Default::default();
        while let Some(MemberName(kind)) = map.next_key()? {
            match kind {
                Some(i) => slots[i] = Some(map.next_value()?),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let mut found: Option<(usize, Json)> = None;
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(v) = slot.take().filter(|v| !v.is_null()) else {
                continue;
            };
            if found.is_some() {
                return Err(A::Error::custom(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                ));
            }
            found = Some((i, v));
        }
        let Some((i, val)) = found else {
            return Err(A::Error::custom(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ));
        };
        let kind = TYPE_NAMES[i];
        match (kind, val) {
            // The common case keeps the string it read.
            ("S", Json::String(s)) => Ok(AttributeValue::S(s)),
            (kind, val) => {
                AttributeValue::from_kind(kind, &val).map_err(|e| A::Error::custom(e.message()))
            }
        }
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<AttributeValue, A::Error> {
        Self::not_object(Json::deserialize(
            serde::de::value::SeqAccessDeserializer::new(seq),
        )?)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<AttributeValue, E> {
        Self::not_object(Json::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AttributeValue, E> {
        Self::not_object(Json::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AttributeValue, E> {
        Self::not_object(Json::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<AttributeValue, E> {
        Self::not_object(Json::from(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AttributeValue, E> {
        Self::not_object(Json::from(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<AttributeValue, E> {
        Self::not_object(Json::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<AttributeValue, E> {
        Self::not_object(Json::Null)
    }
}

/// Size of a value in bytes by DynamoDB's rules, excluding its attribute name.
pub fn attribute_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.storage_size(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Bool(_) | AttributeValue::Null => 1,
        // 3 bytes per document, 1 per element; map keys count like names.
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + attribute_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| attribute_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
        AttributeValue::Ns(s) => s.iter().map(Number::storage_size).sum(),
        AttributeValue::Bs(s) => s.iter().map(Vec::len).sum(),
    }
}

/// Size of an item in bytes by DynamoDB's rules: the sum over attributes of
/// the UTF-8 length of the name plus [`attribute_size`] of the value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + attribute_size(v)).sum()
}

// Number key encoding: zero is one byte; others are a class byte, a biased
// leading exponent and the mantissa scaled to 38 digits (16 bytes), with every
// byte after the class inverted for negatives so larger magnitudes sort first.
const NUM_NEG: u8 = 0x00;
const NUM_ZERO: u8 = 0x01;
const NUM_POS: u8 = 0x02;
const EXP_BIAS: i32 = 129;

fn encode_number(n: &Number, out: &mut Vec<u8>) {
    if n.is_zero() {
        out.push(NUM_ZERO);
        return;
    }
    let (e, m) = n.normalized();
    // e ∈ [-129, 126] for in-range numbers, so the biased value fits a byte.
    let eb = (e + EXP_BIAS).clamp(0, 255) as u8;
    if n.negative {
        out.push(NUM_NEG);
        out.push(!eb);
        out.extend(m.to_be_bytes().iter().map(|b| !b));
    } else {
        out.push(NUM_POS);
        out.push(eb);
        out.extend_from_slice(&m.to_be_bytes());
    }
}

fn decode_number(b: &[u8]) -> Result<(Number, usize), TypeError> {
    let bad = || validation("invalid encoded number key");
    match b.first() {
        Some(&NUM_ZERO) => Ok((Number::ZERO, 1)),
        Some(&c) if c == NUM_NEG || c == NUM_POS => {
            if b.len() < 18 {
                return Err(bad());
            }
            let neg = c == NUM_NEG;
            let fix = |x: u8| if neg { !x } else { x };
            let e = i32::from(fix(b[1])) - EXP_BIAS;
            let mut mb = [0u8; 16];
            for (i, x) in b[2..18].iter().enumerate() {
                mb[i] = fix(*x);
            }
            let m = u128::from_be_bytes(mb);
            let n = Number::checked_new(neg, m, i64::from(e) - MAX_DIGITS as i64)?;
            Ok((n, 18))
        }
        _ => Err(bad()),
    }
}

/// Order-preserving encoding of one key attribute (S, N or B): the bytes sort
/// exactly as DynamoDB sorts the values (S by UTF-8 bytes, N numerically, B
/// by unsigned bytes). Not self-delimiting: use it for a value stored alone
/// (or last); [`encode_key_delimited`] for a partition key followed by a sort key.
pub fn encode_key(v: &AttributeValue) -> Result<Vec<u8>, TypeError> {
    let mut out = Vec::new();
    match v {
        AttributeValue::S(s) => out.extend_from_slice(s.as_bytes()),
        AttributeValue::B(b) => out.extend_from_slice(b),
        AttributeValue::N(n) => encode_number(n, &mut out),
        other => {
            return Err(validation(format!(
                "a key attribute must be S, N or B, not {}",
                other.type_name()
            )))
        }
    }
    Ok(out)
}

/// Decodes [`encode_key`] output.
pub fn decode_key(kind: ScalarType, bytes: &[u8]) -> Result<AttributeValue, TypeError> {
    match kind {
        ScalarType::S => String::from_utf8(bytes.to_vec())
            .map(AttributeValue::S)
            .map_err(|_| validation("invalid encoded string key")),
        ScalarType::B => Ok(AttributeValue::B(bytes.to_vec())),
        ScalarType::N => {
            let (n, used) = decode_number(bytes)?;
            if used != bytes.len() {
                return Err(validation("invalid encoded number key"));
            }
            Ok(AttributeValue::N(n))
        }
    }
}

/// Appends a self-delimiting, order-preserving encoding of a key attribute, so
/// that concatenations compare like tuples: `enc(a1)+enc(b1) < enc(a2)+enc(b2)`
/// iff `(a1, b1) < (a2, b2)`. S and B escape 0x00 as 0x00 0xFF and end with
/// 0x00 0x00; N is fixed-width per sign class.
pub fn encode_key_delimited(v: &AttributeValue, out: &mut Vec<u8>) -> Result<(), TypeError> {
    let bytes: &[u8] = match v {
        AttributeValue::S(s) => s.as_bytes(),
        AttributeValue::B(b) => b,
        AttributeValue::N(n) => {
            encode_number(n, out);
            return Ok(());
        }
        other => {
            return Err(validation(format!(
                "a key attribute must be S, N or B, not {}",
                other.type_name()
            )))
        }
    };
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
    Ok(())
}

/// Decodes one [`encode_key_delimited`] value from the front of `bytes`;
/// returns it and the number of bytes consumed.
pub fn decode_key_delimited(
    kind: ScalarType,
    bytes: &[u8],
) -> Result<(AttributeValue, usize), TypeError> {
    if kind == ScalarType::N {
        let (n, used) = decode_number(bytes)?;
        return Ok((AttributeValue::N(n), used));
    }
    let mut raw = Vec::new();
    let mut i = 0;
    loop {
        match (bytes.get(i), bytes.get(i + 1)) {
            (Some(0), Some(0)) => {
                i += 2;
                break;
            }
            (Some(0), Some(0xFF)) => {
                raw.push(0);
                i += 2;
            }
            (Some(&b), _) if b != 0 => {
                raw.push(b);
                i += 1;
            }
            _ => return Err(validation("invalid encoded key")),
        }
    }
    let v = match kind {
        ScalarType::S => AttributeValue::S(
            String::from_utf8(raw).map_err(|_| validation("invalid encoded string key"))?,
        ),
        _ => AttributeValue::B(raw),
    };
    Ok((v, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(s: &str) -> Number {
        Number::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn perr(s: &str) -> String {
        Number::parse(s)
            .err()
            .map(|e| e.message().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn number_normalizes() {
        for (input, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("+0", "0"),
            ("0.0", "0"),
            ("-0.0", "0"),
            ("00000", "0"),
            ("1.50", "1.5"),
            ("0100", "100"),
            ("1e3", "1000"),
            ("1E3", "1000"),
            ("1e+3", "1000"),
            ("1e-003", "0.001"),
            ("+1E6", "1000000"),
            ("+1.23", "1.23"),
            ("-1.23", "-1.23"),
            ("42.0", "42"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-.5e1", "-5"),
            ("123.456e2", "12345.6"),
            ("123.456e-2", "1.23456"),
            ("0.000120", "0.00012"),
            ("12e-1", "1.2"),
            ("1200e-2", "12"),
            ("10", "10"),
            ("-10", "-10"),
            ("0000000000000000000000000000000000000000.42", "0.42"),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345678",
            ),
            (
                "1234567890123456789012345678901234567800",
                "1234567890123456789012345678901234567800",
            ),
        ] {
            assert_eq!(num(input).to_string(), want, "{input}");
        }
        assert_eq!(num("1E-130").to_string(), format!("0.{}1", "0".repeat(129)));
        assert_eq!(
            num("-1.5E-129").to_string(),
            format!("-0.{}15", "0".repeat(128))
        );
        let tiny = num("1E-130");
        assert_eq!(
            tiny.checked_add(&tiny).map(|n| n.to_string()),
            Ok(format!("0.{}2", "0".repeat(129)))
        );
        let big = num("9.9999999999999999999999999999999999999E+125").to_string();
        assert_eq!(big.len(), 126);
        assert!(big.starts_with("99999999999999999999999999999999999999"));
    }

    #[test]
    fn number_rejects_garbage() {
        let msg = |v: &str| format!("The parameter cannot be converted to a numeric value: {v}");
        for bad in [
            "", "foo", "\"42.0\"", " 1.23", "1.23 ", "inf", "nan", "Infinity", "-", "+", ".", "1e",
            "1e+", "1.2.3", "1e5.5", "0x10", "1,000", "--1", "1_000", "e5", "١",
        ] {
            assert_eq!(perr(bad), msg(bad), "{bad:?}");
        }
    }

    #[test]
    fn number_limits() {
        assert_eq!(perr("1.7976931348623157e+150"), MSG_OVERFLOW);
        assert_eq!(perr("-1.7976931348623157e+150"), MSG_OVERFLOW);
        assert_eq!(perr("2.2250738585072014e-150"), MSG_UNDERFLOW);
        assert_eq!(perr("-2.2250738585072014e-150"), MSG_UNDERFLOW);
        assert_eq!(perr("1E126"), MSG_OVERFLOW);
        assert_eq!(perr("1E-131"), MSG_UNDERFLOW);
        assert_eq!(perr("1e99999999999999999999"), MSG_OVERFLOW);
        assert_eq!(perr("1e-99999999999999999999"), MSG_UNDERFLOW);
        num("1E125");
        num("-1E125");
        num("1E-130");
        num("9.9999999999999999999999999999999999999E+125");
        assert_eq!(
            perr("123456789012345678901234567890123456789"),
            MSG_PRECISION
        );
        assert_eq!(perr(&format!(".{}", "1234".repeat(10))), MSG_PRECISION);
        assert_eq!(
            perr("1.00000000000000000000000000000000000001"),
            MSG_PRECISION
        );
        // Trailing and leading zeros are not significant.
        num("100000000000000000000000000000000000000000000000000");
        num("0.00000000000000000000000000000000000000000000000001");
        num("0e999999999");
    }

    #[test]
    fn number_ordering() {
        let ordered = [
            "-1E125", "-100", "-99.99", "-10", "-1", "-0.5", "-0.001", "-1E-130", "0", "1E-130",
            "0.001", "0.01", "0.5", "1", "1.0001", "2", "9.99", "10", "10.5", "11", "99", "100",
            "1000", "1E125",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(num(a).cmp(&num(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(num("1.50"), num("1.5"));
        assert_eq!(num("-0"), num("0"));
        assert_eq!(num("1e2"), num("100"));
    }

    #[test]
    fn number_arithmetic() {
        for (a, b, sum, diff) in [
            ("1", "2", "3", "-1"),
            ("1.5", "1.5", "3", "0"),
            ("0.1", "0.2", "0.3", "-0.1"),
            ("-5", "3", "-2", "-8"),
            ("5", "-3", "2", "8"),
            ("0", "7", "7", "-7"),
            ("7", "0", "7", "7"),
            ("1E10", "1", "10000000001", "9999999999"),
            (
                "99999999999999999999999999999999999999",
                "1",
                "100000000000000000000000000000000000000",
                "99999999999999999999999999999999999998",
            ),
            ("-1.25", "-1.25", "-2.5", "0"),
            ("100", "0.01", "100.01", "99.99"),
        ] {
            assert_eq!(
                num(a).checked_add(&num(b)).map(|n| n.to_string()),
                Ok(sum.to_owned()),
                "{a}+{b}"
            );
            assert_eq!(
                num(a).checked_sub(&num(b)).map(|n| n.to_string()),
                Ok(diff.to_owned()),
                "{a}-{b}"
            );
        }
        let err = |r: Result<Number, TypeError>| r.err().map(|e| e.message().to_owned());
        assert_eq!(
            err(num("1E100").checked_add(&num("1"))),
            Some(MSG_PRECISION.to_owned())
        );
        assert_eq!(
            err(num("1E20").checked_add(&num("1E-20"))),
            Some(MSG_PRECISION.to_owned())
        );
        assert_eq!(
            err(num("9.9999999999999999999999999999999999999E+125").checked_add(&num("1E+88"))),
            Some(MSG_OVERFLOW.to_owned())
        );
        assert_eq!(
            err(num("5E125").checked_add(&num("5E125"))),
            Some(MSG_OVERFLOW.to_owned())
        );
        assert_eq!(
            err(num("2E-130").checked_sub(&num("1.5E-130"))),
            Some(MSG_UNDERFLOW.to_owned())
        );
        assert_eq!(num("5E125").checked_sub(&num("5E125")), Ok(Number::ZERO));
    }

    #[test]
    fn number_helpers() {
        assert_eq!(Number::from_i64(-42).to_string(), "-42");
        assert_eq!(Number::from_i64(i64::MIN).to_string(), i64::MIN.to_string());
        assert_eq!(Number::from_u64(u64::MAX).to_string(), u64::MAX.to_string());
        assert_eq!(Number::from_i64(0), Number::ZERO);
        assert_eq!(num("1e3").to_i64(), Some(1000));
        assert_eq!(num("-7").to_i64(), Some(-7));
        assert_eq!(num("1.5").to_i64(), None);
        assert_eq!(num("1e30").to_i64(), None);
        assert_eq!(num("123.45").significant_digits(), 5);
        assert!(num("-0").neg().is_zero());
        assert!(!num("-0").is_negative());
        assert!(num("-3").is_negative());
    }

    #[test]
    fn number_size() {
        assert_eq!(num("0").storage_size(), 1);
        assert_eq!(num("1").storage_size(), 2);
        assert_eq!(num("12").storage_size(), 2);
        assert_eq!(num("123").storage_size(), 3);
        assert_eq!(num("1234").storage_size(), 3);
        assert_eq!(num("1.5").storage_size(), 3);
        assert_eq!(num("0.01").storage_size(), 2);
        assert_eq!(num("100").storage_size(), 2);
        assert_eq!(
            num("12345678901234567890123456789012345678").storage_size(),
            20
        );
        assert_eq!(num("-1").storage_size(), 2);
    }

    fn av(v: serde_json::Value) -> AttributeValue {
        AttributeValue::from_json(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn av_err(v: serde_json::Value) -> TypeError {
        match AttributeValue::from_json(&v) {
            Err(e) => e,
            Ok(x) => panic!("{v} parsed as {x:?}"),
        }
    }

    #[test]
    fn json_round_trip() {
        for v in [
            json!({"S": "hello"}),
            json!({"S": ""}),
            json!({"N": "1.5"}),
            json!({"B": "AAEC"}),
            json!({"B": ""}),
            json!({"BOOL": true}),
            json!({"BOOL": false}),
            json!({"NULL": true}),
            json!({"M": {}}),
            json!({"M": {"a": {"S": "x"}, "b": {"L": [{"N": "1"}, {"NULL": true}]}}}),
            json!({"L": []}),
            json!({"SS": ["a", "b"]}),
            json!({"NS": ["-1", "2.5"]}),
            json!({"BS": ["AA==", "AQ=="]}),
        ] {
            let parsed = av(v.clone());
            assert_eq!(parsed.to_json(), v);
            assert_eq!(serde_json::to_value(&parsed).ok(), Some(v.clone()));
            let back: AttributeValue =
                serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back, parsed);
        }
        assert_eq!(av(json!({"N": "1.50"})).to_json(), json!({"N": "1.5"}));
        assert_eq!(
            av(json!({"SS": ["b", "a"]})).to_json(),
            json!({"SS": ["a", "b"]})
        );
        assert_eq!(
            av(json!({"NS": ["10", "9", "-1"]})).to_json(),
            json!({"NS": ["-1", "9", "10"]})
        );
    }

    #[test]
    fn json_validation_messages() {
        let v = |m: &str| TypeError::Validation(m.to_owned());
        let s = |m: &str| TypeError::Serialization(m.to_owned());
        assert_eq!(
            av_err(json!({"SS": []})),
            v("One or more parameter values were invalid: An string set  may not be empty")
        );
        assert_eq!(
            av_err(json!({"NS": []})),
            v("One or more parameter values were invalid: An number set  may not be empty")
        );
        assert_eq!(
            av_err(json!({"BS": []})),
            v("One or more parameter values were invalid: An binary set  may not be empty")
        );
        assert_eq!(
            av_err(json!({"SS": ["a", "a"]})),
            v("One or more parameter values were invalid: Input collection [a, a] contains duplicates.")
        );
        assert_eq!(
            av_err(json!({"NS": ["1", "1.0"]})),
            v("One or more parameter values were invalid: Input collection [1, 1.0] contains duplicates.")
        );
        assert_eq!(
            av_err(json!({"BS": ["AA==", "AA=="]})),
            v("One or more parameter values were invalid: Input collection [AA==, AA==] contains duplicates.")
        );
        assert_eq!(
            av_err(json!({"NULL": false})),
            v("One or more parameter values were invalid: Null attribute value types must have the value of true")
        );
        assert_eq!(
            av_err(json!({"S": "a", "N": "1"})),
            v("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")
        );
        assert_eq!(av_err(json!({})), v("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"));
        assert_eq!(av_err(json!({"S": null})), v("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"));
        assert_eq!(
            av_err(json!({"N": "x"})),
            v("The parameter cannot be converted to a numeric value: x")
        );
        assert_eq!(
            av_err(json!({"NS": ["1", "x"]})),
            v("The parameter cannot be converted to a numeric value: x")
        );
        assert_eq!(av_err(json!({"N": "1e999"})), v(MSG_OVERFLOW));
        assert_eq!(
            av_err(json!({"S": 5})),
            s("NUMBER_VALUE cannot be converted to String")
        );
        assert_eq!(
            av_err(json!({"N": 5})),
            s("NUMBER_VALUE cannot be converted to String")
        );
        assert_eq!(
            av_err(json!({"S": {"S": "x"}})),
            s("Start of structure or map found where not expected")
        );
        assert_eq!(
            av_err(json!({"S": ["x"]})),
            s("Start of list found where not expected")
        );
        assert_eq!(
            av_err(json!({"BOOL": "true"})),
            s("STRING_VALUE cannot be converted to Boolean")
        );
        assert!(matches!(
            av_err(json!({"B": "!!"})),
            TypeError::Serialization(_)
        ));
        assert!(matches!(av_err(json!("x")), TypeError::Serialization(_)));
        // Nested values are validated too.
        assert_eq!(
            av_err(json!({"M": {"a": {"L": [{"SS": []}]}}})),
            v("One or more parameter values were invalid: An string set  may not be empty")
        );
        // serde's error text carries the message.
        let e = serde_json::from_value::<AttributeValue>(json!({"NULL": false}))
            .err()
            .map(|e| e.to_string());
        assert!(e
            .unwrap_or_default()
            .contains("Null attribute value types must have the value of true"));
    }

    #[test]
    fn items() {
        let item = item_from_json(&json!({"pk": {"S": "a"}, "n": {"N": "01"}})).unwrap_or_default();
        assert_eq!(
            item_to_json(&item),
            json!({"pk": {"S": "a"}, "n": {"N": "1"}})
        );
        assert!(item_from_json(&json!([])).is_err());
        assert!(item_from_json(&json!({"a": {"NULL": false}})).is_err());
    }

    #[test]
    fn set_equality_ignores_order() {
        assert_eq!(
            AttributeValue::Ss(vec!["a".into(), "b".into()]),
            AttributeValue::Ss(vec!["b".into(), "a".into()])
        );
        assert_ne!(
            AttributeValue::Ss(vec!["a".into()]),
            AttributeValue::Ss(vec!["a".into(), "b".into()])
        );
        assert_ne!(AttributeValue::S("1".into()), AttributeValue::N(num("1")));
        assert_eq!(AttributeValue::N(num("1.0")), AttributeValue::N(num("1")));
    }

    #[test]
    fn sizes() {
        let item = item_from_json(&json!({
            "s": {"S": "abc"},
            "n": {"N": "123"},
            "b": {"B": "AAEC"},
            "t": {"BOOL": true},
            "z": {"NULL": true},
            "l": {"L": [{"S": "ab"}, {"N": "1"}]},
            "m": {"M": {"k": {"S": "v"}}},
            "e": {"M": {}},
            "ss": {"SS": ["a", "bc"]},
            "ns": {"NS": ["1", "22"]},
            "bs": {"BS": ["AA==", "AAE="]},
            "ü": {"S": "é"}
        }))
        .unwrap_or_default();
        let size = |k: &str| item.get(k).map(attribute_size).unwrap_or(usize::MAX);
        assert_eq!(size("s"), 3);
        assert_eq!(size("n"), 3);
        assert_eq!(size("b"), 3);
        assert_eq!(size("t"), 1);
        assert_eq!(size("z"), 1);
        assert_eq!(size("l"), 3 + (2 + 1) + (2 + 1));
        assert_eq!(size("m"), 3 + (1 + 1 + 1));
        assert_eq!(size("e"), 3);
        assert_eq!(size("ss"), 3);
        assert_eq!(size("ns"), 4);
        assert_eq!(size("bs"), 3);
        assert_eq!(size("ü"), 2);
        let names: usize = item.keys().map(|k| k.len()).sum();
        let values: usize = item.values().map(attribute_size).sum();
        assert_eq!(item_size(&item), names + values);
        assert_eq!(item_size(&Item::new()), 0);
    }

    // A small deterministic generator, so the property tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_number(r: &mut Rng) -> Number {
        let digits = 1 + r.below(38) as usize;
        let mut s = String::new();
        if r.below(2) == 0 {
            s.push('-');
        }
        for _ in 0..digits {
            s.push(char::from(b'0' + r.below(10) as u8));
        }
        let exp = r.below(200) as i64 - 120;
        s.push_str(&format!("e{exp}"));
        Number::parse(&s).unwrap_or(Number::ZERO)
    }

    fn random_bytes(r: &mut Rng) -> Vec<u8> {
        let len = r.below(6) as usize;
        // Few distinct bytes, so prefixes and zero bytes are common.
        (0..len)
            .map(|_| [0u8, 1, 0x7f, 0x80, 0xff, b'a'][r.below(6) as usize])
            .collect()
    }

    #[test]
    fn number_key_order_matches_numeric_order() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut nums: Vec<Number> = (0..3000).map(|_| random_number(&mut r)).collect();
        nums.extend(
            [
                "0",
                "1",
                "-1",
                "1E-130",
                "-1E-130",
                "1E125",
                "-1E125",
                "10",
                "1.0000000000000000000000000000000000001",
            ]
            .map(num),
        );
        for pair in nums.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let (ka, kb) = (
                encode_key(&AttributeValue::N(a.clone())),
                encode_key(&AttributeValue::N(b.clone())),
            );
            assert_eq!(
                ka.as_ref().ok().cmp(&kb.as_ref().ok()),
                a.cmp(b),
                "{a} vs {b}"
            );
        }
        for n in &nums {
            let k = encode_key(&AttributeValue::N(n.clone())).unwrap_or_default();
            assert_eq!(
                decode_key(ScalarType::N, &k),
                Ok(AttributeValue::N(n.clone()))
            );
            let mut d = Vec::new();
            assert!(encode_key_delimited(&AttributeValue::N(n.clone()), &mut d).is_ok());
            assert_eq!(
                decode_key_delimited(ScalarType::N, &d),
                Ok((AttributeValue::N(n.clone()), d.len()))
            );
        }
    }

    #[test]
    fn string_and_binary_key_order() {
        let mut r = Rng(12345);
        for _ in 0..3000 {
            let (a, b) = (random_bytes(&mut r), random_bytes(&mut r));
            let (va, vb) = (AttributeValue::B(a.clone()), AttributeValue::B(b.clone()));
            assert_eq!(encode_key(&va).ok().cmp(&encode_key(&vb).ok()), a.cmp(&b));
            let (mut da, mut db) = (Vec::new(), Vec::new());
            assert!(
                encode_key_delimited(&va, &mut da).is_ok()
                    && encode_key_delimited(&vb, &mut db).is_ok()
            );
            assert_eq!(da.cmp(&db), a.cmp(&b), "{a:?} {b:?}");
            assert_eq!(
                decode_key_delimited(ScalarType::B, &da),
                Ok((va.clone(), da.len()))
            );
            assert_eq!(decode_key(ScalarType::B, &a), Ok(va));
        }
        // S sorts by UTF-8 bytes, not UTF-16 code units or chars.
        let strs = [
            "", "A", "Z", "a", "ab", "b", "\u{7f}", "é", "\u{FFFD}", "😀",
        ];
        for (i, a) in strs.iter().enumerate() {
            for (j, b) in strs.iter().enumerate() {
                let ka = encode_key(&AttributeValue::s(*a)).unwrap_or_default();
                let kb = encode_key(&AttributeValue::s(*b)).unwrap_or_default();
                assert_eq!(ka.cmp(&kb), i.cmp(&j), "{a} {b}");
                assert_eq!(
                    AttributeValue::s(*a).scalar_cmp(&AttributeValue::s(*b)),
                    Some(i.cmp(&j))
                );
            }
        }
        assert_eq!(
            decode_key(ScalarType::S, "héllo".as_bytes()),
            Ok(AttributeValue::s("héllo"))
        );
        assert!(decode_key(ScalarType::S, &[0xff]).is_err());
        assert!(encode_key(&AttributeValue::Bool(true)).is_err());
        assert!(decode_key(ScalarType::N, &[7]).is_err());
    }

    #[test]
    fn composite_keys_sort_like_tuples() {
        let mut r = Rng(777);
        for _ in 0..2000 {
            let a = (
                AttributeValue::B(random_bytes(&mut r)),
                AttributeValue::N(random_number(&mut r)),
            );
            let b = (
                AttributeValue::B(random_bytes(&mut r)),
                AttributeValue::N(random_number(&mut r)),
            );
            let enc = |t: &(AttributeValue, AttributeValue)| {
                let mut out = Vec::new();
                let _ = encode_key_delimited(&t.0, &mut out);
                let _ = encode_key_delimited(&t.1, &mut out);
                out
            };
            let want =
                a.0.scalar_cmp(&b.0)
                    .unwrap_or(Ordering::Equal)
                    .then(a.1.scalar_cmp(&b.1).unwrap_or(Ordering::Equal));
            assert_eq!(enc(&a).cmp(&enc(&b)), want);
        }
    }

    /// The streaming `Deserialize` of [`AttributeValue`] gives what building a JSON value and
    /// [`AttributeValue::from_json`] give: the same value, or the same message.
    #[test]
    fn deserialize_agrees_with_from_json() {
        let cases = [
            r#"{"S":"abc"}"#,
            r#"{"S":""}"#,
            r#"{"S":"a\"b\u00e9"}"#,
            r#"{"N":"42"}"#,
            r#"{"N":"-1.50e3"}"#,
            r#"{"N":"abc"}"#,
            r#"{"N":"1e200"}"#,
            r#"{"N":""}"#,
            r#"{"N":5}"#,
            r#"{"B":"AAEC"}"#,
            r#"{"B":"not base64!"}"#,
            r#"{"BOOL":true}"#,
            r#"{"BOOL":"true"}"#,
            r#"{"NULL":true}"#,
            r#"{"NULL":false}"#,
            r#"{"M":{"a":{"S":"x"},"b":{"N":"1"}}}"#,
            r#"{"M":{"a":{"S":"x","N":"1"}}}"#,
            r#"{"M":[]}"#,
            r#"{"L":[{"S":"x"},{"N":"2"},{"L":[]}]}"#,
            r#"{"L":{}}"#,
            r#"{"SS":["b","a"]}"#,
            r#"{"SS":["a","a"]}"#,
            r#"{"SS":[]}"#,
            r#"{"NS":["1","01"]}"#,
            r#"{"NS":["2","1"]}"#,
            r#"{"BS":["AA==","AQ=="]}"#,
            r#"{"BS":[]}"#,
            // Shapes: more than one datatype, none, nulls and unknown members.
            r#"{"S":"a","N":"1"}"#,
            r#"{"N":"1","S":"a"}"#,
            r#"{}"#,
            r#"{"X":"a"}"#,
            r#"{"X":{"deep":[1,2,{"S":"not a member"}]},"S":"kept"}"#,
            r#"{"S":null}"#,
            r#"{"S":null,"N":"3"}"#,
            r#"{"S":"first","S":"second"}"#,
            r#"{"S":"a","S":null}"#,
            r#"{"s":"lowercase"}"#,
            // Not an object.
            r#""S""#,
            r#"5"#,
            r#"-5"#,
            r#"1.5"#,
            r#"true"#,
            r#"null"#,
            r#"[]"#,
            r#"[{"S":"a"}]"#,
        ];
        let strip = |m: String| match m.rfind(" at line ") {
            Some(i) => m[..i].to_owned(),
            None => m,
        };
        for case in cases {
            let streamed =
                serde_json::from_str::<AttributeValue>(case).map_err(|e| strip(e.to_string()));
            let json: Json = serde_json::from_str(case).unwrap_or_else(|e| panic!("{case}: {e}"));
            let via_value = AttributeValue::from_json(&json).map_err(|e| e.message().to_owned());
            assert_eq!(streamed, via_value, "{case}");
        }
        // Inside an item and a request, as the API reads them.
        let item: std::result::Result<Item, _> =
            serde_json::from_str(r#"{"pk":{"S":"g#1"},"sk":{"N":"0"}}"#);
        let item = item.unwrap_or_default();
        assert_eq!(item.get("pk"), Some(&AttributeValue::s("g#1")));
        assert_eq!(item.get("sk").map(AttributeValue::type_name), Some("N"));
        // Malformed JSON is still a syntax error, wherever it is.
        for bad in [r#"{"S":"a""#, r#"{"X":[1,}"#, r#"[1,"#] {
            let e = serde_json::from_str::<AttributeValue>(bad).err();
            assert!(e.is_some_and(|e| e.is_syntax() || e.is_eof()), "{bad}");
        }
    }
}
