#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use steward_policy::Policy;

use crate::{Direction, Erase, Identity, load};

fn examples() -> Vec<(String, String)> {
    ["shop.yml", "support.yml"]
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
