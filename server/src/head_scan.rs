//! Naming the right status when hyper rejects a request head itself. Hyper answers
//! 431 to every head past the size limit and to a `Content-Length` it cannot
//! represent (18446744073709551615), and 400 to one that overflows; RFC 9110 says
//! 414 for an over-long request target and 413 for content larger than the server
//! accepts. [`HeadScan`] watches the bytes read on a connection, line by line, and
//! keeps only what that choice needs (the length of the first line of the current
//! head, whether a `Content-Length` line in it had 20 or more digits): a few
//! counters, no copy of the head. [`rejected_head`] then picks the status and
//! message. It is only consulted once hyper has already refused a head, so a wrong
//! guess (a pipelined body mistaken for a head line) can only change which 4xx is
//! sent, never refuse a request hyper accepted.

use hyper::StatusCode;

use crate::api::{MAX_BODY, MAX_HEAD, MAX_TARGET};

const CONTENT_LENGTH: &[u8] = b"content-length:";
/// 20 digits reach 10^19; hyper's own limit is just under u64::MAX (20 digits too).
const HUGE_DIGITS: u32 = 20;

/// Counters over the bytes of the head being received, and what the last complete
/// head showed (hyper judges `Content-Length` once the whole head is in).
#[derive(Debug, Default)]
pub struct HeadScan {
    current: Lines,
    /// The last head that ended with a blank line: its first line's length, and
    /// whether it had a huge `Content-Length`.
    finished: (usize, bool),
}

#[derive(Debug, Default)]
struct Lines {
    /// Bytes in the current line so far (without its LF).
    line_len: usize,
    /// The current line's first bytes, lower-cased, up to `CONTENT_LENGTH.len()`.
    prefix: [u8; 15],
    /// The last byte seen (a CR before the LF makes a line blank too).
    last: u8,
    /// Lines since the last blank line: 0 while in the first line of a head.
    line_no: u32,
    /// Length of the first line of the current head (the request line).
    first_line_len: usize,
    /// Digits seen in the current line, if it is a `Content-Length` line.
    digits: u32,
    /// A `Content-Length` of 20 or more digits in the current head.
    huge_length: bool,
}

impl HeadScan {
    /// Takes in bytes just read from the client.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.current.take(&bytes[..end]);
                    if self.current.end_line() {
                        let done = std::mem::take(&mut self.current);
                        self.finished = (done.first_line_len, done.huge());
                    }
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.current.take(bytes);
                    bytes = &[];
                }
            }
        }
    }

    /// Whether the head being received, or the last complete one, had a
    /// `Content-Length` of 20 or more digits.
    fn huge_length(&self) -> bool {
        self.current.huge() || self.finished.1
    }

    /// The longer first line of the head being received and the last complete one.
    fn first_line_len(&self) -> usize {
        self.current.first_line_len.max(self.finished.0)
    }
}

impl Lines {
    fn huge(&self) -> bool {
        self.huge_length || self.digits >= HUGE_DIGITS
    }

    fn take(&mut self, part: &[u8]) {
        let Some(&last) = part.last() else {
            return;
        };
        let have = self.line_len.min(self.prefix.len());
        for (slot, byte) in self.prefix[have..].iter_mut().zip(part) {
            *slot = byte.to_ascii_lowercase();
        }
        if self.line_len + part.len() >= CONTENT_LENGTH.len() && self.prefix == CONTENT_LENGTH {
            let skip = CONTENT_LENGTH.len().saturating_sub(self.line_len);
            let digits = part
                .iter()
                .skip(skip)
                .filter(|b| b.is_ascii_digit())
                .count();
            self.digits = self
                .digits
                .saturating_add(u32::try_from(digits).unwrap_or(u32::MAX));
        }
        self.line_len += part.len();
        self.last = last;
        if self.line_no == 0 {
            self.first_line_len = self.line_len;
        }
    }

    /// Ends the current line; true if it was blank (the end of a head, or a stray
    /// CRLF before one).
    fn end_line(&mut self) -> bool {
        let blank = self.line_len == 0 || (self.line_len == 1 && self.last == b'\r');
        if blank {
            return true;
        }
        if self.digits >= HUGE_DIGITS {
            self.huge_length = true;
        }
        self.line_no += 1;
        self.line_len = 0;
        self.digits = 0;
        self.prefix = [0; 15];
        self.last = b'\n';
        false
    }
}

/// The status and message a head hyper refused with `hyper_status` deserves.
pub fn rejected_head(hyper_status: u16, scan: &HeadScan) -> (StatusCode, String) {
    match hyper_status {
        400 | 431 if scan.huge_length() => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Content-Length is larger than the limit of {MAX_BODY} bytes"),
        ),
        431 if scan.first_line_len() > MAX_TARGET => (
            StatusCode::URI_TOO_LONG,
            format!("request line over {MAX_TARGET} bytes"),
        ),
        431 => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("request head over {MAX_HEAD} bytes or 100 header fields"),
        ),
        414 => (
            StatusCode::URI_TOO_LONG,
            format!("request line over {MAX_TARGET} bytes"),
        ),
        _ => (
            StatusCode::from_u16(hyper_status).unwrap_or(StatusCode::BAD_REQUEST),
            "malformed request head".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> HeadScan {
        let mut scan = HeadScan::default();
        chunks.iter().for_each(|c| scan.feed(c));
        scan
    }

    #[test]
    fn a_huge_content_length_is_413_however_the_bytes_arrive() {
        let head: &[u8] =
            b"POST /carts HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n";
        for split in 0..head.len() {
            let scan = scan(&[&head[..split], &head[split..]]);
            let (status, _) = rejected_head(431, &scan);
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "split at {split}");
        }
        let overflow = scan(&[b"POST / HTTP/1.1\r\ncontent-LENGTH:  99999999999999999999999\r\n"]);
        assert_eq!(
            rejected_head(400, &overflow).0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn an_overlong_request_line_is_414_and_big_headers_431() {
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', 100_000));
        let scan_long = scan(&[&long]);
        assert_eq!(rejected_head(431, &scan_long).0, StatusCode::URI_TOO_LONG);

        let mut big_header = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        big_header.extend(std::iter::repeat_n(b'a', 100_000));
        let scan_big = scan(&[&big_header]);
        assert_eq!(
            rejected_head(431, &scan_big).0,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn a_blank_line_starts_the_next_head_afresh() {
        let scan = scan(&[
            b"POST / HTTP/1.1\r\nContent-Length: 123456789012345678901\r\n\r\n",
            b"GET /short HTTP/1.1\r\nX-Many: 1\r\n\r\n",
            b"GET /short HTTP/1.1\r\nX-Many: 1\r\n",
        ]);
        assert_eq!(
            rejected_head(431, &scan).0,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the huge length belonged to a head two heads back"
        );
        assert_eq!(rejected_head(400, &scan).0, StatusCode::BAD_REQUEST);
    }
}
