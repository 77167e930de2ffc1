//! Single-process mode against the real binary: the shop journey, checkout
//! concurrency (no overselling, one order per key), drain on SIGTERM, durability
//! across SIGKILL, and bad input that must get an answer and leave the server up.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;
use tokio::task::JoinSet;

use support::*;

async fn single(dir: &TempDir, extra: &[&str]) -> Server {
    let db = dir.path().join("shop.db");
    let mut args = vec!["--mode", "single", "--db", db.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    Server::start(&args).await
}

#[tokio::test]
async fn the_whole_journey() {
    let dir = temp_dir("journey");
    let server = single(
        &dir,
        &[
            "--products",
            "5",
            "--stock",
            "10",
            "--version-tag",
            "v-journey",
        ],
    )
    .await;
    let c = client();

    let products = get(&c, &server, "/products").await;
    assert_eq!(products.status, 200);
    assert_eq!(
        products.json.as_array().map(Vec::len),
        Some(5),
        "{products:?}"
    );
    assert_eq!(products.header("x-worker-pid"), server.pid.to_string());
    assert_eq!(products.header("x-server-version"), "v-journey");

    let product = get(&c, &server, "/products/3").await;
    assert_eq!(product.status, 200);
    assert_eq!(product.json["id"], 3);
    assert_eq!(product.json["stock"], 10);
    let price = product.json["price_cents"].as_i64().expect("price");

    let cart_id = cart_with(&c, &server, 3, 2).await;
    let cart = get(&c, &server, &format!("/carts/{cart_id}")).await;
    assert_eq!(cart.status, 200);
    assert_eq!(cart.json["items"][0]["quantity"], 2, "{cart:?}");
    assert_eq!(cart.json["total_cents"], 2 * price);

    let order = post(
        &c,
        &server,
        "/checkout",
        Some("journey-1"),
        json!({"cart_id": cart_id}),
    )
    .await;
    assert_eq!(order.status, 201, "{order:?}");
    assert_eq!(order.json["status"], "confirmed");
    assert_eq!(order.json["total_cents"], 2 * price);
    let order_id = order.json["order_id"].as_i64().expect("order_id");

    let stored = get(&c, &server, &format!("/orders/{order_id}")).await;
    assert_eq!(stored.status, 200);
    assert_eq!(stored.json["idempotency_key"], "journey-1");
    assert_eq!(stored.json["cart_id"], cart_id);
    assert_eq!(stored.json["items"][0]["product_id"], 3);

    assert_eq!(get(&c, &server, "/products/3").await.json["stock"], 8);
    let health = get(&c, &server, "/healthz").await;
    assert_eq!(health.json["status"], "ok");
    assert_eq!(health.json["pid"], server.pid);
    assert_eq!(health.json["version"], "v-journey");

    let audit = audit_holds(&c, &server).await;
    assert_eq!(
        (
            &audit["initial_stock"],
            &audit["stock"],
            &audit["sold"],
            &audit["orders"],
            &audit["carts"]
        ),
        (&json!(50), &json!(48), &json!(2), &json!(1), &json!(1)),
        "{audit}"
    );
}

#[tokio::test]
async fn two_hundred_checkouts_for_fifty_units() {
    let dir = temp_dir("oversell");
    let server = single(
        &dir,
        &[
            "--products",
            "1",
            "--stock",
            "50",
            "--checkout-io",
            "5ms",
            "--checkout-cpu",
            "0",
        ],
    )
    .await;
    let c = client();
    let mut carts = Vec::new();
    for _ in 0..200 {
        carts.push(cart_with(&c, &server, 1, 1).await);
    }
    let mut tasks = JoinSet::new();
    for (i, cart_id) in carts.into_iter().enumerate() {
        let c = c.clone();
        let url = server.url("/checkout");
        tasks.spawn(async move {
            let req = c
                .post(url)
                .header("Idempotency-Key", format!("oversell-{i}"))
                .json(&json!({"cart_id": cart_id}));
            send(req).await.status
        });
    }
    let statuses: Vec<u16> = tasks.join_all().await;
    let confirmed = statuses.iter().filter(|&&s| s == 201).count();
    let conflicts = statuses.iter().filter(|&&s| s == 409).count();
    assert_eq!(
        (confirmed, conflicts),
        (50, 150),
        "expected 50 x 201 and 150 x 409, got statuses {statuses:?}"
    );
    let audit = audit_holds(&c, &server).await;
    assert_eq!(
        (&audit["stock"], &audit["orders"]),
        (&json!(0), &json!(50)),
        "{audit}"
    );
}

#[tokio::test]
async fn one_key_twenty_times_makes_one_order() {
    let dir = temp_dir("idem");
    let server = single(&dir, &["--products", "2", "--checkout-io", "50ms"]).await;
    let c = client();
    let cart_id = cart_with(&c, &server, 2, 1).await;
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let c = c.clone();
        let url = server.url("/checkout");
        tasks.spawn(async move {
            let req = c
                .post(url)
                .header("Idempotency-Key", "the-one-key")
                .json(&json!({"cart_id": cart_id}));
            send(req).await
        });
    }
    let answers = tasks.join_all().await;
    let order_ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| a.json["order_id"].to_string())
        .collect();
    assert!(
        answers.iter().all(|a| a.status == 201),
        "statuses: {answers:?}"
    );
    assert_eq!(
        order_ids.len(),
        1,
        "expected one order_id, got {order_ids:?}"
    );
    let audit = audit_holds(&c, &server).await;
    assert_eq!(audit["orders"], 1, "{audit}");

    // The same key with another cart is refused, and still one order.
    let other = cart_with(&c, &server, 1, 1).await;
    let reused = post(
        &c,
        &server,
        "/checkout",
        Some("the-one-key"),
        json!({"cart_id": other}),
    )
    .await;
    assert_eq!(reused.status, 422, "{reused:?}");
    assert_eq!(audit_holds(&c, &server).await["orders"], 1);
}

#[tokio::test]
async fn cart_posts_with_a_key_are_safe_to_retry() {
    let dir = temp_dir("cartkeys");
    let server = single(&dir, &[]).await;
    let c = client();
    let first = post(&c, &server, "/carts", Some("cart-k"), json!({})).await;
    let again = post(&c, &server, "/carts", Some("cart-k"), json!({})).await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.json, again.json);
    let cart_id = first.json["cart_id"].as_i64().expect("cart_id");
    let path = format!("/carts/{cart_id}/items");
    let body = json!({"product_id": 4, "quantity": 3});
    let added = post(&c, &server, &path, Some("item-k"), body.clone()).await;
    let replay = post(&c, &server, &path, Some("item-k"), body).await;
    assert_eq!((added.status, replay.status), (200, 200));
    assert_eq!(added.json, replay.json);
    assert_eq!(replay.header("idempotent-replayed"), "true");
    let cart = get(&c, &server, &path.replace("/items", "")).await;
    assert_eq!(cart.json["items"][0]["quantity"], 3, "added once: {cart:?}");
    assert_eq!(audit(&c, &server).await["carts"], 1);
}

#[tokio::test]
async fn sigterm_lets_the_checkout_in_flight_finish() {
    let dir = temp_dir("drain");
    let mut server = single(&dir, &["--checkout-io", "2s"]).await;
    let c = client();
    let cart_id = cart_with(&c, &server, 1, 1).await;

    let body = json!({"cart_id": cart_id}).to_string();
    let request = format!(
        "POST /checkout HTTP/1.1\r\nHost: x\r\nIdempotency-Key: drain-1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut in_flight = TcpStream::connect(server.addr).expect("connect");
    in_flight
        .write_all(request.as_bytes())
        .expect("send checkout");
    // The request is now either being served or queued for accept; both are served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal(Signal::SIGTERM);
    server
        .log
        .wait_for("draining: stopped accepting", WAIT)
        .await;

    let refused = TcpStream::connect(server.addr);
    assert!(
        refused.is_err(),
        "a connection after the drain began must be refused, got {refused:?}"
    );

    in_flight
        .set_read_timeout(Some(WAIT))
        .expect("read timeout");
    let mut response = String::new();
    in_flight
        .read_to_string(&mut response)
        .expect("read the checkout response");
    let lower = response.to_ascii_lowercase();
    assert!(
        lower.starts_with("http/1.1 201"),
        "expected 201, got:\n{response}"
    );
    assert!(
        lower.contains("connection: close"),
        "expected Connection: close, got:\n{response}"
    );
    assert!(response.contains("\"confirmed\""), "got:\n{response}");

    let status = server.wait_exit(WAIT).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after a clean drain: {status:?}"
    );
}

#[tokio::test]
async fn drain_timeout_closes_the_rest_and_exits_1() {
    let dir = temp_dir("draintimeout");
    let mut server = single(&dir, &["--checkout-io", "60s", "--drain-timeout", "500ms"]).await;
    let c = client();
    let cart_id = cart_with(&c, &server, 1, 1).await;
    let slow = tokio::spawn(
        c.post(server.url("/checkout"))
            .header("Idempotency-Key", "slow")
            .json(&json!({"cart_id": cart_id}))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(WAIT).await;
    assert_eq!(
        status.code(),
        Some(1),
        "exit status after a drain timeout: {status:?}"
    );
    server.log.wait_for("drain timeout", WAIT).await;
    let outcome = slow.await.expect("join");
    assert!(
        outcome.is_err(),
        "the stuck request is cut off, got {outcome:?}"
    );
}

#[tokio::test]
async fn a_confirmed_order_survives_sigkill() {
    let dir = temp_dir("durable");
    let args = ["--products", "3", "--stock", "7", "--checkout-io", "0"];
    let mut server = single(&dir, &args).await;
    let c = client();
    let cart_id = cart_with(&c, &server, 2, 3).await;
    let order = post(
        &c,
        &server,
        "/checkout",
        Some("durable"),
        json!({"cart_id": cart_id}),
    )
    .await;
    assert_eq!(order.status, 201, "{order:?}");
    server.signal(Signal::SIGKILL);
    let status = server.wait_exit(WAIT).await;
    assert_eq!(status.code(), None, "killed by a signal: {status:?}");

    let again = single(&dir, &args).await;
    let order_id = &order.json["order_id"];
    let stored = get(&c, &again, &format!("/orders/{order_id}")).await;
    assert_eq!(
        stored.status, 200,
        "order {order_id} lost after SIGKILL: {stored:?}"
    );
    assert_eq!(stored.json["idempotency_key"], "durable");
    assert_eq!(get(&c, &again, "/products/2").await.json["stock"], 4);
    let audit = audit_holds(&c, &again).await;
    assert_eq!(
        (&audit["orders"], &audit["sold"]),
        (&json!(1), &json!(3)),
        "{audit}"
    );
}

#[tokio::test]
async fn several_event_loop_threads_serve_the_same_api() {
    let dir = temp_dir("threads");
    let server = single(&dir, &["--threads", "2", "--checkout-io", "0"]).await;
    let c = client();
    let cart_id = cart_with(&c, &server, 1, 2).await;
    let order = post(
        &c,
        &server,
        "/checkout",
        Some("threads"),
        json!({"cart_id": cart_id}),
    )
    .await;
    assert_eq!(order.status, 201, "{order:?}");
    let audit = audit_holds(&c, &server).await;
    assert_eq!(
        (&audit["orders"], &audit["sold"]),
        (&json!(1), &json!(2)),
        "{audit}"
    );
}
