//! The in-memory result of a dump: named, typed columns and rows of values.

use std::collections::HashMap;

/// The type of a column, as Parquet stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unix nanoseconds: Parquet TIMESTAMP(NANOS, UTC); RFC 3339 (UTC) in
    /// CSV and JSON.
    Time,
    /// Parquet INT64.
    Int,
    /// Parquet DOUBLE.
    Float,
    /// Parquet BYTE_ARRAY (UTF-8 string).
    Str,
}

/// One cell. `Null` is a value that was not recorded (or does not apply).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<u64> for Val {
    fn from(v: u64) -> Val {
        Val::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(v.into())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        if v.is_finite() {
            Val::Float(v)
        } else {
            Val::Null
        }
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Str(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Str(v.to_string())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// A column: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// Columns in output order and rows of cells, `rows[i].len() == columns.len()`.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    index: HashMap<String, usize>,
    pub rows: Vec<Vec<Val>>,
}

impl Table {
    /// A table with these columns and no rows.
    pub fn new(cols: &[(&str, Kind)]) -> Table {
        let mut t = Table::default();
        for (n, k) in cols {
            t.column(n, *k);
        }
        t
    }

    /// The index of column `name`, added (at the end, `Null` in earlier
    /// rows) if it is new.
    pub fn column(&mut self, name: &str, kind: Kind) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.columns.len();
        self.columns.push(Column {
            name: name.to_string(),
            kind,
        });
        self.index.insert(name.to_string(), i);
        for r in &mut self.rows {
            r.push(Val::Null);
        }
        i
    }

    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Start a row; every cell `Null` until set.
    pub fn row(&mut self) -> Row<'_> {
        self.rows.push(vec![Val::Null; self.columns.len()]);
        Row { t: self }
    }

    /// Keep only the columns `fields`, in that order. An unknown name is
    /// an error that lists the valid ones.
    pub fn select(&mut self, fields: &[String]) -> Result<(), String> {
        let mut pick = Vec::with_capacity(fields.len());
        for f in fields {
            match self.index.get(f) {
                Some(&i) => pick.push(i),
                None => {
                    let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                    return Err(format!(
                        "unknown field {f:?}; fields of this stream: {}",
                        names.join(",")
                    ));
                }
            }
        }
        let columns: Vec<Column> = pick.iter().map(|&i| self.columns[i].clone()).collect();
        for r in &mut self.rows {
            *r = pick
                .iter()
                .map(|&i| std::mem::replace(&mut r[i], Val::Null))
                .collect();
        }
        self.index = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        self.columns = columns;
        Ok(())
    }
}

/// The last row of a table, being filled.
pub struct Row<'a> {
    t: &'a mut Table,
}

impl Row<'_> {
    /// Set cell `name` (a column added as `kind` if it is new).
    pub fn set(&mut self, name: &str, kind: Kind, v: impl Into<Val>) -> &mut Self {
        let i = self.t.column(name, kind);
        if let Some(r) = self.t.rows.last_mut() {
            r[i] = v.into();
        }
        self
    }
    pub fn int(&mut self, name: &str, v: impl Into<Val>) -> &mut Self {
        self.set(name, Kind::Int, v)
    }
    pub fn float(&mut self, name: &str, v: impl Into<Val>) -> &mut Self {
        self.set(name, Kind::Float, v)
    }
    pub fn str(&mut self, name: &str, v: impl Into<Val>) -> &mut Self {
        self.set(name, Kind::Str, v)
    }
}

/// Split a `--fields` argument: `a,b, c` → [a, b, c]; empty names dropped,
/// duplicates an error.
pub fn parse_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for f in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if out.iter().any(|o| o == f) {
            return Err(format!("--fields: {f:?} is listed twice"));
        }
        out.push(f.to_string());
    }
    if out.is_empty() {
        return Err("--fields needs at least one field name".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&[("a", Kind::Int), ("b", Kind::Str)]);
        t.row().int("a", 1i64).str("b", "x");
        t.row().int("a", 2i64).float("c", 0.5);
        t
    }

    #[test]
    fn new_columns_fill_earlier_rows_with_null() {
        let t = sample();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(t.rows[0], [Val::Int(1), Val::Str("x".into()), Val::Null]);
        assert_eq!(t.rows[1], [Val::Int(2), Val::Null, Val::Float(0.5)]);
    }

    #[test]
    fn select_orders_and_drops_columns() {
        let mut t = sample();
        t.select(&["c".into(), "a".into()]).unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["c", "a"]);
        assert_eq!(t.columns[0].kind, Kind::Float);
        assert_eq!(t.rows[0], [Val::Null, Val::Int(1)]);
        assert_eq!(t.rows[1], [Val::Float(0.5), Val::Int(2)]);
        // Still addressable by name after selection.
        assert!(t.has("a") && !t.has("b"));
    }

    #[test]
    fn select_rejects_an_unknown_field_naming_the_valid_ones() {
        let mut t = sample();
        let e = t.select(&["a".into(), "nope".into()]).unwrap_err();
        assert!(e.contains("\"nope\"") && e.contains("a,b,c"), "{e}");
        assert!(!e.contains('\n'));
        // Unchanged on error.
        assert_eq!(t.columns.len(), 3);
    }

    #[test]
    fn parse_fields_trims_and_rejects_duplicates_and_empty() {
        assert_eq!(parse_fields(" a, b ,,c").unwrap(), ["a", "b", "c"]);
        assert!(parse_fields("a,a").is_err());
        assert!(parse_fields(" , ").is_err());
    }

    #[test]
    fn non_finite_floats_are_null() {
        assert_eq!(Val::from(f64::NAN), Val::Null);
        assert_eq!(Val::from(f64::INFINITY), Val::Null);
        assert_eq!(Val::from(u64::MAX), Val::Int(i64::MAX));
    }
}
