//! The benchmarks' load: keep-alive clients walking a fixed pattern (writes, reads,
//! audits or a shopper's journey), retrying only idempotent requests that got no
//! answer, and recording one [`Sample`] per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one client does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// `POST /carts` with an Idempotency-Key: one small write transaction.
    Writes,
    /// `GET /products`: a read of the whole catalog.
    Reads,
    /// `GET /admin/audit`: one read transaction over every table (longer, as the
    /// tables grow).
    Audits,
    /// A product view; every fifth round a cart, an item and a checkout (each POST
    /// with an Idempotency-Key).
    Shopper,
}

/// One request: when it was sent (µs since the load began), how long it took to
/// its final outcome (retries included), the worker that answered (0: none).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at_us: u64,
    pub latency_us: u64,
    pub pid: u32,
    pub write: bool,
    pub status: u16,
    pub attempts: u8,
}

impl Sample {
    /// No answer after the retries, or a 5xx.
    pub fn failed(&self) -> bool {
        self.status == 0 || self.status >= 500
    }
}

/// The load: `clients` keep-alive clients per walk, until `stop` or `max`.
pub struct Load {
    pub addr: SocketAddr,
    pub walks: Vec<(Walk, usize)>,
    pub tries: u32,
    /// Open a new connection every this many rounds (spreads clients over the
    /// workers again and again; keep-alive connections stay where they landed).
    pub reconnect_every: Option<u64>,
    pub stop: Arc<AtomicBool>,
    pub max: Duration,
}

impl Load {
    /// Runs the clients; returns every sample, in no particular order.
    pub async fn run(self, started: Instant) -> Vec<Sample> {
        let deadline = started + self.max;
        let mut tasks = tokio::task::JoinSet::new();
        let mut no = 0u64;
        for (walk, clients) in &self.walks {
            for _ in 0..*clients {
                no += 1;
                let client = Client {
                    http: http_client(),
                    reconnect_every: self.reconnect_every,
                    base: format!("http://{}", self.addr),
                    tries: self.tries,
                    started,
                    samples: Vec::new(),
                    key: format!("bench-{}-{no}", std::process::id()),
                };
                let stop = Arc::clone(&self.stop);
                let walk = *walk;
                tasks.spawn(client.walk(walk, stop, deadline));
            }
        }
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(samples) = done {
                all.extend(samples);
            }
        }
        all
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default()
}

struct Client {
    http: reqwest::Client,
    reconnect_every: Option<u64>,
    base: String,
    tries: u32,
    started: Instant,
    samples: Vec<Sample>,
    key: String,
}

impl Client {
    async fn walk(mut self, walk: Walk, stop: Arc<AtomicBool>, deadline: Instant) -> Vec<Sample> {
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            round += 1;
            if self.reconnect_every.is_some_and(|n| round % n == 0) {
                self.http = http_client();
            }
            match walk {
                Walk::Writes => {
                    let key = format!("{}-{round}", self.key);
                    self.call(Some((key, serde_json::json!({}))), "/carts")
                        .await;
                }
                Walk::Reads => {
                    self.call(None, "/products").await;
                }
                Walk::Audits => {
                    self.call(None, "/admin/audit").await;
                }
                Walk::Shopper => self.shop(round).await,
            }
        }
        self.samples
    }

    async fn shop(&mut self, round: u64) {
        let product = 1 + round % 20;
        self.call(None, &format!("/products/{product}")).await;
        if round % 5 != 0 {
            return;
        }
        let key = format!("{}-{round}", self.key);
        let cart = self
            .call(Some((format!("{key}-c"), serde_json::json!({}))), "/carts")
            .await;
        let Some(cart_id) = cart.and_then(|j| j["cart_id"].as_i64()) else {
            return;
        };
        let item = serde_json::json!({"product_id": product, "quantity": 1});
        let path = format!("/carts/{cart_id}/items");
        self.call(Some((format!("{key}-i"), item)), &path).await;
        let body = serde_json::json!({"cart_id": cart_id});
        self.call(Some((format!("{key}-o"), body)), "/checkout")
            .await;
    }

    /// One request, retried (only when no answer arrived) up to `tries` attempts
    /// with 25, 50, 100 ms ... between them; recorded as one sample.
    async fn call(
        &mut self,
        post: Option<(String, serde_json::Value)>,
        path: &str,
    ) -> Option<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let sent = Instant::now();
        let mut sample = Sample {
            at_us: micros(sent.duration_since(self.started)),
            latency_us: 0,
            pid: 0,
            write: post.is_some(),
            status: 0,
            attempts: 0,
        };
        let mut json = None;
        for attempt in 0..self.tries {
            sample.attempts += 1;
            let request = match &post {
                None => self.http.get(&url),
                Some((key, body)) => self
                    .http
                    .post(&url)
                    .header("Idempotency-Key", key.as_str())
                    .json(body),
            };
            if let Ok(response) = request.send().await {
                let status = response.status().as_u16();
                let pid = response
                    .headers()
                    .get("x-worker-pid")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if let Ok(body) = response.bytes().await {
                    sample.status = status;
                    sample.pid = pid;
                    json = serde_json::from_slice(&body).ok();
                    break;
                }
            }
            let pause = Duration::from_millis(25) * (1 << attempt.min(6));
            tokio::time::sleep(pause).await;
        }
        sample.latency_us = micros(sent.elapsed());
        self.samples.push(sample);
        json
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
