//! loadgen: the load and chaos harness library.

pub mod report;
