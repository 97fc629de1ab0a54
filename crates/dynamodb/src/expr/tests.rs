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
