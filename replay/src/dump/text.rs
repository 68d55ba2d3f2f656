//! CSV (RFC 4180 quoting, a header row) and NDJSON (one object per row).

use super::table::{Kind, Table, Val};
use std::io::Write;

/// RFC 3339 in UTC with nanoseconds: `2026-11-27T14:22:05.123456789Z`.
pub fn rfc3339_utc(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// One CSV field: quoted (with `"` doubled) when it holds a comma, a quote,
/// CR or LF, as RFC 4180 says; otherwise as is.
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// A cell as text: integers and floats in Rust's shortest round-trip form
/// (so reading the CSV back gives the very same f64), times as RFC 3339,
/// `Null` as the empty string.
fn cell(kind: Kind, v: &Val) -> String {
    match (kind, v) {
        (_, Val::Null) => String::new(),
        (Kind::Time, Val::Int(ns)) => rfc3339_utc(*ns),
        (_, Val::Int(i)) => i.to_string(),
        (_, Val::Float(f)) => f.to_string(),
        (_, Val::Str(s)) => s.clone(),
    }
}

/// The table as CSV: a header row, then one line per row, `\n`-terminated.
pub fn write_csv(t: &Table, out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(out);
    let head: Vec<_> = t.columns.iter().map(|c| csv_field(&c.name)).collect();
    writeln!(w, "{}", head.join(","))?;
    let mut line = String::new();
    for r in &t.rows {
        line.clear();
        for (i, (c, v)) in t.columns.iter().zip(r).enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&csv_field(&cell(c.kind, v)));
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()
}

/// The table as NDJSON: one object per row, keys in column order, `null`
/// for a value not recorded.
pub fn write_ndjson(t: &Table, out: &mut dyn Write) -> std::io::Result<()> {
    use serde_json::Value;
    let mut w = std::io::BufWriter::new(out);
    for r in &t.rows {
        let mut m = serde_json::Map::with_capacity(t.columns.len());
        for (c, v) in t.columns.iter().zip(r) {
            let j = match (c.kind, v) {
                (_, Val::Null) => Value::Null,
                (Kind::Time, Val::Int(ns)) => Value::String(rfc3339_utc(*ns)),
                (_, Val::Int(i)) => Value::from(*i),
                (_, Val::Float(f)) => {
                    serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
                }
                (_, Val::Str(s)) => Value::String(s.clone()),
            };
            m.insert(c.name.clone(), j);
        }
        serde_json::to_writer(&mut w, &Value::Object(m)).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_follows_rfc_4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
        // Spaces and other punctuation need no quotes.
        assert_eq!(csv_field("sleep 1000 --x=y;z"), "sleep 1000 --x=y;z");
    }

    fn table() -> Table {
        let mut t = Table::new(&[
            ("timestamp", Kind::Time),
            ("n", Kind::Int),
            ("x", Kind::Float),
            ("cmd", Kind::Str),
        ]);
        t.row()
            .set("timestamp", Kind::Time, 1_700_000_000_123_456_789i64)
            .int("n", -3i64)
            .float("x", 0.1)
            .str("cmd", "a \"b\",c");
        t.row().set("timestamp", Kind::Time, 0i64);
        t
    }

    #[test]
    fn csv_has_a_header_and_quoted_cells() {
        let mut v = Vec::new();
        write_csv(&table(), &mut v).unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "timestamp,n,x,cmd\n\
             2023-11-14T22:13:20.123456789Z,-3,0.1,\"a \"\"b\"\",c\"\n\
             1970-01-01T00:00:00.000000000Z,,,\n"
        );
    }

    #[test]
    fn ndjson_is_one_object_per_line_with_nulls() {
        let mut v = Vec::new();
        write_ndjson(&table(), &mut v).unwrap();
        let s = String::from_utf8(v).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        let a: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(a["timestamp"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(a["n"], -3);
        assert_eq!(a["x"], 0.1);
        assert_eq!(a["cmd"], "a \"b\",c");
        let b: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert!(b["n"].is_null() && b["cmd"].is_null());
    }
}
