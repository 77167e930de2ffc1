//! A server someone else runs, as loadgen meets it: two applications under one master
//! (kills and pauses must hit only the one under test, chosen by its command line), and
//! a deploy by command (its start and end in events.csv; a failing one fails the run
//! unless optional). What `validate` refuses for such a target: tests/target_checks.rs.

mod common;

use common::*;
use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Row = HashMap<String, String>;

/// `two_apps.py`: a master with two workers of `shop` and two of `other`, stopped in
/// `Drop`.
struct TwoApps {
    child: Child,
    _dir: TempDir,
    port: u16,
    pidfile: std::path::PathBuf,
}

impl TwoApps {
    fn start() -> TwoApps {
        let dir = temp_dir("two-apps");
        let portfile = dir.path().join("port");
        let pidfile = dir.path().join("master.pid");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/two_apps.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(&portfile)
            .arg(&pidfile)
            .stdin(Stdio::null())
            .spawn()
            .expect("start python3 two_apps.py");
        let mut apps = TwoApps {
            child,
            _dir: dir,
            port: 0,
            pidfile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while apps.port == 0 || apps.workers("--serve shop").len() < 2 {
            assert!(Instant::now() < deadline, "two_apps.py never got ready");
            if let Ok(text) = std::fs::read_to_string(&portfile) {
                apps.port = text.trim().parse().unwrap_or(0);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        apps
    }

    /// The master's live children whose command line contains `text`.
    fn workers(&self, text: &str) -> BTreeSet<u32> {
        let master = self.child.id();
        let kids = std::fs::read_dir(format!("/proc/{master}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|s| {
                s.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok())
                    .collect::<Vec<_>>()
            });
        kids.filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(text)
                })
                .unwrap_or(false)
        })
        .collect()
    }
}

impl Drop for TwoApps {
    fn drop(&mut self) {
        stop_child(
            &mut self.child,
            nix::sys::signal::Signal::SIGTERM,
            Duration::from_secs(5),
        );
    }
}

fn two_apps_scenario(apps: &TwoApps, workers: &str, chaos: &str) -> String {
    format!(
        r#"name = "two-apps"
seed = 11

[target]
ready_path = "/"

[[target.modes]]
name = "shop"
url = "http://127.0.0.1:{port}"
pidfile = "{pidfile}"
workers = {workers}

[load]
late_after = "1s"
users = 60
timeout = "5s"
[load.arrival]
peak_rate = 20
[load.retry]
count = 3
backoff = "50ms"

{chaos}

[[journey]]
name = "home"
path = "/"
repeat = 5
think = "20ms..60ms"
"#,
        port = apps.port,
        pidfile = apps.pidfile.display()
    )
}

const KILLS_AND_A_PAUSE: &str = r#"[[chaos]]
action = "kill"
at = ["0.6s", "1.2s", "1.8s", "2.4s"]

[[chaos]]
action = "pause"
at = "2s"
duration = "200ms"
"#;

fn of_kind<'a>(events: &'a [Row], kind: &str) -> Vec<&'a Row> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

#[test]
fn kills_and_pauses_hit_only_the_workers_of_the_filtered_app() {
    let apps = TwoApps::start();
    let other_before = apps.workers("--serve other");
    assert_eq!(other_before.len(), 2);
    let text = two_apps_scenario(
        &apps,
        r#"{ children = true, cmdline = "--serve shop" }"#,
        KILLS_AND_A_PAUSE,
    );
    let run = run_scenario("two-apps", &text, &[]);
    let events = run.csv("events.csv");
    let described = format!("events: {events:#?}\n{}", run.describe());
    assert_eq!(run.code(), 0, "{described}");

    // The other app's workers were never touched: the same two PIDs, alive.
    assert_eq!(apps.workers("--serve other"), other_before, "{described}");
    let started: BTreeSet<&str> = of_kind(&events, "worker-started")
        .iter()
        .map(|e| e["pid"].as_str())
        .collect();
    for pid in &other_before {
        assert!(
            !started.contains(pid.to_string().as_str()),
            "the watcher counted the other app's worker {pid}: {described}"
        );
    }
    let hits: Vec<&Row> = of_kind(&events, "kill")
        .into_iter()
        .chain(of_kind(&events, "pause"))
        .collect();
    assert_eq!(hits.len(), 5, "{described}");
    for hit in hits {
        let pid: u32 = hit["pid"].parse().expect("pid");
        assert!(
            !other_before.contains(&pid),
            "hit the other app: {described}"
        );
        assert!(started.contains(hit["pid"].as_str()), "{described}");
    }
    // The master replaced the four killed shop workers: at least six seen in all.
    assert!(started.len() >= 6, "{described}");
}

#[test]
fn a_filter_that_matches_no_worker_fails_the_run_by_saying_so() {
    let apps = TwoApps::start();
    let text = two_apps_scenario(
        &apps,
        r#"{ children = true, cmdline = "--serve nothing-here" }"#,
        KILLS_AND_A_PAUSE,
    );
    let run = run_scenario("two-apps-none", &text, &[]);
    assert_eq!(run.code(), 3, "{}", run.describe());
    let events = run.csv("events.csv");
    let skipped = of_kind(&events, "chaos-skipped");
    assert_eq!(skipped.len(), 5, "{events:#?}");
    assert!(
        skipped[0]["detail"].contains("command line has `--serve nothing-here`"),
        "{events:#?}"
    );
}

fn deploy_command_scenario(url: &str, deploy: &str) -> String {
    let mut text = scenario(
        url,
        "users = 40\ntimeout = \"2s\"\n[load.arrival]\npeak_rate = 20",
        "[[journey]]\nname = \"get\"\npath = \"/\"\nrepeat = 3\nthink = \"50ms..100ms\"\n",
    );
    text.push_str(&format!(
        "\n[[chaos]]\naction = \"deploy\"\nat = \"0.5s\"\n{deploy}\n"
    ));
    text
}

#[test]
fn a_deploy_command_is_logged_from_start_to_end_and_a_failing_one_fails_the_run() {
    let server = TestServer::start(std::sync::Arc::new(|_: &Seen| Action::Answer(200)));
    let ok = deploy_command_scenario(
        &server.url(),
        r#"command = ["sh", "-c", "sleep 0.4; echo reloaded"]"#,
    );
    let run = run_scenario("deploy-command", &ok, &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let events = run.csv("events.csv");
    let deploy = of_kind(&events, "deploy");
    let ended = of_kind(&events, "deploy-ended");
    assert_eq!((deploy.len(), ended.len()), (1, 1), "{events:#?}");
    assert_eq!(deploy[0]["pid"], ended[0]["pid"], "{events:#?}");
    assert!(deploy[0]["detail"].contains("sleep 0.4"), "{events:#?}");
    assert!(ended[0]["detail"].starts_with("exit code 0"), "{events:#?}");
    let took = num(ended[0], "t_s") - num(deploy[0], "t_s");
    assert!((0.35..3.0).contains(&took), "{events:#?}");

    let failing = r#"command = ["sh", "-c", "echo cannot reach the cluster >&2; exit 4"]"#;
    let run = run_scenario(
        "deploy-command-fails",
        &deploy_command_scenario(&server.url(), failing),
        &[],
    );
    assert_eq!(run.code(), 3, "{}", run.describe());
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert!(
        stderr.contains("cannot reach the cluster"),
        "{}",
        run.describe()
    );

    let optional = format!("{failing}\noptional = true");
    let run = run_scenario(
        "deploy-command-optional",
        &deploy_command_scenario(&server.url(), &optional),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.describe());

    let slow = r#"command = ["sleep", "30"]
timeout = "300ms""#;
    let run = run_scenario(
        "deploy-command-slow",
        &deploy_command_scenario(&server.url(), slow),
        &[],
    );
    assert_eq!(run.code(), 3, "{}", run.describe());
    let events = run.csv("events.csv");
    let ended = of_kind(&events, "deploy-ended");
    assert!(
        ended.len() == 1 && ended[0]["detail"].contains("timeout of 0.3s"),
        "{events:#?}"
    );
}
