//! The real shop for tests that need it: the workspace's `shop-server` binary, built
//! on demand, and the shop journey with the invariant checks' paths.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The real `shop-server` binary of this workspace, built on demand: `cargo test -p
/// loadgen` alone does not build the other package's binary.
pub fn shop_server() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let bin_dir = Path::new(env!("CARGO_BIN_EXE_loadgen"))
                .parent()
                .expect("the loadgen binary has a folder")
                .to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let mut build = Command::new(cargo);
            build.args(["build", "-p", "shop-server", "--bin", "shop-server"]);
            if bin_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build -p shop-server");
            assert!(status.success(), "cargo build -p shop-server failed");
            let bin = bin_dir.join("shop-server");
            assert!(bin.exists(), "{} was not built", bin.display());
            bin
        })
        .clone()
}

/// The shop journey: browse, view, cart, add, checkout, recording carts and orders
/// for the invariant checks.
pub const SHOP_JOURNEY: &str = r#"
[invariants]
audit = "/admin/audit"
order = "/orders/{order_id}"
cart = "/carts/{cart_id}"
orders = "/admin/orders?after={after}"

[[journey]]
name = "browse"
path = "/products"
think = "20ms..60ms"

[[journey]]
name = "view"
path = "/products/${rand:1..20}"
think = "20ms..60ms"

[[journey]]
name = "cart"
method = "POST"
path = "/carts"
idempotency_key = true
expect = [201]
capture = { cart_id = "cart_id" }
records = "cart"

[[journey]]
name = "add"
method = "POST"
path = "/carts/${cart_id}/items"
body = '{"product_id": ${rand:1..20}, "quantity": 1}'
idempotency_key = true
think = "20ms..60ms"

[[journey]]
name = "checkout"
method = "POST"
path = "/checkout"
body = '{"cart_id": ${cart_id}}'
idempotency_key = true
expect = [201, 409]
capture = { order_id = "order_id" }
records = "order"
"#;
