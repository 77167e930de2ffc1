//! Unit tests of threshold parsing and evaluation against a table of made-up metrics.

use std::collections::HashMap;

use super::*;

fn modes() -> Vec<String> {
    vec!["single".into(), "cluster".into()]
}

fn steps() -> Vec<String> {
    vec!["browse".into(), "checkout".into()]
}

fn parse(text: &str) -> Result<Threshold, ThresholdError> {
    Threshold::parse(text, &modes(), &steps())
}

struct Table(HashMap<(String, Option<String>, Metric), f64>);

impl Metrics for Table {
    fn value(&self, mode: &str, step: Option<&str>, metric: Metric) -> Option<f64> {
        self.0
            .get(&(mode.to_string(), step.map(str::to_string), metric))
            .copied()
    }
}

fn table(rows: &[(&str, Option<&str>, Metric, f64)]) -> Table {
    Table(
        rows.iter()
            .map(|(m, s, metric, v)| ((m.to_string(), s.map(str::to_string), *metric), *v))
            .collect(),
    )
}

#[test]
fn parses_mode_step_metric_operator_and_units() {
    let t = parse("cluster.checkout.p99 < 800ms").expect("valid");
    assert_eq!(t.mode.as_deref(), Some("cluster"));
    assert_eq!(t.step.as_deref(), Some("checkout"));
    assert_eq!((t.metric, t.op, t.limit), (Metric::P99, Op::Lt, 800.0));
    assert_eq!(parse("cluster.p99 <= 1.5s").expect("valid").limit, 1500.0);
    let share = parse("single.dropped < 0.5%").expect("valid");
    assert!(share.percent);
    let global = parse("lost_orders == 0").expect("valid");
    assert_eq!((global.mode, global.metric), (None, Metric::LostOrders));
    assert_eq!(
        parse("cluster.throughput >= 1000").expect("valid").op,
        Op::Ge
    );
}

#[test]
fn rejects_what_it_cannot_evaluate_naming_the_culprit() {
    let unknown = parse("cluster.dropped_requests == 0").expect_err("unknown metric");
    assert!(
        matches!(&unknown, ThresholdError::UnknownMetric { name, .. } if name == "dropped_requests")
    );
    assert!(
        unknown.to_string().contains("known: requests, dropped"),
        "{unknown}"
    );
    let mode = parse("canary.dropped == 0").expect_err("unknown mode");
    assert!(
        mode.to_string()
            .contains("this scenario runs: single, cluster"),
        "{mode}"
    );
    assert!(matches!(
        parse("cluster.pay.p99 < 1s"),
        Err(ThresholdError::UnknownStep { .. })
    ));
    assert!(matches!(
        parse("cluster.dropped = 0"),
        Err(ThresholdError::Syntax { .. })
    ));
    assert!(matches!(
        parse("cluster.p99 < fast"),
        Err(ThresholdError::Value { .. })
    ));
    assert!(matches!(
        parse("cluster.p99 < 1h"),
        Err(ThresholdError::Value { .. })
    ));
    assert!(matches!(
        parse("cluster.checkout.lost_orders == 0"),
        Err(ThresholdError::Value { .. })
    ));
}

#[test]
fn evaluates_each_mode_and_fails_what_was_not_measured() {
    let metrics = table(&[
        ("single", None, Metric::Dropped, 412.0),
        ("cluster", None, Metric::Dropped, 0.0),
        ("cluster", None, Metric::Requests, 1000.0),
        ("cluster", Some("checkout"), Metric::P99, 640.0),
    ]);
    let modes = modes();
    let dropped = parse("dropped == 0")
        .expect("valid")
        .evaluate(&modes, &metrics);
    let rows: Vec<(String, bool)> = dropped
        .iter()
        .map(|v| (v.threshold.clone(), v.pass))
        .collect();
    assert_eq!(
        rows,
        [
            ("single.dropped == 0".to_string(), false),
            ("cluster.dropped == 0".to_string(), true)
        ]
    );
    let p99 = parse("cluster.checkout.p99 < 800ms")
        .expect("valid")
        .evaluate(&modes, &metrics);
    assert!(p99[0].pass);
    assert_eq!(p99[0].actual_text(), "640ms");
    let share = parse("cluster.dropped <= 0%")
        .expect("valid")
        .evaluate(&modes, &metrics);
    assert!(share[0].pass);
    let unmeasured = parse("cluster.lost_orders == 0")
        .expect("valid")
        .evaluate(&modes, &metrics);
    assert!(
        !unmeasured[0].pass,
        "an unmeasured value must not pass a gate"
    );
    assert_eq!(unmeasured[0].actual_text(), "not measured");
}
