//! What `loadgen validate` prints about a plan: one line for the scenario (users,
//! steps, modes) and each mode's chaos timetable, which is the same for every run of
//! the scenario since random times come from its seed.

use std::fmt::Write as _;

use super::RunPlan;

impl RunPlan {
    /// A short description of the plan, ending with a newline.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let modes: Vec<&str> = self.modes.iter().map(|m| m.name.as_str()).collect();
        let _ = writeln!(
            out,
            "{}: valid: scenario `{}`, {} users, {} steps, modes {modes:?}",
            self.path.display(),
            self.name,
            self.load.users,
            self.journey.steps.len(),
        );
        let _ = writeln!(
            out,
            "  load: last arrival at {:.1}s, expected end {:.1}s, cut at {:.1}s (max_duration)",
            self.load.last_arrival().as_secs_f64(),
            self.load_length().as_secs_f64(),
            self.load.max_duration.as_secs_f64(),
        );
        for mode in &self.modes {
            let timetable = self.timetable(&mode.name);
            if timetable.is_empty() {
                continue;
            }
            let actions: Vec<String> = timetable
                .iter()
                .map(|a| format!("{} at {:.2}s", a.kind.label(), a.at.as_secs_f64()))
                .collect();
            let _ = writeln!(out, "  chaos in {}: {}", mode.name, actions.join(", "));
        }
        out
    }
}
