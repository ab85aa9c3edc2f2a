//! Every way two models of the schema differ, each as one readable line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::model::{ForeignKey, Index, Schema, Table};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Sqlite,
    Postgres,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    TableOnlyOn {
        table: String,
        side: Side,
    },
    ColumnOnlyOn {
        table: String,
        column: String,
        side: Side,
    },
    /// The column's type class, nullability or default, as each backend has it.
    ColumnDiffers {
        table: String,
        column: String,
        aspect: &'static str,
        sqlite: String,
        postgres: String,
    },
    PrimaryKeyDiffers {
        table: String,
        sqlite: Vec<String>,
        postgres: Vec<String>,
    },
    UniqueOnlyOn {
        table: String,
        columns: Vec<String>,
        side: Side,
    },
    ForeignKeyOnlyOn {
        table: String,
        columns: Vec<String>,
        key: ForeignKey,
        side: Side,
    },
    ForeignKeyDiffers {
        table: String,
        columns: Vec<String>,
        sqlite: ForeignKey,
        postgres: ForeignKey,
    },
    IndexOnlyOn {
        table: String,
        index: String,
        side: Side,
    },
    IndexDiffers {
        table: String,
        index: String,
        sqlite: Index,
        postgres: Index,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TableOnlyOn { table, side } => write!(f, "table {table}: only on {side}"),
            Self::ColumnOnlyOn {
                table,
                column,
                side,
            } => write!(f, "column {table}.{column}: only on {side}"),
            Self::ColumnDiffers {
                table,
                column,
                aspect,
                sqlite,
                postgres,
            } => write!(
                f,
                "column {table}.{column}: {aspect} is {sqlite} on SQLite, {postgres} on PostgreSQL"
            ),
            Self::PrimaryKeyDiffers {
                table,
                sqlite,
                postgres,
            } => write!(
                f,
                "table {table}: primary key is ({}) on SQLite, ({}) on PostgreSQL",
                sqlite.join(", "),
                postgres.join(", ")
            ),
            Self::UniqueOnlyOn {
                table,
                columns,
                side,
            } => write!(
                f,
                "table {table}: UNIQUE ({}) only on {side}",
                columns.join(", ")
            ),
            Self::ForeignKeyOnlyOn {
                table,
                columns,
                key,
                side,
            } => write!(
                f,
                "table {table}: foreign key ({}) {key} only on {side}",
                columns.join(", ")
            ),
            Self::ForeignKeyDiffers {
                table,
                columns,
                sqlite,
                postgres,
            } => write!(
                f,
                "table {table}: foreign key ({}) is {sqlite} on SQLite, {postgres} on PostgreSQL",
                columns.join(", ")
            ),
            Self::IndexOnlyOn { table, index, side } => {
                write!(f, "index {index} on {table}: only on {side}")
            }
            Self::IndexDiffers {
                table,
                index,
                sqlite,
                postgres,
            } => write!(
                f,
                "index {index} on {table}: {sqlite} on SQLite, {postgres} on PostgreSQL"
            ),
        }
    }
}

/// Every difference between the SQLite and the PostgreSQL model, tables in name order.
pub fn diff(sqlite: &Schema, postgres: &Schema) -> Vec<Difference> {
    let mut found = Vec::new();
    for name in keys(&sqlite.tables, &postgres.tables) {
        match (sqlite.tables.get(name), postgres.tables.get(name)) {
            (Some(s), Some(p)) => diff_tables(name, s, p, &mut found),
            (s, _) => found.push(Difference::TableOnlyOn {
                table: name.clone(),
                side: side_of(s.is_some()),
            }),
        }
    }
    found
}

fn diff_tables(table: &str, s: &Table, p: &Table, found: &mut Vec<Difference>) {
    for column in keys(&s.columns, &p.columns) {
        let (Some(sc), Some(pc)) = (s.columns.get(column), p.columns.get(column)) else {
            found.push(Difference::ColumnOnlyOn {
                table: table.to_owned(),
                column: column.clone(),
                side: side_of(s.columns.contains_key(column)),
            });
            continue;
        };
        let aspects = [
            ("type", sc.class.to_string(), pc.class.to_string()),
            ("nullable", sc.nullable.to_string(), pc.nullable.to_string()),
            ("default", sc.default.to_string(), pc.default.to_string()),
        ];
        for (aspect, sqlite, postgres) in aspects {
            if sqlite != postgres {
                found.push(Difference::ColumnDiffers {
                    table: table.to_owned(),
                    column: column.clone(),
                    aspect,
                    sqlite,
                    postgres,
                });
            }
        }
    }

    if s.primary_key != p.primary_key {
        found.push(Difference::PrimaryKeyDiffers {
            table: table.to_owned(),
            sqlite: s.primary_key.clone(),
            postgres: p.primary_key.clone(),
        });
    }

    let unique: BTreeSet<&Vec<String>> = s.unique.union(&p.unique).collect();
    for columns in unique {
        if s.unique.contains(columns) != p.unique.contains(columns) {
            found.push(Difference::UniqueOnlyOn {
                table: table.to_owned(),
                columns: columns.clone(),
                side: side_of(s.unique.contains(columns)),
            });
        }
    }

    for columns in keys(&s.foreign_keys, &p.foreign_keys) {
        match (s.foreign_keys.get(columns), p.foreign_keys.get(columns)) {
            (Some(sk), Some(pk)) if sk != pk => found.push(Difference::ForeignKeyDiffers {
                table: table.to_owned(),
                columns: columns.clone(),
                sqlite: sk.clone(),
                postgres: pk.clone(),
            }),
            (Some(_), Some(_)) => {}
            (sk, pk) => found.push(Difference::ForeignKeyOnlyOn {
                table: table.to_owned(),
                columns: columns.clone(),
                key: sk.or(pk).cloned().unwrap(),
                side: side_of(sk.is_some()),
            }),
        }
    }

    for index in keys(&s.indexes, &p.indexes) {
        match (s.indexes.get(index), p.indexes.get(index)) {
            (Some(si), Some(pi)) if si != pi => found.push(Difference::IndexDiffers {
                table: table.to_owned(),
                index: index.clone(),
                sqlite: si.clone(),
                postgres: pi.clone(),
            }),
            (Some(_), Some(_)) => {}
            (si, _) => found.push(Difference::IndexOnlyOn {
                table: table.to_owned(),
                index: index.clone(),
                side: side_of(si.is_some()),
            }),
        }
    }
}

/// The keys of both maps, once each, in order.
fn keys<'a, K: Ord, V>(a: &'a BTreeMap<K, V>, b: &'a BTreeMap<K, V>) -> BTreeSet<&'a K> {
    a.keys().chain(b.keys()).collect()
}

/// Which side has the thing the other lacks.
fn side_of(on_sqlite: bool) -> Side {
    if on_sqlite {
        Side::Sqlite
    } else {
        Side::Postgres
    }
}
