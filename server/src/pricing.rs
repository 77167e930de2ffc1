//! The CPU cost of a checkout: a price computation that really burns the configured
//! CPU time (`--checkout-cpu`) on the event-loop thread, the way a Node.js handler
//! would, so that one single-threaded process saturates one core and a cluster uses
//! them all. The result (a checksum over the lines) feeds nothing; it only keeps the
//! optimiser from removing the work.

use std::time::{Duration, Instant};

use crate::store::CartLine;

/// Mixes the cart lines over and over until `budget` has elapsed; returns the mix.
pub fn compute(lines: &[CartLine], budget: Duration) -> u64 {
    if budget.is_zero() {
        return 0;
    }
    let start = Instant::now();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    loop {
        for _ in 0..256 {
            for line in lines {
                state ^= (line.product_id as u64).wrapping_mul(line.price_cents as u64);
                state = state.rotate_left(13).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                state ^= line.quantity as u64;
            }
            state = std::hint::black_box(state);
        }
        if start.elapsed() >= budget {
            return state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burns_at_least_the_budget() {
        let lines = [CartLine {
            product_id: 1,
            quantity: 2,
            price_cents: 300,
        }];
        let start = Instant::now();
        compute(&lines, Duration::from_millis(5));
        assert!(
            start.elapsed() >= Duration::from_millis(5),
            "expected >= 5ms, took {:?}",
            start.elapsed()
        );
        assert_eq!(compute(&lines, Duration::ZERO), 0);
    }
}
