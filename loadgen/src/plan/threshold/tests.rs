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

/// Made-up metrics with a baseline table beside them.
struct WithBaseline {
    now: Table,
    before: Option<Table>,
    required: bool,
}

impl Metrics for WithBaseline {
    fn value(&self, mode: &str, step: Option<&str>, metric: Metric) -> Option<f64> {
        self.now.value(mode, step, metric)
    }

    fn baseline(&self, mode: &str, step: Option<&str>, metric: Metric) -> Option<f64> {
        self.before.as_ref()?.value(mode, step, metric)
    }

    fn baseline_required(&self) -> bool {
        self.required
    }
}

#[test]
fn parses_limits_relative_to_a_baseline() {
    let t = parse("cluster.p99 < baseline * 1.25").expect("valid");
    assert_eq!(t.baseline, Some(Relative::Times(1.25)));
    let t = parse("cluster.checkout.p50 <= baseline + 20ms").expect("valid");
    assert_eq!(t.baseline, Some(Relative::Plus(20.0)));
    assert_eq!(
        parse("cluster.throughput > baseline")
            .expect("valid")
            .baseline,
        Some(Relative::Times(1.0))
    );
    for bad in [
        "lost_orders <= baseline",
        "cluster.downtime < baseline * 2",
        "cluster.p99 < baseline * fast",
        "cluster.p99 < baseline / 2",
        "cluster.dropped < baseline + 1%",
        "cluster.p99 < baseline * -1",
    ] {
        assert!(
            matches!(parse(bad), Err(ThresholdError::Value { .. })),
            "{bad} must be refused"
        );
    }
}

#[test]
fn a_relative_limit_follows_the_baseline_and_none_reads_no_baseline() {
    let t = parse("cluster.p99 < baseline * 1.25").expect("valid");
    let now = || table(&[("cluster", None, Metric::P99, 130.0)]);
    let judge = |before: Option<f64>, required| {
        let m = WithBaseline {
            now: now(),
            before: before.map(|v| table(&[("cluster", None, Metric::P99, v)])),
            required,
        };
        t.evaluate(&modes(), &m).remove(0)
    };
    let slower = judge(Some(100.0), false);
    assert!(!slower.pass, "130 is not under 1.25 x 100");
    assert_eq!(slower.limit, Some(125.0));
    assert_eq!(slower.actual_text(), "130ms (baseline 100ms, limit 125ms)");
    let same = judge(Some(110.0), false);
    assert!(same.pass && !same.no_baseline, "130 < 137.5");
    let none = judge(None, false);
    assert!(none.pass && none.no_baseline);
    assert_eq!(none.word(), "no baseline");
    let required = judge(None, true);
    assert!(!required.pass, "a required baseline that is missing fails");
    assert_eq!(required.word(), "FAIL");
}
