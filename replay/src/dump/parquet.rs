//! Parquet output through arrow arrays and parquet's `ArrowWriter`.
//!
//! Types: [`Kind::Time`] → TIMESTAMP(NANOS, UTC) (arrow
//! `Timestamp(Nanosecond, "UTC")`), `Int` → INT64, `Float` → DOUBLE,
//! `Str` → BYTE_ARRAY UTF8. Every column is nullable (`Null` is a value
//! that was not recorded). Pages are zstd-compressed; row groups hold up to
//! 64 Ki rows.

use super::table::{Kind, Table, Val};
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::io::Write;
use std::sync::Arc;

const BATCH_ROWS: usize = 65536;

fn data_type(k: Kind) -> DataType {
    match k {
        Kind::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Str => DataType::Utf8,
    }
}

fn column(t: &Table, rows: &[Vec<Val>], i: usize) -> ArrayRef {
    let int = |v: &Val| match v {
        Val::Int(x) => Some(*x),
        _ => None,
    };
    match t.columns[i].kind {
        Kind::Time => Arc::new(
            TimestampNanosecondArray::from(rows.iter().map(|r| int(&r[i])).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Kind::Int => Arc::new(Int64Array::from(
            rows.iter().map(|r| int(&r[i])).collect::<Vec<_>>(),
        )),
        Kind::Float => Arc::new(Float64Array::from(
            rows.iter()
                .map(|r| match &r[i] {
                    Val::Float(x) => Some(*x),
                    Val::Int(x) => Some(*x as f64),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        )),
        Kind::Str => Arc::new(StringArray::from(
            rows.iter()
                .map(|r| match &r[i] {
                    Val::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        )),
    }
}

/// Write `t` as one Parquet file to `out`.
pub fn write_parquet<W: Write + Send>(t: &Table, out: W) -> Result<(), String> {
    let schema = Arc::new(Schema::new(
        t.columns
            .iter()
            .map(|c| Field::new(&c.name, data_type(c.kind), true))
            .collect::<Vec<_>>(),
    ));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(BATCH_ROWS))
        .set_created_by(format!("lpo {}", env!("CARGO_PKG_VERSION")))
        .build();
    let err = |e: parquet::errors::ParquetError| format!("writing parquet: {e}");
    let mut w = ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(err)?;
    for chunk in t.rows.chunks(BATCH_ROWS) {
        let cols: Vec<ArrayRef> = (0..t.columns.len()).map(|i| column(t, chunk, i)).collect();
        let b = RecordBatch::try_new(schema.clone(), cols)
            .map_err(|e| format!("writing parquet: {e}"))?;
        w.write(&b).map_err(err)?;
    }
    w.close().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_parquet_file_with_typed_columns() {
        let mut t = Table::new(&[
            ("timestamp", Kind::Time),
            ("n", Kind::Int),
            ("x", Kind::Float),
            ("s", Kind::Str),
        ]);
        t.row()
            .set("timestamp", Kind::Time, 5i64)
            .int("n", 7i64)
            .float("x", 0.25)
            .str("s", "hi");
        t.row();
        let mut buf = Vec::new();
        write_parquet(&t, &mut buf).unwrap();
        assert_eq!(&buf[..4], b"PAR1");
        assert_eq!(&buf[buf.len() - 4..], b"PAR1");
        // An empty table is still a valid file with its schema.
        let mut buf = Vec::new();
        write_parquet(&Table::new(&[("n", Kind::Int)]), &mut buf).unwrap();
        assert_eq!(&buf[..4], b"PAR1");
    }
}
