//! Behaviour tests for the expression engine, written as DynamoDB's
//! observable behaviour: parse errors with exact messages, evaluation results.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::types::{item_from_json, AttributeValue, Item};

struct Ctx {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn ctx(names: &[(&str, &str)], values: serde_json::Value) -> Ctx {
    let values = match values {
        serde_json::Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| {
                let av = AttributeValue::from_json(&v).unwrap_or_else(|e| panic!("{k}: {e}"));
                (k, av)
            })
            .collect(),
        _ => HashMap::new(),
    };
    Ctx {
        names: names
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        values,
    }
}

impl Ctx {
    fn input(&self) -> ExprInput<'_> {
        ExprInput {
            names: Some(&self.names),
            values: Some(&self.values),
        }
    }
}

fn item(v: serde_json::Value) -> Item {
    item_from_json(&v).unwrap_or_else(|e| panic!("{e}"))
}

/// Evaluates a condition built from `expr` with values `:a`, `:b`, … taken
/// from `values`.
fn cond(expr: &str, values: serde_json::Value, it: &Item) -> bool {
    let c = ctx(&[], values);
    let mut used = UsedPlaceholders::new();
    let parsed = parse_condition(expr, "ConditionExpression", &c.input(), &mut used)
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    parsed.eval(it).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn cond_err(expr: &str, names: &[(&str, &str)], values: serde_json::Value) -> String {
    let c = ctx(names, values);
    let mut used = UsedPlaceholders::new();
    match parse_condition(expr, "ConditionExpression", &c.input(), &mut used) {
        Err(e) => e.message().to_owned(),
        Ok(p) => panic!("{expr} parsed: {p:?}"),
    }
}

#[test]
fn smoke() {
    let it = item(json!({"a": {"N": "1"}}));
    assert!(cond("a = :a", json!({":a": {"N": "1"}}), &it));
    assert_eq!(
        cond_err("a == :a", &[], json!({":a": {"N": "1"}})),
        "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"== :a\""
    );
}

fn doc() -> Item {
    item(json!({
        "pk": {"S": "user#1"},
        "n": {"N": "10"},
        "neg": {"N": "-2.5"},
        "s": {"S": "hello world"},
        "b": {"B": "AAECAw=="},
        "t": {"BOOL": true},
        "f": {"BOOL": false},
        "z": {"NULL": true},
        "ss": {"SS": ["a", "b", "c"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": ["AA==", "AQ=="]},
        "l": {"L": [{"S": "x"}, {"N": "5"}, {"M": {"deep": {"S": "y"}}}, {"L": [{"N": "7"}]}]},
        "m": {"M": {"a": {"N": "1"}, "inr": {"M": {"c": {"S": "v"}}}, "lst": {"L": [{"N": "0"}]}}},
        "es": {"S": ""},
        "el": {"L": []},
        "em": {"M": {}}
    }))
}

#[test]
fn comparators_on_each_scalar_type() {
    let d = doc();
    let cases: &[(&str, serde_json::Value, bool)] = &[
        ("n = :a", json!({":a": {"N": "10"}}), true),
        ("n = :a", json!({":a": {"N": "10.0"}}), true),
        ("n = :a", json!({":a": {"N": "1e1"}}), true),
        ("n = :a", json!({":a": {"S": "10"}}), false),
        ("n <> :a", json!({":a": {"S": "10"}}), true),
        ("n <> :a", json!({":a": {"N": "10"}}), false),
        ("n < :a", json!({":a": {"N": "10.0001"}}), true),
        ("n < :a", json!({":a": {"N": "10"}}), false),
        ("n <= :a", json!({":a": {"N": "10"}}), true),
        ("n > :a", json!({":a": {"N": "9.99"}}), true),
        ("n > :a", json!({":a": {"N": "100"}}), false),
        ("n >= :a", json!({":a": {"N": "10"}}), true),
        ("neg < :a", json!({":a": {"N": "-2"}}), true),
        ("neg > :a", json!({":a": {"N": "-3"}}), true),
        // Numeric, not lexicographic.
        ("n > :a", json!({":a": {"N": "9"}}), true),
        // Different types: false, never an error.
        ("n < :a", json!({":a": {"S": "z"}}), false),
        ("n > :a", json!({":a": {"S": "z"}}), false),
        ("s = :a", json!({":a": {"S": "hello world"}}), true),
        ("s < :a", json!({":a": {"S": "hello worle"}}), true),
        ("s > :a", json!({":a": {"S": "Hello"}}), true),
        ("s >= :a", json!({":a": {"S": "hello world"}}), true),
        ("es = :a", json!({":a": {"S": ""}}), true),
        ("b = :a", json!({":a": {"B": "AAECAw=="}}), true),
        ("b < :a", json!({":a": {"B": "AAEE"}}), true),
        ("b > :a", json!({":a": {"B": "AAEC"}}), true),
        ("b < :a", json!({":a": {"B": "gA=="}}), true),
        ("t = :a", json!({":a": {"BOOL": true}}), true),
        ("t = :a", json!({":a": {"BOOL": false}}), false),
        ("f <> :a", json!({":a": {"BOOL": true}}), true),
        ("z = :a", json!({":a": {"NULL": true}}), true),
        ("ss = :a", json!({":a": {"SS": ["c", "b", "a"]}}), true),
        ("ss = :a", json!({":a": {"SS": ["a", "b"]}}), false),
        ("ns = :a", json!({":a": {"NS": ["2.0", "1"]}}), true),
        ("l[0] = :a", json!({":a": {"S": "x"}}), true),
        (
            "m = :a",
            json!({":a": {"M": {"a": {"N": "1"}, "inr": {"M": {"c": {"S": "v"}}}, "lst": {"L": [{"N": "0"}]}}}}),
            true,
        ),
        ("el = :a", json!({":a": {"L": []}}), true),
        ("em = :a", json!({":a": {"M": {}}}), true),
        // Two attributes.
        ("n = n", json!(null), true),
        ("n > neg", json!(null), true),
        ("n < neg", json!(null), false),
        ("s = n", json!(null), false),
        // Missing attributes: = false, <> true, ordering false.
        ("nope = :a", json!({":a": {"N": "1"}}), false),
        ("nope <> :a", json!({":a": {"N": "1"}}), true),
        ("nope < :a", json!({":a": {"N": "1"}}), false),
        ("nope >= :a", json!({":a": {"N": "1"}}), false),
        ("nope = nope2", json!(null), false),
        // Values on both sides.
        (
            ":a = :b",
            json!({":a": {"N": "1"}, ":b": {"N": "1.0"}}),
            true,
        ),
        (":a < :b", json!({":a": {"S": "a"}, ":b": {"S": "b"}}), true),
    ];
    for (expr, values, want) in cases {
        assert_eq!(cond(expr, values.clone(), &d), *want, "{expr} {values}");
    }
}

#[test]
fn between_and_in() {
    let d = doc();
    let cases: &[(&str, serde_json::Value, bool)] = &[
        (
            "n BETWEEN :a AND :b",
            json!({":a": {"N": "1"}, ":b": {"N": "10"}}),
            true,
        ),
        (
            "n BETWEEN :a AND :b",
            json!({":a": {"N": "10"}, ":b": {"N": "10"}}),
            true,
        ),
        (
            "n BETWEEN :a AND :b",
            json!({":a": {"N": "11"}, ":b": {"N": "20"}}),
            false,
        ),
        (
            "n between :a and :b",
            json!({":a": {"N": "-1"}, ":b": {"N": "10.5"}}),
            true,
        ),
        (
            "s BETWEEN :a AND :b",
            json!({":a": {"S": "h"}, ":b": {"S": "i"}}),
            true,
        ),
        (
            "s BETWEEN :a AND :b",
            json!({":a": {"S": "hello world!"}, ":b": {"S": "i"}}),
            false,
        ),
        (
            "n BETWEEN :a AND :b",
            json!({":a": {"S": "1"}, ":b": {"S": "9"}}),
            false,
        ),
        (
            "n BETWEEN :a AND :b",
            json!({":a": {"N": "1"}, ":b": {"S": "9"}}),
            false,
        ),
        (
            "nope BETWEEN :a AND :b",
            json!({":a": {"N": "1"}, ":b": {"N": "9"}}),
            false,
        ),
        (
            "b BETWEEN :a AND :b",
            json!({":a": {"B": "AA=="}, ":b": {"B": "AQ=="}}),
            true,
        ),
        ("n IN (:a)", json!({":a": {"N": "10"}}), true),
        (
            "n IN (:a, :b)",
            json!({":a": {"N": "1"}, ":b": {"N": "10.00"}}),
            true,
        ),
        (
            "n IN (:a, :b)",
            json!({":a": {"N": "1"}, ":b": {"S": "10"}}),
            false,
        ),
        (
            "s in (:a,:b)",
            json!({":a": {"S": "x"}, ":b": {"S": "hello world"}}),
            true,
        ),
        ("nope IN (:a)", json!({":a": {"N": "1"}}), false),
        ("ss IN (:a)", json!({":a": {"SS": ["b", "a", "c"]}}), true),
        ("n IN (neg, n)", json!(null), true),
        // BETWEEN binds its AND before the boolean AND.
        (
            "n BETWEEN :a AND :b AND s = :c",
            json!({":a": {"N": "1"}, ":b": {"N": "10"}, ":c": {"S": "hello world"}}),
            true,
        ),
        (
            "n BETWEEN :a AND :b AND s = :c",
            json!({":a": {"N": "1"}, ":b": {"N": "10"}, ":c": {"S": "nope"}}),
            false,
        ),
    ];
    for (expr, values, want) in cases {
        assert_eq!(cond(expr, values.clone(), &d), *want, "{expr} {values}");
    }
}

#[test]
fn functions() {
    let d = doc();
    let cases: &[(&str, serde_json::Value, bool)] = &[
        ("attribute_exists(n)", json!(null), true),
        ("attribute_exists(nope)", json!(null), false),
        ("attribute_exists(z)", json!(null), true),
        ("attribute_exists(m.a)", json!(null), true),
        ("attribute_exists(m.b)", json!(null), false),
        ("attribute_exists(m.inr.c)", json!(null), true),
        ("attribute_exists(l[2].deep)", json!(null), true),
        ("attribute_exists(l[3][0])", json!(null), true),
        ("attribute_exists(l[3][1])", json!(null), false),
        ("attribute_exists(l[4])", json!(null), false),
        ("attribute_exists(n.x)", json!(null), false),
        ("attribute_exists(m[0])", json!(null), false),
        ("attribute_exists(l.x)", json!(null), false),
        ("attribute_not_exists(nope)", json!(null), true),
        ("attribute_not_exists(n)", json!(null), false),
        ("attribute_not_exists(m.inr.d)", json!(null), true),
        ("attribute_type(n, :a)", json!({":a": {"S": "N"}}), true),
        ("attribute_type(n, :a)", json!({":a": {"S": "S"}}), false),
        ("attribute_type(s, :a)", json!({":a": {"S": "S"}}), true),
        ("attribute_type(b, :a)", json!({":a": {"S": "B"}}), true),
        ("attribute_type(t, :a)", json!({":a": {"S": "BOOL"}}), true),
        ("attribute_type(z, :a)", json!({":a": {"S": "NULL"}}), true),
        ("attribute_type(ss, :a)", json!({":a": {"S": "SS"}}), true),
        ("attribute_type(ns, :a)", json!({":a": {"S": "NS"}}), true),
        ("attribute_type(bs, :a)", json!({":a": {"S": "BS"}}), true),
        ("attribute_type(l, :a)", json!({":a": {"S": "L"}}), true),
        ("attribute_type(m, :a)", json!({":a": {"S": "M"}}), true),
        ("attribute_type(m.inr, :a)", json!({":a": {"S": "M"}}), true),
        ("attribute_type(nope, :a)", json!({":a": {"S": "S"}}), false),
        ("begins_with(s, :a)", json!({":a": {"S": "hell"}}), true),
        ("begins_with(s, :a)", json!({":a": {"S": ""}}), true),
        ("begins_with(s, :a)", json!({":a": {"S": "world"}}), false),
        (
            "begins_with(s, :a)",
            json!({":a": {"S": "hello world and more"}}),
            false,
        ),
        ("begins_with(pk, :a)", json!({":a": {"S": "user#"}}), true),
        ("begins_with(b, :a)", json!({":a": {"B": "AAE="}}), true),
        ("begins_with(b, :a)", json!({":a": {"B": "AQ=="}}), false),
        ("begins_with(n, :a)", json!({":a": {"S": "1"}}), false),
        ("begins_with(nope, :a)", json!({":a": {"S": "h"}}), false),
        ("begins_with(l[0], :a)", json!({":a": {"S": "x"}}), true),
        ("contains(s, :a)", json!({":a": {"S": "lo wo"}}), true),
        ("contains(s, :a)", json!({":a": {"S": "xyz"}}), false),
        ("contains(ss, :a)", json!({":a": {"S": "b"}}), true),
        ("contains(ss, :a)", json!({":a": {"S": "d"}}), false),
        ("contains(ss, :a)", json!({":a": {"N": "1"}}), false),
        ("contains(ns, :a)", json!({":a": {"N": "2.0"}}), true),
        ("contains(ns, :a)", json!({":a": {"S": "2"}}), false),
        ("contains(bs, :a)", json!({":a": {"B": "AQ=="}}), true),
        ("contains(b, :a)", json!({":a": {"B": "AQI="}}), true),
        ("contains(l, :a)", json!({":a": {"S": "x"}}), true),
        ("contains(l, :a)", json!({":a": {"N": "5.0"}}), true),
        ("contains(l, :a)", json!({":a": {"N": "6"}}), false),
        (
            "contains(l, :a)",
            json!({":a": {"M": {"deep": {"S": "y"}}}}),
            true,
        ),
        ("contains(n, :a)", json!({":a": {"N": "1"}}), false),
        ("contains(nope, :a)", json!({":a": {"S": "x"}}), false),
        ("contains(m, :a)", json!({":a": {"S": "a"}}), false),
        ("contains(s, s)", json!(null), true),
    ];
    for (expr, values, want) in cases {
        assert_eq!(cond(expr, values.clone(), &d), *want, "{expr} {values}");
    }
}

#[test]
fn size_of_each_type() {
    let d = doc();
    let it = item(json!({"u": {"S": "héllo"}}));
    let cases: &[(&str, i64, bool)] = &[
        ("s", 11, true),
        ("es", 0, true),
        ("b", 4, true),
        ("ss", 3, true),
        ("ns", 2, true),
        ("bs", 2, true),
        ("l", 4, true),
        ("m", 3, true),
        ("el", 0, true),
        ("em", 0, true),
        ("l[3]", 1, true),
        ("m.inr", 1, true),
        // Numbers, booleans, nulls and nope attributes have no size.
        ("n", 2, false),
        ("t", 1, false),
        ("z", 1, false),
        ("nope", 0, false),
    ];
    for (path, n, want) in cases {
        let expr = format!("size({path}) = :a");
        let v = json!({":a": {"N": n.to_string()}});
        assert_eq!(cond(&expr, v, &d), *want, "{expr}");
    }
    // Bytes, not characters.
    assert!(cond("size(u) = :a", json!({":a": {"N": "6"}}), &it));
    assert!(cond("size(s) > :a", json!({":a": {"N": "10"}}), &d));
    assert!(cond(
        "size(s) BETWEEN :a AND :b",
        json!({":a": {"N": "10"}, ":b": {"N": "12"}}),
        &d
    ));
    assert!(cond(":a < size(l)", json!({":a": {"N": "3"}}), &d));
    assert!(cond("size(l) > size(ss)", json!(null), &d));
    assert_eq!(
        cond_err("size(l) = size(ss) + :a", &[], json!({":a": {"N": "1"}})),
        "Invalid ConditionExpression: Syntax error; token: \"+\", near: \") + :a\""
    );
}

#[test]
fn precedence_and_parentheses() {
    let d = doc();
    let t = "attribute_exists(n)";
    let f = "attribute_exists(nope)";
    let cases: &[(String, bool)] = &[
        (format!("{t} OR {f} AND {f}"), true),
        (format!("({t} OR {f}) AND {f}"), false),
        (format!("{f} AND {f} OR {t}"), true),
        (format!("{f} AND ({f} OR {t})"), false),
        (format!("NOT {f} AND {f}"), false),
        (format!("NOT ({f} AND {f})"), true),
        (format!("NOT {t} OR {t}"), true),
        (format!("NOT NOT {t}"), true),
        (format!("not {t}"), false),
        (format!("{t} and not {f}"), true),
        (format!("{t} AND {t} AND {t} AND {f}"), false),
        (format!("{f} OR {f} OR {f} OR {t}"), true),
        (format!("({t})"), true),
        (format!("(({t}) AND ({t}))"), true),
        (format!("NOT ({t}) OR ({f})"), false),
    ];
    for (expr, want) in cases {
        assert_eq!(cond(expr, json!(null), &d), *want, "{expr}");
    }
}

#[test]
fn placeholders_and_paths() {
    let d = doc();
    let c = ctx(
        &[
            ("#s", "status"),
            ("#m", "m"),
            ("#i", "inr"),
            ("#dot", "a.b"),
            ("#n", "n"),
        ],
        json!({":v": {"S": "v"}, ":ten": {"N": "10"}}),
    );
    let mut used = UsedPlaceholders::new();
    let p = parse_condition(
        "#m.#i.c = :v AND #n = :ten",
        "FilterExpression",
        &c.input(),
        &mut used,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.eval(&d), Ok(true));
    // A name placeholder stands for one whole name, dots included.
    let dotted = item(json!({"a.b": {"N": "1"}, "a": {"M": {"b": {"N": "2"}}}}));
    let mut used = UsedPlaceholders::new();
    let c2 = ctx(
        &[("#dot", "a.b")],
        json!({":one": {"N": "1"}, ":two": {"N": "2"}}),
    );
    let p = parse_condition(
        "#dot = :one AND a.b = :two",
        "FilterExpression",
        &c2.input(),
        &mut used,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.eval(&dotted), Ok(true));
    // Reserved words are fine behind placeholders.
    let st = item(json!({"status": {"S": "v"}}));
    let mut used = UsedPlaceholders::new();
    let p = parse_condition("#s = :v", "ConditionExpression", &c.input(), &mut used)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.eval(&st), Ok(true));
    assert!(used.names().contains("#s") && used.values().contains(":v"));
    // Whitespace inside paths and around tokens.
    assert!(cond(
        "  m . inr . c   =   :a  ",
        json!({":a": {"S": "v"}}),
        &d
    ));
    assert!(cond("l [ 2 ] . deep = :a", json!({":a": {"S": "y"}}), &d));
    assert!(cond("m.lst[0] = :a", json!({":a": {"N": "0"}}), &d));
}

#[test]
fn syntax_errors_with_near() {
    let v = json!({":a": {"N": "1"}, ":b": {"N": "2"}});
    let cases: &[(&str, &str, &str)] = &[
        ("a == :a", "=", "== :a"),
        ("a = ", "<EOF>", "= "),
        ("a =", "<EOF>", "="),
        ("= :a", "=", "= :a"),
        ("a = :a AND", "<EOF>", "AND"),
        ("a = :a OR OR b = :b", "OR", "OR OR b"),
        ("a :a", ":a", "a :a"),
        ("(a = :a", "<EOF>", ":a"),
        ("a = :a)", ")", ":a)"),
        ("a | b", "|", "a | b"),
        ("   |", "|", "   |"),
        ("_a = :a", "_", "_a"),
        ("a = _idid", "_", "= _idid"),
        ("a-b = :a", "-", "a-b"),
        ("a[x] = :a", "x", "[x]"),
        ("a[-1] = :a", "-", "[-1"),
        ("a. = :a", "=", ". = :a"),
        ("a BETWEEN :a :b", ":b", ":a :b"),
        ("a IN :a", ":a", "IN :a"),
        ("a IN ()", ")", "()"),
        ("attribute_exists()", ")", "()"),
        ("attribute_exists(a", "<EOF>", "a"),
        ("3 = :a", "3", "3 ="),
        ("a = :a b = :b", "b", ":a b ="),
        ("NOT", "<EOF>", "NOT"),
        ("a = AND", "AND", "= AND"),
        ("a = # ", "#", "= # "),
        ("a = :", ":", "= :"),
        ("a <> = :a", "=", "<> = :a"),
        ("a = :a,", ",", ":a,"),
        ("a.é = :a", "é", ".é ="),
    ];
    for (expr, token, near) in cases {
        let want = format!(
            "Invalid ConditionExpression: Syntax error; token: \"{token}\", near: \"{near}\""
        );
        assert_eq!(cond_err(expr, &[], v.clone()), want, "{expr}");
    }
}

#[test]
fn semantic_errors() {
    let v = json!({":a": {"N": "1"}, ":b": {"N": "2"}, ":s": {"S": "x"}, ":m": {"M": {}}, ":l": {"L": []}, ":ss": {"SS": ["a"]}, ":t": {"S": "X"}});
    let p = "Invalid ConditionExpression: ";
    let cases: &[(&str, &str)] = &[
        ("status = :a", "Attribute name is a reserved keyword; reserved keyword: status"),
        ("Name = :a", "Attribute name is a reserved keyword; reserved keyword: Name"),
        ("a.data = :a", "Attribute name is a reserved keyword; reserved keyword: data"),
        ("attribute_exists(size)", "Attribute name is a reserved keyword; reserved keyword: size"),
        ("#n = :a", "An expression attribute name used in the document path is not defined; attribute name: #n"),
        ("a = :zz", "An expression attribute value used in expression is not defined; attribute value: :zz"),
        ("a = :a AND #x = :b", "An expression attribute name used in the document path is not defined; attribute name: #x"),
        ("foo(a) = :a", "Invalid function name; function: foo"),
        ("Begins_With(a, :s)", "Invalid function name; function: Begins_With"),
        ("attribute_exists(a, b)", "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"),
        ("begins_with(a)", "Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1"),
        ("size(a, b) = :a", "Incorrect number of operands for operator or function; operator or function: size, number of operands: 2"),
        ("attribute_exists(:a)", "Operator or function requires a document path; operator or function: attribute_exists"),
        ("attribute_not_exists(:a)", "Operator or function requires a document path; operator or function: attribute_not_exists"),
        ("attribute_type(a, :a)", "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N"),
        ("attribute_type(a, :t)", "Invalid attribute type name found; type: X, valid types: { B,NULL,SS,BOOL,L,BS,N,NS,S,M }"),
        ("begins_with(a, :a)", "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
        ("a < :m", "Incorrect operand type for operator or function; operator or function: <, operand type: M"),
        ("a >= :ss", "Incorrect operand type for operator or function; operator or function: >=, operand type: SS"),
        ("a BETWEEN :l AND :a", "Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: L"),
        ("size(:a) = :b", "Incorrect operand type for operator or function; operator or function: size, operand type: N"),
        (
            "a BETWEEN :b AND :a",
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower operand: AttributeValue: {N:2}, upper operand: AttributeValue: {N:1}",
        ),
        ("attribute_exists(a) = :a", "The function is not allowed to be used this way in an expression; function: attribute_exists"),
        ("if_not_exists(a, :a) = :a", "The function is not allowed to be used this way in an expression; function: if_not_exists"),
        ("list_append(a, :l) = :l", "The function is not allowed to be used this way in an expression; function: list_append"),
        ("size(a)", "The function is not allowed to be used this way in an expression; function: size"),
        ("((a = :a))", "The expression has redundant parentheses;"),
        ("a = :a AND ((b = :b))", "The expression has redundant parentheses;"),
    ];
    for (expr, msg) in cases {
        assert_eq!(
            cond_err(expr, &[], v.clone()),
            format!("{p}{msg}"),
            "{expr}"
        );
    }
    // A syntax error wins over an earlier semantic one.
    assert!(cond_err("status = = :a", &[], v.clone()).contains("Syntax error"));
    // The first semantic problem wins.
    assert!(cond_err("#n = :zz", &[], v.clone()).contains("attribute name: #n"));
    // Each expression kind names itself.
    let c = ctx(&[], json!({}));
    let mut used = UsedPlaceholders::new();
    let e = parse_condition("status = :a", "FilterExpression", &c.input(), &mut used)
        .err()
        .map(|e| e.message().to_owned());
    assert_eq!(e.as_deref(), Some("Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: status"));
    for empty in ["", "   "] {
        let e = parse_condition(empty, "ConditionExpression", &c.input(), &mut used)
            .err()
            .map(|e| e.message().to_owned());
        assert_eq!(
            e.as_deref(),
            Some("Invalid ConditionExpression: The expression can not be empty;")
        );
    }
    // Deep paths.
    let deep = format!("a{} = :a", ".b".repeat(32));
    assert_eq!(
        cond_err(&deep, &[], v.clone()),
        format!("{p}The document path has too many nesting levels; nesting levels: 33")
    );
    let ok = format!("a{} = :a", ".b".repeat(31));
    assert!(!cond(&ok, json!({":a": {"N": "1"}}), &Item::new()));
}

#[test]
fn no_placeholder_maps_at_all() {
    let mut used = UsedPlaceholders::new();
    let input = ExprInput::default();
    let e = parse_condition("a = :v", "ConditionExpression", &input, &mut used)
        .err()
        .map(|e| e.message().to_owned());
    assert_eq!(
        e.as_deref(),
        Some("Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v")
    );
    let p = parse_condition(
        "attribute_exists(a)",
        "ConditionExpression",
        &input,
        &mut used,
    );
    assert!(p.is_ok());
    assert!(used.check_all_used(&input).is_ok());
}

#[test]
fn unused_placeholders() {
    let c = ctx(
        &[("#a", "a"), ("#b", "b"), ("#c", "c")],
        json!({":x": {"N": "1"}, ":y": {"N": "2"}, ":z": {"N": "3"}}),
    );
    let mut used = UsedPlaceholders::new();
    assert!(parse_condition("#a = :x", "ConditionExpression", &c.input(), &mut used).is_ok());
    assert_eq!(
        used.check_all_used(&c.input())
            .err()
            .map(|e| e.message().to_owned())
            .as_deref(),
        Some("Value provided in ExpressionAttributeNames unused in expressions: keys: {#b, #c}")
    );
    // Usage accumulates across the expressions of one request.
    assert!(parse_update("SET #b = :y, #c = :y", &c.input(), &mut used).is_ok());
    assert_eq!(
        used.check_all_used(&c.input())
            .err()
            .map(|e| e.message().to_owned())
            .as_deref(),
        Some("Value provided in ExpressionAttributeValues unused in expressions: keys: {:z}")
    );
    assert!(parse_projection("#a, b", &c.input(), &mut used).is_ok());
    let mut used2 = used.clone();
    assert!(parse_condition("c = :z", "ConditionExpression", &c.input(), &mut used2).is_ok());
    assert!(used2.check_all_used(&c.input()).is_ok());
}

#[test]
fn input_validation() {
    let empty_names: HashMap<String, String> = HashMap::new();
    let empty_values: HashMap<String, AttributeValue> = HashMap::new();
    let msg = |i: ExprInput| i.validate().err().map(|e| e.message().to_owned());
    assert_eq!(
        msg(ExprInput {
            names: Some(&empty_names),
            values: None
        })
        .as_deref(),
        Some("ExpressionAttributeNames must not be empty")
    );
    assert_eq!(
        msg(ExprInput {
            names: None,
            values: Some(&empty_values)
        })
        .as_deref(),
        Some("ExpressionAttributeValues must not be empty")
    );
    let c = ctx(&[("n", "x")], json!({"v": {"N": "1"}}));
    assert_eq!(
        msg(ExprInput {
            names: Some(&c.names),
            values: None
        })
        .as_deref(),
        Some("ExpressionAttributeNames contains invalid key: Syntax error; key: \"n\"")
    );
    assert_eq!(
        msg(ExprInput {
            names: None,
            values: Some(&c.values)
        })
        .as_deref(),
        Some("ExpressionAttributeValues contains invalid key: Syntax error; key: \"v\"")
    );
    let good = ctx(&[("#n_1", "x")], json!({":v_1": {"N": "1"}}));
    assert_eq!(msg(good.input()), None);
    assert_eq!(msg(ExprInput::default()), None);
}

fn update(
    expr: &str,
    names: &[(&str, &str)],
    values: serde_json::Value,
    it: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let c = ctx(names, values);
    let mut used = UsedPlaceholders::new();
    let u = parse_update(expr, &c.input(), &mut used).map_err(|e| e.message().to_owned())?;
    let mut it = item(it);
    u.apply(&mut it).map_err(|e| e.message().to_owned())?;
    Ok(crate::types::item_to_json(&it))
}

fn update_ok(expr: &str, values: serde_json::Value, it: serde_json::Value) -> serde_json::Value {
    update(expr, &[], values, it).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn update_err(expr: &str, values: serde_json::Value, it: serde_json::Value) -> String {
    match update(expr, &[], values, it) {
        Err(e) => e,
        Ok(v) => panic!("{expr} succeeded: {v}"),
    }
}

#[test]
fn update_set() {
    let base = json!({"pk": {"S": "k"}, "n": {"N": "5"}, "s": {"S": "x"}, "m": {"M": {"a": {"N": "1"}}}, "l": {"L": [{"N": "1"}, {"N": "2"}]}});
    let v = json!({":one": {"N": "1"}, ":s": {"S": "y"}, ":l": {"L": [{"N": "9"}]}, ":z": {"N": "0"}, ":big": {"N": "9999999999999999999999999999999999990"}});
    let cases: &[(&str, serde_json::Value)] = &[
        ("SET s = :s", json!({"s": {"S": "y"}})),
        ("set s = :s", json!({"s": {"S": "y"}})),
        ("SET x = :s", json!({"x": {"S": "y"}})),
        ("SET n = n + :one", json!({"n": {"N": "6"}})),
        ("SET n = n - :one", json!({"n": {"N": "4"}})),
        ("SET n = :one - n", json!({"n": {"N": "-4"}})),
        ("SET n = n + n", json!({"n": {"N": "10"}})),
        ("SET x = n", json!({"x": {"N": "5"}})),
        ("SET x = m.a", json!({"x": {"N": "1"}})),
        (
            "SET m.b = :s",
            json!({"m": {"M": {"a": {"N": "1"}, "b": {"S": "y"}}}}),
        ),
        (
            "SET m.a = m.a + :one",
            json!({"m": {"M": {"a": {"N": "2"}}}}),
        ),
        (
            "SET l[0] = :s",
            json!({"l": {"L": [{"S": "y"}, {"N": "2"}]}}),
        ),
        (
            "SET l[1] = :s",
            json!({"l": {"L": [{"N": "1"}, {"S": "y"}]}}),
        ),
        // Past the end appends.
        (
            "SET l[7] = :s",
            json!({"l": {"L": [{"N": "1"}, {"N": "2"}, {"S": "y"}]}}),
        ),
        ("SET c = if_not_exists(c, :z)", json!({"c": {"N": "0"}})),
        ("SET n = if_not_exists(n, :z)", json!({"n": {"N": "5"}})),
        (
            "SET c = if_not_exists(c, :z) + :one",
            json!({"c": {"N": "1"}}),
        ),
        (
            "SET n = if_not_exists(n, :z) + :one",
            json!({"n": {"N": "6"}}),
        ),
        (
            "SET l = list_append(l, :l)",
            json!({"l": {"L": [{"N": "1"}, {"N": "2"}, {"N": "9"}]}}),
        ),
        (
            "SET l = list_append(:l, l)",
            json!({"l": {"L": [{"N": "9"}, {"N": "1"}, {"N": "2"}]}}),
        ),
        (
            "SET nl = list_append(if_not_exists(nl, :l), :l)",
            json!({"nl": {"L": [{"N": "9"}, {"N": "9"}]}}),
        ),
        (
            "SET x = list_append(:l, :l)",
            json!({"x": {"L": [{"N": "9"}, {"N": "9"}]}}),
        ),
        // Right-hand sides read the item before the update.
        (
            "SET n = :one, x = n",
            json!({"n": {"N": "1"}, "x": {"N": "5"}}),
        ),
        (
            "SET x = n, n = :one",
            json!({"n": {"N": "1"}, "x": {"N": "5"}}),
        ),
        (
            "SET a = :one, b = :s",
            json!({"a": {"N": "1"}, "b": {"S": "y"}}),
        ),
        (
            "SET n = n + :big",
            json!({"n": {"N": "9999999999999999999999999999999999995"}}),
        ),
    ];
    for (expr, changes) in cases {
        let mut want = base.clone();
        if let (Some(w), Some(c)) = (want.as_object_mut(), changes.as_object()) {
            for (k, v) in c {
                w.insert(k.clone(), v.clone());
            }
        }
        assert_eq!(
            update(expr, &[], v.clone(), base.clone()),
            Ok(want),
            "{expr}"
        );
    }
}

#[test]
fn update_runtime_errors() {
    let base = json!({"n": {"N": "5"}, "s": {"S": "x"}, "m": {"M": {"a": {"N": "1"}}}, "l": {"L": [{"N": "1"}]}});
    let v = json!({":one": {"N": "1"}, ":s": {"S": "y"}, ":l": {"L": []}, ":ss": {"SS": ["a"]}, ":big": {"N": "9E125"}});
    let missing = "The provided expression refers to an attribute that does not exist in the item";
    let bad_path = "The document path provided in the update expression is invalid for update";
    let bad_type = "An operand in the update expression has an incorrect data type";
    let cases: &[(&str, &str)] = &[
        ("SET x.y = :one", missing),
        ("SET x[0] = :one", missing),
        ("SET m.x.y = :one", missing),
        ("SET l[5].a = :one", missing),
        ("SET x = nope", missing),
        ("SET x = nope + :one", missing),
        ("SET x = list_append(nope, :l)", missing),
        ("SET s.y = :one", bad_path),
        ("SET m[0] = :one", bad_path),
        ("SET l.a = :one", bad_path),
        ("SET n[0] = :one", bad_path),
        ("SET x = s + :one", bad_type),
        ("SET x = m - :one", bad_type),
        ("SET x = list_append(s, :l)", bad_type),
        ("SET x = list_append(:l, m)", bad_type),
        ("ADD s :one", bad_type),
        ("ADD n :ss", bad_type),
        ("ADD l :one", bad_type),
        ("DELETE s :ss", bad_type),
        ("SET x = :big + :big", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("SET x = n + :big", "Attempting to store more than 38 significant digits in a Number"),
        ("REMOVE s.a", bad_path),
    ];
    for (expr, msg) in cases {
        assert_eq!(update_err(expr, v.clone(), base.clone()), *msg, "{expr}");
    }
}

#[test]
fn update_remove() {
    let base = json!({"a": {"N": "1"}, "m": {"M": {"x": {"N": "1"}, "y": {"N": "2"}}}, "l": {"L": [{"S": "0"}, {"S": "1"}, {"S": "2"}, {"S": "3"}]}});
    let cases: &[(&str, serde_json::Value)] = &[
        ("REMOVE a", json!({"m": base["m"], "l": base["l"]})),
        ("REMOVE nope", base.clone()),
        ("REMOVE a, nope", json!({"m": base["m"], "l": base["l"]})),
        (
            "REMOVE m.x",
            json!({"a": base["a"], "m": {"M": {"y": {"N": "2"}}}, "l": base["l"]}),
        ),
        ("REMOVE m.z", base.clone()),
        ("REMOVE q.z", base.clone()),
        (
            "REMOVE l[1]",
            json!({"a": base["a"], "m": base["m"], "l": {"L": [{"S": "0"}, {"S": "2"}, {"S": "3"}]}}),
        ),
        ("REMOVE l[9]", base.clone()),
        // Indexes refer to the list before the update, whatever their order.
        (
            "REMOVE l[0], l[2]",
            json!({"a": base["a"], "m": base["m"], "l": {"L": [{"S": "1"}, {"S": "3"}]}}),
        ),
        (
            "REMOVE l[2], l[0]",
            json!({"a": base["a"], "m": base["m"], "l": {"L": [{"S": "1"}, {"S": "3"}]}}),
        ),
        (
            "REMOVE l[3], l[0], l[1]",
            json!({"a": base["a"], "m": base["m"], "l": {"L": [{"S": "2"}]}}),
        ),
        ("REMOVE a, m, l", json!({})),
        (
            "SET a = :v REMOVE m.y",
            json!({"a": {"N": "7"}, "m": {"M": {"x": {"N": "1"}}}, "l": base["l"]}),
        ),
        (
            "REMOVE m.y SET a = :v",
            json!({"a": {"N": "7"}, "m": {"M": {"x": {"N": "1"}}}, "l": base["l"]}),
        ),
    ];
    for (expr, want) in cases {
        let got = update(expr, &[], json!({":v": {"N": "7"}}), base.clone());
        assert_eq!(got, Ok(want.clone()), "{expr}");
    }
}

#[test]
fn update_add_delete() {
    let base = json!({"n": {"N": "5"}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AA=="]}, "m": {"M": {"c": {"N": "1"}}}});
    let v = json!({
        ":one": {"N": "1"}, ":neg": {"N": "-7.5"}, ":ss": {"SS": ["b", "c"]}, ":ns": {"NS": ["2", "3"]}, ":bs": {"BS": ["AQ=="]},
        ":ssab": {"SS": ["a", "b"]}, ":nsx": {"NS": ["9"]}
    });
    let cases: &[(&str, serde_json::Value)] = &[
        ("ADD n :one", json!({"n": {"N": "6"}})),
        ("ADD n :neg", json!({"n": {"N": "-2.5"}})),
        ("ADD x :one", json!({"x": {"N": "1"}})),
        ("ADD m.c :one", json!({"m": {"M": {"c": {"N": "2"}}}})),
        (
            "ADD m.d :one",
            json!({"m": {"M": {"c": {"N": "1"}, "d": {"N": "1"}}}}),
        ),
        ("ADD ss :ss", json!({"ss": {"SS": ["a", "b", "c"]}})),
        ("ADD ns :ns", json!({"ns": {"NS": ["1", "2", "3"]}})),
        ("ADD bs :bs", json!({"bs": {"BS": ["AA==", "AQ=="]}})),
        ("ADD newset :ss", json!({"newset": {"SS": ["b", "c"]}})),
        (
            "ADD n :one, x :one",
            json!({"n": {"N": "6"}, "x": {"N": "1"}}),
        ),
        ("DELETE ss :ss", json!({"ss": {"SS": ["a"]}})),
        ("DELETE ns :ns", json!({"ns": {"NS": ["1"]}})),
        ("DELETE ns :nsx", json!({})),
        ("DELETE bs :bs", json!({})),
        ("DELETE nope :ss", json!({})),
        ("add n :one", json!({"n": {"N": "6"}})),
        ("delete ss :ss", json!({"ss": {"SS": ["a"]}})),
        (
            "SET x = :one ADD n :one DELETE ss :ss REMOVE m",
            json!({"x": {"N": "1"}, "n": {"N": "6"}, "ss": {"SS": ["a"]}, "m": null}),
        ),
    ];
    for (expr, changes) in cases {
        let mut want = base.clone();
        if let (Some(w), Some(c)) = (want.as_object_mut(), changes.as_object()) {
            for (k, v) in c {
                if v.is_null() {
                    w.remove(k);
                } else {
                    w.insert(k.clone(), v.clone());
                }
            }
        }
        assert_eq!(
            update(expr, &[], v.clone(), base.clone()),
            Ok(want),
            "{expr}"
        );
    }
    // Deleting every element removes the attribute.
    assert_eq!(
        update_ok(
            "DELETE ss :ssab",
            v.clone(),
            json!({"ss": {"SS": ["a", "b"]}})
        ),
        json!({})
    );
}

#[test]
fn update_parse_errors() {
    let v = json!({":one": {"N": "1"}, ":s": {"S": "x"}, ":l": {"L": []}, ":m": {"M": {}}, ":ss": {"SS": ["a"]}, ":t": {"BOOL": true}, ":b": {"B": "AA=="}, ":z": {"NULL": true}});
    let p = "Invalid UpdateExpression: ";
    let cases: &[(&str, &str)] = &[
        ("", "The expression can not be empty;"),
        ("SET #attr1 = :one, #attr2 = :one,", "Syntax error; token: \"<EOF>\", near: \",\""),
        ("SET a = :one b = :one", "Syntax error; token: \"b\", near: \":one b =\""),
        ("RESET NonExistent", "Syntax error; token: \"RESET\", near: \"RESET NonExistent\""),
        ("RESET NonExistent value", "Syntax error; token: \"RESET\", near: \"RESET NonExistent\""),
        ("SET a = 3", "Syntax error; token: \"3\", near: \"= 3\""),
        ("SET 2", "Syntax error; token: \"2\", near: \"SET 2\""),
        ("SET )", "Syntax error; token: \")\", near: \"SET )\""),
        ("SET ) 3", "Syntax error; token: \")\", near: \"SET ) 3\""),
        ("SET a|", "Syntax error; token: \"|\", near: \"a|\""),
        ("SET", "Syntax error; token: \"<EOF>\", near: \"SET\""),
        ("SET a", "Syntax error; token: \"<EOF>\", near: \"a\""),
        ("SET a = :one + :one + :one", "Syntax error; token: \"+\", near: \":one + :one\""),
        ("SET a = b AND c", "Syntax error; token: \"AND\", near: \"b AND c\""),
        ("REMOVE a = :one", "Syntax error; token: \"=\", near: \"a = :one\""),
        ("ADD a b", "Syntax error; token: \"b\", near: \"a b\""),
        ("ADD a", "Syntax error; token: \"<EOF>\", near: \"a\""),
        ("SET a = :one SET b = :one", "The \"SET\" section can only be used once in an update expression;"),
        ("ADD x :one SET a = :one ADD y :one", "The \"ADD\" section can only be used once in an update expression;"),
        ("REMOVE a SET b = :one REMOVE c", "The \"REMOVE\" section can only be used once in an update expression;"),
        ("DELETE a :ss DELETE b :ss", "The \"DELETE\" section can only be used once in an update expression;"),
        ("SET name = :one", "Attribute name is a reserved keyword; reserved keyword: name"),
        ("REMOVE a.status", "Attribute name is a reserved keyword; reserved keyword: status"),
        ("SET #n = :one", "An expression attribute name used in the document path is not defined; attribute name: #n"),
        ("SET a = :nope", "An expression attribute value used in expression is not defined; attribute value: :nope"),
        ("SET a = :s + :one", "Incorrect operand type for operator or function; operator or function: +, operand type: S"),
        ("SET a = b - :m", "Incorrect operand type for operator or function; operator or function: -, operand type: M"),
        ("SET a = list_append(a, :s)", "Incorrect operand type for operator or function; operator or function: list_append, operand type: S"),
        ("SET a = if_not_exists(:one, :one)", "Operator or function requires a document path; operator or function: if_not_exists"),
        ("SET a = if_not_exists(a)", "Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1"),
        ("SET a = list_append(a, :l, :l)", "Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 3"),
        ("SET a = size(b)", "The function is not allowed in an update expression; function: size"),
        ("SET a = attribute_exists(b)", "The function is not allowed in an update expression; function: attribute_exists"),
        ("SET a = foo(b)", "Invalid function name; function: foo"),
        ("ADD a :s", "Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"),
        ("ADD a :m", "Incorrect operand type for operator or function; operator: ADD, operand type: MAP, typeSet: ALLOWED_FOR_ADD_OPERAND"),
        ("ADD a :l", "Incorrect operand type for operator or function; operator: ADD, operand type: LIST, typeSet: ALLOWED_FOR_ADD_OPERAND"),
        ("ADD a :t", "Incorrect operand type for operator or function; operator: ADD, operand type: BOOLEAN, typeSet: ALLOWED_FOR_ADD_OPERAND"),
        ("DELETE a :one", "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND"),
        ("DELETE a :b", "Incorrect operand type for operator or function; operator: DELETE, operand type: BINARY, typeSet: ALLOWED_FOR_DELETE_OPERAND"),
        ("DELETE a :z", "Incorrect operand type for operator or function; operator: DELETE, operand type: NULL, typeSet: ALLOWED_FOR_DELETE_OPERAND"),
        ("SET a = :one, a = :one", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
        ("SET a = :one, a.b = :one", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
        ("SET a.b = :one REMOVE a", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]"),
        ("REMOVE a SET a.b = :one", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
        ("ADD s :ss DELETE s :ss", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [s], path two: [s]"),
        ("ADD s :ss REMOVE s", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [s], path two: [s]"),
        ("SET a[1] = :one REMOVE a[1].b", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, [1]], path two: [a, [1], b]"),
        ("SET a.b = :one, a[0] = :one", "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]"),
    ];
    for (expr, msg) in cases {
        let got = update(expr, &[], v.clone(), json!({}));
        assert_eq!(got, Err(format!("{p}{msg}")), "{expr}");
    }
    // Disjoint paths are fine.
    for ok in [
        "SET a.b = :one, a.c = :one",
        "SET a[0] = :one, a[1] = :one",
        "SET #a = :one, #b = :one REMOVE c",
    ] {
        let c = ctx(&[("#a", "x"), ("#b", "y")], v.clone());
        let mut used = UsedPlaceholders::new();
        assert!(parse_update(ok, &c.input(), &mut used).is_ok(), "{ok}");
    }
    // Placeholders resolve before the overlap check.
    let c = ctx(&[("#stringSet", "string_set")], v.clone());
    let mut used = UsedPlaceholders::new();
    assert_eq!(
        parse_update("SET #stringSet = :one, #stringSet = :one", &c.input(), &mut used).err().map(|e| e.message().to_owned()),
        Some(format!("{p}Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [string_set], path two: [string_set]"))
    );
}

#[test]
fn update_metadata() {
    let c = ctx(
        &[("#k", "pk")],
        json!({":one": {"N": "1"}, ":ss": {"SS": ["a"]}}),
    );
    let mut used = UsedPlaceholders::new();
    let u = parse_update(
        "SET b.c = :one, a = :one REMOVE z[0] ADD b2 :one DELETE s :ss",
        &c.input(),
        &mut used,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(u.top_level_names(), vec!["a", "b", "b2", "s", "z"]);
    assert_eq!(u.touches(&["pk", "sk"]), None);
    assert_eq!(u.paths().len(), 5);
    let k = parse_update("SET x = :one, #k = :one", &c.input(), &mut used)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        k.touches(&["pk", "sk"]).as_deref(),
        Some("One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key")
    );
    let r = parse_update("REMOVE sk", &c.input(), &mut used).unwrap_or_else(|e| panic!("{e}"));
    assert!(r
        .touches(&["pk", "sk"])
        .is_some_and(|m| m.contains("attribute sk.")));
}

fn project(
    expr: &str,
    names: &[(&str, &str)],
    it: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let c = ctx(names, json!(null));
    let mut used = UsedPlaceholders::new();
    let p = parse_projection(expr, &c.input(), &mut used).map_err(|e| e.message().to_owned())?;
    Ok(crate::types::item_to_json(&p.apply(&item(it))))
}

#[test]
fn projections() {
    let it = json!({
        "a": {"N": "1"}, "b": {"S": "x"},
        "m": {"M": {"x": {"N": "1"}, "y": {"M": {"z": {"N": "2"}, "w": {"N": "3"}}}}},
        "l": {"L": [{"S": "0"}, {"M": {"k": {"S": "v"}, "j": {"S": "u"}}}, {"S": "2"}, {"S": "3"}]}
    });
    let cases: &[(&str, serde_json::Value)] = &[
        ("a", json!({"a": {"N": "1"}})),
        ("a, b", json!({"a": {"N": "1"}, "b": {"S": "x"}})),
        ("a,nope", json!({"a": {"N": "1"}})),
        ("nope", json!({})),
        ("m.x", json!({"m": {"M": {"x": {"N": "1"}}}})),
        (
            "m.y.z, m.x",
            json!({"m": {"M": {"x": {"N": "1"}, "y": {"M": {"z": {"N": "2"}}}}}}),
        ),
        ("m.nope", json!({})),
        ("m.x.deeper", json!({})),
        ("l[0]", json!({"l": {"L": [{"S": "0"}]}})),
        (
            "l[3], l[1].k",
            json!({"l": {"L": [{"M": {"k": {"S": "v"}}}, {"S": "3"}]}}),
        ),
        ("l[2], l[9]", json!({"l": {"L": [{"S": "2"}]}})),
        ("l[9]", json!({})),
        ("l.x", json!({})),
        ("m[0]", json!({})),
        (
            "#m.#y.w",
            json!({"m": {"M": {"y": {"M": {"w": {"N": "3"}}}}}}),
        ),
    ];
    let names = [("#m", "m"), ("#y", "y")];
    for (expr, want) in cases {
        let used_names: Vec<(&str, &str)> = if expr.contains('#') {
            names.to_vec()
        } else {
            vec![]
        };
        assert_eq!(
            project(expr, &used_names, it.clone()),
            Ok(want.clone()),
            "{expr}"
        );
    }
    let p = "Invalid ProjectionExpression: ";
    let errs: &[(&str, &str)] = &[
        ("", "The expression can not be empty;"),
        ("a,", "Syntax error; token: \"<EOF>\", near: \",\""),
        ("a b", "Syntax error; token: \"b\", near: \"a b\""),
        ("na me", "Syntax error; token: \"me\", near: \"na me\""),
        ("3ame", "Syntax error; token: \"3\", near: \"3ame\""),
        ("name", "Attribute name is a reserved keyword; reserved keyword: name"),
        ("not_a_keyword, name", "Attribute name is a reserved keyword; reserved keyword: name"),
        ("#x", "An expression attribute name used in the document path is not defined; attribute name: #x"),
        ("a, a", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
        ("a.b, a", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]"),
        ("a[0], a.b", "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [0]], path two: [a, b]"),
    ];
    for (expr, msg) in errs {
        assert_eq!(
            project(expr, &[], it.clone()),
            Err(format!("{p}{msg}")),
            "{expr}"
        );
    }
    let legacy = Projection::from_attributes_to_get(&["a".to_owned(), "status".to_owned()]);
    let mut with_status = item(it.clone());
    with_status.insert("status".to_owned(), AttributeValue::s("ok"));
    assert_eq!(
        crate::types::item_to_json(&legacy.apply(&with_status)),
        json!({"a": {"N": "1"}, "status": {"S": "ok"}})
    );
    assert_eq!(legacy.top_level_names(), vec!["a", "status"]);
}

fn kc(
    expr: &str,
    names: &[(&str, &str)],
    values: serde_json::Value,
    sk: Option<&str>,
) -> Result<KeyCondition, String> {
    let c = ctx(names, values);
    let mut used = UsedPlaceholders::new();
    key_condition(expr, &c.input(), &mut used, "pk", sk).map_err(|e| e.message().to_owned())
}

#[test]
fn key_conditions() {
    let v = json!({":p": {"S": "p"}, ":a": {"N": "1"}, ":b": {"N": "5"}, ":s": {"S": "pre"}});
    let s = |x: &str| AttributeValue::s(x);
    let n = |x: &str| AttributeValue::n(x).unwrap_or(AttributeValue::Null);
    let ok: &[(&str, Option<SortCondition>)] = &[
        ("pk = :p", None),
        ("#k = :p", None),
        (":p = pk", None),
        ("(pk = :p)", None),
        ("pk = :p AND sk = :a", Some(SortCondition::Eq(n("1")))),
        ("sk = :a AND pk = :p", Some(SortCondition::Eq(n("1")))),
        ("pk = :p and sk < :a", Some(SortCondition::Lt(n("1")))),
        ("pk = :p AND sk <= :a", Some(SortCondition::Le(n("1")))),
        ("pk = :p AND sk > :a", Some(SortCondition::Gt(n("1")))),
        ("pk = :p AND sk >= :a", Some(SortCondition::Ge(n("1")))),
        ("pk = :p AND :a < sk", Some(SortCondition::Gt(n("1")))),
        ("pk = :p AND :a >= sk", Some(SortCondition::Le(n("1")))),
        (
            "pk = :p AND sk BETWEEN :a AND :b",
            Some(SortCondition::Between(n("1"), n("5"))),
        ),
        (
            "pk = :p AND begins_with(sk, :s)",
            Some(SortCondition::BeginsWith(s("pre"))),
        ),
        (
            "(pk = :p) AND (begins_with(sk, :s))",
            Some(SortCondition::BeginsWith(s("pre"))),
        ),
    ];
    for (expr, sort) in ok {
        let names: Vec<(&str, &str)> = if expr.contains('#') {
            vec![("#k", "pk")]
        } else {
            vec![]
        };
        let got = kc(expr, &names, v.clone(), Some("sk")).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(got.partition, ("pk".to_owned(), s("p")), "{expr}");
        assert_eq!(
            got.sort,
            sort.clone().map(|c| ("sk".to_owned(), c)),
            "{expr}"
        );
    }
    let errs: &[(&str, Option<&str>, &str)] = &[
        ("sk = :a", Some("sk"), "Query condition missed key schema element: pk"),
        ("attr1 = :p", None, "Query condition missed key schema element: pk"),
        ("pk = :p AND attr1 = :a", Some("sk"), "Query condition missed key schema element: sk"),
        ("pk = :p AND attr1 = :a", None, "Query key condition not supported"),
        ("pk < :p", None, "Query key condition not supported"),
        ("pk >= :p", Some("sk"), "Query key condition not supported"),
        ("begins_with(pk, :s)", None, "Query key condition not supported"),
        ("pk BETWEEN :a AND :b", None, "Query key condition not supported"),
        ("pk = :p AND sk = :a AND sk = :b", Some("sk"), "KeyConditionExpressions must only contain one condition per key"),
        ("pk = :p AND pk = :p", None, "KeyConditionExpressions must only contain one condition per key"),
        ("pk = :p OR sk = :a", Some("sk"), "Invalid operator used in KeyConditionExpression: OR"),
        ("NOT pk = :p", None, "Invalid operator used in KeyConditionExpression: NOT"),
        ("pk IN (:p)", None, "Invalid operator used in KeyConditionExpression: IN"),
        ("pk <> :p", None, "Invalid operator used in KeyConditionExpression: <>"),
        ("pk = :p AND attribute_exists(sk)", Some("sk"), "Invalid operator used in KeyConditionExpression: attribute_exists"),
        ("pk = :p AND contains(sk, :s)", Some("sk"), "Invalid operator used in KeyConditionExpression: contains"),
        ("pk = :p AND size(sk) = :a", Some("sk"), "Invalid operator used in KeyConditionExpression: size"),
        ("pk = sk", Some("sk"), "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"),
        ("pk.x = :p", None, "KeyConditionExpressions cannot have conditions on nested attributes"),
        ("pk=:p AND begins_with sk, :s ", Some("sk"), "Invalid KeyConditionExpression: Syntax error; token: \"sk\", near: \"begins_with sk,\""),
        ("pk = :p AND BegIns_WiTh(sk, :s)", Some("sk"), "Invalid KeyConditionExpression: Invalid function name; function: BegIns_WiTh"),
        ("pk = :p AND begins_with(sk, :a)", Some("sk"), "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
        ("pk = :p AND sk BETWEEN :b AND :a", Some("sk"), "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower operand: AttributeValue: {N:5}, upper operand: AttributeValue: {N:1}"),
        ("name = :p", None, "Invalid KeyConditionExpression: Attribute name is a reserved keyword; reserved keyword: name"),
        ("", None, "Invalid KeyConditionExpression: The expression can not be empty;"),
    ];
    for (expr, sk, msg) in errs {
        assert_eq!(
            kc(expr, &[], v.clone(), *sk).err().as_deref(),
            Some(*msg),
            "{expr}"
        );
    }
}

#[test]
fn sort_condition_matching() {
    let n = |x: &str| AttributeValue::n(x).unwrap_or(AttributeValue::Null);
    let s = |x: &str| AttributeValue::s(x);
    assert!(SortCondition::Eq(n("1")).matches(&n("1.0")));
    assert!(!SortCondition::Eq(n("1")).matches(&s("1")));
    assert!(SortCondition::Lt(n("10")).matches(&n("9")));
    assert!(!SortCondition::Lt(s("10")).matches(&s("9")));
    assert!(SortCondition::Le(n("9")).matches(&n("9")));
    assert!(SortCondition::Gt(s("a")).matches(&s("b")));
    assert!(SortCondition::Ge(s("b")).matches(&s("b")));
    assert!(SortCondition::Between(n("1"), n("3")).matches(&n("2")));
    assert!(!SortCondition::Between(n("1"), n("3")).matches(&n("4")));
    assert!(SortCondition::BeginsWith(s("ab")).matches(&s("abc")));
    assert!(!SortCondition::BeginsWith(s("ab")).matches(&s("a")));
    assert!(SortCondition::BeginsWith(AttributeValue::B(vec![1]))
        .matches(&AttributeValue::B(vec![1, 2])));
    let k = KeyCondition {
        partition: ("pk".into(), s("p")),
        sort: Some(("sk".into(), SortCondition::Between(n("1"), n("2")))),
    };
    assert_eq!(k.values().len(), 3);
}

fn legacy_filter(c: serde_json::Value, op: Option<&str>) -> Result<Condition, String> {
    condition_from_legacy_filter(&c, op).map_err(|e| e.message().to_owned())
}

#[test]
fn legacy_filters() {
    let d = doc();
    let cases: &[(serde_json::Value, bool)] = &[
        (
            json!({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "10"}]}}),
            true,
        ),
        (
            json!({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "10"}]}}),
            false,
        ),
        (
            json!({"n": {"ComparisonOperator": "NE", "AttributeValueList": [{"N": "1"}]}}),
            true,
        ),
        (
            json!({"nope": {"ComparisonOperator": "NE", "AttributeValueList": [{"N": "1"}]}}),
            true,
        ),
        (
            json!({"n": {"ComparisonOperator": "LE", "AttributeValueList": [{"N": "10"}]}}),
            true,
        ),
        (
            json!({"n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "10"}]}}),
            false,
        ),
        (
            json!({"n": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "10"}]}}),
            true,
        ),
        (
            json!({"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "9"}]}}),
            true,
        ),
        (
            json!({"s": {"ComparisonOperator": "GT", "AttributeValueList": [{"S": "a"}]}}),
            true,
        ),
        (json!({"n": {"ComparisonOperator": "NOT_NULL"}}), true),
        (json!({"nope": {"ComparisonOperator": "NOT_NULL"}}), false),
        (json!({"nope": {"ComparisonOperator": "NULL"}}), true),
        (
            json!({"z": {"ComparisonOperator": "NULL", "AttributeValueList": []}}),
            false,
        ),
        (
            json!({"s": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "llo"}]}}),
            true,
        ),
        (
            json!({"ss": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "a"}]}}),
            true,
        ),
        (
            json!({"ns": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"N": "2"}]}}),
            true,
        ),
        (
            json!({"l": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "x"}]}}),
            true,
        ),
        (
            json!({"s": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "llo"}]}}),
            false,
        ),
        (
            json!({"ss": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "q"}]}}),
            true,
        ),
        (
            json!({"s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "hel"}]}}),
            true,
        ),
        (
            json!({"s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "el"}]}}),
            false,
        ),
        (
            json!({"n": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "1"}, {"N": "10"}]}}),
            true,
        ),
        (
            json!({"n": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "1"}]}}),
            false,
        ),
        (
            json!({"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "10"}]}}),
            true,
        ),
        (
            json!({"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "11"}, {"N": "12"}]}}),
            false,
        ),
        (json!({}), true),
        (
            json!({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "10"}]}, "s": {"ComparisonOperator": "NULL"}}),
            false,
        ),
    ];
    for (c, want) in cases {
        let cond = legacy_filter(c.clone(), None).unwrap_or_else(|e| panic!("{c}: {e}"));
        assert_eq!(cond.eval(&d), Ok(*want), "{c}");
    }
    let either = json!({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "10"}]}, "s": {"ComparisonOperator": "NULL"}});
    assert_eq!(
        legacy_filter(either.clone(), Some("OR")).map(|c| c.eval(&d)),
        Ok(Ok(true))
    );
    assert_eq!(
        legacy_filter(either.clone(), Some("AND")).map(|c| c.eval(&d)),
        Ok(Ok(false))
    );
    let p = "One or more parameter values were invalid: ";
    let errs: &[(serde_json::Value, String)] = &[
        (json!({"n": {"ComparisonOperator": "EQ"}}), format!("{p}Invalid number of argument(s) for the EQ ComparisonOperator")),
        (json!({"n": {"ComparisonOperator": "NULL", "AttributeValueList": [{"N": "1"}]}}), format!("{p}Invalid number of argument(s) for the NULL ComparisonOperator")),
        (json!({"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}]}}), format!("{p}Invalid number of argument(s) for the BETWEEN ComparisonOperator")),
        (json!({"n": {"ComparisonOperator": "IN", "AttributeValueList": []}}), format!("{p}Invalid number of argument(s) for the IN ComparisonOperator")),
        (json!({"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"SS": ["a"]}]}}), format!("{p}ComparisonOperator GT is not valid for SS AttributeValue type")),
        (json!({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"M": {}}]}}), format!("{p}ComparisonOperator EQ is not valid for M AttributeValue type")),
        (json!({"n": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"N": "1"}]}}), format!("{p}ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type")),
        (json!({"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"S": "a"}]}}), format!("{p}AttributeValues inside AttributeValueList must be of same type")),
        (
            json!({"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "5"}, {"N": "1"}]}}),
            format!("{p}The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"),
        ),
        (json!({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"SS": []}]}}), format!("{p}An string set  may not be empty")),
    ];
    for (c, msg) in errs {
        assert_eq!(
            legacy_filter(c.clone(), None).err().as_deref(),
            Some(msg.as_str()),
            "{c}"
        );
    }
    assert!(legacy_filter(
        json!({"n": {"ComparisonOperator": "LIKE", "AttributeValueList": []}}),
        None
    )
    .err()
    .is_some_and(|m| m.contains("Member must satisfy enum value set")));
    assert!(legacy_filter(json!({}), Some("XOR"))
        .err()
        .is_some_and(|m| m.contains("[OR, AND]")));
}

#[test]
fn legacy_expected() {
    let d = doc();
    let ev = |e: serde_json::Value, op: Option<&str>| -> Result<bool, String> {
        let c = condition_from_expected(&e, op).map_err(|e| e.message().to_owned())?;
        c.eval(&d).map_err(|e| e.message().to_owned())
    };
    assert_eq!(ev(json!({"n": {"Value": {"N": "10"}}}), None), Ok(true));
    assert_eq!(
        ev(json!({"n": {"Value": {"N": "11"}, "Exists": true}}), None),
        Ok(false)
    );
    assert_eq!(ev(json!({"nope": {"Exists": false}}), None), Ok(true));
    assert_eq!(ev(json!({"n": {"Exists": false}}), None), Ok(false));
    assert_eq!(
        ev(
            json!({"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]}}),
            None
        ),
        Ok(true)
    );
    assert_eq!(
        ev(
            json!({"n": {"ComparisonOperator": "GT", "Value": {"N": "50"}}}),
            None
        ),
        Ok(false)
    );
    assert_eq!(
        ev(
            json!({"n": {"Exists": false}, "s": {"Value": {"S": "hello world"}}}),
            Some("OR")
        ),
        Ok(true)
    );
    assert_eq!(ev(json!({}), None), Ok(true));
    let p = "One or more parameter values were invalid: ";
    assert_eq!(
        ev(json!({"n": {"Value": {"N": "1"}, "Exists": false}}), None),
        Err(format!("{p}Cannot expect an attribute to have a specified value while expecting it to not exist"))
    );
    assert_eq!(
        ev(json!({"n": {"Exists": true}}), None),
        Err(format!(
            "{p}Value must be provided when Exists is true for Attribute: n"
        ))
    );
    assert!(ev(
        json!({"n": {"Exists": true, "ComparisonOperator": "NULL"}}),
        None
    )
    .is_err());
    assert!(ev(json!({"n": {"Value": {"N": "x"}}}), None).is_err());
}

#[test]
fn legacy_attribute_updates() {
    let base = json!({"pk": {"S": "k"}, "n": {"N": "5"}, "ss": {"SS": ["a", "b"]}, "l": {"L": [{"N": "1"}]}, "s": {"S": "x"}});
    let run = |u: serde_json::Value| -> Result<serde_json::Value, String> {
        let up = update_from_attribute_updates(&u).map_err(|e| e.message().to_owned())?;
        let mut it = item(base.clone());
        up.apply(&mut it).map_err(|e| e.message().to_owned())?;
        Ok(crate::types::item_to_json(&it))
    };
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        if let Some(o) = b.as_object_mut() {
            if v.is_null() {
                o.remove(k);
            } else {
                o.insert(k.to_owned(), v);
            }
        }
        b
    };
    assert_eq!(
        run(json!({"s": {"Value": {"S": "y"}}})),
        Ok(with("s", json!({"S": "y"})))
    );
    assert_eq!(
        run(json!({"s": {"Action": "PUT", "Value": {"N": "1"}}})),
        Ok(with("s", json!({"N": "1"})))
    );
    assert_eq!(
        run(json!({"s": {"Action": "DELETE"}})),
        Ok(with("s", json!(null)))
    );
    assert_eq!(run(json!({"nope": {"Action": "DELETE"}})), Ok(base.clone()));
    assert_eq!(
        run(json!({"ss": {"Action": "DELETE", "Value": {"SS": ["a"]}}})),
        Ok(with("ss", json!({"SS": ["b"]})))
    );
    assert_eq!(
        run(json!({"n": {"Action": "ADD", "Value": {"N": "-6"}}})),
        Ok(with("n", json!({"N": "-1"})))
    );
    assert_eq!(
        run(json!({"c": {"Action": "ADD", "Value": {"N": "2"}}})),
        Ok(with("c", json!({"N": "2"})))
    );
    assert_eq!(
        run(json!({"ss": {"Action": "ADD", "Value": {"SS": ["c"]}}})),
        Ok(with("ss", json!({"SS": ["a", "b", "c"]})))
    );
    assert_eq!(
        run(json!({"l": {"Action": "ADD", "Value": {"L": [{"S": "z"}]}}})),
        Ok(with("l", json!({"L": [{"N": "1"}, {"S": "z"}]})))
    );
    assert_eq!(
        run(json!({"nl": {"Action": "ADD", "Value": {"L": [{"S": "z"}]}}})),
        Ok(with("nl", json!({"L": [{"S": "z"}]})))
    );
    let p = "One or more parameter values were invalid: ";
    assert_eq!(
        run(json!({"s": {"Action": "PUT"}})),
        Err(format!(
            "{p}Only DELETE action is allowed when no attribute value is specified"
        ))
    );
    assert_eq!(
        run(json!({"s": {"Action": "ADD"}})),
        Err(format!(
            "{p}Only DELETE action is allowed when no attribute value is specified"
        ))
    );
    assert_eq!(
        run(json!({"s": {"Action": "ADD", "Value": {"S": "q"}}})),
        Err(format!("{p}ADD action is not supported for the type S"))
    );
    assert_eq!(
        run(json!({"s": {"Action": "DELETE", "Value": {"S": "q"}}})),
        Err(format!(
            "{p}DELETE action with value is not supported for the type S"
        ))
    );
    assert_eq!(
        run(json!({"s": {"Action": "ADD", "Value": {"N": "1"}}})),
        Err("An operand in the update expression has an incorrect data type".to_owned())
    );
    assert!(
        run(json!({"s": {"Action": "REPLACE", "Value": {"N": "1"}}}))
            .err()
            .is_some_and(|m| m.contains("[ADD, PUT, DELETE]"))
    );
    let u = update_from_attribute_updates(
        &json!({"pk": {"Value": {"S": "z"}}, "a": {"Action": "DELETE"}}),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(u.touches(&["pk"]).is_some());
    assert_eq!(u.top_level_names(), vec!["a", "pk"]);
}

#[test]
fn legacy_key_conditions() {
    let kc = |c: serde_json::Value, sk: Option<&str>| {
        key_condition_from_legacy(&c, "pk", sk).map_err(|e| e.message().to_owned())
    };
    let got = kc(
        json!({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}, "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "a"}]}}),
        Some("sk"),
    );
    assert_eq!(
        got,
        Ok(KeyCondition {
            partition: ("pk".into(), AttributeValue::s("p")),
            sort: Some((
                "sk".into(),
                SortCondition::BeginsWith(AttributeValue::s("a"))
            )),
        })
    );
    assert_eq!(
        kc(
            json!({"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}}),
            Some("sk")
        )
        .err()
        .as_deref(),
        Some("Query condition missed key schema element: pk")
    );
    assert_eq!(
        kc(
            json!({"pk": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "p"}]}}),
            None
        )
        .err()
        .as_deref(),
        Some("Attempted conditional constraint is not an indexable operation")
    );
    assert_eq!(
        kc(
            json!({"pk": {"ComparisonOperator": "GT", "AttributeValueList": [{"S": "p"}]}}),
            None
        )
        .err()
        .as_deref(),
        Some("Query key condition not supported")
    );
}

#[test]
fn hostile_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}a = :a{}", "(".repeat(5000), ")".repeat(5000));
    assert!(cond_err(&deep, &[], json!({":a": {"N": "1"}})).contains("nested too deeply"));
    let nots = format!("{}a = :a", "NOT ".repeat(5000));
    assert!(cond_err(&nots, &[], json!({":a": {"N": "1"}})).contains("nested too deeply"));
    let calls = format!(
        "SET a = {}:l{}",
        "list_append(:l, ".repeat(5000),
        ")".repeat(5000)
    );
    assert!(update(&calls, &[], json!({":l": {"L": []}}), json!({}))
        .is_err_and(|m| m.contains("nested too deeply")));
    // Moderate nesting works.
    let ok = format!(
        "{}attribute_not_exists(a){}",
        "NOT (".repeat(30),
        ")".repeat(30)
    );
    assert!(cond(&ok, json!(null), &Item::new()));
}
