//! One schema, two backends: both migration folders, applied to fresh databases, must produce the
//! same tables, columns, keys, foreign keys and indexes (compared as the model in `model.rs`
//! describes), apart from the few deliberate differences listed in [`deliberate`].

mod diff;
mod model;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;

use secrecy::SecretString;
use tokenbroker::store::Store;

use crate::helpers::{Backend, TestDatabase};
use crate::migrations::migrated_to;
use diff::{Difference, Side, diff};
use model::{Column, DefaultKind, ForeignKey, Index, ReferentialAction, Schema, Table, TypeClass};

/// Differences that are features of one backend, not drift. Keep this short: anything else is
/// fixed with a new migration.
fn deliberate() -> Vec<Difference> {
    vec![
        // PostgreSQL's default collation does not sort by bytes, so network filters need a "C"
        // index; SQLite compares bytes by default and serves them from auth_events_ip_time.
        Difference::IndexOnlyOn {
            table: "auth_events".into(),
            index: "auth_events_ip_bytes".into(),
            side: Side::Postgres,
        },
    ]
}

/// A fresh database of `backend`, migrated the way the server does it (the store's migrator, with
/// its connection settings), read into the model.
async fn migrated_schema(backend: Backend) -> Schema {
    let (_database, url, _) = TestDatabase::create(backend).await;
    let store = Store::connect_lazy(&SecretString::from(url.clone())).unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    read(backend, &url).await
}

async fn read(backend: Backend, url: &str) -> Schema {
    match backend {
        Backend::Sqlite => sqlite::read(url).await,
        Backend::Postgres => postgres::read(url).await,
    }
}

fn listed(differences: &[Difference]) -> String {
    differences.iter().map(|d| format!("  - {d}\n")).collect()
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_schema() {
    let sqlite = migrated_schema(Backend::Sqlite).await;
    let postgres = migrated_schema(Backend::Postgres).await;
    // The readers see the schema at all (an empty pair would compare equal).
    for schema in [&sqlite, &postgres] {
        let roles = &schema.tables["role_assignments"];
        assert_eq!(roles.primary_key, ["id"]);
        assert!(roles.foreign_keys.contains_key(&vec!["user_id".to_owned()]));
        assert!(roles.indexes.contains_key("role_assignments_unique"));
    }

    let found = diff(&sqlite, &postgres);
    let allowed = deliberate();
    let drift: Vec<Difference> = found
        .iter()
        .filter(|d| !allowed.contains(d))
        .cloned()
        .collect();
    assert!(
        drift.is_empty(),
        "the SQLite and PostgreSQL migrations produce different schemas ({} differences); add a \
         migration to both folders that brings them together:\n{}",
        drift.len(),
        listed(&drift)
    );
    let stale: Vec<Difference> = allowed.into_iter().filter(|d| !found.contains(d)).collect();
    assert!(
        stale.is_empty(),
        "allowed differences that no longer exist; remove them from the list:\n{}",
        listed(&stale)
    );
}

/// The whole pipeline (migrate, read, compare) finds the drift migration 0011 fixes when SQLite
/// stops at 0010.
#[tokio::test]
async fn the_comparison_finds_the_tenant_key_sqlite_lacked_before_0011() {
    let (_sqlite_db, sqlite_url) = migrated_to(Backend::Sqlite, 10).await;
    let (_postgres_db, postgres_url) = migrated_to(Backend::Postgres, 10).await;
    let sqlite = read(Backend::Sqlite, &sqlite_url).await;
    let postgres = read(Backend::Postgres, &postgres_url).await;

    let found = diff(&sqlite, &postgres);

    let missing = Difference::ForeignKeyOnlyOn {
        table: "role_assignments".into(),
        columns: vec!["tenant_id".into()],
        key: reference("tenants", ReferentialAction::NoAction),
        side: Side::Postgres,
    };
    assert!(found.contains(&missing), "{}", listed(&found));
}

// The comparison itself, on hand-made models.

fn column(class: TypeClass, nullable: bool) -> Column {
    Column {
        class,
        nullable,
        default: DefaultKind::None,
    }
}

fn reference(table: &str, on_delete: ReferentialAction) -> ForeignKey {
    ForeignKey {
        table: table.into(),
        columns: vec!["id".into()],
        on_delete,
        on_update: ReferentialAction::NoAction,
    }
}

/// tenants(id) and grants(id, tenant_id → tenants) with an index on tenant_id.
fn small_schema() -> Schema {
    let tenants = Table {
        columns: BTreeMap::from([("id".into(), column(TypeClass::Text, false))]),
        primary_key: vec!["id".into()],
        ..Table::default()
    };
    let grants = Table {
        columns: BTreeMap::from([
            ("id".into(), column(TypeClass::Text, false)),
            ("tenant_id".into(), column(TypeClass::Text, false)),
        ]),
        primary_key: vec!["id".into()],
        foreign_keys: BTreeMap::from([(
            vec!["tenant_id".into()],
            reference("tenants", ReferentialAction::NoAction),
        )]),
        indexes: BTreeMap::from([(
            "grants_tenant".into(),
            Index {
                columns: vec!["tenant_id".into()],
                unique: false,
                partial: false,
            },
        )]),
        ..Table::default()
    };
    Schema {
        tables: BTreeMap::from([("tenants".into(), tenants), ("grants".into(), grants)]),
    }
}

fn grants(schema: &mut Schema) -> &mut Table {
    schema.tables.get_mut("grants").unwrap()
}

#[test]
fn identical_models_have_no_difference() {
    assert_eq!(diff(&small_schema(), &small_schema()), []);
}

#[test]
fn a_foreign_key_on_one_side_only_is_reported() {
    let mut sqlite = small_schema();
    grants(&mut sqlite).foreign_keys.clear();

    let found = diff(&sqlite, &small_schema());

    assert_eq!(
        found,
        [Difference::ForeignKeyOnlyOn {
            table: "grants".into(),
            columns: vec!["tenant_id".into()],
            key: reference("tenants", ReferentialAction::NoAction),
            side: Side::Postgres,
        }]
    );
    assert_eq!(
        found[0].to_string(),
        "table grants: foreign key (tenant_id) → tenants (id) on delete no action, \
         on update no action only on PostgreSQL"
    );
}

#[test]
fn a_foreign_key_with_another_action_is_reported() {
    let mut postgres = small_schema();
    grants(&mut postgres).foreign_keys.insert(
        vec!["tenant_id".into()],
        reference("tenants", ReferentialAction::Cascade),
    );

    let found = diff(&small_schema(), &postgres);

    assert!(
        matches!(&found[..], [Difference::ForeignKeyDiffers { table, .. }] if table == "grants"),
        "{found:?}"
    );
}

#[test]
fn column_type_nullability_and_default_are_each_reported() {
    let mut postgres = small_schema();
    let tenant_id = grants(&mut postgres).columns.get_mut("tenant_id").unwrap();
    tenant_id.class = TypeClass::Uuid;
    tenant_id.nullable = true;
    tenant_id.default = DefaultKind::Value;

    let found = diff(&small_schema(), &postgres);

    let aspects: Vec<&str> = found
        .iter()
        .map(|d| match d {
            Difference::ColumnDiffers { aspect, .. } => *aspect,
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(aspects, ["type", "nullable", "default"]);
}

#[test]
fn missing_tables_columns_and_indexes_and_changed_indexes_are_reported() {
    let mut sqlite = small_schema();
    sqlite.tables.remove("tenants");
    let mut postgres = small_schema();
    grants(&mut postgres)
        .columns
        .insert("kind".into(), column(TypeClass::Text, false));
    grants(&mut postgres)
        .indexes
        .get_mut("grants_tenant")
        .unwrap()
        .partial = true;
    grants(&mut sqlite).indexes.insert(
        "grants_kind".into(),
        Index {
            columns: vec!["kind".into()],
            unique: true,
            partial: false,
        },
    );
    grants(&mut sqlite).unique.insert(vec!["id".into()]);

    let found: Vec<String> = diff(&sqlite, &postgres)
        .iter()
        .map(ToString::to_string)
        .collect();

    assert_eq!(
        found,
        [
            "column grants.kind: only on PostgreSQL",
            "table grants: UNIQUE (id) only on SQLite",
            "index grants_kind on grants: only on SQLite",
            "index grants_tenant on grants: (tenant_id) on SQLite, (tenant_id) partial on PostgreSQL",
            "table tenants: only on PostgreSQL",
        ]
    );
}

#[test]
fn declared_types_fall_into_the_same_classes_on_both_backends() {
    for (sqlite, postgres, class) in [
        ("INTEGER", "bigint", TypeClass::Integer),
        ("BIGINT", "integer", TypeClass::Integer),
        ("TEXT", "text", TypeClass::Text),
        ("VARCHAR(40)", "character varying", TypeClass::Text),
        ("BLOB", "bytea", TypeClass::Blob),
        ("BOOLEAN", "boolean", TypeClass::Bool),
        (
            "TIMESTAMP",
            "timestamp with time zone",
            TypeClass::Timestamp,
        ),
        ("REAL", "double precision", TypeClass::Real),
    ] {
        assert_eq!(TypeClass::of(sqlite), class, "{sqlite}");
        assert_eq!(TypeClass::of(postgres), class, "{postgres}");
    }
    assert_eq!(TypeClass::of("jsonb"), TypeClass::Json);
    assert_ne!(TypeClass::of("uuid"), TypeClass::Text);
}
