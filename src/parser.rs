//! The WHATWG "Parsing an event stream" algorithm, over byte chunks split anywhere.
//!
//! Sans-I/O: the caller feeds whatever bytes arrived and receives every event they complete.
//! A chunk may end mid-line, between CR and LF, inside a UTF-8 sequence or inside the BOM.
//! Lines are found on bytes (CR, LF and CRLF are ASCII, so they never occur inside a UTF-8
//! sequence) and each value is decoded once, with U+FFFD for invalid UTF-8, exactly as decoding
//! the whole stream first would.

use memchr::{memchr, memchr2};

use crate::event::{decode, Event, EventSink, RawEventRef, RetryMs};

/// The default bound on one event (its field lines, comments excluded): 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A buffer that grew past this for one large event is given back to the allocator afterwards,
/// so that a single huge event does not pin its memory for the life of the stream.
const RETAINED_CAPACITY: usize = 1024 * 1024;

/// An incremental event-stream parser for one stream (and its reconnections).
#[derive(Debug, Clone)]
pub struct Parser {
    max_event_size: usize,
    /// Bytes of a leading BOM seen so far, while the stream start is still being read.
    bom_matched: Option<usize>,
    /// The previous chunk ended with CR: an LF opening the next chunk completes that line end.
    after_cr: bool,
    /// The beginning of a line whose end has not arrived yet.
    line: Vec<u8>,
    /// The unfinished line is dropped as it arrives: a comment, or part of a discarded event.
    dropping_line: bool,
    /// An oversized event is being dropped up to the blank line that ends it.
    discarding_event: bool,
    /// Bytes of the current event's field lines so far, compared with `max_event_size`.
    event_size: usize,
    data: Vec<u8>,
    event_type: Vec<u8>,
    id_buffer: String,
    event_retry: Option<RetryMs>,
    last_event_id: String,
    /// Counts the changes of `last_event_id`, for sinks that reuse what they built for an id.
    id_version: u64,
    retry: Option<RetryMs>,
    oversized: u64,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    pub fn new() -> Self {
        Self {
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            bom_matched: Some(0),
            after_cr: false,
            line: Vec::new(),
            dropping_line: false,
            discarding_event: false,
            event_size: 0,
            data: Vec::new(),
            event_type: Vec::new(),
            id_buffer: String::new(),
            event_retry: None,
            last_event_id: String::new(),
            id_version: 0,
            retry: None,
            oversized: 0,
        }
    }

    /// Bounds the bytes of one event's field lines (a single line included). An event that
    /// grows past it is discarded as its bytes arrive, up to the blank line that ends it, and
    /// counted in [`Parser::oversized`]; parsing resumes with the next event.
    pub fn with_max_event_size(mut self, max_event_size: usize) -> Self {
        self.max_event_size = max_event_size;
        self
    }

    /// Starts from a known last event ID, as when resuming a stream.
    pub fn with_last_event_id(mut self, last_event_id: &str) -> Self {
        self.last_event_id = last_event_id.to_owned();
        self.id_buffer = last_event_id.to_owned();
        self
    }

    pub fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    /// The last event ID string: set when an event block ends, kept across events and
    /// reconnections. It is the ID to resume from.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The last valid `retry:` value seen on the stream.
    pub fn retry(&self) -> Option<&RetryMs> {
        self.retry.as_ref()
    }

    /// How many oversized events have been discarded.
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// Whether an event has begun and not ended: its fields or a line of it have arrived, but
    /// not the blank line that dispatches it. Comments alone do not count.
    pub fn pending(&self) -> bool {
        self.event_size > 0 || !self.line.is_empty() || self.discarding_event
    }

    /// Parses `chunk` and passes every event it completes to `sink`, in order.
    pub fn feed<S: EventSink + ?Sized>(&mut self, chunk: &[u8], sink: &mut S) {
        let chunk = match self.bom_matched {
            Some(matched) => match self.strip_bom(chunk, matched, sink) {
                Some(rest) => rest,
                None => return,
            },
            None => chunk,
        };
        self.feed_lines(chunk, sink);
    }

    /// [`Parser::feed`], collecting owned events.
    pub fn feed_to_vec(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        self.feed(chunk, &mut events);
        events
    }

    /// Ends the stream. An event without its terminating blank line is discarded, as the spec
    /// says, and the parser is ready for a new connection: a BOM is stripped again, while the
    /// last event ID and `retry` are kept. Returns whether an unfinished event was dropped.
    pub fn finish(&mut self) -> bool {
        let dropped = self.pending();
        self.bom_matched = Some(0);
        self.after_cr = false;
        self.dropping_line = false;
        self.discarding_event = false;
        clear_buffer(&mut self.line);
        self.abandon_event();
        dropped
    }

    /// Consumes the part of a leading BOM that `chunk` holds. Returns the rest of the chunk, or
    /// `None` while everything seen could still be the start of a BOM.
    fn strip_bom<'c, S: EventSink + ?Sized>(
        &mut self,
        chunk: &'c [u8],
        matched: usize,
        sink: &mut S,
    ) -> Option<&'c [u8]> {
        let wanted = &BOM[matched..];
        let n = wanted.len().min(chunk.len());
        if chunk[..n] == wanted[..n] {
            if n == wanted.len() {
                self.bom_matched = None;
                return Some(&chunk[n..]);
            }
            self.bom_matched = Some(matched + n);
            return None;
        }
        // Not a BOM after all: the bytes held back are ordinary stream bytes.
        self.bom_matched = None;
        self.feed_lines(&BOM[..matched], sink);
        Some(chunk)
    }

    fn feed_lines<S: EventSink + ?Sized>(&mut self, chunk: &[u8], sink: &mut S) {
        let mut rest = chunk;
        if rest.is_empty() {
            return;
        }
        if std::mem::take(&mut self.after_cr) && rest[0] == b'\n' {
            rest = &rest[1..];
        }
        while let Some(end) = find_line_end(rest) {
            let terminator_len = match (rest[end], rest.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                (b'\r', None) => {
                    self.after_cr = true;
                    1
                }
                _ => 1,
            };
            let line = &rest[..end];
            if self.line.is_empty() && !self.dropping_line {
                self.process_line(line, sink);
            } else {
                self.complete_carried_line(line, sink);
            }
            rest = &rest[end + terminator_len..];
        }
        if !rest.is_empty() {
            self.carry(rest);
        }
    }

    /// Keeps the start of a line whose end is in a later chunk.
    fn carry(&mut self, partial: &[u8]) {
        if self.dropping_line {
            return;
        }
        if self.line.is_empty() && (self.discarding_event || partial[0] == b':') {
            // A comment or a discarded event's line is never needed: drop it as it streams in.
            self.dropping_line = true;
            return;
        }
        if !self.fits(self.line.len() + partial.len()) {
            self.start_discarding();
            self.dropping_line = true;
            return;
        }
        self.line.extend_from_slice(partial);
    }

    fn complete_carried_line<S: EventSink + ?Sized>(&mut self, tail: &[u8], sink: &mut S) {
        if std::mem::take(&mut self.dropping_line) {
            return;
        }
        if !self.fits(self.line.len() + tail.len()) {
            self.start_discarding();
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        line.extend_from_slice(tail);
        self.process_line(&line, sink);
        clear_buffer(&mut line);
        self.line = line;
    }

    fn process_line<S: EventSink + ?Sized>(&mut self, line: &[u8], sink: &mut S) {
        if line.is_empty() {
            if self.discarding_event {
                self.discarding_event = false;
            } else {
                self.dispatch(sink);
            }
            return;
        }
        if self.discarding_event || line[0] == b':' {
            return;
        }
        if !self.fits(line.len()) {
            self.start_discarding();
            return;
        }
        self.event_size += line.len();
        let (name, value) = match find_colon(line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                if value.is_ascii() {
                    // The usual id. ASCII bytes are chars as they are: no UTF-8 to check, and no
                    // `from_utf8` call, which took a fifth of the parse time of an LLM token event.
                    self.id_buffer.extend(value.iter().copied().map(char::from));
                } else {
                    self.id_buffer.push_str(&decode(value));
                }
            }
            b"retry" => {
                if let Some(retry) = RetryMs::parse(value) {
                    self.retry = Some(retry.clone());
                    self.event_retry = Some(retry);
                }
            }
            _ => {}
        }
    }

    fn dispatch<S: EventSink + ?Sized>(&mut self, sink: &mut S) {
        // The last event ID follows the buffer at every blank line, even with no data.
        if !bytes_eq(self.last_event_id.as_bytes(), self.id_buffer.as_bytes()) {
            self.last_event_id.clone_from(&self.id_buffer);
            self.id_version += 1;
        }
        if let Some(b'\n') = self.data.last() {
            self.data.pop();
            sink.on_raw_event(RawEventRef {
                event: &self.event_type,
                data: &self.data,
                id: &self.last_event_id,
                id_version: self.id_version,
                retry: self.event_retry.as_ref(),
            });
        }
        self.clear_event_fields();
    }

    fn fits(&self, line_len: usize) -> bool {
        self.event_size.saturating_add(line_len) <= self.max_event_size
    }

    fn start_discarding(&mut self) {
        self.oversized += 1;
        self.discarding_event = true;
        clear_buffer(&mut self.line);
        self.abandon_event();
    }

    /// Drops the event being built, including an `id:` it set: its ID was never dispatched.
    fn abandon_event(&mut self) {
        self.clear_event_fields();
        if !bytes_eq(self.id_buffer.as_bytes(), self.last_event_id.as_bytes()) {
            self.id_buffer.clone_from(&self.last_event_id);
        }
    }

    fn clear_event_fields(&mut self) {
        clear_buffer(&mut self.data);
        self.event_type.clear();
        self.event_retry = None;
        self.event_size = 0;
    }
}

/// The first CR or LF in `haystack`.
///
/// Most lines of a stream are short (ids, event types, small data, blank lines), and on them the
/// setup of a `memchr2` call costs more than the search. So the first 16 bytes are checked a
/// word at a time here, and only a longer line goes to `memchr2`.
#[inline]
fn find_line_end(haystack: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    if haystack.len() < SHORT {
        return memchr2(b'\n', b'\r', haystack);
    }
    for (index, word) in haystack[..SHORT].chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let found = bytes_equal_to(word, b'\n') | bytes_equal_to(word, b'\r');
        if found != 0 {
            // Little-endian: the lowest set bit marks the first matching byte.
            return Some(index * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    memchr2(b'\n', b'\r', &haystack[SHORT..]).map(|end| SHORT + end)
}

/// The high bit of every byte of `word` that equals `byte`, and no other bit.
///
/// The usual `(x - 0x01..) & !x & 0x80..` is cheaper but may also flag a byte after a match;
/// adding 0x7f to the low seven bits cannot carry into the next byte, so this form is exact.
#[inline]
fn bytes_equal_to(word: u64, byte: u8) -> u64 {
    const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((x & LOW_SEVEN) + LOW_SEVEN) | x | LOW_SEVEN)
}

/// The colon ending a field name. Field names are short (`data`, `id`, `event`, `retry`), so the
/// first bytes are checked directly and only an unusual line goes to `memchr`.
#[inline]
fn find_colon(line: &[u8]) -> Option<usize> {
    const SHORT: usize = 8;
    let head = &line[..line.len().min(SHORT)];
    match head.iter().position(|&byte| byte == b':') {
        Some(colon) => Some(colon),
        None => memchr(b':', &line[head.len()..]).map(|colon| head.len() + colon),
    }
}

/// `a == b`, without calling `memcmp` on empty slices.
///
/// An empty `String` points to a dangling address (0x1). glibc's AVX-512 `memcmp` reads with a
/// masked load even for length 0, and a masked load from an unmapped page takes a microcode
/// assist: about 150 ns per comparison on the benchmark machine, more than parsing a small
/// event. Streams without ids compare two empty ids at every event.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

fn clear_buffer(buffer: &mut Vec<u8>) {
    buffer.clear();
    if buffer.capacity() > RETAINED_CAPACITY {
        buffer.shrink_to(RETAINED_CAPACITY);
    }
}

#[cfg(test)]
mod tests;
