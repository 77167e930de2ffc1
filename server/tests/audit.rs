//! The audit view and listing that loadgen's invariant checks read, against the real
//! binary: every order listed page by page with its key and cart, stock per product
//! with the units sold, a confirmation that tells the shopper the whole order (as a
//! lookup shows it), a seeded doorbuster; ids never reused, even after a test-only
//! fault deleted rows; and the fault switches hidden from `--help`.

mod support;

use std::process::Command;

use serde_json::json;

use support::*;

async fn start(dir: &TempDir, extra: &[&str]) -> Server {
    let db = dir.path().join("shop.db");
    let mut args = vec!["--mode", "single", "--db", db.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    args.extend(["--checkout-io", "0ms"]);
    Server::start(&args).await
}

async fn checkout(c: &reqwest::Client, server: &Server, cart: i64, key: &str) -> Answer {
    post(
        c,
        server,
        "/checkout",
        Some(key),
        json!({ "cart_id": cart }),
    )
    .await
}

#[tokio::test]
async fn the_listing_pages_every_order_and_the_audit_counts_stock_per_product() {
    let dir = temp_dir("listing");
    let server = start(
        &dir,
        &["--products", "3", "--stock", "10", "--product-stock", "2=4"],
    )
    .await;
    let c = client();
    let mut confirmed = Vec::new();
    for (i, (product, quantity)) in [(2, 2), (1, 1), (2, 2)].into_iter().enumerate() {
        let cart = cart_with(&c, &server, product, quantity).await;
        let answer = checkout(&c, &server, cart, &format!("k{i}")).await;
        assert_eq!(answer.status, 201, "{answer:?}");
        // The shopper is told the whole order, as a lookup shows it.
        let id = answer.json["order_id"].as_i64().expect("order_id");
        let stored = get(&c, &server, &format!("/orders/{id}")).await;
        assert_eq!(stored.json, answer.json, "confirmation = lookup");
        assert_eq!(answer.json["cart_id"], cart);
        assert_eq!(answer.json["idempotency_key"], format!("k{i}"));
        confirmed.push(id);
    }
    // The doorbuster (product 2, 4 units) is sold out.
    let cart = cart_with(&c, &server, 2, 1).await;
    assert_eq!(checkout(&c, &server, cart, "k3").await.status, 409);

    let first = get(&c, &server, "/admin/orders?after=&limit=2").await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json["orders"].as_array().map(Vec::len), Some(2));
    let next = first.json["next"].as_str().expect("a next page").to_owned();
    let second = get(&c, &server, &format!("/admin/orders?after={next}&limit=2")).await;
    assert_eq!(second.json["next"], serde_json::Value::Null, "{second:?}");
    let listed: Vec<(i64, String)> = [&first.json, &second.json]
        .iter()
        .flat_map(|page| page["orders"].as_array().cloned().unwrap_or_default())
        .map(|o| {
            let key = o["idempotency_key"].as_str().unwrap_or_default().to_owned();
            (o["order_id"].as_i64().unwrap_or(0), key)
        })
        .collect();
    let expected: Vec<(i64, String)> = confirmed
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, format!("k{i}")))
        .collect();
    assert_eq!(listed, expected);
    let bad = get(&c, &server, "/admin/orders?after=x").await;
    assert_eq!(bad.status, 400, "{bad:?}");

    let audit = audit_holds(&c, &server).await;
    assert_eq!(
        audit["per_product"],
        json!([
            {"product_id": 1, "initial_stock": 10, "stock": 9, "sold": 1},
            {"product_id": 2, "initial_stock": 4, "stock": 0, "sold": 4},
            {"product_id": 3, "initial_stock": 10, "stock": 10, "sold": 0},
        ])
    );
}

#[tokio::test]
async fn a_deleted_cart_id_is_never_handed_out_again() {
    let dir = temp_dir("reuse");
    // lose-cart: the process deletes its open carts when it drains.
    let mut server = start(&dir, &["--products", "2", "--fault", "lose-cart"]).await;
    server
        .log
        .wait_for("TEST-ONLY faults switched on: lose-cart=1", WAIT)
        .await;
    let c = client();
    let kept = cart_with(&c, &server, 1, 1).await;
    assert_eq!(checkout(&c, &server, kept, "k1").await.status, 201);
    let lost = cart_with(&c, &server, 1, 1).await;
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait_exit(WAIT).await.success());
    assert!(server.log.count("lose-cart: dropped 1 open carts") == 1);

    let server = start(&dir, &["--products", "2"]).await;
    assert_eq!(
        get(&c, &server, &format!("/carts/{lost}")).await.status,
        404
    );
    assert_eq!(
        get(&c, &server, &format!("/carts/{kept}")).await.status,
        200
    );
    let created = post(&c, &server, "/carts", None, json!({})).await;
    assert_eq!(
        created.json["cart_id"],
        lost + 1,
        "AUTOINCREMENT: {created:?}"
    );
}

#[test]
fn fault_switches_are_hidden_and_checked() {
    let help = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--product-stock"), "{help}");
    assert!(
        !help.contains("--fault") && !help.contains("TEST ONLY"),
        "{help}"
    );
    let dir = temp_dir("bad-fault");
    let bad = Command::new(BIN)
        .args([
            "--mode",
            "single",
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "nope",
        ])
        .arg("--db")
        .arg(dir.path().join("shop.db"))
        .output()
        .expect("run with a bad fault");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown fault `nope`"), "{stderr}");
}
