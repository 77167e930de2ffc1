//! The two files with one column per outcome class: summary.csv ([`SummaryRow`]) and
//! timeseries.csv ([`SecondRow`]). Both hold a [`Counts`] and spell its columns out
//! from `outcome::CLASSES`, so the class list exists once: the header, the order of the
//! class columns and the reader all follow it. Columns derived from the classes
//! (`requests`/`completed`, `dropped`, `failed`) are written with `Counts`' own
//! definitions and, when read, checked against the class columns instead of trusted.

use serde::de::MapAccess;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cells::{Fixed, Ms};
use super::columns::{self, Columns, Layout, SECONDS, SUMMARY};
use crate::outcome::Counts;
use crate::runfolder::table::{self, Table};

/// `summary.csv`: one mode and journey step, or the mode's `all` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryRow {
    pub mode: String,
    pub step: String,
    /// Every column but `sent`, which this file does not have (it reads as 0).
    pub counts: Counts,
    pub p50_ms: Ms,
    pub p90_ms: Ms,
    pub p99_ms: Ms,
    pub p999_ms: Ms,
    pub max_ms: Ms,
    pub mean_ms: Ms,
    /// Completed requests per second of the mode's load.
    pub throughput_rps: f64,
}

/// `timeseries.csv`: one mode and second. The engine keeps its merged seconds as these.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecondRow {
    pub mode: String,
    pub second: u32,
    /// `sent`, the classes and `attempt_failures`; `attempts` and `retried` are not
    /// columns of this file (they read as 0).
    pub counts: Counts,
    pub p50_ms: Ms,
    pub p99_ms: Ms,
    pub max_ms: Ms,
    pub active_users: u64,
    pub open_connections: u64,
    /// Empty when no process watcher ran.
    pub live_workers: Option<u32>,
    /// How late loadgen wrote the requests first sent in this second (newer columns:
    /// a folder written before them reads as 0).
    pub send_lateness_p50_ms: Ms,
    pub send_lateness_p99_ms: Ms,
    pub send_lateness_max_ms: Ms,
    /// Of those, how many were later than the scenario's `late_after`.
    pub generator_late: u64,
}

impl Table for SummaryRow {
    const FILE: &'static str = table::SUMMARY;
}

impl Table for SecondRow {
    const FILE: &'static str = table::TIMESERIES;
}

impl Serialize for SummaryRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut row = s.serialize_struct("SummaryRow", 9 + SUMMARY.columns())?;
        row.serialize_field("mode", &self.mode)?;
        row.serialize_field("step", &self.step)?;
        SUMMARY.serialize(&mut row, &self.counts)?;
        row.serialize_field("p50_ms", &self.p50_ms)?;
        row.serialize_field("p90_ms", &self.p90_ms)?;
        row.serialize_field("p99_ms", &self.p99_ms)?;
        row.serialize_field("p999_ms", &self.p999_ms)?;
        row.serialize_field("max_ms", &self.max_ms)?;
        row.serialize_field("mean_ms", &self.mean_ms)?;
        row.serialize_field("throughput_rps", &Fixed::<2>(self.throughput_rps))?;
        row.end()
    }
}

impl Serialize for SecondRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut row = s.serialize_struct("SecondRow", 12 + SECONDS.columns())?;
        row.serialize_field("mode", &self.mode)?;
        row.serialize_field("second", &self.second)?;
        SECONDS.serialize(&mut row, &self.counts)?;
        row.serialize_field("p50_ms", &self.p50_ms)?;
        row.serialize_field("p99_ms", &self.p99_ms)?;
        row.serialize_field("max_ms", &self.max_ms)?;
        row.serialize_field("active_users", &self.active_users)?;
        row.serialize_field("open_connections", &self.open_connections)?;
        row.serialize_field("live_workers", &self.live_workers)?;
        row.serialize_field("send_lateness_p50_ms", &self.send_lateness_p50_ms)?;
        row.serialize_field("send_lateness_p99_ms", &self.send_lateness_p99_ms)?;
        row.serialize_field("send_lateness_max_ms", &self.send_lateness_max_ms)?;
        row.serialize_field("generator_late", &self.generator_late)?;
        row.end()
    }
}

impl Columns for SummaryRow {
    const LAYOUT: Layout = SUMMARY;
    const REQUIRED: &'static [&'static str] = &["mode", "step", "throughput_rps"];

    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "mode" => self.mode = map.next_value()?,
            "step" => self.step = map.next_value()?,
            "p50_ms" => self.p50_ms = map.next_value()?,
            "p90_ms" => self.p90_ms = map.next_value()?,
            "p99_ms" => self.p99_ms = map.next_value()?,
            "p999_ms" => self.p999_ms = map.next_value()?,
            "max_ms" => self.max_ms = map.next_value()?,
            "mean_ms" => self.mean_ms = map.next_value()?,
            "throughput_rps" => self.throughput_rps = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_counts(&mut self, counts: Counts) {
        self.counts = counts;
    }
}

impl Columns for SecondRow {
    const LAYOUT: Layout = SECONDS;
    const REQUIRED: &'static [&'static str] =
        &["mode", "second", "active_users", "open_connections"];

    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "mode" => self.mode = map.next_value()?,
            "second" => self.second = map.next_value()?,
            "p50_ms" => self.p50_ms = map.next_value()?,
            "p99_ms" => self.p99_ms = map.next_value()?,
            "max_ms" => self.max_ms = map.next_value()?,
            "active_users" => self.active_users = map.next_value()?,
            "open_connections" => self.open_connections = map.next_value()?,
            "live_workers" => self.live_workers = map.next_value()?,
            "send_lateness_p50_ms" => self.send_lateness_p50_ms = map.next_value()?,
            "send_lateness_p99_ms" => self.send_lateness_p99_ms = map.next_value()?,
            "send_lateness_max_ms" => self.send_lateness_max_ms = map.next_value()?,
            "generator_late" => self.generator_late = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_counts(&mut self, counts: Counts) {
        self.counts = counts;
    }
}

impl<'de> Deserialize<'de> for SummaryRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        columns::deserialize(d)
    }
}

impl<'de> Deserialize<'de> for SecondRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        columns::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CLASSES, Class};

    fn classes() -> String {
        CLASSES.map(Class::name).join(",")
    }

    #[test]
    fn class_columns_follow_classes_and_the_documented_header() {
        let summary = format!(
            "mode,step,sent,requests,{},dropped,failed,attempts,attempt_failures,retried,p50_ms,\
             p90_ms,p99_ms,p999_ms,max_ms,mean_ms,throughput_rps",
            classes()
        );
        let seconds = format!(
            "mode,second,sent,completed,{},dropped,attempt_failures,p50_ms,p99_ms,max_ms,\
             active_users,open_connections,live_workers,send_lateness_p50_ms,\
             send_lateness_p99_ms,send_lateness_max_ms,generator_late",
            classes()
        );
        assert_eq!(table::header_line::<SummaryRow>(), summary);
        assert_eq!(table::header_line::<SecondRow>(), seconds);
        // reports/README.md's spelling: a new class must change it on purpose.
        assert!(
            summary.starts_with(
                "mode,step,sent,requests,ok,status_4xx,status_503,status_5xx,refused,closed,timeout,\
                 cut,generator_error,tls_error,dropped,"
            ),
            "{summary}"
        );
    }

    fn parse<R: Table>(text: &str) -> Result<Vec<R>, String> {
        csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<Vec<R>, _>>()
            .map_err(|e| e.to_string())
    }

    fn write<R: Table>(rows: &[R]) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in rows {
            w.serialize(r).expect("serialize");
        }
        String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
    }

    #[test]
    fn rows_read_back_as_written() {
        let mut counts = Counts::default();
        for (i, class) in CLASSES.into_iter().enumerate() {
            for _ in 0..=i {
                counts.finish(class, 2, 1);
            }
        }
        let summary = SummaryRow {
            mode: "single".into(),
            step: "all".into(),
            counts,
            p50_ms: Ms::from(1.5),
            max_ms: Ms::from(2.25),
            throughput_rps: 12.5,
            ..SummaryRow::default()
        };
        let second = SecondRow {
            mode: "single".into(),
            second: 3,
            counts: Counts {
                sent: 40,
                attempts: 0,
                retried: 0,
                ..counts
            },
            p99_ms: Ms::from(7.0),
            active_users: 9,
            live_workers: Some(2),
            ..SecondRow::default()
        };
        assert_eq!(
            parse(&write(std::slice::from_ref(&summary))),
            Ok(vec![summary])
        );
        assert_eq!(
            parse(&write(std::slice::from_ref(&second))),
            Ok(vec![second])
        );
    }

    #[test]
    fn a_derived_column_that_disagrees_is_an_error() {
        let text = format!(
            "mode,second,sent,completed,{},dropped,attempt_failures,active_users,open_connections\n\
             m,0,5,5,1,1,1,1,1,0,0,0,0,0,0,0,1,1\n",
            classes()
        );
        let err = parse::<SecondRow>(&text).expect_err("dropped is 0, not 1");
        assert!(
            err.contains("column `dropped`: 0 where the class columns make 1"),
            "{err}"
        );
        let text = "mode,second,sent,completed,ok,dropped,attempt_failures,active_users,\
                    open_connections\nm,0,1,1,1,0,0,0,0\n";
        let err = parse::<SecondRow>(text).expect_err("class columns are required");
        assert!(err.contains("missing field `status_4xx`"), "{err}");
    }
}
