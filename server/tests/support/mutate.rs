//! Raw HTTP inputs mutated at random for the property test in `fuzz_raw.rs`: a
//! seeded generator (xorshift64*, reproducible by seed) and the mutations (bit flips,
//! inserted tokens that matter to an HTTP/1.1 parser or the shop's JSON, cut,
//! duplicated and spliced ranges) applied to inputs of the committed corpus.

/// xorshift64*: reproducible by seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that matter to an HTTP/1.1 parser or to the shop's JSON.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b":",
    b" ",
    b"\t",
    b"\0",
    b"\xff",
    b"0",
    b"9",
    b"-1",
    b"18446744073709551616",
    b"99999999999999999999",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b"Idempotency-Key: fuzz\r\n",
    b"0\r\n\r\n",
    b"ffffffff\r\n",
    b"{",
    b"}",
    b"[",
    b"\"",
    b"GET /healthz HTTP/1.1\r\n\r\n",
    b"HTTP/1.0",
    b"%",
    b"/..",
    b"?",
    b"#",
];

pub fn mutated(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut input = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(3) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            2 => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(input.len());
                let copy = input[at..end].to_vec();
                let times = if rng.below(8) == 0 { 2000 } else { 2 };
                for _ in 0..times {
                    input.splice(at..at, copy.iter().copied());
                }
            }
            4 => input.truncate(at),
            _ => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
        }
    }
    input
}
