//! Stage four: judging a run. `invariants` asks the shop, after the load, whether
//! every confirmed order and cart is still there and the stock balances; `gate`
//! evaluates the scenario's thresholds against what was measured.

pub mod gate;
pub mod invariants;
