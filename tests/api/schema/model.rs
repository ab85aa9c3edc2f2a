//! A backend-neutral picture of a migrated database: what both readers produce and the diff compares.
//!
//! Normalization choices (what counts as "the same" on SQLite and PostgreSQL):
//! - Types are compared by class, not by spelling: SQLite INTEGER and PostgreSQL BIGINT, INTEGER or
//!   SMALLINT are all `integer` (widths are not compared: SQLite stores every integer in 64 bits);
//!   TEXT/VARCHAR/CHAR are `text`; BLOB/BYTEA are `blob`; BOOLEAN is `bool`; TIMESTAMP/DATE/TIME
//!   are `timestamp`; REAL/DOUBLE/FLOAT are `real`; NUMERIC/DECIMAL are `numeric`; JSON/JSONB are
//!   `json` and UUID is `uuid` (so a PostgreSQL-only native type shows up as drift against TEXT).
//! - Defaults are compared by presence, not by expression text (`'{}'` and `'{}'::text` are both
//!   "a value"). SQLite AUTOINCREMENT and PostgreSQL identity or serial columns are `generated`. A
//!   plain SQLite `INTEGER PRIMARY KEY` (a rowid alias) is not counted as generated.
//! - A primary-key column is not nullable. PostgreSQL enforces that; SQLite, for legacy reasons,
//!   lets a non-INTEGER primary key hold NULL unless the column also says NOT NULL. The readers
//!   record the declared intent (a key), so this quirk is not reported on every table.
//! - Column order is not compared (the store always names its columns).
//! - Unique constraints (`UNIQUE` in the table definition) are compared by their column lists, as
//!   their index names differ by backend (`sqlite_autoindex_t_1`, `t_col_key`). Indexes created
//!   with CREATE INDEX are compared by name: columns in order, uniqueness, and whether the index is
//!   partial (the predicate's text is not compared: each backend rewrites it its own way). An
//!   expression in an index is `<expression>`; a collation other than the column's own is
//!   written after the column (`ip COLLATE C`).
//! - CHECK constraints, triggers and functions are not compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub columns: BTreeMap<String, Column>,
    /// In key order; empty when the table has no primary key.
    pub primary_key: Vec<String>,
    /// Column lists of UNIQUE constraints (not of unique indexes made with CREATE UNIQUE INDEX).
    pub unique: BTreeSet<Vec<String>>,
    /// Keyed by the referencing columns, in order.
    pub foreign_keys: BTreeMap<Vec<String>, ForeignKey>,
    /// Indexes made with CREATE INDEX, by name.
    pub indexes: BTreeMap<String, Index>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub class: TypeClass,
    pub nullable: bool,
    pub default: DefaultKind,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TypeClass {
    Integer,
    Real,
    Numeric,
    Text,
    Blob,
    Bool,
    Timestamp,
    Json,
    Uuid,
    /// Anything else, as declared (lower case).
    Other(String),
}

impl TypeClass {
    /// Classifies a declared type (SQLite's `pragma table_info` type) or a PostgreSQL
    /// `information_schema.columns.data_type`.
    pub fn of(declared: &str) -> Self {
        let t = declared.trim().to_ascii_lowercase();
        if t.contains("bool") {
            Self::Bool
        } else if t.starts_with("timestamp") || t.starts_with("date") || t.starts_with("time") {
            Self::Timestamp
        } else if t.contains("int") && !t.starts_with("interval") {
            Self::Integer
        } else if t.contains("char") || t.contains("clob") || t.contains("text") {
            Self::Text
        } else if t.contains("blob") || t == "bytea" {
            Self::Blob
        } else if t.contains("real") || t.contains("floa") || t.contains("doub") {
            Self::Real
        } else if t.starts_with("numeric") || t.starts_with("decimal") {
            Self::Numeric
        } else if t.starts_with("json") {
            Self::Json
        } else if t == "uuid" {
            Self::Uuid
        } else {
            Self::Other(t)
        }
    }
}

impl fmt::Display for TypeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Integer => "integer",
            Self::Real => "real",
            Self::Numeric => "numeric",
            Self::Text => "text",
            Self::Blob => "blob",
            Self::Bool => "bool",
            Self::Timestamp => "timestamp",
            Self::Json => "json",
            Self::Uuid => "uuid",
            Self::Other(declared) => return write!(f, "other ({declared:?})"),
        };
        f.write_str(name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultKind {
    None,
    Value,
    /// AUTOINCREMENT, identity or serial: the database numbers the rows.
    Generated,
}

impl fmt::Display for DefaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "no default",
            Self::Value => "a default value",
            Self::Generated => "generated",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignKey {
    pub table: String,
    pub columns: Vec<String>,
    pub on_delete: ReferentialAction,
    pub on_update: ReferentialAction,
}

impl fmt::Display for ForeignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "→ {} ({}) on delete {}, on update {}",
            self.table,
            self.columns.join(", "),
            self.on_delete,
            self.on_update
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReferentialAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl ReferentialAction {
    /// SQLite's `pragma foreign_key_list` spelling ("NO ACTION", "CASCADE", …).
    pub fn from_sqlite(spelled: &str) -> Option<Self> {
        match spelled.to_ascii_uppercase().as_str() {
            "NO ACTION" | "NONE" => Some(Self::NoAction),
            "RESTRICT" => Some(Self::Restrict),
            "CASCADE" => Some(Self::Cascade),
            "SET NULL" => Some(Self::SetNull),
            "SET DEFAULT" => Some(Self::SetDefault),
            _ => None,
        }
    }

    /// PostgreSQL's `pg_constraint.confdeltype` / `confupdtype` letter.
    pub fn from_postgres(letter: &str) -> Option<Self> {
        match letter {
            "a" => Some(Self::NoAction),
            "r" => Some(Self::Restrict),
            "c" => Some(Self::Cascade),
            "n" => Some(Self::SetNull),
            "d" => Some(Self::SetDefault),
            _ => None,
        }
    }
}

impl fmt::Display for ReferentialAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoAction => "no action",
            Self::Restrict => "restrict",
            Self::Cascade => "cascade",
            Self::SetNull => "set null",
            Self::SetDefault => "set default",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Column names, `<expression>` for an expression, `name COLLATE x` for a collation other than
    /// the column's own.
    pub columns: Vec<String>,
    pub unique: bool,
    pub partial: bool,
}

/// How an expression stands in an index's column list.
pub const EXPRESSION: &str = "<expression>";

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unique {
            f.write_str("unique ")?;
        }
        write!(f, "({})", self.columns.join(", "))?;
        if self.partial {
            f.write_str(" partial")?;
        }
        Ok(())
    }
}
