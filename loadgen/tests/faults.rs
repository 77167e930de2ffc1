//! Every invariant check can fail. The same small sale (240 shoppers, a doorbuster of
//! 40 units that half of them want, a deploy mid-spike) runs against the real shop:
//! sound, it passes the gate with every invariant holding and the doorbuster sold out
//! exactly; with each test-only fault switch (`shop-server --fault NAME=SHARE`), the
//! gate fails with exit 1 and names the matching invariant, and only invariants that
//! bug can plausibly break.

mod common;

use common::*;
use std::collections::BTreeSet;

/// The sale, against a one-worker cluster started with `fault` (if any).
fn sale(fault: Option<&str>) -> String {
    shop_server(); // built next to loadgen: the command starts {bin_dir}/shop-server
    let fault = fault
        .map(|f| format!(r#", "--fault", "{f}""#))
        .unwrap_or_default();
    format!(
        r#"name = "faults"
seed = 11
thresholds = [
    "lost_orders == 0",
    "duplicate_orders == 0",
    "phantom_orders == 0",
    "oversold == 0",
    "vanished_carts == 0",
]

[target]
ready_timeout = "30s"
stop_signal = "SIGINT"
stop_timeout = "20s"

[[target.modes]]
name = "cluster"
command = ["{{bin_dir}}/shop-server", "--mode", "cluster", "--workers", "1", "--listen", "127.0.0.1:{{port}}", "--db", "{{db}}", "--products", "20", "--stock", "1000", "--product-stock", "1=40", "--checkout-io", "5ms", "--settle", "200ms"{fault}]

[invariants]
audit = "/admin/audit"
order = "/orders/{{order_id}}"
cart = "/carts/{{cart_id}}"
orders = "/admin/orders?after={{after}}"

[load]
users = 240
timeout = "5s"
max_duration = "60s"
# A functional test on a busy machine: lateness has tests of its own.
late_after = "1s"

[load.arrival]
baseline_rate = 40
baseline = "1s"
ramp = "1s"
peak_rate = 120

[load.retry]
count = 2
backoff = "50ms"

[[journey]]
name = "cart"
method = "POST"
path = "/carts"
idempotency_key = true
expect = [201]
capture = {{ cart_id = "cart_id" }}
records = "cart"

[[journey]]
name = "add"
method = "POST"
path = "/carts/${{cart_id}}/items"
body = '{{"product_id": ${{rand:3..20}}, "quantity": 1}}'
idempotency_key = true
think = "20ms..60ms"

[[journey]]
name = "doorbuster"
method = "POST"
path = "/carts/${{cart_id}}/items"
body = '{{"product_id": ${{rand:1..2}}, "quantity": 1}}'
idempotency_key = true
think = "200ms..400ms"

[[journey]]
name = "checkout"
method = "POST"
path = "/checkout"
body = '{{"cart_id": ${{cart_id}}}}'
idempotency_key = true
expect = [201, 409]
capture = {{ order_id = "order_id" }}
records = "order"

# The worker is replaced mid-spike (it drains once its replacement has been ready for
# --settle): lose-cart needs a process that exits while carts are open.
[[chaos]]
action = "deploy"
at = "1.5s"
"#
    )
}

/// The invariants that do not hold, from invariants.csv.
fn broken(run: &Run) -> BTreeSet<String> {
    run.csv("invariants.csv")
        .into_iter()
        .filter(|r| r["holds"] != "true")
        .map(|r| r["check"].clone())
        .collect()
}

/// The thresholds that failed, from thresholds.csv, without the mode.
fn failed(run: &Run) -> BTreeSet<String> {
    run.csv("thresholds.csv")
        .into_iter()
        .filter(|r| r["verdict"] == "FAIL")
        .map(|r| {
            let metric = r["threshold"].split_whitespace().next().unwrap_or("");
            metric.trim_start_matches("cluster.").to_string()
        })
        .collect()
}

/// Runs the sale with `fault` and checks the gate fails on `named`, and on nothing
/// outside `plausible`.
fn caught(tag: &str, fault: &str, named: &str, plausible: &[&str]) {
    let run = run_scenario(tag, &sale(Some(fault)), &[]);
    assert_eq!(
        run.code(),
        1,
        "{fault}: the gate must fail\n{}",
        run.describe()
    );
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&format!("cluster.{named} ")) && l.ends_with("FAIL")),
        "{fault}: the verdict table names {named}\n{}",
        run.describe()
    );
    let failed = failed(&run);
    let broken = broken(&run);
    assert!(failed.contains(named), "{fault}: {failed:?}");
    assert!(broken.contains(named), "{fault}: {broken:?}");
    for name in failed.iter().chain(&broken) {
        assert!(
            plausible.contains(&name.as_str()),
            "{fault} also broke {name}, which that bug cannot explain; failed {failed:?}, broken {broken:?}\n{}",
            run.describe()
        );
    }
}

#[test]
fn a_sound_shop_passes_and_sells_exactly_its_doorbuster() {
    let run = run_scenario("faults-none", &sale(None), &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    assert!(broken(&run).is_empty(), "{}", run.describe());
    let invariants = run.csv("invariants.csv");
    let checks: Vec<&str> = invariants.iter().map(|r| r["check"].as_str()).collect();
    assert_eq!(
        checks,
        [
            "lost_orders",
            "duplicate_orders",
            "phantom_orders",
            "oversold",
            "stock_balance",
            "vanished_carts"
        ]
    );
    for r in &invariants {
        assert!(!r["compared"].is_empty() && num(r, "items") > 0.0, "{r:?}");
    }
    let doorbuster = run
        .csv("stock.csv")
        .into_iter()
        .find(|r| r["product"] == "1")
        .unwrap_or_else(|| panic!("no stock.csv row for product 1\n{}", run.describe()));
    assert_eq!(
        (
            num(&doorbuster, "sold"),
            num(&doorbuster, "stock"),
            num(&doorbuster, "promised")
        ),
        (40.0, 0.0, 40.0),
        "{doorbuster:?}"
    );
    // About 120 shoppers wanted 40 units: the rest were refused (409, counted as ok).
    let phantom = &invariants[2]["actual"];
    let refused: u64 = phantom
        .split_once("of the other checkouts ")
        .and_then(|(_, tail)| tail.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("refused checkouts in {phantom:?}"));
    assert!(refused >= 30, "{phantom}");
    let checkout = run.summary("cluster", "checkout");
    assert_eq!(
        num(&checkout, "ok"),
        num(&checkout, "requests"),
        "{checkout:?}"
    );
    let html = std::fs::read_to_string(run.dir.join("index.html")).expect("index.html");
    assert!(
        html.contains("Stock of the hot products"),
        "report shows the doorbuster"
    );
}

#[test]
fn an_answer_before_the_commit_loses_orders() {
    // Promised units of rolled-back orders are sold again: shoppers may be promised
    // more of the doorbuster than there was, which is overselling too.
    caught(
        "faults-ack",
        "ack-before-commit=0.3",
        "lost_orders",
        &["lost_orders", "oversold"],
    );
}

#[test]
fn a_retry_that_ignores_its_key_duplicates_orders() {
    caught(
        "faults-dup",
        "duplicate-on-retry=0.3",
        "duplicate_orders",
        &["duplicate_orders"],
    );
}

#[test]
fn a_missing_stock_guard_oversells() {
    caught("faults-oversell", "oversell", "oversold", &["oversold"]);
}

#[test]
fn a_worker_that_drops_its_carts_on_exit_vanishes_carts() {
    caught(
        "faults-cart",
        "lose-cart",
        "vanished_carts",
        &["vanished_carts"],
    );
}

#[test]
fn an_order_nobody_confirmed_is_a_phantom() {
    caught(
        "faults-phantom",
        "phantom-order=0.3",
        "phantom_orders",
        &["phantom_orders"],
    );
}
