//! Reads a PostgreSQL database (its current schema) into the model: information_schema for tables
//! and columns, pg_catalog for keys, foreign keys and indexes.

use sqlx::{Connection, PgConnection};

use super::model::{
    Column, DefaultKind, EXPRESSION, ForeignKey, Index, ReferentialAction, Schema, Table, TypeClass,
};

/// A foreign key, its columns in key order.
#[derive(sqlx::FromRow)]
struct ReferenceRow {
    table_name: String,
    parent: String,
    columns: Vec<String>,
    parent_columns: Vec<String>,
    /// `pg_constraint.confdeltype` / `confupdtype` letters.
    on_delete: String,
    on_update: String,
}

/// One key column of an index.
#[derive(sqlx::FromRow)]
struct IndexColumnRow {
    table_name: String,
    index_name: String,
    is_unique: bool,
    partial: bool,
    /// NULL for an expression.
    column_name: Option<String>,
    /// Named only when it is not the column's own.
    collation: Option<String>,
}

pub async fn read(url: &str) -> Schema {
    let mut conn = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    let mut schema = Schema::default();

    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
           AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (name,) in tables {
        schema.tables.insert(name, Table::default());
    }

    let columns: Vec<(String, String, String, bool, Option<String>, bool)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES', \
                column_default::text, is_identity = 'YES' \
         FROM information_schema.columns WHERE table_schema = current_schema()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (table, column, data_type, nullable, default, identity) in columns {
        let Some(table) = schema.tables.get_mut(&table) else {
            continue; // a view, or the migrations table
        };
        let default = match default {
            _ if identity => DefaultKind::Generated,
            Some(d) if d.starts_with("nextval(") => DefaultKind::Generated,
            Some(_) => DefaultKind::Value,
            None => DefaultKind::None,
        };
        let column_model = Column {
            class: TypeClass::of(&data_type),
            nullable,
            default,
        };
        table.columns.insert(column, column_model);
    }

    let keys: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT t.relname::text, c.contype::text, array_agg(a.attname::text ORDER BY k.ord) \
         FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
         WHERE n.nspname = current_schema() AND c.contype IN ('p', 'u') \
         GROUP BY t.relname, c.oid, c.contype",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (table, kind, columns) in keys {
        let Some(table) = schema.tables.get_mut(&table) else {
            continue;
        };
        if kind == "p" {
            table.primary_key = columns;
        } else {
            table.unique.insert(columns);
        }
    }

    let references: Vec<ReferenceRow> = sqlx::query_as(
        "SELECT t.relname::text AS table_name, p.relname::text AS parent, \
                array_agg(a.attname::text ORDER BY k.ord) AS columns, \
                array_agg(pa.attname::text ORDER BY k.ord) AS parent_columns, \
                c.confdeltype::text AS on_delete, c.confupdtype::text AS on_update \
         FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         JOIN pg_class p ON p.oid = c.confrelid \
         CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(attnum, pattnum, ord) \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
         JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pattnum \
         WHERE n.nspname = current_schema() AND c.contype = 'f' \
         GROUP BY t.relname, p.relname, c.oid, c.confdeltype, c.confupdtype",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for row in references {
        let Some(table) = schema.tables.get_mut(&row.table_name) else {
            continue;
        };
        let name = &row.table_name;
        let reference = ForeignKey {
            table: row.parent,
            columns: row.parent_columns,
            on_delete: ReferentialAction::from_postgres(&row.on_delete)
                .unwrap_or_else(|| panic!("{name}: on delete {:?}", row.on_delete)),
            on_update: ReferentialAction::from_postgres(&row.on_update)
                .unwrap_or_else(|| panic!("{name}: on update {:?}", row.on_update)),
        };
        table.foreign_keys.insert(row.columns, reference);
    }

    // Every index that does not back a primary key or unique constraint (those are read above).
    let index_columns: Vec<IndexColumnRow> = sqlx::query_as(
        "SELECT t.relname::text AS table_name, ic.relname::text AS index_name, \
                i.indisunique AS is_unique, i.indpred IS NOT NULL AS partial, \
                a.attname::text AS column_name, \
                CASE WHEN i.indcollation[k.n - 1] <> a.attcollation THEN co.collname::text END \
                    AS collation \
         FROM pg_index i \
         JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL generate_series(1, i.indnkeyatts) AS k(n) \
         LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[k.n - 1] \
         LEFT JOIN pg_collation co ON co.oid = i.indcollation[k.n - 1] \
         WHERE n.nspname = current_schema() \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                           WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid \
                             AND c.contype IN ('p', 'u', 'x')) \
         ORDER BY t.relname, ic.relname, k.n",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for row in index_columns {
        let Some(table) = schema.tables.get_mut(&row.table_name) else {
            continue;
        };
        let column = row.column_name.unwrap_or_else(|| EXPRESSION.to_owned());
        let column = match row.collation {
            Some(collation) => format!("{column} COLLATE {collation}"),
            None => column,
        };
        table
            .indexes
            .entry(row.index_name)
            .or_insert_with(|| Index {
                columns: Vec::new(),
                unique: row.is_unique,
                partial: row.partial,
            })
            .columns
            .push(column);
    }

    conn.close().await.unwrap();
    schema
}
