//! Render a run directory's report by hand, or write a synthetic run to render:
//!
//! ```text
//! cargo run -p loadgen --example render_report -- RUN_DIR
//! cargo run -p loadgen --release --example render_report -- --synth DIR [USERS SECONDS WORKERS]
//! ```
//!
//! `--synth` writes a deterministic, plausible run (both modes, a deploy, kills, a
//! pause, drops in single) in the file contract's layout, then renders it and prints
//! how long rendering took. It made `tests/fixtures/run-small` (3000 users, 60 s,
//! 2 workers) and is how the render-time target is measured at full size
//! (30000 users, 300 s, 8 workers): see `scripts/bench-report`.

mod model;
mod synth;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("render_report: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [dir] if dir != "--synth" => PathBuf::from(dir),
        [flag, dir, rest @ ..] if flag == "--synth" => {
            let number = |i: usize, default: u64| -> anyhow::Result<u64> {
                rest.get(i).map_or(Ok(default), |v| {
                    v.parse().with_context(|| format!("`{v}` is not a number"))
                })
            };
            let spec = model::Spec {
                users: number(0, 3000)?,
                seconds: number(1, 60)? as u32,
                workers: number(2, 2)? as u32,
            };
            let dir = PathBuf::from(dir);
            let started = Instant::now();
            synth::write_run(&dir, &spec).with_context(|| format!("writing {}", dir.display()))?;
            println!(
                "wrote a synthetic run of {} users, {} s, {} workers into {} in {:.2} s",
                spec.users,
                spec.seconds,
                spec.workers,
                dir.display(),
                started.elapsed().as_secs_f64()
            );
            dir
        }
        _ => bail!(
            "usage: render_report RUN_DIR | render_report --synth DIR [USERS SECONDS WORKERS]"
        ),
    };
    let started = Instant::now();
    let rendered = loadgen::report::render(&dir).context("rendering the report")?;
    let elapsed = started.elapsed();
    for chart in &rendered.charts {
        println!(
            "{} ({}x{})",
            chart.path.display(),
            chart.width,
            chart.height
        );
    }
    println!("{}", rendered.markdown.display());
    println!("{}", rendered.html.display());
    println!("rendered in {:.3} s", elapsed.as_secs_f64());
    Ok(())
}
