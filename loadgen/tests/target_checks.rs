//! The settings `validate` refuses because they make no sense for the mode's kind of
//! target (a server loadgen starts, or one at a `url`), each by file, line and key, and
//! what it accepts and prints for one: a pidfile under `~/`, a workers filter, a deploy
//! by command in the timetable.

use loadgen::plan::{PlanOptions, RunPlan};

/// Builds `text` and returns the error.
fn refused(text: &str) -> String {
    RunPlan::from_source("own.toml", text, &PlanOptions::default())
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn settings_that_make_no_sense_for_the_target_are_refused_by_key_and_line() {
    let with = |mode_keys: &str, chaos: &str| {
        format!(
            "name = \"own\"\n[target]\n[[target.modes]]\nname = \"m\"\nurl = \"http://127.0.0.1:3000\"\n{mode_keys}\n\
             [load]\nusers = 1\n[load.arrival]\npeak_rate = 1\n\
             [[journey]]\nname = \"get\"\npath = \"/\"\n{chaos}"
        )
    };
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "supervise = true",
            "",
            "own.toml:6: key `target.modes[0].supervise`",
            "did not start",
        ),
        (
            "restart_delay = \"1s\"",
            "",
            "key `target.modes[0].restart_delay`",
            "naive supervisor",
        ),
        (
            "host = \"127.0.0.2\"",
            "",
            "key `target.modes[0].host`",
            "names its own host",
        ),
        (
            "pidfile = \"${NO_SUCH_VAR_FOR_STAMPEDE}/pm2.pid\"",
            "",
            "own.toml:6: key `target.modes[0].pidfile`",
            "NO_SUCH_VAR_FOR_STAMPEDE",
        ),
        (
            "workers = { children = false, cmdline = \"app.js\" }",
            "",
            "key `target.modes[0].workers`",
            "children = true",
        ),
        (
            "workers = { children = true, cmdline = \"\" }",
            "",
            "key `target.modes[0].workers`",
            "empty",
        ),
        (
            "",
            "[[chaos]]\naction = \"kill\"\nat = \"0.5s\"\n",
            "key `chaos[0].action`",
            "without a `pidfile`",
        ),
        (
            "pidfile = \"/tmp/x.pid\"",
            "[[chaos]]\naction = \"deploy\"\nat = \"0.5s\"\nsignal = \"SIGHUP\"\ncommand = [\"pm2\", \"reload\", \"all\"]\n",
            "key `chaos[0].command`",
            "either `signal` or `command`",
        ),
        (
            "pidfile = \"~/.pm2/pm2.pid\"",
            "[[chaos]]\naction = \"deploy\"\nat = \"0.5s\"\n",
            "key `chaos[0].signal`",
            "stop every app",
        ),
        (
            "pidfile = \"/tmp/x.pid\"",
            "[[chaos]]\naction = \"deploy\"\nat = \"0.5s\"\ncommand = []\n",
            "key `chaos[0].command`",
            "the program",
        ),
        (
            "pidfile = \"/tmp/x.pid\"",
            "[[chaos]]\naction = \"kill\"\nat = \"0.5s\"\ntimeout = \"1s\"\n",
            "key `chaos[0].timeout`",
            "deploy",
        ),
    ];
    for (mode_keys, chaos, key, why) in cases {
        let err = refused(&with(mode_keys, chaos));
        assert!(
            err.contains(key) && err.contains(why),
            "{mode_keys} {chaos}: {err}"
        );
    }
    // A command target with a pidfile, and a deploy command on a supervised mode.
    let started = |mode_keys: &str, chaos: &str| {
        format!(
            "name = \"own\"\n[target]\n[[target.modes]]\nname = \"m\"\ncommand = [\"srv\", \"{{port}}\"]\n{mode_keys}\n\
             [load]\nusers = 1\n[load.arrival]\npeak_rate = 1\n\
             [[journey]]\nname = \"get\"\npath = \"/\"\n{chaos}"
        )
    };
    let err = refused(&started("pidfile = \"/tmp/x.pid\"", ""));
    assert!(err.contains("key `target.modes[0].pidfile`"), "{err}");
    let err = refused(&started(
        "supervise = true",
        "[[chaos]]\naction = \"deploy\"\nat = \"0.5s\"\ncommand = [\"true\"]\n",
    ));
    assert!(
        err.contains("key `chaos[0].command`") && err.contains("naive supervisor"),
        "{err}"
    );
    // What is accepted: a url with an expanded pidfile, a filter, a deploy by command
    // (which needs no pidfile), and `validate` prints the command in the timetable.
    let text = with(
        "pidfile = \"~/.pm2/pm2.pid\"\nworkers = { children = true, cmdline = \"app.js\" }",
        "[[chaos]]\naction = \"deploy\"\nat = \"0.5s\"\ncommand = [\"pm2\", \"reload\", \"all\"]\ntimeout = \"20s\"\n",
    );
    let plan = RunPlan::from_source("own.toml", &text, &PlanOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let described = plan.describe();
    assert!(
        described.contains("deploy by `pm2 reload all` (at most 20s) at 0.50s"),
        "{described}"
    );
}
