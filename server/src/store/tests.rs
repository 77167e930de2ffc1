//! Store unit tests on a real SQLite file in a temporary directory.

use super::*;

struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!(
            "shop-store-test-{}-{name}-{}",
            std::process::id(),
            unix_millis()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDb(dir)
    }
    fn open(&self, products: u32, stock: u32) -> Store {
        Store::open(
            &self.0.join("shop.db"),
            Seed {
                products,
                stock,
                product_stock: None,
            },
        )
        .expect("open store")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cart_with(store: &mut Store, lines: &[(i64, i64)]) -> i64 {
    let created = store.create_cart(None).expect("create cart");
    let value: serde_json::Value = serde_json::from_str(&created.body).expect("json");
    let cart_id = value["cart_id"].as_i64().expect("cart_id");
    for &(product, quantity) in lines {
        store
            .add_item(cart_id, product, quantity, None)
            .expect("add item");
    }
    cart_id
}

#[test]
fn seeds_a_new_database_once() {
    let dir = TempDb::new("seed");
    let store = dir.open(3, 10);
    assert_eq!(store.products().expect("products").len(), 3);
    drop(store);
    // Other flags on an existing database change nothing.
    let store = dir.open(50, 99);
    let products = store.products().expect("products");
    assert_eq!(products.len(), 3);
    assert_eq!(products[0].stock, 10);
}

#[test]
fn checkout_decrements_stock_and_balances() {
    let dir = TempDb::new("checkout");
    let mut store = dir.open(2, 5);
    let cart = cart_with(&mut store, &[(1, 2), (2, 1), (1, 1)]);
    let (order, replayed) = store.checkout(cart, "k1").expect("checkout");
    assert!(!replayed);
    assert_eq!(order.items.len(), 2);
    assert_eq!(order.items[0].quantity, 3);
    assert_eq!(store.product(1).expect("p1").stock, 2);
    let audit = store.audit().expect("audit");
    assert_eq!((audit.sold, audit.orders, audit.stock), (4, 1, 6));
    assert!(audit.stock_balanced && !audit.negative_stock);
}

#[test]
fn out_of_stock_changes_nothing() {
    let dir = TempDb::new("oos");
    let mut store = dir.open(2, 3);
    let cart = cart_with(&mut store, &[(2, 1), (1, 4)]);
    match store.checkout(cart, "k") {
        Err(StoreError::OutOfStock {
            product_id: 1,
            wanted: 4,
            available: 3,
        }) => {}
        other => panic!("expected OutOfStock for product 1, got {other:?}"),
    }
    assert_eq!(store.product(2).expect("p2").stock, 3, "rolled back");
    assert_eq!(store.audit().expect("audit").orders, 0);
}

#[test]
fn one_order_per_key_and_key_bound_to_its_cart() {
    let dir = TempDb::new("idem");
    let mut store = dir.open(1, 10);
    let cart = cart_with(&mut store, &[(1, 1)]);
    let other = cart_with(&mut store, &[(1, 1)]);
    let (first, _) = store.checkout(cart, "same").expect("first");
    let (again, replayed) = store.checkout(cart, "same").expect("again");
    assert!(replayed);
    assert_eq!(first, again);
    assert!(matches!(
        store.plan_checkout(cart, "same"),
        Ok(CheckoutPlan::AlreadyOrdered(_))
    ));
    assert!(matches!(
        store.checkout(other, "same"),
        Err(StoreError::KeyReused { .. })
    ));
    assert!(matches!(
        store.checkout(cart, "another"),
        Err(StoreError::CartCheckedOut { .. })
    ));
    assert_eq!(store.audit().expect("audit").orders, 1);
}

#[test]
fn cart_posts_replay_under_the_same_key() {
    let dir = TempDb::new("cartkeys");
    let mut store = dir.open(2, 10);
    let a = store.create_cart(Some("c1")).expect("create");
    let b = store.create_cart(Some("c1")).expect("replay");
    assert_eq!(a.body, b.body);
    assert!(b.replayed && !a.replayed);
    assert_eq!(store.audit().expect("audit").carts, 1);
    let cart_id = serde_json::from_str::<serde_json::Value>(&a.body).expect("json")["cart_id"]
        .as_i64()
        .expect("id");
    let first = store.add_item(cart_id, 1, 2, Some("i1")).expect("add");
    store.add_item(cart_id, 2, 1, None).expect("add other");
    let replay = store.add_item(cart_id, 1, 2, Some("i1")).expect("replay");
    assert_eq!(
        first.body, replay.body,
        "the first answer, not the current cart"
    );
    assert_eq!(store.cart(cart_id).expect("cart").items[0].quantity, 2);
    assert!(matches!(
        store.add_item(cart_id, 1, 3, Some("i1")),
        Err(StoreError::KeyReused { .. })
    ));
}

#[test]
fn checkpoint_restarts_a_grown_wal() {
    let dir = TempDb::new("checkpoint");
    let mut store = dir.open(5, 10);
    store.disable_auto_checkpoint().expect("disable");
    for _ in 0..200 {
        store.create_cart(None).expect("cart");
    }
    let grown = store.checkpoint(0).expect("checkpoint");
    assert!(grown > 100, "expected a grown WAL, got {grown} frames");
    // The next writer starts the WAL from its beginning.
    store.create_cart(None).expect("cart");
    let after = store.checkpoint(i64::MAX).expect("checkpoint");
    assert!(
        after < 10,
        "expected a restarted WAL, got {after} frames (was {grown})"
    );
}
