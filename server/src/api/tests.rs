//! A property test of the router and the JSON handlers, in process, on a real
//! database: thousands of random requests (methods, paths built from the shop's own
//! words and from junk, ids at the edges of i64, bodies of random JSON and of
//! mutated JSON, odd idempotency keys) must never get a 5xx, always get a JSON body,
//! `Allow` with every 405, one order per key; and the audit invariants hold after.
//! Seeded and bounded: the same seed gives the same requests (`FUZZ_SEED`, and
//! `ROUTER_CASES`, default 3,000; `scripts/test` runs 100,000 with a fresh seed).
//! The raw-socket side (what reaches the router at all) is `tests/fuzz_raw.rs`.

use super::*;
use crate::cli::Seed;

/// xorshift64*: enough randomness for generating inputs, reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const METHODS: &[&str] = &[
    "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS",
];
const WORDS: &[&str] = &[
    "products",
    "carts",
    "items",
    "checkout",
    "orders",
    "healthz",
    "admin",
    "audit",
    "1",
    "2",
    "3",
    "0",
    "-1",
    "007",
    "999999",
    "9223372036854775807",
    "9223372036854775808",
    "abc",
    "%31",
    "1e3",
    "",
    "..",
    "1.5",
];
const NUMBERS: &[&str] = &[
    "1",
    "2",
    "0",
    "-1",
    "1000",
    "1001",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e400",
    "1.5",
    "\"1\"",
    "null",
    "true",
    "[]",
    "{}",
];
const FIELDS: &[&str] = &["product_id", "quantity", "cart_id", "extra"];

const ROUTES: &[&str] = &[
    "GET /products",
    "GET /products/{p}",
    "POST /carts",
    "POST /carts/{c}/items",
    "POST /carts/{c}/items",
    "GET /carts/{c}",
    "POST /checkout",
    "POST /checkout",
    "GET /orders/{o}",
    "GET /healthz",
    "GET /admin/audit",
];

/// A method and path: mostly one of the shop's routes with ids near the real
/// ones (sometimes with the wrong method), else words and junk.
fn random_request(rng: &mut Rng, carts: &[i64]) -> (String, String) {
    if rng.below(3) == 0 {
        return (rng.pick(METHODS).to_owned(), junk_path(rng));
    }
    let (method, path) = rng.pick(ROUTES).split_once(' ').expect("method and path");
    let cart = match carts.len() {
        0 => 1,
        n => carts[rng.below(n)],
    };
    let path = path
        .replace("{p}", rng.pick(&["1", "2", "3", "4", "0", "-1", "x"]))
        .replace("{c}", &cart.to_string())
        .replace("{o}", &(1 + rng.below(20)).to_string());
    let method = if rng.below(10) == 0 {
        rng.pick(METHODS)
    } else {
        method
    };
    (method.to_owned(), path)
}

fn junk_path(rng: &mut Rng) -> String {
    let segments = rng.below(4) + 1;
    let path: Vec<&str> = (0..segments).map(|_| rng.pick(WORDS)).collect();
    let mut path = format!("/{}", path.join("/"));
    if rng.below(8) == 0 {
        path.push_str("?x=1");
    }
    path
}

fn random_body(rng: &mut Rng, carts: &[i64]) -> Vec<u8> {
    let mut body = match rng.below(6) {
        0 => Vec::new(),
        1 => format!(
            r#"{{"product_id": {}, "quantity": {}}}"#,
            1 + rng.below(4),
            1 + rng.below(3)
        )
        .into_bytes(),
        2 if !carts.is_empty() => {
            format!(r#"{{"cart_id": {}}}"#, carts[rng.below(carts.len())]).into_bytes()
        }
        _ => {
            let fields: Vec<String> = (0..rng.below(4))
                .map(|_| format!("\"{}\": {}", rng.pick(FIELDS), rng.pick(NUMBERS)))
                .collect();
            format!("{{{}}}", fields.join(", ")).into_bytes()
        }
    };
    if !body.is_empty() && rng.below(5) == 0 {
        // Mutate: cut, or overwrite one byte with something JSON cares about.
        let at = rng.below(body.len());
        match rng.below(3) {
            0 => body.truncate(at),
            1 => {
                let odd = b"{}[]\",:\\\x00\xff";
                body[at] = odd[rng.below(odd.len())];
            }
            _ => body
                .splice(at..at, std::iter::repeat_n(b'[', 200))
                .for_each(drop),
        }
    }
    body
}

fn env_u64(name: &str, default: u64) -> u64 {
    let Ok(text) = std::env::var(name) else {
        return default;
    };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|e| panic!("{name}={text:?}: {e}"))
}

fn random_key(rng: &mut Rng, n: u64) -> Option<HeaderValue> {
    match rng.below(6) {
        0 => None,
        1 => HeaderValue::from_bytes(&vec![b'k'; rng.below(260)]).ok(),
        2 => HeaderValue::from_bytes(b"key with spaces").ok(),
        3 => HeaderValue::from_bytes(b"\xff\xfe").ok(),
        // Reused keys: some repeats are replays, some reuse for another request.
        _ => HeaderValue::from_str(&format!("k-{}", n % 40)).ok(),
    }
}

#[tokio::test]
async fn random_requests_never_get_a_5xx_from_the_router() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = Seed {
        products: 3,
        stock: 50,
        product_stock: None,
    };
    let db = Db::open(&dir.path().join("shop.db"), seed, true).expect("open db");
    let limits = BodyLimits {
        max: MAX_BODY,
        timeout: Duration::from_secs(1),
        min_rate: 0,
    };
    let app = App::new(
        db,
        "test".to_owned(),
        Duration::ZERO,
        Duration::ZERO,
        limits,
    );
    let seed = env_u64("FUZZ_SEED", 0x5EED_CAFE_F00D_1234);
    let cases = env_u64("ROUTER_CASES", 3000);
    let mut rng = Rng(seed.max(1));
    let mut carts = Vec::new();
    let mut orders_by_key = std::collections::HashMap::<Vec<u8>, i64>::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..cases {
        let (method, path) = random_request(&mut rng, &carts);
        let mut builder = Request::builder().method(method.as_str()).uri(&path);
        if let Some(key) = random_key(&mut rng, n) {
            builder = builder.header("idempotency-key", key);
        }
        let (parts, ()) = builder.body(()).expect("a valid request").into_parts();
        let body = Bytes::from(random_body(&mut rng, &carts));
        let shown = format!(
            "seed {seed:#x} #{n}: {method} {path} {:?}",
            String::from_utf8_lossy(&body)
        );
        let reply = match route(&app, &parts, body).await {
            Ok(reply) => reply,
            Err(error) => error.into_reply(),
        };
        let status = reply.status();
        assert!(!status.is_server_error(), "{shown}: {status}");
        *statuses.entry(status.as_u16()).or_default() += 1;
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(
                reply.headers().contains_key(header::ALLOW),
                "{shown}: 405 without Allow"
            );
        }
        let bytes = http_body_util::BodyExt::collect(reply.into_body())
            .await
            .expect("a full body")
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{shown}: {status} with a body that is not JSON ({e})"));
        if status.is_client_error() {
            assert!(json["error"].is_string(), "{shown}: {status} {json}");
        }
        if status == StatusCode::CREATED && path == "/carts" && carts.len() < 30 {
            carts.push(json["cart_id"].as_i64().expect("cart_id"));
        }
        let confirmed = status == StatusCode::CREATED && path == "/checkout";
        if let (true, Some(order), Some(key)) = (
            confirmed,
            json["order_id"].as_i64(),
            parts.headers.get("idempotency-key"),
        ) {
            let first = *orders_by_key
                .entry(key.as_bytes().to_vec())
                .or_insert(order);
            assert_eq!(first, order, "{shown}: a second order for one key");
        }
    }
    // The generator must reach every kind of answer, orders included, or it tests
    // little more than the 404 branch.
    for expected in [200, 201, 400, 404, 405, 409, 422] {
        assert!(
            statuses.contains_key(&expected),
            "no {expected} in {statuses:?}"
        );
    }
    let audit = app.db.call(|s| s.audit()).await.expect("audit");
    assert!(audit.orders > 0, "no order was placed: {audit:?}");
    assert!(audit.stock_balanced && !audit.negative_stock, "{audit:?}");
    assert_eq!(audit.duplicate_idempotency_keys, 0, "{audit:?}");
}
