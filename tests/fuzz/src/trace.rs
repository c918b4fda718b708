//! Hostile traces from the fuzzer's bytes: deep and wide JSON, huge strings, odd unicode,
//! extreme numbers and timestamps, duplicate and cyclic observation ids.

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, TimeZone, Utc};
use ops_core::model::{
    Level, MAX_TRACE_ID_LEN, Observation, ObservationKind, Trace, TraceAttributes, TraceId, Usage,
    UsageUnit,
};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

/// Strings that have broken encoders and platforms elsewhere.
const ODD: [&str; 16] = [
    "",
    " ",
    "\0",
    "\u{202e}rtl\u{202c}",
    "\u{feff}bom",
    "e\u{301}\u{301}\u{301}",
    "👩\u{200d}👩\u{200d}👧",
    "\u{10ffff}",
    "\r\n\t\x1b[31m",
    "a\"b\\c</script>",
    "%00%zz%",
    "enc:v1:k1:AAAA",
    "__ops_truncated__",
    "ops.warnings",
    "1e999",
    "NaN",
];

const UNITS: [UsageUnit; 6] = [
    UsageUnit::Tokens,
    UsageUnit::Characters,
    UsageUnit::Milliseconds,
    UsageUnit::Seconds,
    UsageUnit::Images,
    UsageUnit::Requests,
];

const LEVELS: [Level; 4] = [Level::Debug, Level::Default, Level::Warning, Level::Error];

/// How the pieces of a trace are drawn: the largest string (one input of a few traces is
/// 2 MiB whatever this says) and the deepest value.
pub(crate) struct Shape {
    pub(crate) max_string: usize,
    pub(crate) max_depth: usize,
}

pub(crate) fn trace(u: &mut Unstructured<'_>, shape: &Shape) -> Result<Trace> {
    let id = trace_id(u)?;
    let start = time(u)?;
    let mut t = Trace::new(
        id,
        *u.choose(&ObservationKind::ALL)?,
        string(u, shape)?,
        start,
    );
    t.end_time = opt_time(u)?;
    t.input = opt_value(u, shape)?;
    t.output = opt_value(u, shape)?;
    t.metadata = map(u, shape)?;
    t.tags = strings(u, shape)?;
    t.attributes = attributes(u, shape)?;
    if u.arbitrary::<u8>()? == 0xA5 {
        // Rarely, one string far past every limit.
        t.input = Some(Value::String("\u{1F600}".repeat(1 << 19)));
    }
    // A small pool of ids, so parents are found, missing, duplicated, cyclic or self.
    let pool: Vec<Uuid> = (0..u.int_in_range(1..=6)?)
        .map(|_| uuid(u))
        .collect::<Result<_>>()?;
    let count = u.int_in_range(0..=24)?;
    for _ in 0..count {
        if u.is_empty() {
            break;
        }
        t.observations.push(observation(u, shape, &pool)?);
    }
    Ok(t)
}

fn observation(u: &mut Unstructured<'_>, shape: &Shape, pool: &[Uuid]) -> Result<Observation> {
    let mut o = Observation::at(
        *u.choose(&ObservationKind::ALL)?,
        string(u, shape)?,
        time(u)?,
    );
    o.id = *u.choose(pool)?;
    o.parent_id = if u.arbitrary()? {
        Some(*u.choose(pool)?)
    } else {
        None
    };
    o.end_time = opt_time(u)?;
    o.completion_start_time = opt_time(u)?;
    o.input = opt_value(u, shape)?;
    o.output = opt_value(u, shape)?;
    o.metadata = map(u, shape)?;
    o.model_parameters = map(u, shape)?;
    o.tags = strings(u, shape)?;
    o.level = *u.choose(&LEVELS)?;
    o.status_message = opt_string(u, shape)?;
    o.model = opt_string(u, shape)?;
    o.model_provider = opt_string(u, shape)?;
    o.attributes = attributes(u, shape)?;
    if u.arbitrary()? {
        o.usage = Some(Usage {
            input: u.arbitrary()?,
            output: u.arbitrary()?,
            total: u.arbitrary()?,
            unit: *u.choose(&UNITS)?,
            input_cost: opt_float(u)?,
            output_cost: opt_float(u)?,
            total_cost: opt_float(u)?,
            currency: opt_string(u, shape)?,
            details: map(u, shape)?,
        });
    }
    Ok(o)
}

fn trace_id(u: &mut Unstructured<'_>) -> Result<TraceId> {
    const ALPHABET: &[u8] = b"0123456789abcdefABCDEF-_zZ";
    let text = match u.int_in_range(0..=3)? {
        0 => return Ok(TraceId::generate()),
        1 => uuid(u)?.to_string(),
        2 => "f".repeat(MAX_TRACE_ID_LEN),
        _ => {
            let len = u.int_in_range(1..=MAX_TRACE_ID_LEN)?;
            (0..len)
                .map(|_| u.choose(ALPHABET).map(|b| char::from(*b)))
                .collect::<Result<String>>()?
        }
    };
    Ok(TraceId::new(text).unwrap_or_else(|_| TraceId::generate()))
}

fn uuid(u: &mut Unstructured<'_>) -> Result<Uuid> {
    Ok(match u.int_in_range(0..=4)? {
        0 => Uuid::nil(),
        1 => Uuid::max(),
        2 => Uuid::now_v7(),
        _ => Uuid::from_bytes(u.arbitrary()?),
    })
}

fn time(u: &mut Unstructured<'_>) -> Result<DateTime<Utc>> {
    Ok(match u.int_in_range(0..=6)? {
        0 => DateTime::<Utc>::MIN_UTC,
        1 => DateTime::<Utc>::MAX_UTC,
        2 => DateTime::<Utc>::UNIX_EPOCH,
        3 => Utc::now(),
        4 => Utc
            .timestamp_millis_opt(u.arbitrary()?)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        5 => {
            let offset: i32 = u.arbitrary()?;
            Utc::now() + chrono::TimeDelta::milliseconds(i64::from(offset))
        }
        _ => Utc
            .timestamp_opt(u.arbitrary()?, u.arbitrary()?)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
}

fn opt_time(u: &mut Unstructured<'_>) -> Result<Option<DateTime<Utc>>> {
    Ok(if u.arbitrary()? { Some(time(u)?) } else { None })
}

fn float(u: &mut Unstructured<'_>) -> Result<f64> {
    const EDGES: [f64; 10] = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        -0.0,
        5e-324,
        1e300,
        -1.0,
    ];
    if u.arbitrary()? {
        Ok(*u.choose(&EDGES)?)
    } else {
        u.arbitrary()
    }
}

fn opt_float(u: &mut Unstructured<'_>) -> Result<Option<f64>> {
    Ok(if u.arbitrary()? {
        Some(float(u)?)
    } else {
        None
    })
}

fn string(u: &mut Unstructured<'_>, shape: &Shape) -> Result<String> {
    Ok(match u.int_in_range(0..=5)? {
        0 | 1 => u.arbitrary()?,
        2 | 3 => (*u.choose(&ODD)?).to_owned(),
        4 => {
            let unit = *u.choose(&ODD[1..])?;
            let times = u.int_in_range(0..=shape.max_string)? / unit.len().max(1);
            unit.repeat(times)
        }
        _ => {
            let a: String = u.arbitrary()?;
            format!("{a}{}{a}", u.choose(&ODD)?)
        }
    })
}

fn opt_string(u: &mut Unstructured<'_>, shape: &Shape) -> Result<Option<String>> {
    Ok(if u.arbitrary()? {
        Some(string(u, shape)?)
    } else {
        None
    })
}

fn strings(u: &mut Unstructured<'_>, shape: &Shape) -> Result<Vec<String>> {
    let n = u.int_in_range(0..=8)?;
    (0..n).map(|_| string(u, shape)).collect()
}

fn attributes(u: &mut Unstructured<'_>, shape: &Shape) -> Result<TraceAttributes> {
    Ok(TraceAttributes {
        user_id: opt_string(u, shape)?,
        session_id: opt_string(u, shape)?,
        app_id: opt_string(u, shape)?,
        tenant_id: opt_string(u, shape)?,
        environment: opt_string(u, shape)?,
        release: opt_string(u, shape)?,
        version: opt_string(u, shape)?,
    })
}

fn map(u: &mut Unstructured<'_>, shape: &Shape) -> Result<Map<String, Value>> {
    let n = u.int_in_range(0..=6)?;
    let mut m = Map::new();
    for _ in 0..n {
        m.insert(string(u, shape)?, value(u, shape, 0)?);
    }
    Ok(m)
}

fn opt_value(u: &mut Unstructured<'_>, shape: &Shape) -> Result<Option<Value>> {
    Ok(if u.arbitrary()? {
        Some(value(u, shape, 0)?)
    } else {
        None
    })
}

/// A JSON value: scalars of every kind, or a chain nested up to `shape.max_depth`, or a
/// container of a few values. Messages and documents in the shapes encoders look for are
/// likely too (`role`/`content`, `page_content`, ...).
fn value(u: &mut Unstructured<'_>, shape: &Shape, depth: usize) -> Result<Value> {
    if u.is_empty() {
        return Ok(Value::Null);
    }
    Ok(match u.int_in_range(0..=11)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(Number::from(u.arbitrary::<i64>()?)),
        3 => Value::Number(Number::from(u.arbitrary::<u64>()?)),
        4 => Number::from_f64(float(u)?).map_or(Value::Null, Value::Number),
        5 | 6 => Value::String(string(u, shape)?),
        7 => {
            // A chain as deep as allowed, built without recursion.
            let levels = u.int_in_range(0..=shape.max_depth.saturating_sub(depth))?;
            let mut v = Value::String(string(u, shape)?);
            for i in 0..levels {
                v = if i % 2 == 0 {
                    Value::Array(vec![v])
                } else {
                    let mut m = Map::new();
                    m.insert("content".into(), v);
                    Value::Object(m)
                };
            }
            v
        }
        8 => {
            let key = *u.choose(&[
                "role",
                "content",
                "text",
                "messages",
                "page_content",
                "documents",
                "query",
                "answer",
                "prompt_tokens",
                "type",
            ])?;
            let mut m = Map::new();
            m.insert(key.to_owned(), value(u, shape, depth + 1)?);
            m.insert("role".to_owned(), Value::String(string(u, shape)?));
            Value::Object(m)
        }
        9 | 10 if depth < shape.max_depth => {
            let n = u.int_in_range(0..=4)?;
            Value::Array(
                (0..n)
                    .map(|_| value(u, shape, depth + 1))
                    .collect::<Result<_>>()?,
            )
        }
        _ if depth < shape.max_depth => {
            let n = u.int_in_range(0..=4)?;
            let mut m = Map::new();
            for _ in 0..n {
                m.insert(string(u, shape)?, value(u, shape, depth + 1)?);
            }
            Value::Object(m)
        }
        _ => Value::Null,
    })
}
