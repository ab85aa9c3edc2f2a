//! Reads a SQLite database into the model: sqlite_master for the tables, then the table-valued
//! pragmas table_info, index_list, index_xinfo and foreign_key_list for each of them.

use std::collections::BTreeMap;

use sqlx::{Connection, SqliteConnection};

use super::model::{
    Column, DefaultKind, EXPRESSION, ForeignKey, Index, ReferentialAction, Schema, Table, TypeClass,
};

/// A row of `pragma foreign_key_list`: id, parent table, from, to, on update, on delete.
type Reference = (i64, String, String, Option<String>, String, String);

pub async fn read(url: &str) -> Schema {
    let mut conn = SqliteConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut schema = Schema::default();
    for (name, sql) in tables {
        let table = read_table(&mut conn, &name, &sql).await;
        schema.tables.insert(name, table);
    }
    conn.close().await.unwrap();
    schema
}

async fn read_table(conn: &mut SqliteConnection, name: &str, sql: &str) -> Table {
    let mut table = Table::default();
    // Only an INTEGER PRIMARY KEY column can be AUTOINCREMENT, so the word in the table's
    // definition says which column it is.
    let autoincrement = sql.to_ascii_uppercase().contains("AUTOINCREMENT");

    let columns: Vec<(String, String, i64, Option<String>, i64)> = sqlx::query_as(
        r#"SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid"#,
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut key: Vec<(i64, String)> = Vec::new();
    for (column, declared, not_null, default, pk) in columns {
        if pk > 0 {
            key.push((pk, column.clone()));
        }
        let default = match default {
            _ if autoincrement && pk > 0 => DefaultKind::Generated,
            Some(_) => DefaultKind::Value,
            None => DefaultKind::None,
        };
        let column_model = Column {
            class: TypeClass::of(&declared),
            // A key column is not nullable (see the model's notes on SQLite's legacy quirk).
            nullable: not_null == 0 && pk == 0,
            default,
        };
        table.columns.insert(column, column_model);
    }
    key.sort();
    table.primary_key = key.into_iter().map(|(_, column)| column).collect();

    let indexes: Vec<(String, bool, String, bool)> = sqlx::query_as(
        r#"SELECT name, "unique", origin, partial FROM pragma_index_list(?1) ORDER BY name"#,
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for (index, unique, origin, partial) in indexes {
        let columns = index_columns(conn, &index).await;
        match origin.as_str() {
            // The primary key's own index: the key is read from table_info above.
            "pk" => {}
            "u" => {
                table.unique.insert(columns);
            }
            _ => {
                let index_model = Index {
                    columns,
                    unique,
                    partial,
                };
                table.indexes.insert(index, index_model);
            }
        }
    }

    let references: Vec<Reference> = sqlx::query_as(
        r#"SELECT id, "table", "from", "to", on_update, on_delete
           FROM pragma_foreign_key_list(?1) ORDER BY id, seq"#,
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    // One row per column of each foreign key, grouped by the key's id.
    let mut keys: BTreeMap<i64, Vec<Reference>> = BTreeMap::new();
    for row in references {
        keys.entry(row.0).or_default().push(row);
    }
    for rows in keys.into_values() {
        let Some((_, parent, _, _, on_update, on_delete)) = rows.first().cloned() else {
            continue;
        };
        let columns: Vec<String> = rows.iter().map(|row| row.2.clone()).collect();
        let named: Option<Vec<String>> = rows.iter().map(|row| row.3.clone()).collect();
        // `to` is NULL when the clause names no column: the parent's primary key is meant.
        let parent_columns = match named {
            Some(named) => named,
            None => parent_key(conn, &parent).await,
        };
        let reference = ForeignKey {
            table: parent,
            columns: parent_columns,
            on_delete: ReferentialAction::from_sqlite(&on_delete)
                .unwrap_or_else(|| panic!("{name}: on delete {on_delete:?}")),
            on_update: ReferentialAction::from_sqlite(&on_update)
                .unwrap_or_else(|| panic!("{name}: on update {on_update:?}")),
        };
        table.foreign_keys.insert(columns, reference);
    }
    table
}

/// An index's key columns, in order: names, [`EXPRESSION`] for expressions, and the collation when
/// it is not SQLite's default (BINARY).
async fn index_columns(conn: &mut SqliteConnection, index: &str) -> Vec<String> {
    let columns: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT cid, name, coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
    )
    .bind(index)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    columns
        .into_iter()
        .map(|(cid, name, collation)| {
            let name = match (cid, name) {
                (-2, _) | (_, None) => EXPRESSION.to_owned(),
                (_, Some(name)) => name,
            };
            match collation {
                Some(c) if !c.eq_ignore_ascii_case("BINARY") => format!("{name} COLLATE {c}"),
                _ => name,
            }
        })
        .collect()
}

async fn parent_key(conn: &mut SqliteConnection, parent: &str) -> Vec<String> {
    let key: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
            .bind(parent)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    key.into_iter().map(|(name,)| name).collect()
}
