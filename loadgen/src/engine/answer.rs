//! An HTTP answer as the user loop sees it, and the per-thread pool of read buffers
//! answers live in. A buffer is taken when a request starts reading its answer and
//! goes back to the pool when the answer is dropped, so a user that is thinking (or a
//! connection that is idle) holds no read buffer at all: 100,000 mostly idle users
//! cost only the buffers of the requests in flight. Each user thread runs a
//! current-thread runtime, so the pool is a thread-local without locks.

use std::cell::RefCell;
use std::ops::Range;

/// Bytes a fresh buffer starts with: enough for a typical answer head and body.
const INITIAL: usize = 4096;
/// Buffers grown past this (a big answer) are freed instead of kept.
const KEEP_AT_MOST: usize = 64 * 1024;
/// At most this many idle buffers are kept per thread.
const POOL_SIZE: usize = 1024;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A read buffer from this thread's pool; returned to it on drop.
pub struct Buf(Vec<u8>);

impl Buf {
    pub fn take() -> Buf {
        let v = POOL
            .try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Vec::with_capacity(INITIAL));
        Buf(v)
    }

    pub fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let mut v = std::mem::take(&mut self.0);
        if v.capacity() > KEEP_AT_MOST {
            return;
        }
        v.clear();
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_SIZE {
                p.push(v);
            }
        });
    }
}

/// An HTTP answer (any status): its head's few fields loadgen uses, and the body.
pub struct Answer {
    pub status: u16,
    /// `X-Worker-Pid`, or 0 when absent or not a number.
    pub worker_pid: u32,
    buf: Buf,
    version: Option<Range<usize>>,
    body: Range<usize>,
    /// Every `Set-Cookie` value (none: no allocation).
    set_cookies: Vec<Range<usize>>,
}

impl Answer {
    /// An answer whose `version` (the `X-Server-Version` value) and `body` are ranges
    /// of `buf`.
    pub fn new(
        status: u16,
        worker_pid: u32,
        buf: Buf,
        version: Option<Range<usize>>,
        body: Range<usize>,
    ) -> Answer {
        Answer {
            status,
            worker_pid,
            buf,
            version,
            body,
            set_cookies: Vec::new(),
        }
    }

    /// The same answer with these `Set-Cookie` values (ranges of its buffer).
    pub fn with_cookies(mut self, set_cookies: Vec<Range<usize>>) -> Answer {
        self.set_cookies = set_cookies;
        self
    }

    /// Every `Set-Cookie` value of the answer.
    pub fn set_cookies(&self) -> impl Iterator<Item = &[u8]> {
        self.set_cookies
            .iter()
            .map(|r| &self.buf.bytes()[r.clone()])
    }

    /// An answer built from parts held elsewhere (the hyper client path).
    pub fn copied<'a>(
        status: u16,
        worker_pid: u32,
        version: Option<&[u8]>,
        body: &[u8],
        set_cookies: impl Iterator<Item = &'a [u8]>,
    ) -> Answer {
        let mut buf = Buf::take();
        let v = buf.vec();
        v.extend_from_slice(version.unwrap_or_default());
        let vlen = v.len();
        v.extend_from_slice(body);
        let end = v.len();
        let mut cookies = Vec::new();
        for c in set_cookies {
            let start = v.len();
            v.extend_from_slice(c);
            cookies.push(start..v.len());
        }
        Answer::new(status, worker_pid, buf, version.map(|_| 0..vlen), vlen..end)
            .with_cookies(cookies)
    }

    pub fn body(&self) -> &[u8] {
        &self.buf.bytes()[self.body.clone()]
    }

    /// The `X-Server-Version` header's value, if the answer had one.
    pub fn version(&self) -> Option<&[u8]> {
        self.version.clone().map(|r| &self.buf.bytes()[r])
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_answer_gives_its_buffer_back_to_the_pool_and_big_ones_are_freed() {
        let a = Answer::copied(
            200,
            7,
            Some(b"v2"),
            b"{\"id\":1}",
            [&b"a=1"[..]].into_iter(),
        );
        assert_eq!(a.set_cookies().collect::<Vec<_>>(), vec![&b"a=1"[..]]);
        assert_eq!(a.body(), b"{\"id\":1}");
        assert_eq!(a.version(), Some(&b"v2"[..]));
        let ptr = a.buf.bytes().as_ptr();
        drop(a);
        let mut again = Buf::take();
        assert_eq!(again.vec().as_ptr(), ptr, "the same buffer is reused");
        assert!(again.vec().is_empty());
        again.vec().reserve(KEEP_AT_MOST * 2);
        let big = again.vec().as_ptr();
        drop(again);
        let mut next = Buf::take();
        assert_ne!(next.vec().as_ptr(), big, "a grown buffer is not kept");
        assert_eq!(next.vec().capacity(), INITIAL);
    }
}
