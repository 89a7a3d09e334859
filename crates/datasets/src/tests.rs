#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use steward_policy::Policy;

use crate::{Direction, Erase, Identity, load};

fn examples() -> Vec<(String, String)> {
    ["shop.yml", "support.yml", "crm.yml"]
        .iter()
        .map(|f| {
            let path = format!("{}/../../examples/datasets/{f}", env!("CARGO_MANIFEST_DIR"));
            (f.to_string(), std::fs::read_to_string(path).unwrap())
        })
        .collect()
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let (_, problems) = load(&files, &Policy::example().unwrap());
    problems.iter().map(ToString::to_string).collect()
}

#[test]
fn the_shipped_examples_check_clean_and_read_as_written() {
    let (catalogue, problems) = load(&examples(), &Policy::example().unwrap());
    assert!(problems.is_empty(), "{problems:#?}");
    let shop = catalogue.dataset("shop").unwrap();
    let customers = &shop.collections[0];
    assert!(customers.delete_rows.is_some());
    let email = customers.field("email").unwrap();
    assert_eq!(
        email.categories[0].0, "email",
        "taxonomy keys resolve to names"
    );
    assert_eq!(
        email.identity.as_ref().unwrap().0,
        Identity::Category("email".into())
    );
    let orders = &shop.collections[1];
    assert_eq!(orders.field("customer_id").unwrap().erase, Erase::Null);
    assert_eq!(
        orders.field("shipping_address").unwrap().erase,
        Erase::Fixed("(erased)".into())
    );
    assert_eq!(
        orders.field("customer_id").unwrap().references[0].direction,
        Direction::From
    );
    assert_eq!(orders.field("total_cents").unwrap().erase, Erase::Keep);
    // Children before parents: orders and sign-ins before their customer.
    let order: Vec<&str> = catalogue
        .erase_order(0)
        .into_iter()
        .map(|c| shop.collections[c].name.as_str())
        .collect();
    assert_eq!(order, ["orders", "login_events", "customers"]);
    assert!(catalogue.dataset("crm").unwrap().external.is_some());
    // Four references: two in the shop, one from the support desk into it, one inside it.
    assert_eq!(catalogue.edges.len(), 4);
}

/// The CRM's connection: the webhook endpoint it is asked through.
fn crm_endpoint() -> crate::live::Connection {
    crate::live::Connection {
        url: "webhook:whe_0123".into(),
        schema: None,
    }
}

/// An external system is asked through a webhook endpoint the settings name, and a database
/// through a database: each without the other is refused when the datasets are attached.
#[test]
fn an_external_system_needs_its_endpoint_and_a_database_its_database() {
    let policy = Policy::example().unwrap();
    let (catalogue, problems) = load(&examples()[2..], &policy);
    assert!(problems.is_empty(), "{problems:?}");
    let with = |url: &str| {
        crate::run::Fanout::new(
            catalogue.clone(),
            [(
                "crm".to_string(),
                crate::live::Connection {
                    url: url.into(),
                    schema: None,
                },
            )]
            .into(),
        )
    };
    let none = crate::run::Fanout::new(catalogue.clone(), Default::default()).unwrap_err();
    assert!(
        none.to_string().contains("names no webhook endpoint"),
        "{none}"
    );
    let db = with("postgres://127.0.0.1/crm").unwrap_err();
    assert!(db.to_string().contains("webhook:whe_"), "{db}");
    assert!(with("webhook:").is_err());
    let fanout = with("webhook:whe_0123").unwrap();
    assert_eq!(fanout.endpoint("crm"), Some("whe_0123"));
    assert_eq!(fanout.endpoint("shop"), None);
    let (shop, _) = load(&examples()[..1], &policy);
    let wrong =
        crate::run::Fanout::new(shop, [("shop".to_string(), crm_endpoint())].into()).unwrap_err();
    assert!(
        wrong.to_string().contains("not a webhook endpoint"),
        "{wrong}"
    );
}

/// Every problem is reported at once, each at its line and column.
#[test]
fn a_broken_file_names_every_error_where_it_is() {
    let broken = "\
dataset:
  - fides_key: shop
    collections:
      - name: customers
        steward: {erase: delete_row}
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: email
            data_categories: [user.contact.emial]
            fides_meta: {identity: email}
          - name: best_friend
            fides_meta:
              references: [{field: customers.id}]
      - name: orders
        fields:
          - name: customer_id
            fides_meta:
              references: [{field: customers.id, direction: from}]
          - name: coupon
            fides_meta:
              references: [{field: coupons.id}]
          - name: note
            data_categories: [name]
            colour: blue
      - name: invoices
        steward: {erase: delete_row}
        fields:
          - name: payment_id
            fides_meta:
              references: [{field: payments.id}]
      - name: payments
        steward: {erase: delete_row}
        fields:
          - name: id
          - name: invoice_id
            fides_meta:
              references: [{field: invoices.payment_id}]
      - name: diary
        fields:
          - name: text
            data_categories: [name]
";
    let found = problems(&[("broken.yml", broken)]);
    let expected = [
        "broken.yml:10:31: error[unknown_category]",
        "broken.yml:19:29: error[deletion_forbidden]",
        "broken.yml:22:29: error[dangling_reference]",
        "broken.yml:25:13: error[unknown_key]: `colour`",
        "broken.yml:31:29: error[reference_cycle]",
        "broken.yml:38:29: error[reference_cycle]",
        "broken.yml:39:9: error[unreachable]: collection `diary`",
        "broken.yml:15:9: error[missing_key]: erasure deletes or masks rows of `orders`",
        "broken.yml:26:9: error[missing_key]: erasure deletes or masks rows of `invoices`",
        "broken.yml:32:9: error[missing_key]: erasure deletes or masks rows of `payments`",
        "broken.yml:39:9: error[missing_key]: erasure deletes or masks rows of `diary`",
    ];
    for e in expected {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "missing {e}\nfound:\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
}

#[test]
fn yaml_that_does_not_parse_is_placed_too() {
    let found = problems(&[("bad.yml", "dataset:\n  - fides_key: [shop\n")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("bad.yml:3:1: error[yaml_syntax]"),
        "{found:?}"
    );
    let found = problems(&[("dup.yml", "dataset: []\ndataset: []\n")]);
    assert!(
        found[0].starts_with("dup.yml:2:1: error[yaml_syntax]: `dataset` is given twice"),
        "{found:?}"
    );
}

#[test]
fn a_key_declared_in_two_files_is_named_with_both_places() {
    let one = "dataset:\n  - fides_key: crm\n    steward: {external: true, identities: [email]}\n";
    let found = problems(&[("a.yml", one), ("b.yml", one)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("b.yml:2:5: error[duplicate_name]") && found[0].contains("a.yml:2:5"),
        "{found:?}"
    );
    let found = problems(&[(
        "c.yml",
        "dataset:\n  - fides_key: crm\n    steward: {external: true}\n",
    )]);
    assert!(found[0].contains("names the `identities`"), "{found:?}");
}

/// Live checks run against the machine's PostgreSQL and MariaDB, each in a schema or
/// database of the test's own.
mod live {
    use super::*;
    use crate::live::{Connection, Kind, check, introspect};

    pub(crate) fn pg_url() -> String {
        std::env::var("STEWARD_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    pub(crate) fn mysql_url() -> String {
        std::env::var("STEWARD_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
    }

    fn unique(prefix: &str) -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}_{}_{n}", std::process::id())
    }

    pub(crate) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn example_sql(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../../examples/datasets/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// A PostgreSQL schema holding the example shop, with `extra` run after it.
    async fn pg_shop(extra: &str) -> (Connection, tokio_postgres::Client, String) {
        let schema = unique("ds");
        let conn = Connection {
            url: pg_url(),
            schema: Some(schema.clone()),
        };
        let client = crate::live::pg_connect(&conn).await.unwrap();
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; SET search_path = {schema}; {} {extra}",
                example_sql("schema-postgres.sql")
            ))
            .await
            .unwrap();
        (conn, client, schema)
    }

    async fn mysql_support(extra: &str) -> (Connection, String) {
        use mysql_async::prelude::Queryable;
        let db = unique("ds");
        let pool = mysql_async::Pool::new(mysql_url().as_str());
        let mut c = pool.get_conn().await.unwrap();
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        c.query_drop(format!("USE {db}")).await.unwrap();
        for statement in example_sql("schema-mariadb.sql")
            .split(';')
            .chain(extra.split(';'))
            .map(|s| {
                s.lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .filter(|s| !s.trim().is_empty())
        {
            c.query_drop(statement).await.unwrap();
        }
        drop(c);
        pool.disconnect().await.unwrap();
        (
            Connection {
                url: format!("{}/{db}", mysql_url()),
                schema: None,
            },
            db,
        )
    }

    /// Drops a test's PostgreSQL schema and MariaDB database.
    async fn drop_both(client: &tokio_postgres::Client, schema: &str, db: &str) {
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
        drop_mysql(db).await;
    }

    async fn drop_mysql(db: &str) {
        use mysql_async::prelude::Queryable;
        let pool = mysql_async::Pool::new(mysql_url().as_str());
        let mut c = pool.get_conn().await.unwrap();
        c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
        drop(c);
        pool.disconnect().await.unwrap();
    }

    fn lines(problems: &[crate::Problem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_examples_match_their_schemas_on_postgresql_and_mariadb() {
        runtime().block_on(async {
            let (catalogue, problems) = load(&examples(), &Policy::example().unwrap());
            assert!(problems.is_empty());
            let (pg, client, schema) = pg_shop("").await;
            let (my, db) = mysql_support("").await;
            let shop = introspect(&pg).await.unwrap();
            assert_eq!(shop.tables["orders"].foreign[0].table, "customers");
            assert_eq!(shop.tables["customers"].primary, ["id"]);
            assert_eq!(
                shop.tables["customers"].uniques,
                [vec!["email".to_string()]]
            );
            let found = check(&catalogue, 0, Kind::Postgres, &shop);
            assert!(found.is_empty(), "{:#?}", lines(&found));
            let support = introspect(&my).await.unwrap();
            assert_eq!(
                support.tables["ticket_messages"].foreign[0].referred,
                ["id"]
            );
            let found = check(&catalogue, 1, Kind::MySql, &support);
            assert!(found.is_empty(), "{:#?}", lines(&found));
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
            drop_mysql(&db).await;
        });
    }

    /// The live schema's surprises, each named where the dataset declares what they break.
    #[test]
    fn a_schema_that_differs_is_named_at_every_place() {
        runtime().block_on(async {
            let (catalogue, _) = load(&examples(), &Policy::example().unwrap());
            let (pg, client, schema) = pg_shop(
                "ALTER TABLE customers DROP COLUMN phone;
                 ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
                 ALTER TABLE orders ALTER COLUMN total_cents TYPE text;
                 CREATE TABLE wishlists (id BIGINT PRIMARY KEY,
                                         customer_id BIGINT REFERENCES customers (id));
                 ALTER TABLE login_events DROP CONSTRAINT login_events_pkey;",
            )
            .await;
            let shop = introspect(&pg).await.unwrap();
            let found = lines(&check(&catalogue, 0, Kind::Postgres, &shop));
            let expected = [
                "shop.yml:12:23: error[undeclared_table]: erasure deletes rows of `customers`, but table `wishlists`",
                "shop.yml:31:13: error[missing_column]: table `customers` has no column `phone`",
                "shop.yml:53:22: error[erasure_impossible]: erasure sets `orders.customer_id` to NULL, but the column is NOT NULL",
                "shop.yml:69:26: error[wrong_type]: `orders.total_cents` is declared integer, but the column is `text`",
                "shop.yml:70:9: error[no_row_key]: table `login_events` has no primary key",
                "shop.yml:74:13: error[wrong_key]: `login_events` declares (id) as its primary key, but the table's primary key is ()",
            ];
            assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
            for (f, e) in found.iter().zip(expected) {
                assert!(f.starts_with(e), "expected {e}\nfound:\n{}", found.join("\n"));
            }
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();

            // MariaDB: a foreign key between declared tables that the dataset does not
            // declare, and an undeclared table referring to one whose rows go.
            let (my, db) = mysql_support(
                "ALTER TABLE tickets ADD COLUMN parent BIGINT;
                 ALTER TABLE tickets ADD FOREIGN KEY (parent) REFERENCES ticket_messages (id);
                 CREATE TABLE attachments (id BIGINT PRIMARY KEY, ticket_id BIGINT,
                                           FOREIGN KEY (ticket_id) REFERENCES tickets (id)) ENGINE = InnoDB",
            )
            .await;
            let support = introspect(&my).await.unwrap();
            let found = lines(&check(&catalogue, 1, Kind::MySql, &support));
            let expected = [
                "support.yml:7:9: error[undeclared_reference]: table `tickets` has a foreign key (parent) to `ticket_messages` (id)",
                "support.yml:9:18: error[undeclared_table]: erasure deletes rows of `tickets`, but table `attachments`",
            ];
            assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
            for (f, e) in found.iter().zip(expected) {
                assert!(f.starts_with(e), "expected {e}\nfound:\n{}", found.join("\n"));
            }
            drop_mysql(&db).await;
        });
    }

    /// The walk finds exactly one customer's rows in both databases: by their email in the
    /// shop and the support desk, through the shop's customer id into the support desk's
    /// tickets, and from tickets to their messages — and nobody else's.
    #[test]
    fn the_walk_finds_exactly_the_subjects_rows_in_both_databases() {
        let (catalogue, _) = load(&examples(), &Policy::example().unwrap());
        let rt = runtime();
        let (pg, client, schema, my, db) = rt.block_on(async {
            let (pg, client, schema) = pg_shop(
                "INSERT INTO customers (id, email, full_name, phone) VALUES
                    (1, 'ann@example.com', 'Ann', '+86 1'), (2, 'bo@example.com', 'Bo', NULL);
                 INSERT INTO orders VALUES (10, 1, 'Street 1', 'tea', 500), (11, 2, 'Road 2', 'cups', 900),
                                           (12, 1, 'Street 1', 'pot', 1500);
                 INSERT INTO login_events VALUES (100, 1, '10.0.0.1', now()), (101, 2, '10.0.0.2', now());",
            )
            .await;
            let (my, db) = mysql_support(
                "INSERT INTO tickets VALUES (7, 'ann@other.example', 1, 'late tea'),
                                            (8, 'bo@example.com', 2, 'broken cup'),
                                            (9, 'ann@example.com', NULL, 'invoice');
                 INSERT INTO ticket_messages VALUES (70, 7, '+86 1', '2026-01-02 03:04:05.006'),
                                                    (80, 8, NULL, '2026-01-02 03:04:05')",
            )
            .await;
            (pg, client, schema, my, db)
        });
        let mut connections = std::collections::BTreeMap::new();
        connections.insert("shop".to_string(), pg);
        connections.insert("support".to_string(), my);
        connections.insert("crm".to_string(), crm_endpoint());
        let fanout = std::sync::Arc::new(crate::run::Fanout::new(catalogue, connections).unwrap());
        let mut ids = crate::run::Identities::new();
        ids.insert(
            Identity::Category("email".into()),
            vec!["ann@example.com".into()],
        );
        let found = fanout.access(ids.clone()).unwrap();
        let got: Vec<(String, Vec<crate::run::Row>)> = found
            .systems
            .iter()
            .flat_map(|s| {
                let d = &fanout.catalogue.datasets[s.dataset];
                s.collections.iter().map(move |c| {
                    let mut rows = c.rows.clone();
                    rows.sort();
                    (
                        format!("{}.{}", d.key, d.collections[c.collection].name),
                        rows,
                    )
                })
            })
            .collect();
        let some = |v: &str| Some(v.to_string());
        assert_eq!(got[0].0, "shop.customers");
        assert_eq!(got[0].1.len(), 1);
        assert_eq!(
            got[0].1[0][..4],
            [
                some("1"),
                some("ann@example.com"),
                some("Ann"),
                some("+86 1")
            ]
        );
        assert_eq!(got[1].0, "shop.orders");
        assert_eq!(
            got[1]
                .1
                .iter()
                .map(|r| r[0].clone().unwrap())
                .collect::<Vec<_>>(),
            ["10", "12"]
        );
        assert_eq!(got[2].0, "shop.login_events");
        assert_eq!(got[2].1.len(), 1);
        assert_eq!(got[3].0, "support.tickets");
        // Ticket 7 through the shop's customer id (another address), 9 by the address.
        assert_eq!(
            got[3]
                .1
                .iter()
                .map(|r| r[0].clone().unwrap())
                .collect::<Vec<_>>(),
            ["7", "9"]
        );
        assert_eq!(got[4].0, "support.ticket_messages");
        assert_eq!(
            got[4].1,
            [vec![
                some("70"),
                some("7"),
                some("+86 1"),
                some("2026-01-02 03:04:05.006000")
            ]]
        );
        assert_eq!(got.len(), 5);
        // A second walk reuses the connections and finds the same.
        assert_eq!(fanout.access(ids.clone()).unwrap(), found);
        // Nobody's address finds nothing.
        ids.insert(
            Identity::Category("email".into()),
            vec!["nobody@example.com".into()],
        );
        let none = fanout.access(ids.clone()).unwrap();
        assert!(none.systems.iter().all(|s| s.collections.is_empty()));
        rt.block_on(drop_both(&client, &schema, &db));
    }

    /// Erasure in both databases: the subject's rows deleted children first (a foreign key
    /// forbids the customer first), orders kept for tax with the reference cleared and the
    /// address overwritten, nobody else's row touched; carried out again, nothing more
    /// happens.
    #[test]
    fn erasure_plans_and_carries_out_children_first_and_only_the_subjects() {
        let (catalogue, _) = load(&examples(), &Policy::example().unwrap());
        let rt = runtime();
        let seed_pg = "INSERT INTO customers (id, email, full_name, phone) VALUES
                (1, 'ann@example.com', 'Ann', '+86 1'), (2, 'bo@example.com', 'Bo', NULL);
             INSERT INTO orders VALUES (10, 1, 'Street 1', 'tea', 500), (11, 2, 'Road 2', 'cups', 900),
                                       (12, 1, 'Street 1', 'pot', 1500);
             INSERT INTO login_events VALUES (100, 1, '10.0.0.1', now()), (101, 2, '10.0.0.2', now());";
        let seed_my = "INSERT INTO tickets VALUES (7, 'ann@other.example', 1, 'late tea'),
                                        (8, 'bo@example.com', 2, 'broken cup'),
                                        (9, 'ann@example.com', NULL, 'invoice');
             INSERT INTO ticket_messages VALUES (70, 7, '+86 1', '2026-01-02 03:04:05'),
                                                (80, 8, NULL, '2026-01-02 03:04:05')";
        let (pg, client, schema, my, db) = rt.block_on(async {
            let (pg, client, schema) = pg_shop(seed_pg).await;
            let (my, db) = mysql_support(seed_my).await;
            (pg, client, schema, my, db)
        });
        let mut connections = std::collections::BTreeMap::new();
        connections.insert("shop".to_string(), pg);
        connections.insert("support".to_string(), my.clone());
        connections.insert("crm".to_string(), crm_endpoint());
        let fanout = std::sync::Arc::new(crate::run::Fanout::new(catalogue, connections).unwrap());
        let mut ids = crate::run::Identities::new();
        ids.insert(
            Identity::Category("email".into()),
            vec!["ann@example.com".into()],
        );
        let found = fanout.access(ids.clone()).unwrap();
        let hash = |v: &str| format!("h({v})");
        let plans = crate::erase::plan(&fanout.catalogue, &found, &[], &hash).unwrap();
        let shop = &plans[0];
        let order: Vec<&str> = shop
            .steps
            .iter()
            .map(|s| match s {
                crate::erase::Step::Delete { collection, .. } => collection.as_str(),
                crate::erase::Step::Update { collection, .. } => collection.as_str(),
            })
            .collect();
        assert_eq!(order, ["orders", "login_events", "customers"]);
        let done: Vec<crate::erase::Done> = plans
            .iter()
            .map(|p| fanout.carry_out(p.clone()).unwrap())
            .collect();
        assert_eq!(
            done[0].deleted,
            [
                ("customers".to_string(), 1),
                ("login_events".to_string(), 1)
            ]
            .into()
        );
        assert_eq!(done[0].masked, [("orders".to_string(), 2)].into());
        assert_eq!(
            done[1].deleted,
            [
                ("ticket_messages".to_string(), 1),
                ("tickets".to_string(), 2)
            ]
            .into()
        );
        let left = rt.block_on(async {
            let rows = client
                .query(
                    &format!(
                        "SELECT 'c' || id || coalesce(email, '') FROM {schema}.customers
                         UNION ALL SELECT 'o' || id || ':' || coalesce(customer_id::text, '-') || ':' || coalesce(shipping_address, '-') || ':' || items FROM {schema}.orders
                         UNION ALL SELECT 'l' || id FROM {schema}.login_events ORDER BY 1"
                    ),
                    &[],
                )
                .await
                .unwrap();
            rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>()
        });
        assert_eq!(
            left,
            [
                "c2bo@example.com",
                "l101",
                "o10:-:(erased):tea",
                "o11:2:Road 2:cups",
                "o12:-:(erased):pot"
            ]
        );
        let tickets = rt.block_on(async {
            use mysql_async::prelude::Queryable;
            let pool = crate::live::mysql_pool(&my).unwrap();
            let mut c = pool.get_conn().await.unwrap();
            let t: Vec<u64> = c
                .query("SELECT id FROM tickets UNION ALL SELECT id FROM ticket_messages ORDER BY 1")
                .await
                .unwrap();
            drop(c);
            pool.disconnect().await.unwrap();
            t
        });
        assert_eq!(tickets, [8, 80]);
        // Again: the same plan does nothing more and fails on nothing.
        let again = fanout.carry_out(plans[0].clone()).unwrap();
        assert!(again.deleted.values().all(|n| *n == 0), "{again:?}");
        // A walk now finds nothing of the subject's.
        let after = fanout.access(ids).unwrap();
        assert!(
            after.systems.iter().all(|s| s.collections.is_empty()),
            "{after:?}"
        );
        rt.block_on(drop_both(&client, &schema, &db));
    }
}

/// The shop as a SQLite file: checked against its schema, walked and erased like the others,
/// its foreign keys enforced (the customer's row goes last).
#[test]
fn the_shop_as_a_sqlite_file_is_checked_walked_and_erased() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.db");
    let c = rusqlite::Connection::open(&file).unwrap();
    c.execute_batch(
        &std::fs::read_to_string(format!(
            "{}/../../examples/datasets/schema-sqlite.sql",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    c.execute_batch(
        "INSERT INTO customers (id, email, full_name, phone) VALUES (1, 'ann@example.com', 'Ann', '+86 1'), (2, 'bo@example.com', 'Bo', NULL);
         INSERT INTO orders VALUES (10, 1, 'Street 1', 'tea', 500), (11, 2, 'Road 2', 'cups', 900);
         INSERT INTO login_events VALUES (100, 1, '10.0.0.1', '2026-01-01 00:00:00'), (101, 2, '10.0.0.2', '2026-01-01 00:00:00');",
    )
    .unwrap();
    drop(c);
    let shop: Vec<(String, String)> = examples().into_iter().take(1).collect();
    let (catalogue, problems) = load(&shop, &Policy::example().unwrap());
    assert!(problems.is_empty(), "{problems:?}");
    let conn = crate::live::Connection {
        url: format!("sqlite://{}", file.display()),
        schema: None,
    };
    let schema = live::runtime()
        .block_on(crate::live::introspect(&conn))
        .unwrap();
    assert_eq!(schema.tables["orders"].foreign[0].referred, ["id"]);
    assert_eq!(
        schema.tables["customers"].uniques,
        [vec!["email".to_string()]]
    );
    let found = crate::live::check(&catalogue, 0, crate::live::Kind::Sqlite, &schema);
    assert!(found.is_empty(), "{found:?}");
    let fanout = std::sync::Arc::new(
        crate::run::Fanout::new(catalogue, [("shop".to_string(), conn)].into()).unwrap(),
    );
    let mut ids = crate::run::Identities::new();
    ids.insert(
        Identity::Category("email".into()),
        vec!["ann@example.com".into()],
    );
    let found = fanout.access(ids.clone()).unwrap();
    let rows: usize = found.systems[0]
        .collections
        .iter()
        .map(|c| c.rows.len())
        .sum();
    assert_eq!(rows, 3);
    let plans =
        crate::erase::plan(&fanout.catalogue, &found, &[], &|v: &str| format!("h({v})")).unwrap();
    let done = fanout.carry_out(plans[0].clone()).unwrap();
    assert_eq!(
        done.deleted,
        [
            ("customers".to_string(), 1),
            ("login_events".to_string(), 1)
        ]
        .into()
    );
    assert_eq!(done.masked, [("orders".to_string(), 1)].into());
    let c = rusqlite::Connection::open(&file).unwrap();
    let left: Vec<String> = c
        .prepare("SELECT email FROM customers UNION ALL SELECT coalesce(customer_id, '-') || shipping_address FROM orders ORDER BY 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(left, ["-(erased)", "2Road 2", "bo@example.com"]);
}

/// A plan keeps what a hold covers and hashes what a dataset says to, from the values found.
#[test]
fn a_plan_keeps_held_categories_and_hashes_from_the_values_found() {
    let text = "\
dataset:
  - fides_key: app
    collections:
      - name: users
        steward: {erase: delete_row}
        fields:
          - name: id
            fides_meta: {primary_key: true, identity: subject_id}
          - name: email
            data_categories: [email]
          - name: phone
            data_categories: [phone]
      - name: notes
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: user_id
            fides_meta:
              references: [{field: users.id, direction: from}]
            steward: {erase: null}
          - name: author_email
            data_categories: [email]
            steward: {erase: hash}
";
    let (catalogue, problems) = load(
        &[("app.yml".into(), text.into())],
        &Policy::example().unwrap(),
    );
    assert!(problems.is_empty(), "{problems:?}");
    let some = |v: &str| Some(v.to_string());
    let found = crate::run::Found {
        systems: vec![crate::run::SystemFound {
            dataset: 0,
            collections: vec![
                crate::run::CollectionFound {
                    collection: 0,
                    rows: vec![vec![some("u1"), some("a@x"), some("+1")]],
                },
                crate::run::CollectionFound {
                    collection: 1,
                    rows: vec![
                        vec![some("n1"), some("u1"), some("a@x")],
                        vec![some("n2"), some("u1"), None],
                    ],
                },
            ],
        }],
    };
    let hash = |v: &str| format!("h({v})");
    let plans = crate::erase::plan(&catalogue, &found, &[], &hash).unwrap();
    use crate::erase::Step;
    assert_eq!(
        plans[0].steps,
        [
            Step::Update {
                collection: "notes".into(),
                key: vec!["id".into()],
                fields: vec!["user_id".into(), "author_email".into()],
                rows: vec![
                    (vec!["n1".into()], vec![None, some("h(a@x)")]),
                    (vec!["n2".into()], vec![None, None]),
                ],
            },
            Step::Delete {
                collection: "users".into(),
                key: vec!["id".into()],
                rows: vec![vec!["u1".into()]],
            },
        ]
    );
    // The phone is held: the user's row stays with its phone, its other PI cleared; the
    // notes' author (email, not held) is hashed still.
    let plans = crate::erase::plan(&catalogue, &found, &["phone".to_string()], &hash).unwrap();
    assert_eq!(
        plans[0].steps[1],
        Step::Update {
            collection: "users".into(),
            key: vec!["id".into()],
            fields: vec!["email".into()],
            rows: vec![(vec!["u1".into()], vec![None])],
        }
    );
    // Email held: the user row stays (its phone cleared), so the notes keep their reference
    // to it, and their author.
    let plans = crate::erase::plan(&catalogue, &found, &["email".to_string()], &hash).unwrap();
    assert_eq!(
        plans[0].steps,
        [Step::Update {
            collection: "users".into(),
            key: vec!["id".into()],
            fields: vec!["phone".into()],
            rows: vec![(vec!["u1".into()], vec![None])],
        }]
    );
}
