//! `Query` and `Scan`: key ranges over a table or index space, then (as DynamoDB does)
//! `Limit` and the 1 MB page limit on the items *read*, then the filter, then the
//! projection. `LastEvaluatedKey` is the key of the last item read when a limit stopped
//! the page.

use std::ops::Bound;

use gust_store::{KvCursor, KvRange};

use crate::capacity::{read_units, Consumed, Report};
use crate::catalog::{IndexMeta, KeyAttr, ProjectionKind, TableMeta};
use crate::error::{validation, DdbError, Result};
use crate::expr::{self, Condition, Projection, SortCondition};
use crate::keys::{index_key, key_of, key_param, prefix_successor, segment_hash, value_bytes};
use crate::ops::{Body, Exprs};
use crate::types::{AttributeValue, Item};
use crate::wire::QueryInput;
use crate::DynamoDb;

/// DynamoDB's page limit on data read.
const PAGE_BYTES: usize = 1024 * 1024;
/// Rows fetched from the store per round trip.
const CHUNK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    All,
    AllProjected,
    Specific,
    Count,
}

/// Everything a page read needs, once parsed.
struct Read<'a> {
    table: &'a TableMeta,
    index: Option<&'a IndexMeta>,
    range: KvRange,
    limit: Option<usize>,
    filter: Option<Condition>,
    projection: Option<Projection>,
    select: Select,
    segment: Option<(u64, u64)>,
    consistent: bool,
    report: Report,
}

fn select_of(s: Option<&str>, has_projection: bool, index: Option<&IndexMeta>) -> Result<Select> {
    let select = match s {
        None => {
            if has_projection {
                Select::Specific
            } else if index.is_some() {
                Select::AllProjected
            } else {
                Select::All
            }
        }
        Some("ALL_ATTRIBUTES") => Select::All,
        Some("ALL_PROJECTED_ATTRIBUTES") => Select::AllProjected,
        Some("SPECIFIC_ATTRIBUTES") => Select::Specific,
        Some("COUNT") => Select::Count,
        Some(other) => {
            return Err(validation(format!(
                "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            )))
        }
    };
    if has_projection && select != Select::Specific {
        return Err(validation(format!(
            "Cannot specify the AttributesToGet or ProjectionExpression when choosing to get {}",
            s.unwrap_or("ALL_ATTRIBUTES")
        )));
    }
    if select == Select::Specific && !has_projection {
        return Err(validation(
            "1 validation error detected: Value 'SPECIFIC_ATTRIBUTES' at 'select' failed: Select type SPECIFIC_ATTRIBUTES requires AttributesToGet or ProjectionExpression",
        ));
    }
    if select == Select::AllProjected && index.is_none() {
        return Err(validation(
            "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is supported only when querying an index",
        ));
    }
    if let Some(idx) = index {
        if select == Select::All && idx.global && idx.projection != ProjectionKind::All {
            return Err(validation(format!(
                "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                idx.name
            )));
        }
    }
    Ok(select)
}

fn check_limit(limit: Option<i64>) -> Result<Option<usize>> {
    match limit {
        None => Ok(None),
        Some(n) if n < 1 => Err(validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
    }
}

/// The index a request names, with DynamoDB's checks.
fn index_of<'a>(
    table: &'a TableMeta,
    name: Option<&String>,
    consistent: bool,
) -> Result<Option<&'a IndexMeta>> {
    let Some(name) = name else { return Ok(None) };
    let idx = table.index(name).ok_or_else(|| {
        validation(format!(
            "The table does not have the specified index: {name}"
        ))
    })?;
    if idx.global && consistent {
        return Err(validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    Ok(Some(idx))
}

/// The resume position from `ExclusiveStartKey`.
fn start_cursor(table: &TableMeta, index: Option<&IndexMeta>, esk: &Item) -> Result<KvCursor> {
    let invalid = || {
        validation("The provided starting key is invalid: The provided key element does not match the schema")
    };
    let table_part = key_of(&table.key, esk);
    let pk = key_param(table, &table_part).map_err(|_| invalid())?;
    match index {
        None => {
            if esk.len() != table_part.len() {
                return Err(invalid());
            }
            Ok(KvCursor {
                p: pk.p,
                s: pk.s,
                u: Vec::new(),
            })
        }
        Some(idx) => {
            let (p, s) = index_key(idx, esk)
                .map_err(|_| invalid())?
                .ok_or_else(invalid)?;
            Ok(KvCursor {
                p,
                s,
                u: pk.unique_suffix(),
            })
        }
    }
}

fn key_type_check(attr: &KeyAttr, v: &AttributeValue) -> Result<Vec<u8>> {
    if crate::keys::type_name(v) != attr.ty.as_str() {
        return Err(validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ));
    }
    value_bytes(v)
}

/// Lower and upper bounds on a space's `s`.
type SortBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Bounds on `s` from a sort key condition.
fn sort_bounds(attr: &KeyAttr, cond: &SortCondition) -> Result<SortBounds> {
    use Bound::{Excluded, Included, Unbounded};
    Ok(match cond {
        SortCondition::Eq(v) => {
            let b = key_type_check(attr, v)?;
            (Included(b.clone()), Included(b))
        }
        SortCondition::Lt(v) => (Unbounded, Excluded(key_type_check(attr, v)?)),
        SortCondition::Le(v) => (Unbounded, Included(key_type_check(attr, v)?)),
        SortCondition::Gt(v) => (Excluded(key_type_check(attr, v)?), Unbounded),
        SortCondition::Ge(v) => (Included(key_type_check(attr, v)?), Unbounded),
        SortCondition::Between(a, b) => {
            let lo = key_type_check(attr, a)?;
            let hi = key_type_check(attr, b)?;
            if lo > hi {
                return Err(validation(format!(
                    "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {{{}:{}}}, upper bound operand: AttributeValue: {{{}:{}}}",
                    a.type_name(),
                    a.brief(),
                    b.type_name(),
                    b.brief()
                )));
            }
            (Included(lo), Included(hi))
        }
        SortCondition::BeginsWith(v) => {
            if !matches!(v, AttributeValue::S(_) | AttributeValue::B(_)) {
                return Err(validation(format!(
                    "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: {}",
                    v.type_name()
                )));
            }
            let prefix = key_type_check(attr, v)?;
            let upper = match prefix_successor(&prefix) {
                Some(s) => Excluded(s),
                None => Unbounded,
            };
            (Included(prefix), upper)
        }
    })
}

/// One page's result.
struct Page {
    items: Vec<Vec<u8>>,
    count: usize,
    scanned: usize,
    last_key: Option<Item>,
    bytes_read: usize,
}

impl DynamoDb {
    pub(crate) async fn query(&self, input: QueryInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let table = self.item_table(&input.table_name)?;
        let consistent = input.consistent_read.unwrap_or(false);
        let index = index_of(&table, input.index_name.as_ref(), consistent)?;
        let schema = index.map_or(&table.key, |i| &i.key);
        let limit = check_limit(input.limit)?;
        if input.scan_filter.is_some() || input.segment.is_some() || input.total_segments.is_some()
        {
            return Err(validation(
                "Query does not accept ScanFilter, Segment or TotalSegments",
            ));
        }
        let mut exprs = Exprs::new(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
        );
        let (partition, sort) = match (&input.key_condition_expression, &input.key_conditions) {
            (Some(_), Some(_)) => return Err(super::mixed("KeyConditions", "KeyConditionExpression")),
            (Some(e), None) => {
                exprs.expressions(&[Some(e)]);
                let kc = expr::key_condition(
                    e,
                    &exprs.input,
                    &mut exprs.used,
                    &schema.pk.name,
                    schema.sk.as_ref().map(|s| s.name.as_str()),
                )?;
                (kc.partition.1, kc.sort.map(|(_, c)| c))
            }
            (None, Some(kc)) => {
                let kc = expr::key_condition_from_legacy(
                    kc,
                    &schema.pk.name,
                    schema.sk.as_ref().map(|s| s.name.as_str()),
                )?;
                (kc.partition.1, kc.sort.map(|(_, c)| c))
            }
            (None, None) => {
                return Err(validation(
                    "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
                ))
            }
        };
        let filter = exprs.filter(
            input.filter_expression.as_ref(),
            input.query_filter.as_ref(),
            "QueryFilter",
            input.conditional_operator.as_ref(),
        )?;
        let projection = exprs.projection(
            input.projection_expression.as_ref(),
            input.attributes_to_get.as_ref(),
        )?;
        exprs.finish()?;
        let select = select_of(input.select.as_deref(), projection.is_some(), index)?;

        let p = key_type_check(&schema.pk, &partition)?;
        let (lower, upper) = match (&sort, &schema.sk) {
            (Some(c), Some(sk)) => sort_bounds(sk, c)?,
            _ => (Bound::Unbounded, Bound::Unbounded),
        };
        let after = match &input.exclusive_start_key {
            Some(esk) => Some(start_cursor(&table, index, esk)?),
            None => None,
        };
        let range = KvRange {
            space: index.map_or(table.space, |i| i.space),
            p: Some(p),
            lower,
            upper,
            after,
            forward: input.scan_index_forward.unwrap_or(true),
            limit: CHUNK,
        };
        self.read_page(Read {
            table: &table,
            index,
            range,
            limit,
            filter,
            projection,
            select,
            segment: None,
            consistent,
            report,
        })
        .await
    }

    pub(crate) async fn scan(&self, input: QueryInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let table = self.item_table(&input.table_name)?;
        let consistent = input.consistent_read.unwrap_or(false);
        let index = index_of(&table, input.index_name.as_ref(), consistent)?;
        let limit = check_limit(input.limit)?;
        if input.key_condition_expression.is_some() || input.key_conditions.is_some() {
            return Err(validation(
                "Scan does not accept KeyConditionExpression or KeyConditions",
            ));
        }
        let segment = match (input.segment, input.total_segments) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(validation(
                    "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
                ))
            }
            (None, Some(_)) => {
                return Err(validation(
                    "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
                ))
            }
            (Some(seg), Some(total)) => {
                if !(1..=1_000_000).contains(&total) {
                    return Err(validation(format!(
                        "1 validation error detected: Value '{total}' at 'totalSegments' failed to satisfy constraint: Member must have value {}",
                        if total < 1 { "greater than or equal to 1" } else { "less than or equal to 1000000" }
                    )));
                }
                if seg < 0 {
                    return Err(validation(format!(
                        "1 validation error detected: Value '{seg}' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0"
                    )));
                }
                if seg >= total {
                    return Err(validation(format!(
                        "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {seg} is not less than TotalSegments: {total}"
                    )));
                }
                Some((seg as u64, total as u64))
            }
        };
        let mut exprs = Exprs::new(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
        );
        let filter = exprs.filter(
            input.filter_expression.as_ref(),
            input.scan_filter.as_ref(),
            "ScanFilter",
            input.conditional_operator.as_ref(),
        )?;
        let projection = exprs.projection(
            input.projection_expression.as_ref(),
            input.attributes_to_get.as_ref(),
        )?;
        exprs.finish()?;
        let select = select_of(input.select.as_deref(), projection.is_some(), index)?;
        let after = match &input.exclusive_start_key {
            Some(esk) => Some(start_cursor(&table, index, esk)?),
            None => None,
        };
        let mut range = KvRange::space(index.map_or(table.space, |i| i.space), CHUNK);
        range.after = after;
        self.read_page(Read {
            table: &table,
            index,
            range,
            limit,
            filter,
            projection,
            select,
            segment,
            consistent,
            report,
        })
        .await
    }

    async fn read_page(&self, mut r: Read<'_>) -> Result<Body> {
        let page = self.collect(&mut r).await?;
        let mut c = Consumed::new(&r.table.name);
        let units = read_units(page.bytes_read as u64, r.consistent);
        match r.index {
            Some(idx) => c.index_read(&idx.name, idx.global, units),
            None => c.read = units,
        }
        let mut out = Vec::with_capacity(page.items.iter().map(Vec::len).sum::<usize>() + 64);
        out.push(b'{');
        if r.select != Select::Count {
            out.extend_from_slice(b"\"Items\":[");
            for (i, item) in page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(item);
            }
            out.extend_from_slice(b"],");
        }
        out.extend_from_slice(
            format!("\"Count\":{},\"ScannedCount\":{}", page.count, page.scanned).as_bytes(),
        );
        if let Some(lek) = &page.last_key {
            out.extend_from_slice(b",\"LastEvaluatedKey\":");
            out.extend_from_slice(&serde_json::to_vec(lek).unwrap_or_else(|_| b"{}".to_vec()));
        }
        if let Some(cw) = c.wire(r.report) {
            out.extend_from_slice(b",\"ConsumedCapacity\":");
            out.extend_from_slice(&serde_json::to_vec(&cw).unwrap_or_else(|_| b"{}".to_vec()));
        }
        out.push(b'}');
        Ok(out)
    }

    /// Reads rows until the limit, the page size or the end of the range.
    async fn collect(&self, r: &mut Read<'_>) -> Result<Page> {
        let mut page = Page {
            items: Vec::new(),
            count: 0,
            scanned: 0,
            last_key: None,
            bytes_read: 0,
        };
        // The raw stored JSON can be returned untouched when nothing reshapes the item.
        let needs_base = r.index.is_some_and(|i| {
            !i.global
                && i.projection != ProjectionKind::All
                && matches!(r.select, Select::All | Select::Specific)
        });
        let passthrough = r.filter.is_none() && r.projection.is_none() && !needs_base;
        loop {
            let want = match r.limit {
                Some(l) => (l - page.scanned).min(CHUNK),
                None => CHUNK,
            };
            r.range.limit = want;
            let rows = self.store.range(r.range.clone()).await?;
            let exhausted = rows.len() < want;
            let mut stopped = false;
            for row in &rows {
                r.range.after = Some(KvCursor {
                    p: row.p.clone(),
                    s: row.s.clone(),
                    u: row.u.clone(),
                });
                if let Some((seg, total)) = r.segment {
                    if segment_hash(&row.p) % total != seg {
                        continue;
                    }
                }
                page.scanned += 1;
                page.bytes_read += row.weight.max(0) as usize;
                let at_limit =
                    r.limit.is_some_and(|l| page.scanned >= l) || page.bytes_read >= PAGE_BYTES;
                let parsed: Option<Item> = if passthrough && !at_limit {
                    None
                } else {
                    Some(
                        serde_json::from_slice(&row.value)
                            .map_err(|e| DdbError::Internal(format!("stored item: {e}")))?,
                    )
                };
                if passthrough {
                    page.count += 1;
                    if r.select != Select::Count {
                        page.items.push(row.value.clone());
                    }
                } else if let Some(item) = &parsed {
                    let base;
                    let source = if needs_base {
                        let key = key_param(r.table, &key_of(&r.table.key, item))?;
                        base = match self.store.get(r.table, &key).await? {
                            Some(s) => serde_json::from_slice::<Item>(&s.json)
                                .map_err(|e| DdbError::Internal(format!("stored item: {e}")))?,
                            None => continue,
                        };
                        &base
                    } else {
                        item
                    };
                    let keep = match &r.filter {
                        Some(f) => f.eval(source)?,
                        None => true,
                    };
                    if keep {
                        page.count += 1;
                        if r.select != Select::Count {
                            let shaped = match &r.projection {
                                Some(p) => p.apply(source),
                                None => source.clone(),
                            };
                            page.items.push(
                                serde_json::to_vec(&shaped).map_err(|e| {
                                    DdbError::Internal(format!("encoding item: {e}"))
                                })?,
                            );
                        }
                    }
                }
                if at_limit {
                    if let Some(item) = &parsed {
                        page.last_key = Some(last_key(r.table, r.index, item));
                    }
                    stopped = true;
                    break;
                }
            }
            if stopped || exhausted {
                return Ok(page);
            }
        }
    }
}

/// `LastEvaluatedKey`: the table key, plus the index key for an index.
fn last_key(table: &TableMeta, index: Option<&IndexMeta>, item: &Item) -> Item {
    let mut k = key_of(&table.key, item);
    if let Some(idx) = index {
        k.extend(key_of(&idx.key, item));
    }
    k
}
