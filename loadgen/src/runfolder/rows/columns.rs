//! The counter and class columns that summary.csv and timeseries.csv share: which
//! counters of a [`Counts`] a file carries around its class columns ([`Layout`]), how
//! they are written (class columns straight from `outcome::CLASSES`), and a map reader
//! for rows that hold a `Counts`, which checks each derived column (`requests`,
//! `completed`, `dropped`, `failed`) against the classes instead of trusting it.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;

use crate::outcome::{ADDED_CLASSES, CLASSES, Counts};

/// A counter column other than a class: its value from `Counts`, and where a value read
/// back goes (`None`: derived from the classes, checked rather than stored).
pub(super) struct Counter {
    column: &'static str,
    value: fn(&Counts) -> u64,
    store: Option<fn(&mut Counts, u64)>,
    /// Newer than the first format: a folder written before it lacks the column.
    optional: bool,
}

/// The counter columns of a file: those before the class columns, those after.
pub(super) struct Layout {
    before: &'static [Counter],
    after: &'static [Counter],
}

const REQUESTS: Counter = Counter {
    column: "requests",
    value: Counts::completed,
    store: None,
    optional: false,
};
const SENT: Counter = Counter {
    column: "sent",
    value: |c| c.sent,
    store: Some(|c, v| c.sent = v),
    optional: false,
};
/// summary.csv's `sent`, added with the conservation check.
const SENT_SINCE_CUT: Counter = Counter {
    optional: true,
    ..SENT
};
const COMPLETED: Counter = Counter {
    column: "completed",
    ..REQUESTS
};
const DROPPED: Counter = Counter {
    column: "dropped",
    value: Counts::dropped,
    store: None,
    optional: false,
};
const FAILED: Counter = Counter {
    column: "failed",
    value: Counts::failed,
    store: None,
    optional: false,
};
const ATTEMPTS: Counter = Counter {
    column: "attempts",
    value: |c| c.attempts,
    store: Some(|c, v| c.attempts = v),
    optional: false,
};
const ATTEMPT_FAILURES: Counter = Counter {
    column: "attempt_failures",
    value: |c| c.attempt_failures,
    store: Some(|c, v| c.attempt_failures = v),
    optional: false,
};
const RETRIED: Counter = Counter {
    column: "retried",
    value: |c| c.retried,
    store: Some(|c, v| c.retried = v),
    optional: false,
};

pub(super) const SUMMARY: Layout = Layout {
    before: &[SENT_SINCE_CUT, REQUESTS],
    after: &[DROPPED, FAILED, ATTEMPTS, ATTEMPT_FAILURES, RETRIED],
};
pub(super) const SECONDS: Layout = Layout {
    before: &[SENT, COMPLETED],
    after: &[DROPPED, ATTEMPT_FAILURES],
};

impl Layout {
    pub(super) fn columns(&self) -> usize {
        self.before.len() + CLASSES.len() + self.after.len()
    }

    pub(super) fn serialize<S: SerializeStruct>(
        &self,
        row: &mut S,
        c: &Counts,
    ) -> Result<(), S::Error> {
        for counter in self.before {
            row.serialize_field(counter.column, &(counter.value)(c))?;
        }
        for class in CLASSES {
            row.serialize_field(class.name(), &c.class(class))?;
        }
        for counter in self.after {
            row.serialize_field(counter.column, &(counter.value)(c))?;
        }
        Ok(())
    }
}

/// Gathers a row's counter and class columns while its map is read.
#[derive(Default)]
struct CountsReader {
    counts: Counts,
    /// Columns seen, with the value read (0 for a class: its value is in `counts`).
    seen: Vec<(&'static str, u64)>,
}

impl CountsReader {
    /// Reads `key`'s value when it is a counter or class column of `layout`.
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        layout: &Layout,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        if let Some(class) = CLASSES.into_iter().find(|c| c.name() == key) {
            self.counts.classes[class as usize] = map.next_value()?;
            self.seen.push((class.name(), 0));
        } else if let Some(counter) = layout
            .before
            .iter()
            .chain(layout.after)
            .find(|c| c.column == key)
        {
            let value: u64 = map.next_value()?;
            if let Some(store) = counter.store {
                store(&mut self.counts, value);
            }
            self.seen.push((counter.column, value));
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// The counts, once every column of `layout` was present and each derived one
    /// agrees with the classes.
    fn finish<E: de::Error>(self, layout: &Layout) -> Result<Counts, E> {
        let seen = |name: &str| self.seen.iter().find(|(n, _)| *n == name).map(|s| s.1);
        for class in CLASSES.into_iter().filter(|c| !ADDED_CLASSES.contains(c)) {
            seen(class.name()).ok_or_else(|| E::missing_field(class.name()))?;
        }
        for counter in layout.before.iter().chain(layout.after) {
            let read = match seen(counter.column) {
                Some(read) => read,
                None if counter.optional => continue,
                None => return Err(E::missing_field(counter.column)),
            };
            let derived = (counter.value)(&self.counts);
            if counter.store.is_none() && read != derived {
                return Err(E::custom(format_args!(
                    "column `{}`: {read} where the class columns make {derived}",
                    counter.column
                )));
            }
        }
        Ok(self.counts)
    }
}

/// Reads one row of either file: the counter columns through [`CountsReader`], the
/// rest through [`Columns::read`]; columns of neither kind are ignored.
struct RowVisitor<R>(PhantomData<R>);

/// The columns of a counted row that are not counters.
pub(super) trait Columns: Default {
    const LAYOUT: Layout;
    /// Reads `key`'s value into the row when it is one of its columns.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
    /// Columns a row must have, its counter and class columns aside.
    const REQUIRED: &'static [&'static str];
    fn set_counts(&mut self, counts: Counts);
}

impl<'de, R: Columns> Visitor<'de> for RowVisitor<R> {
    type Value = R;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row with named columns")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<R, A::Error> {
        let mut row = R::default();
        let mut counts = CountsReader::default();
        let mut seen = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if !row.read(&key, &mut map)? && !counts.read(&R::LAYOUT, &key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
            seen.push(key);
        }
        if let Some(name) = R::REQUIRED.iter().find(|n| !seen.iter().any(|s| s == *n)) {
            return Err(de::Error::missing_field(name));
        }
        row.set_counts(counts.finish(&R::LAYOUT)?);
        Ok(row)
    }
}

/// Deserializes a row that holds a `Counts` from a CSV record with a header.
pub(super) fn deserialize<'de, R: Columns, D: Deserializer<'de>>(d: D) -> Result<R, D::Error> {
    d.deserialize_map(RowVisitor(PhantomData))
}
