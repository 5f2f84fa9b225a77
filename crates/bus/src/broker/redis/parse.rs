//! Parsing of raw stream replies (RESP2 arrays; RESP3 maps are accepted too).

use std::collections::HashMap;

use redis::Value;

use crate::broker::Missing;
use crate::broker::{BrokerError, Delivery};

fn protocol(what: &str) -> BrokerError {
    BrokerError::Protocol(what.to_owned())
}

pub fn bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

pub fn text(value: &Value) -> Option<String> {
    bytes(value).and_then(|b| String::from_utf8(b).ok())
}

pub fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => text(other).and_then(|t| t.parse().ok()),
    }
}

/// Elements of an array, or the flattened pairs of a map.
fn items(value: &Value) -> Option<Vec<&Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items.iter().collect()),
        Value::Map(pairs) => Some(pairs.iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

/// The milliseconds part of an entry id.
pub fn id_millis(id: &str) -> Option<i64> {
    id.split('-').next()?.parse().ok()
}

/// Elements of an owned array, or the flattened pairs of an owned map.
fn into_items(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        Value::Map(pairs) => Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        _ => None,
    }
}

/// `[[stream, [[id, fields|nil], …]], …]` (XREADGROUP) into deliveries. The reply is taken
/// by value so that each `data` is moved out of it, never copied.
pub fn read_reply(
    value: Value,
    max_data: usize,
    count_of: impl Fn(&str) -> u64,
) -> Result<Vec<Delivery>, BrokerError> {
    if matches!(value, Value::Nil) {
        return Ok(Vec::new());
    }
    // RESP2 gives [[name, entries], …]; RESP3 a map flattened to [name, entries, …].
    let pairs: Vec<(Value, Value)> = match value {
        Value::Map(pairs) => pairs,
        other => into_items(other)
            .ok_or_else(|| protocol("XREADGROUP reply is not a list"))?
            .into_iter()
            .filter_map(|s| {
                let mut parts = into_items(s)?.into_iter();
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(name), Some(entries), None) => Some((name, entries)),
                    _ => None,
                }
            })
            .collect(),
    };
    let mut out = Vec::new();
    for (name, entries) in pairs {
        let stream = text(&name).ok_or_else(|| protocol("stream name is not text"))?;
        out.extend(read_entries(entries, &stream, max_data, &count_of)?);
    }
    Ok(out)
}

/// `[[id, [field, value, …] | nil], …]` into deliveries of `stream`. A `data` longer than
/// `max_data` is measured and dropped on the spot ([`Missing::TooLarge`]).
pub fn read_entries(
    value: Value,
    stream: &str,
    max_data: usize,
    count_of: impl Fn(&str) -> u64,
) -> Result<Vec<Delivery>, BrokerError> {
    if matches!(value, Value::Nil) {
        return Ok(Vec::new());
    }
    let entries = into_items(value).ok_or_else(|| protocol("entries are not a list"))?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut parts = into_items(entry)
            .ok_or_else(|| protocol("entry is not a list"))?
            .into_iter();
        let (Some(id), Some(fields), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(protocol("entry is not [id, fields]"));
        };
        let id = text(&id).ok_or_else(|| protocol("entry id is not text"))?;
        let mut event_type = None;
        let mut data = None;
        // Redis answers nil fields for an entry trimmed away while pending.
        let mut missing = Some(Missing::Trimmed);
        if let Some(fields) = into_items(fields) {
            missing = Some(Missing::NoDataField);
            let mut fields = fields.into_iter();
            while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
                match text(&k).as_deref() {
                    Some("type") => event_type = text(&v),
                    Some("data") => match v {
                        Value::BulkString(b) if b.len() > max_data => {
                            missing = Some(Missing::TooLarge {
                                bytes: b.len(),
                                limit: max_data,
                            });
                            data = None;
                        }
                        Value::BulkString(b) => {
                            missing = None;
                            data = Some(b);
                        }
                        other => {
                            data = bytes(&other);
                            missing = data.is_none().then_some(Missing::NoDataField);
                        }
                    },
                    _ => {}
                }
            }
        }
        let deliveries = count_of(&id);
        out.push(Delivery {
            stream: stream.to_owned(),
            id,
            event_type,
            data,
            missing,
            deliveries,
        });
    }
    Ok(out)
}

/// Extended XPENDING `[[id, consumer, idle, count], …]` into id → count.
pub fn pending_counts(value: &Value) -> Result<HashMap<String, u64>, BrokerError> {
    let mut counts = HashMap::new();
    for row in items(value).unwrap_or_default() {
        if let Some([id, _, _, count]) = items(row).as_deref() {
            let id = text(id).ok_or_else(|| protocol("pending id is not text"))?;
            counts.insert(id, int(count).unwrap_or(1).unsigned_abs());
        }
    }
    Ok(counts)
}

/// Summary XPENDING `[count, min-id, max-id, consumers]` into (count, min-id).
pub fn pending_summary(value: &Value) -> (u64, Option<String>) {
    match items(value).as_deref() {
        Some([count, min, ..]) => (int(count).unwrap_or(0).unsigned_abs(), text(min)),
        _ => (0, None),
    }
}

/// XAUTOCLAIM `[cursor, [ids…], [deleted…]?]` into (cursor, how many left the list for us).
pub fn autoclaim_reply(value: &Value) -> Result<(String, usize), BrokerError> {
    let parts = items(value).ok_or_else(|| protocol("XAUTOCLAIM reply is not a list"))?;
    let cursor = parts
        .first()
        .and_then(|c| text(c))
        .ok_or_else(|| protocol("XAUTOCLAIM cursor missing"))?;
    let claimed = parts.get(1).and_then(|c| items(c)).map_or(0, |c| c.len());
    let deleted = parts.get(2).and_then(|d| items(d)).map_or(0, |d| d.len());
    Ok((cursor, claimed + deleted))
}

/// What XINFO GROUPS says of one group.
pub struct GroupEntry {
    pub last_delivered: String,
    pub lag: Option<u64>,
}

/// Finds `group` in an XINFO GROUPS reply.
pub fn group_entry(value: &Value, group: &str) -> Option<GroupEntry> {
    for entry in items(value)? {
        let fields = items(entry)?;
        let mut map = HashMap::new();
        for pair in fields.chunks(2) {
            if let [k, v] = pair {
                map.insert(text(k)?, *v);
            }
        }
        if map.get("name").and_then(|v| text(v)).as_deref() == Some(group) {
            return Some(GroupEntry {
                last_delivered: map
                    .get("last-delivered-id")
                    .and_then(|v| text(v))
                    .unwrap_or_else(|| "0-0".into()),
                lag: map.get("lag").and_then(|v| int(v)).map(i64::unsigned_abs),
            });
        }
    }
    None
}
