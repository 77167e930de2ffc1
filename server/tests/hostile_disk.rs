//! A full disk, for real: the database on a tiny tmpfs volume mounted for the test
//! (root only; elsewhere the tests print why they skip), in single mode and in a
//! 2-worker cluster. With a few MB free the WAL must not fill the volume by itself;
//! once a filler file takes the rest, writes answer 503 with `Retry-After` (no 500,
//! and no storm of log lines), reads keep answering; once the filler is removed the
//! server recovers by itself, the checkouts refused meanwhile succeed when retried
//! with their keys, and the invariants hold. The volume is unmounted even when the
//! test fails.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use support::*;

/// A tmpfs mounted on a fresh directory; unmounted (lazily if busy) on drop.
struct TinyVolume {
    dir: TempDir,
}

impl TinyVolume {
    /// `None` (with the reason printed) when not root or when mounting fails.
    fn mount(test: &str, size_kib: u64) -> Option<TinyVolume> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED {test}: needs root to mount a tmpfs volume (CI runs as root)");
            return None;
        }
        let dir = temp_dir(test);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(TinyVolume { dir }),
            other => {
                eprintln!("SKIPPED {test}: mount -t tmpfs failed: {other:?}");
                None
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn free_kib(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(self.dir.path()).expect("statvfs");
        stat.blocks_available() * stat.fragment_size() / 1024
    }

    /// Writes a filler file until only about `leave_kib` are free (0: until ENOSPC).
    fn fill(&self, name: &str, leave_kib: u64) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .expect("filler");
        let chunk = vec![0xAA; 4096];
        while self.free_kib() > leave_kib {
            if file.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = file.sync_all();
    }
}

impl Drop for TinyVolume {
    fn drop(&mut self) {
        let target = self.dir.path();
        let ok = Command::new("umount")
            .arg(target)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
    }
}

/// One shopper: a cart with one item, checked out with `key`. Returns the checkout
/// status and order id, or the first status that was not a success.
async fn journey(c: &reqwest::Client, server: &Server, key: &str) -> Result<(u16, i64), Answer> {
    let cart = post(c, server, "/carts", None, json!({})).await;
    if cart.status != 201 {
        return Err(cart);
    }
    let cart_id = cart.json["cart_id"].as_i64().unwrap_or(0);
    let item = json!({"product_id": 1 + cart_id % 20, "quantity": 1});
    let added = post(c, server, &format!("/carts/{cart_id}/items"), None, item).await;
    if added.status != 200 {
        return Err(added);
    }
    let order = post(
        c,
        server,
        "/checkout",
        Some(key),
        json!({"cart_id": cart_id}),
    )
    .await;
    match order.json["order_id"].as_i64() {
        Some(id) if order.status == 201 => Ok((201, id)),
        _ => Err(order),
    }
}

fn wal_kib(db: &Path) -> u64 {
    std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len() / 1024)
}

async fn disk_full(test: &str, mode_args: &[&str]) {
    let Some(volume) = TinyVolume::mount(test, 8 * 1024) else {
        return;
    };
    let db = volume.path("shop.db");
    let mut args = mode_args.to_vec();
    let db_arg = db.to_str().expect("utf-8 path").to_owned();
    args.extend(["--db", &db_arg, "--products", "20", "--stock", "1000000"]);
    args.extend(["--checkout-io", "0", "--checkout-cpu", "0"]);
    let server = Server::start(&args).await;
    if args.contains(&"cluster") {
        server.log.wait_for("workers ready", WAIT).await;
    }
    let c = client();
    let mut confirmed = Vec::new();

    // 1. About 3 MB free, less than one automatic checkpoint's worth of WAL (4 MB):
    //    300 shoppers (~12 MB of WAL frames) must all get through.
    volume.fill("filler-1", 3 * 1024);
    let mut wal_max = 0;
    for i in 0..300 {
        match journey(&c, &server, &format!("{test}-a-{i}")).await {
            Ok((_, order)) => confirmed.push(order),
            Err(answer) => panic!(
                "shopper {i} with {} KiB free: {answer:?}; log:\n{}",
                volume.free_kib(),
                server.log.lines().join("\n")
            ),
        }
        wal_max = wal_max.max(wal_kib(&db));
    }
    eprintln!(
        "FIGURE {test}: 300 shoppers on a volume with 3 MiB free; largest WAL seen {wal_max} KiB"
    );
    // Unchecked, the WAL grows to its 4 MB automatic checkpoint: past the 3 MiB.
    assert!(
        wal_max < 1024,
        "the WAL reached {wal_max} KiB on a volume with 3 MiB free; expected under 1 MiB"
    );

    // 2. Carts filled now, checked out once the disk is full.
    let mut waiting = Vec::new();
    for i in 0..10 {
        let cart = post(&c, &server, "/carts", None, json!({})).await;
        let cart_id = cart.json["cart_id"].as_i64().expect("cart id");
        let added = post(
            &c,
            &server,
            &format!("/carts/{cart_id}/items"),
            None,
            json!({"product_id": 1, "quantity": 1}),
        )
        .await;
        assert_eq!(added.status, 200, "{added:?}");
        waiting.push((cart_id, format!("{test}-b-{i}")));
    }

    // 3. Full: for about two seconds, writes answer 503 with Retry-After (a few may
    //    still fit in space SQLite already holds: those are kept), reads 200.
    volume.fill("filler-2", 0);
    let full_since = Instant::now();
    let log_lines_before = server.log.lines().len();
    let (mut refused, mut written, mut reads) = (0, 0, 0);
    // Per waiting cart: the order it got, if any (a refused one is retried).
    let mut outcome: Vec<Option<i64>> = vec![None; waiting.len()];
    while full_since.elapsed() < Duration::from_secs(2) {
        // Whatever SQLite gives back (a truncated WAL) is taken again, as by
        // another writer on the volume.
        volume.fill("filler-2", 0);
        for ((cart_id, key), got) in waiting.iter().zip(&mut outcome) {
            if got.is_some() {
                continue;
            }
            let body = json!({"cart_id": cart_id});
            let answer = post(&c, &server, "/checkout", Some(key), body).await;
            match answer.status {
                201 => *got = answer.json["order_id"].as_i64(),
                503 => assert_eq!(answer.header("retry-after"), "1", "{answer:?}"),
                _ => panic!("checkout on a full disk: expected 503 (or 201), got {answer:?}"),
            }
        }
        let created = post(&c, &server, "/carts", None, json!({})).await;
        match created.status {
            201 => written += 1,
            503 => refused += 1,
            _ => panic!("a new cart on a full disk: expected 503 (or 201), got {created:?}"),
        }
        let order = get(&c, &server, &format!("/orders/{}", confirmed[0])).await;
        assert_eq!(order.status, 200, "reads keep working: {order:?}");
        let products = get(&c, &server, "/products").await;
        assert_eq!(products.status, 200, "reads keep working: {products:?}");
        reads += 2;
    }
    assert!(
        refused > 0,
        "the full disk never refused a write ({written} new carts written)"
    );
    let full_for = full_since.elapsed();
    let logged: Vec<String> = server.log.lines()[log_lines_before..].to_vec();
    let error_lines = logged.iter().filter(|l| l.contains("api: 5")).count();
    eprintln!(
        "FIGURE {test}: disk full for {full_for:?}: {refused} new carts answered 503 ({written} fitted in space SQLite reclaimed), {} of {} checkouts still refused, {reads} reads 200, {error_lines} log lines about the 503s",
        outcome.iter().filter(|o| o.is_none()).count(),
        outcome.len()
    );
    assert!(
        error_lines <= full_for.as_secs() as usize * 2 + 4,
        "{error_lines} log lines in {full_for:?} for {refused} errors: expected about one a second per process; log:\n{}",
        logged.join("\n")
    );
    assert!(
        logged.iter().all(|l| !l.contains("api: 500")),
        "a 500 was answered; log:\n{}",
        logged.join("\n")
    );

    // 4. Space returns: the server recovers by itself; each checkout succeeds
    //    once when retried with its key (one already confirmed is replayed).
    std::fs::remove_file(volume.path("filler-2")).expect("remove filler");
    let deadline = Instant::now() + WAIT;
    for ((cart_id, key), got) in waiting.iter().zip(outcome) {
        let order = loop {
            let body = json!({"cart_id": cart_id});
            let answer = post(&c, &server, "/checkout", Some(key), body).await;
            if answer.status == 201 {
                break answer.json["order_id"].as_i64().expect("order id");
            }
            assert!(
                answer.status == 503 && Instant::now() < deadline,
                "after space returned: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if let Some(earlier) = got {
            assert_eq!(order, earlier, "one order per key ({key})");
        }
        confirmed.push(order);
    }
    for i in 0..20 {
        let (_, order) = journey(&c, &server, &format!("{test}-c-{i}"))
            .await
            .expect("after recovery");
        confirmed.push(order);
    }

    // 5. Nothing confirmed is lost or doubled.
    let audit = audit_holds(&c, &server).await;
    assert_eq!(
        audit["orders"].as_u64(),
        Some(confirmed.len() as u64),
        "{audit}"
    );
    for order in &confirmed {
        let answer = get(&c, &server, &format!("/orders/{order}")).await;
        assert_eq!(answer.status, 200, "confirmed order {order}: {answer:?}");
    }
    drop(server); // before the volume is unmounted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_on_a_full_disk_answers_503_and_recovers() {
    disk_full("disk-single", &["--mode", "single"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_on_a_full_disk_answers_503_and_recovers() {
    disk_full("disk-cluster", &["--mode", "cluster", "--workers", "2"]).await;
}
