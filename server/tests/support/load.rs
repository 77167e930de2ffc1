//! A small load generator for the cluster tests: keep-alive clients, each one
//! connection, walking product views and cart/checkout journeys with
//! Idempotency-Keys, retrying (like a well-behaved client, RFC 9110) only requests
//! that got no response, and counting everything it saw.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Totals of a load run, shared by its client tasks.
#[derive(Debug, Default)]
pub struct LoadStats {
    pub requests: u64,
    pub attempts: u64,
    pub failed: u64,
    pub server_errors: u64,
    pub statuses: std::collections::BTreeMap<u16, u64>,
    pub confirmed_orders: Vec<i64>,
    pub errors: Vec<String>,
    /// Per client: the worker PIDs its answers came from, in order (deduplicated).
    pub pids_by_client: Vec<Vec<u32>>,
    /// Per client: attempts that got no response, with the PID its previous answer
    /// came from.
    pub no_response_after_pid: Vec<Vec<u32>>,
}

/// A response (status, X-Worker-Pid, JSON), or the last error after `tries` attempts
/// that got no response. Like a well-behaved client, it retries only requests that
/// are safe to repeat (GET, or POST with an Idempotency-Key), and only when no
/// response arrived.
pub async fn retrying(
    build: impl Fn() -> reqwest::RequestBuilder,
    tries: u32,
    attempts: &mut u64,
) -> Result<(u16, u32, serde_json::Value), String> {
    let mut last = String::new();
    for attempt in 0..tries {
        *attempts += 1;
        match build().send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let pid = resp
                    .headers()
                    .get("x-worker-pid")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                match resp.bytes().await {
                    Ok(body) => {
                        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                        return Ok((status, pid, json));
                    }
                    Err(e) => last = format!("body: {e:?}"),
                }
            }
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt + 1))).await;
    }
    Err(last)
}

/// One simulated user: one keep-alive connection, requests in sequence.
struct LoadClient {
    http: reqwest::Client,
    base: String,
    no: usize,
    last_pid: u32,
    stats: Arc<Mutex<LoadStats>>,
}

impl LoadClient {
    /// One request (retried as [`retrying`] says), recorded in the stats.
    async fn call(
        &mut self,
        post: Option<(String, serde_json::Value)>,
        path: &str,
    ) -> Option<(u16, serde_json::Value)> {
        let url = format!("{}{path}", self.base);
        let mut attempts = 0;
        let result = retrying(
            || match &post {
                None => self.http.get(&url),
                Some((key, body)) => self
                    .http
                    .post(&url)
                    .header("Idempotency-Key", key.as_str())
                    .json(body),
            },
            5,
            &mut attempts,
        )
        .await;
        let missed = attempts as usize - usize::from(result.is_ok());
        let mut s = self.stats.lock().expect("stats");
        s.requests += 1;
        s.attempts += attempts;
        let no = self.no;
        s.no_response_after_pid[no].extend(std::iter::repeat_n(self.last_pid, missed));
        match result {
            Ok((status, pid, json)) => {
                *s.statuses.entry(status).or_default() += 1;
                if status >= 500 {
                    s.server_errors += 1;
                    s.errors.push(format!("{path}: {status} {json}"));
                }
                if s.pids_by_client[no].last() != Some(&pid) {
                    s.pids_by_client[no].push(pid);
                }
                self.last_pid = pid;
                Some((status, json))
            }
            Err(e) => {
                s.failed += 1;
                s.errors
                    .push(format!("{path}: no response after retries: {e}"));
                None
            }
        }
    }

    /// A product view; every fifth round also a cart, an item and a checkout.
    async fn round(&mut self, round: u64) {
        let product = 1 + (round * 7 + self.no as u64) % 20;
        self.call(None, &format!("/products/{product}")).await;
        if round % 5 != 0 {
            return;
        }
        let key = format!("load-{}-{round}", self.no);
        let created = self
            .call(
                Some((format!("{key}-cart"), serde_json::json!({}))),
                "/carts",
            )
            .await;
        let Some(cart_id) = created.and_then(|(_, j)| j["cart_id"].as_i64()) else {
            return;
        };
        let item = serde_json::json!({"product_id": product, "quantity": 1});
        self.call(
            Some((format!("{key}-item"), item)),
            &format!("/carts/{cart_id}/items"),
        )
        .await;
        let body = serde_json::json!({"cart_id": cart_id});
        if let Some((201, json)) = self
            .call(Some((format!("{key}-checkout"), body)), "/checkout")
            .await
        {
            if let Some(order) = json["order_id"].as_i64() {
                self.stats
                    .lock()
                    .expect("stats")
                    .confirmed_orders
                    .push(order);
            }
        }
    }
}

/// Runs `clients` keep-alive clients until `stop` is set (or `max` has passed):
/// product views and, every fifth round, a cart + item + checkout journey, every
/// POST with an Idempotency-Key, retried when no response arrived.
pub async fn keep_alive_load(
    addr: SocketAddr,
    clients: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    max: Duration,
) -> LoadStats {
    use std::sync::atomic::Ordering;
    let stats = Arc::new(Mutex::new(LoadStats {
        pids_by_client: vec![Vec::new(); clients],
        no_response_after_pid: vec![Vec::new(); clients],
        ..LoadStats::default()
    }));
    let deadline = Instant::now() + max;
    let mut tasks = tokio::task::JoinSet::new();
    for no in 0..clients {
        let stop = Arc::clone(&stop);
        let mut client = LoadClient {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: format!("http://{addr}"),
            no,
            last_pid: 0,
            stats: Arc::clone(&stats),
        };
        tasks.spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                round += 1;
                client.round(round).await;
            }
        });
    }
    tasks.join_all().await;
    Arc::try_unwrap(stats)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .expect("all client tasks done")
}
