//! deploy/k8s/*.yaml checked by a packaged Kubernetes schema validator:
//! `kubernetes-validate` from PyPI (the Kubernetes OpenAPI schemas, strict: unknown
//! fields refused), installed on first use into target/tools/ with pip. Broken copies
//! of the segments Job (a misspelled field, a wrong type) must be refused, so the
//! check is known to bite. Beyond the schema: the segment count agrees in the Indexed
//! Job, the starter and the merge, the Job hands JOB_COMPLETION_INDEX to `--shard`,
//! and the ConfigMap's scenario is one `loadgen validate` accepts.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VALIDATOR: &str = "kubernetes-validate==1.37.0";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds loadgen")
        .to_path_buf()
}

/// The validator's folder, installed with pip on first use (into a temporary folder,
/// then renamed, so a half-done install is never used).
fn validator() -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_loadgen"))
        .parent()
        .and_then(Path::parent)
        .expect("target folder")
        .to_path_buf();
    let dir = target.join("tools").join(VALIDATOR.replace("==", "-"));
    if dir.join("bin").join("kubernetes-validate").exists() {
        return dir;
    }
    let tmp = target
        .join("tools")
        .join(format!(".install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-warn-script-location", "--target"])
        .arg(&tmp)
        .arg(VALIDATOR)
        .output()
        .expect("run python3 -m pip (python3 with pip is needed for this test)");
    assert!(
        out.status.success(),
        "pip install {VALIDATOR} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test process installed it first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    dir
}

fn validate(tool: &Path, files: &[PathBuf]) -> Output {
    Command::new("python3")
        .arg(tool.join("bin").join("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", "1.37.0"])
        .args(files)
        .env("PYTHONPATH", tool)
        .output()
        .expect("run kubernetes-validate")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/k8s"))
        .expect("deploy/k8s")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas_and_broken_ones_do_not() {
    let tool = validator();
    let files = manifests();
    assert!(files.len() >= 5, "manifests: {files:?}");
    // One run over every file: it fails when any resource of any file does not
    // validate, and says which.
    let out = validate(&tool, &files);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "deploy/k8s does not validate:\n{said}"
    );
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        assert!(
            said.contains(&format!("{name} passed")),
            "{name} was not validated:\n{said}"
        );
    }
    let tmp = common::temp_dir("k8s");
    let job = std::fs::read_to_string(root().join("deploy/k8s/segments.yaml")).expect("read");
    for (name, from, to) in [
        ("misspelled", "  parallelism: 3", "  parallelizm: 3"),
        ("wrong-type", "  completions: 3", "  completions: \"three\""),
        ("no-kind", "kind: Job", "kinds: Job"),
    ] {
        assert!(job.contains(from), "segments.yaml no longer has `{from}`");
        let broken = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(&broken, job.replace(from, to)).expect("write");
        let out = validate(&tool, &[broken]);
        assert!(
            !out.status.success(),
            "a broken manifest ({name}) passed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The integer after `key:` on the first line that has it.
fn value_of(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no `{key}` in:\n{text}"))
}

#[test]
fn the_segment_count_agrees_and_the_scenario_is_valid() {
    let read = |f: &str| std::fs::read_to_string(root().join("deploy/k8s").join(f)).expect(f);
    let job = read("segments.yaml");
    assert_eq!(value_of(&job, "completionMode:"), "Indexed");
    let n = value_of(&job, "completions:");
    assert_eq!(value_of(&job, "parallelism:"), n);
    for f in ["segments.yaml", "starter.yaml", "merge.yaml"] {
        let text = read(f);
        let segments = text
            .split("- name: SEGMENTS")
            .nth(1)
            .unwrap_or_else(|| panic!("{f} has no SEGMENTS"));
        assert_eq!(value_of(segments, "value:"), n, "{f}: SEGMENTS");
    }
    assert!(job.contains("--shard \"${JOB_COMPLETION_INDEX}/${SEGMENTS}\""));
    assert!(job.contains("--start-file /runs/START"));

    // The ConfigMap's scenario, unindented, is one loadgen accepts.
    let cm = read("scenario.yaml");
    let body = cm
        .split("scenario.toml: |\n")
        .nth(1)
        .expect("scenario.toml key");
    let toml: String = body
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let tmp = common::temp_dir("k8s-scenario");
    let path = tmp.path().join("scenario.toml");
    std::fs::write(&path, toml).expect("write");
    let out = common::loadgen()
        .arg("validate")
        .arg(&path)
        .output()
        .expect("loadgen validate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
