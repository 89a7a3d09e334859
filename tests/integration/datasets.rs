//! Issue 16: dataset files — `steward datasets check` on the shipped examples, and on a broken
//! copy against a live PostgreSQL schema of the test's own, every error at file:line:column.

use std::process::Command;

use crate::kit::{s, steward, steward_env};

fn examples() -> [String; 2] {
    ["shop.yml", "support.yml"]
        .map(|f| format!("{}/examples/datasets/{f}", env!("CARGO_MANIFEST_DIR")))
}

/// `psql` on the test database, as the tests' PostgreSQL user.
fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            &steward_store::test_url(),
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn p23_the_shipped_datasets_check_clean() {
    let [shop, support] = examples();
    let run = steward(&["datasets", "check", &shop, &support]).ok();
    assert!(
        run.stdout
            .contains("ok — 3 datasets, 5 collections, 4 references")
            && run.stdout.contains("crm: external"),
        "{}",
        run.stdout
    );
}

/// A copy with a misspelt category, a reference whose rows would block a delete and a cycle,
/// against a live schema missing a column: every error at once, each where it is (exit 3).
#[test]
fn p28_a_broken_dataset_names_every_error_with_its_place() {
    let [shop, _] = examples();
    let text = std::fs::read_to_string(shop).unwrap();
    let broken = text
        .replace("[user.contact.email]", "[user.contact.emial]")
        .replacen("            steward:\n              erase: null             # cleared before the customer's row is deleted\n", "", 1)
        .replace(
            "              data_type: time\n      - name: orders",
            "              data_type: time\n              references:\n                - field: orders.id\n      - name: orders",
        );
    assert_ne!(broken, text);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yml");
    std::fs::write(&file, &broken).unwrap();
    let schema = format!("it_datasets_{}", std::process::id());
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}; {} ALTER TABLE customers DROP COLUMN phone;",
        std::fs::read_to_string(format!(
            "{}/examples/datasets/schema-postgres.sql",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    ));
    let url = steward_store::test_url();
    let run = steward_env(
        &["datasets", "check", s(&file)],
        &[
            ("STEWARD_DATASET_SHOP_URL", url.as_str()),
            ("STEWARD_DATASET_SHOP_SCHEMA", schema.as_str()),
        ],
    );
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let name = s(&file);
    for expected in [
        format!("{name}:19:31: error[unknown_category]"),
        format!("{name}:31:13: error[missing_column]: table `customers` has no column `phone`"),
        format!("{name}:41:19: error[reference_cycle]"),
        format!(
            "{name}:52:19: error[deletion_forbidden]: `orders.customer_id` refers to `customers`"
        ),
        format!("{name}:52:19: error[reference_cycle]"),
    ] {
        assert!(
            run.stderr.contains(&expected),
            "missing {expected}\n{}",
            run.stderr
        );
    }
    // In the file's order.
    let lines: Vec<usize> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{}", run.stderr);
    assert!(run.stderr.contains("5 errors found"), "{}", run.stderr);
}
