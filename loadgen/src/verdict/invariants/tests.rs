//! The checks against fake shops on a loopback port whose every answer the test
//! writes: each check must hold for a sound shop and fail, by name, for the shop with
//! the matching bug; and a listing that never advances is an error, not a verdict.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Serves `routes` (path with query -> JSON body; anything else 404) until aborted.
async fn fake_shop(routes: HashMap<String, String>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = match routes.get(&path) {
                    Some(body) => ("200 OK", body.clone()),
                    None => ("404 Not Found", "{}".to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    (base, server)
}

fn paths(listing: bool) -> AuditPaths {
    AuditPaths {
        audit: "/admin/audit".into(),
        order: "/orders/{order_id}".into(),
        cart: "/carts/{cart_id}".into(),
        orders: listing.then(|| "/admin/orders?after={after}".into()),
    }
}

/// An order as the shop shows it (and confirms it).
fn order_json(id: u32, key: &str, cart: u32, product: u32, quantity: u32) -> String {
    format!(
        r#"{{"order_id":{id},"idempotency_key":"{key}","cart_id":{cart},"total_cents":{},"items":[{{"product_id":{product},"quantity":{quantity},"price_cents":100}}]}}"#,
        quantity * 100
    )
}

fn confirmed(id: u32, key: &str, cart: u32, product: u32, quantity: u32) -> ConfirmedOrder {
    ConfirmedOrder {
        id: id.to_string(),
        key: key.into(),
        asked: format!(r#"{{"cart_id": {cart}}}"#),
        told: order_json(id, key, cart, product, quantity),
    }
}

/// The listing in pages of two orders: `(id, key)`.
fn listing_pages(routes: &mut HashMap<String, String>, orders: &[(u32, &str)]) {
    let mut after = String::new();
    for (i, page) in orders.chunks(2).enumerate() {
        let last = i + 1 == orders.len().div_ceil(2);
        let rows: Vec<String> = page
            .iter()
            .map(|(id, key)| format!(r#"{{"order_id":{id},"idempotency_key":"{key}"}}"#))
            .collect();
        let next = match last {
            true => "null".to_string(),
            false => format!("\"{}\"", page[page.len() - 1].0),
        };
        routes.insert(
            format!("/admin/orders?after={after}"),
            format!(r#"{{"orders":[{}],"next":{next}}}"#, rows.join(",")),
        );
        after = page[page.len() - 1].0.to_string();
    }
}

/// Product 1: 10 units, product 2: 5 units; `sold` and `left` per product.
fn audit(sold: [i64; 2], left: [i64; 2]) -> String {
    format!(
        r#"{{"initial_stock":15,"stock":{},"sold":{},"per_product":[{{"product_id":1,"initial_stock":10,"stock":{},"sold":{}}},{{"product_id":2,"initial_stock":5,"stock":{},"sold":{}}}]}}"#,
        left[0] + left[1],
        sold[0] + sold[1],
        left[0],
        sold[0],
        left[1],
        sold[1]
    )
}

/// A sound shop: orders 1 (k1, product 1 x2) and 2 (k2, product 2 x1), carts 10, 11;
/// k3 was refused, k4 got no answer and was ordered as 3.
fn sound_shop() -> (HashMap<String, String>, Ledger) {
    let mut routes = HashMap::new();
    routes.insert("/admin/audit".into(), audit([2, 1], [8, 4]));
    routes.insert("/orders/1".into(), order_json(1, "k1", 10, 1, 2));
    routes.insert("/orders/2".into(), order_json(2, "k2", 11, 2, 1));
    routes.insert("/carts/10".into(), "{}".into());
    routes.insert("/carts/11".into(), "{}".into());
    listing_pages(&mut routes, &[(1, "k1"), (2, "k2"), (3, "k4")]);
    let ledger = Ledger {
        orders: vec![confirmed(1, "k1", 10, 1, 2), confirmed(2, "k2", 11, 2, 1)],
        carts: vec!["10".into(), "11".into()],
        unanswered: vec!["k4".into()],
        refused: vec!["k3".into()],
    };
    (routes, ledger)
}

async fn run(routes: HashMap<String, String>, ledger: &Ledger, listing: bool) -> InvariantReport {
    let (base, server) = fake_shop(routes).await;
    let report = check(&base, &paths(listing), ledger, 77).await;
    server.abort();
    report.expect("the checks ran")
}

fn failing(report: &InvariantReport) -> Vec<&'static str> {
    report
        .checks
        .iter()
        .filter(|c| !c.holds)
        .map(|c| c.check)
        .collect()
}

fn row<'a>(report: &'a InvariantReport, check: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("no {check} row: {report:?}"))
}

#[tokio::test]
async fn a_sound_shop_holds_and_every_row_says_what_it_compared() {
    let (routes, ledger) = sound_shop();
    let report = run(routes, &ledger, true).await;
    assert!(failing(&report).is_empty(), "{report:#?}");
    assert_eq!(report.phantom_orders, Some(0));
    let items: Vec<(&str, u64)> = report.checks.iter().map(|c| (c.check, c.items)).collect();
    assert_eq!(
        items,
        [
            ("lost_orders", 2),
            ("duplicate_orders", 3),
            ("phantom_orders", 3),
            ("oversold", 2),
            ("stock_balance", 2),
            ("vanished_carts", 2)
        ]
    );
    assert!(report.checks.iter().all(|c| !c.compared.is_empty()));
    assert!(
        row(&report, "phantom_orders")
            .actual
            .contains("1 whose answer was lost")
    );
    assert_eq!(report.stock[0].promised, Some(2));
}

#[tokio::test]
async fn an_order_gone_reused_or_unlisted_is_lost() {
    let (mut routes, mut ledger) = sound_shop();
    // Order 2's id now shows another shopper's order (a rolled-back id reused).
    routes.insert("/orders/2".into(), order_json(2, "k9", 12, 2, 1));
    ledger.orders.push(confirmed(5, "k5", 13, 1, 1)); // gone
    listing_pages(&mut routes, &[(1, "k1"), (2, "k9"), (3, "k4")]);
    let report = run(routes, &ledger, true).await;
    assert_eq!(report.lost_orders, 2, "{report:#?}");
    let lost = row(&report, "lost_orders");
    assert!(
        lost.actual.contains("idempotency_key: sent \"k2\""),
        "{lost:?}"
    );
    // k9 is in nobody's ledger: a phantom too, as the shop shows it.
    assert_eq!(failing(&report), ["lost_orders", "phantom_orders"]);
}

#[tokio::test]
async fn a_second_order_for_a_key_is_a_duplicate_and_an_unknown_key_a_phantom() {
    let (mut routes, ledger) = sound_shop();
    // 7 is under a key loadgen sent in an earlier run (nonce 76) to the same server.
    listing_pages(
        &mut routes,
        &[
            (1, "k1"),
            (2, "k2"),
            (3, "k4"),
            (4, "k1"),
            (5, "k3"),
            (6, "webhook-1"),
            (7, "76-3-4-0"),
        ],
    );
    let report = run(routes, &ledger, true).await;
    assert_eq!(report.duplicate_orders, 1, "{report:#?}");
    assert_eq!(
        report.phantom_orders,
        Some(2),
        "k3 was refused, webhook-1 never sent"
    );
    let phantom = &row(&report, "phantom_orders").actual;
    assert!(phantom.contains("1 under refused keys"), "{phantom}");
    assert!(
        phantom.contains("1 orders of earlier runs set aside"),
        "{phantom}"
    );
    assert_eq!(failing(&report), ["duplicate_orders", "phantom_orders"]);
}

#[tokio::test]
async fn stock_below_zero_or_promised_beyond_it_is_oversold_and_unbooked_units_unbalance() {
    let (mut routes, mut ledger) = sound_shop();
    // Product 1: 12 sold of 10 (stock -2); shoppers were promised 13.
    routes.insert("/admin/audit".into(), audit([12, 1], [-2, 4]));
    ledger.orders[0] = confirmed(1, "k1", 10, 1, 13);
    routes.insert("/orders/1".into(), order_json(1, "k1", 10, 1, 13));
    let report = run(routes.clone(), &ledger, true).await;
    assert_eq!(report.oversold, 3, "{report:#?}");
    assert_eq!(failing(&report), ["oversold"]);
    // Product 2 lost 2 units that no order line holds.
    routes.insert("/admin/audit".into(), audit([2, 1], [8, 2]));
    ledger.orders[0] = confirmed(1, "k1", 10, 1, 2);
    routes.insert("/orders/1".into(), order_json(1, "k1", 10, 1, 2));
    let report = run(routes, &ledger, true).await;
    assert_eq!(report.oversold, 2, "{report:#?}");
    assert_eq!(failing(&report), ["oversold", "stock_balance"]);
}

#[tokio::test]
async fn a_vanished_cart_is_counted() {
    let (mut routes, ledger) = sound_shop();
    routes.remove("/carts/11");
    let report = run(routes, &ledger, true).await;
    assert_eq!(report.vanished_carts, 1);
    assert_eq!(failing(&report), ["vanished_carts"]);
}

#[tokio::test]
async fn without_a_listing_or_products_the_totals_and_lookups_still_judge() {
    let (mut routes, ledger) = sound_shop();
    routes.insert(
        "/admin/audit".into(),
        r#"{"initial_stock":100,"stock":-1,"sold":101,"negative_stock":true}"#.into(),
    );
    let report = run(routes, &ledger, false).await;
    assert_eq!(report.phantom_orders, None, "not measured");
    assert!(report.checks.iter().all(|c| c.check != "phantom_orders"));
    assert_eq!(report.oversold, 1, "{report:#?}");
    assert_eq!(failing(&report), ["oversold"]);
}

#[tokio::test]
async fn a_listing_that_does_not_advance_is_an_error() {
    let (mut routes, ledger) = sound_shop();
    routes.insert(
        "/admin/orders?after=".into(),
        r#"{"orders":[{"order_id":1,"idempotency_key":"k1"}],"next":"1"}"#.into(),
    );
    routes.insert(
        "/admin/orders?after=1".into(),
        r#"{"orders":[{"order_id":1,"idempotency_key":"k1"}],"next":"1"}"#.into(),
    );
    let (base, server) = fake_shop(routes).await;
    let result = check(&base, &paths(true), &ledger, 77).await;
    server.abort();
    let error = result.expect_err("a cursor that repeats").to_string();
    assert!(error.contains("does not advance"), "{error}");
}
