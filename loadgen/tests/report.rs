//! The report renderer, driven through its public entry point on the committed
//! fixture run (`tests/fixtures/run-small`: single and cluster, 60 s, a deploy, three
//! kills and a pause, drops in single) copied into a temporary directory.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use loadgen::report::{ReportError, render};
use loadgen::runfolder::ReadError;

/// A copy of a fixture run in a fresh temporary directory, removed on drop.
struct RunCopy {
    dir: PathBuf,
}

impl RunCopy {
    fn of_fixture(name: &str, test: &str) -> Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let dir =
            std::env::temp_dir().join(format!("stampede-report-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        for entry in fs::read_dir(&src).expect("fixture exists") {
            let entry = entry.expect("fixture entry");
            fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy fixture file");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }
}

impl Drop for RunCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct Decoded {
    width: u32,
    height: u32,
    /// RGB(A) pixels, `channels` bytes each.
    bytes: Vec<u8>,
    channels: usize,
}

fn decode_png(path: &Path) -> Decoded {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut bytes = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut bytes)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    bytes.truncate(info.buffer_size());
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("{}: unexpected colour type {other:?}", path.display()),
    };
    Decoded {
        width: info.width,
        height: info.height,
        bytes,
        channels,
    }
}

/// Every `src="..."` in the page.
fn image_sources(html: &str) -> BTreeSet<String> {
    html.split("src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

fn pngs_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("read run dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect()
}

#[test]
fn charts_decode_at_their_size_and_are_not_blank() {
    let run = RunCopy::of_fixture("run-small", "charts");
    let rendered = render(&run.dir).expect("the fixture renders");
    let names: Vec<String> = rendered
        .charts
        .iter()
        .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "latency.png",
            "throughput.png",
            "percentiles.png",
            "workers.png"
        ],
        "charts rendered"
    );
    for chart in &rendered.charts {
        let png = decode_png(&chart.path);
        let name = chart.path.display();
        assert_eq!(
            (png.width, png.height),
            (chart.width, chart.height),
            "{name}: decoded size differs from the reported size"
        );
        assert!(
            png.width >= 1200 && png.height >= 700,
            "{name}: {}x{} is smaller than 1200x700",
            png.width,
            png.height
        );
        let pixels: Vec<&[u8]> = png.bytes.chunks_exact(png.channels).collect();
        let background = pixels.iter().filter(|p| p[..3] == [255, 255, 255]).count();
        let inked = pixels.len() - background;
        let colours: BTreeSet<&[u8]> = pixels.iter().map(|p| &p[..3]).collect();
        assert!(
            inked * 100 >= pixels.len() * 3,
            "{name}: only {inked} of {} pixels are not background",
            pixels.len()
        );
        assert!(
            colours.len() >= 64,
            "{name}: only {} distinct colours, expected a drawn chart",
            colours.len()
        );
    }
}

#[test]
fn pages_reference_exactly_the_charts_that_exist_and_need_no_network() {
    let run = RunCopy::of_fixture("run-small", "pages");
    let rendered = render(&run.dir).expect("the fixture renders");
    let html = run.read("index.html");
    let on_disk = pngs_in(&run.dir);
    assert_eq!(on_disk.len(), 4, "PNG files written: {on_disk:?}");
    assert_eq!(image_sources(&html), on_disk, "index.html image sources");
    for forbidden in ["<script", "http://", "https://", "<link", "@import"] {
        assert!(
            !html.contains(forbidden),
            "index.html must be self-contained, found `{forbidden}`"
        );
    }
    assert!(
        html.contains("<style>"),
        "index.html carries its CSS inline"
    );
    let md = fs::read_to_string(&rendered.markdown).expect("report.md written");
    for png in &on_disk {
        assert!(md.contains(&format!("]({png})")), "report.md shows {png}");
    }
}

#[test]
fn comparison_table_holds_the_measured_numbers() {
    let run = RunCopy::of_fixture("run-small", "numbers");
    render(&run.dir).expect("the fixture renders");
    let md = run.read("report.md");
    let row = |name: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no `{name}` row in report.md:\n{md}"))
            .to_string()
    };
    // timeseries.csv, seconds 30..=38 after the deploy at 30.4 s (the kill at 39.6 s
    // takes over from second 39): single dropped 993 of 6,362 completed; cluster none of
    // 7,265. The kills' seconds hold single's other 782: the rows add up to the whole
    // run's 1,775.
    let deploy = row("Requests dropped on deploy");
    assert!(
        deploy.contains("993 dropped, of 6,362 requests") && deploy.contains("0 dropped, of 7,265"),
        "{deploy}"
    );
    let kill = row("Requests dropped after a kill");
    assert!(
        kill.contains("782 dropped, of 6,940 requests") && kill.contains("3 kills"),
        "{kill}"
    );
    let elsewhere = row("Requests dropped away from any chaos");
    assert!(elsewhere.contains("| 0 |"), "{elsewhere}");
    let whole = row("Dropped requests, whole run");
    assert!(whole.contains("1,775 of"), "{whole}");
    let retry = row("Retry budget (the same for every mode)");
    assert!(retry.contains("no retries"), "{retry}");
    // The budget comes from the run's own scenario copy.
    let scenario = run.read("scenario.toml");
    fs::write(
        run.path("scenario.toml"),
        format!("{scenario}\n[load.retry]\ncount = 2\nbackoff = \"200ms\"\n"),
    )
    .expect("write scenario");
    render(&run.dir).expect("renders again");
    let md = run.read("report.md");
    assert!(
        md.contains("| 2 retries of a request that got no answer, 200ms apart and doubling |"),
        "{md}"
    );
    // single: downtime rows 1102, 1416, 1241 ms; cluster: kill to worker-started
    // 0.213, 0.229, 0.242 s.
    let recovery = row("Crash recovery time");
    assert!(
        recovery.contains("median 1.24 s, worst 1.42 s over 3 kills")
            && recovery.contains("median 0.23 s, worst 0.24 s over 3 kills"),
        "{recovery}"
    );
    // cluster's best five seconds of `ok`: seconds 31-35, 4,307 / 5.
    let spike = row("Throughput under the spike");
    assert!(spike.contains("861 ok/s (31-36 s)"), "{spike}");
    let cpu = row("CPU use of the server processes");
    assert!(
        cpu.contains("0.97 cores") && cpu.contains("1.62 cores"),
        "{cpu}"
    );
    assert!(
        md.contains("every one of the 3,000 planned users is accounted for: 3,000 planned = 2,763 completed + 237 aborted + 0 cut off + 0 never started"),
        "users line for single"
    );
    assert!(
        md.contains("kept to the schedule"),
        "generator verdict shown"
    );
}

#[test]
fn absent_optional_files_render_as_not_checked() {
    let run = RunCopy::of_fixture("run-small", "optional");
    for name in ["invariants.csv", "thresholds.csv", "events.csv"] {
        fs::remove_file(run.path(name)).expect("remove optional file");
    }
    render(&run.dir).expect("renders without the optional files");
    let html = run.read("index.html");
    assert!(
        html.contains("Not checked: this run has no invariants.csv"),
        "invariants shown as not checked"
    );
    assert!(
        html.contains("Not checked: the scenario sets no thresholds."),
        "thresholds shown as not checked"
    );
    assert!(html.contains("no deploy in this run"), "no deploy row");
    assert!(html.contains("no kill in this run"), "no kill row");
}

#[test]
fn a_malformed_csv_names_the_file_line_and_column() {
    let run = RunCopy::of_fixture("run-small", "malformed");
    let text = run.read("timeseries.csv");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Line 6 of the file (the 5th data row): make `sent` not a number.
    let mut fields: Vec<&str> = lines[5].split(',').collect();
    fields[2] = "lots";
    lines[5] = fields.join(",");
    fs::write(run.path("timeseries.csv"), lines.join("\n") + "\n").expect("write");

    let err = render(&run.dir).expect_err("a bad number must fail the render");
    match &err {
        ReportError::Folder(ReadError::Csv { file, line, .. }) => {
            assert!(file.ends_with("timeseries.csv"), "{}", file.display());
            assert_eq!(*line, 6, "{err}");
        }
        other => panic!("expected a CSV error, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains("timeseries.csv, line 6") && shown.contains("column `sent`"),
        "{shown}"
    );
}

#[test]
fn a_missing_required_file_is_named() {
    let run = RunCopy::of_fixture("run-small", "missing");
    fs::remove_file(run.path("workers.csv")).expect("remove");
    let err = render(&run.dir).expect_err("workers.csv is required");
    assert!(
        matches!(&err, ReportError::Folder(ReadError::Io { file, .. }) if file.ends_with("workers.csv")),
        "{err:?}"
    );
}

#[test]
fn a_run_with_one_mode_renders_one_panel_per_chart() {
    let run = RunCopy::of_fixture("run-small", "one-mode");
    // Keep only the cluster rows: mode is the first column, except in events.csv.
    for (name, mode_column) in [
        ("modes.csv", 0),
        ("summary.csv", 0),
        ("timeseries.csv", 0),
        ("workers.csv", 0),
        ("invariants.csv", 0),
        ("events.csv", 1),
    ] {
        let text = run.read(name);
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, l)| *i == 0 || l.split(',').nth(mode_column) == Some("cluster"))
            .map(|(_, l)| l)
            .collect();
        fs::write(run.path(name), kept.join("\n") + "\n").expect("write filtered csv");
    }
    fs::remove_file(run.path("latency-single.hgrm")).expect("remove single histogram");

    let rendered = render(&run.dir).expect("a one-mode run renders");
    for chart in &rendered.charts {
        let png = decode_png(&chart.path);
        assert!(
            png.width >= 1200 && png.height >= 700,
            "{}: {}x{}",
            chart.path.display(),
            png.width,
            png.height
        );
    }
    let md = run.read("report.md");
    assert!(
        md.contains("## Cluster\n"),
        "comparison heading names the one mode"
    );
    assert!(
        !md.contains("| single |"),
        "no single column or row may remain"
    );
}
