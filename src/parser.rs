//! The WHATWG "Parsing an event stream" algorithm, over byte chunks split anywhere.
//!
//! Sans-I/O: the caller feeds whatever bytes arrived and receives every event they complete.
//! A chunk may end mid-line, between CR and LF, inside a UTF-8 sequence or inside the BOM.
//! Lines are found on bytes (CR, LF and CRLF are ASCII, so they never occur inside a UTF-8
//! sequence) and each value is decoded once, with U+FFFD for invalid UTF-8, exactly as decoding
//! the whole stream first would.
//!
//! One deliberate departure from the spec's letter: the spec starts every stream with an empty
//! last event ID buffer, while this parser keeps the last event ID across [`Parser::finish`] and
//! so across reconnections, as browsers' `EventSource` does. That is what makes resuming work:
//! the ID to send as `Last-Event-ID` survives the broken connection, and an event of the new
//! connection without an `id:` field carries the ID it follows.

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
    /// Comment lines go to [`EventSink::on_raw_comment`] (else they are dropped as they arrive).
    comments: bool,
    /// A block with an `id:` or `retry:` field and no data is dispatched as an empty-data event.
    dataless_blocks: bool,
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
    /// The current event's data lines joined with LF, when they are not in the chunk being
    /// parsed (see [`ChunkData`]).
    data: Vec<u8>,
    /// Whether the current event has a `data` field, even an empty one.
    has_data: bool,
    event_type: Vec<u8>,
    /// The value of the current event's `id:` field, when `id_set`. The spec's last event ID
    /// buffer is this when set, else `last_event_id`.
    id_buffer: String,
    id_set: bool,
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
            comments: false,
            dataless_blocks: false,
            bom_matched: Some(0),
            after_cr: false,
            line: Vec::new(),
            dropping_line: false,
            discarding_event: false,
            event_size: 0,
            data: Vec::new(),
            has_data: false,
            event_type: Vec::new(),
            id_buffer: String::new(),
            id_set: false,
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

    /// Reports each comment line (`: text`) to [`EventSink::on_raw_comment`], as heartbeat
    /// hooks need. Off by default, when comments cost nothing: they are dropped as they arrive.
    ///
    /// A comment's text is bounded like an event: past `max_event_size` bytes it is cut to its
    /// first `max_event_size` bytes, and the rest of its line is dropped as it arrives. Comments
    /// never count against an event's size.
    pub fn with_comments(mut self, comments: bool) -> Self {
        self.comments = comments;
        self
    }

    /// Dispatches a block that carries an `id:` or `retry:` field but no `data:` field as an
    /// event with empty data, as httpx-sse and httpx2 do (the spec dispatches nothing for it),
    /// for compatibility layers whose callers rely on it: the MCP SDK resumes from the id of a
    /// server's priming block (`id: evt-1`, `retry: 0`, no data) and reads its `retry`.
    ///
    /// The event has the block's own type (`event:`, else `message`), the last event ID after
    /// the block and the block's `retry:` value. Only fields the parser applies count: an `id:`
    /// holding U+0000 NULL and a `retry:` that is not all digits are ignored, as always. A block
    /// with only `event:` or unknown fields, or only comments, is still not dispatched. Off by
    /// default, following the spec; off, it costs nothing (it is looked at only for a block
    /// without data, which dispatches nothing).
    pub fn with_dataless_blocks(mut self, dataless_blocks: bool) -> Self {
        self.dataless_blocks = dataless_blocks;
        self
    }

    /// Starts from a known last event ID, as when resuming a stream.
    pub fn with_last_event_id(mut self, last_event_id: &str) -> Self {
        self.last_event_id = last_event_id.to_owned();
        self
    }

    pub fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    /// Whether comments are reported (see [`Parser::with_comments`]).
    pub fn comments(&self) -> bool {
        self.comments
    }

    /// Whether blocks without data are dispatched (see [`Parser::with_dataless_blocks`]).
    pub fn dataless_blocks(&self) -> bool {
        self.dataless_blocks
    }

    /// The last event ID string: set when an event block ends, kept across events and, unlike the
    /// spec's letter but like browsers, across [`Parser::finish`] and reconnections (see the
    /// module documentation). It is the ID to resume from.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Changes whenever [`Parser::last_event_id`] does, as [`RawEventRef::id_version`].
    pub fn id_version(&self) -> u64 {
        self.id_version
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
        self.event_size > 0
            || self.line.first().is_some_and(|&b| b != b':')
            || self.discarding_event
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
    /// last event ID (like browsers, unlike the spec's letter: see the module documentation) and
    /// `retry` are kept. Returns whether an unfinished event was dropped.
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
        let mut chunk_data: ChunkData<'_> = None;
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
                match self.process_line(line) {
                    Line::Data(value) if !self.has_data => {
                        self.has_data = true;
                        chunk_data = Some(value);
                    }
                    Line::Data(value) => self.append_data(&mut chunk_data, value),
                    Line::Blank => self.dispatch(chunk_data.take(), sink),
                    Line::Comment(text) => sink.on_raw_comment(text),
                    Line::Done => {}
                }
            } else {
                self.complete_carried_line(line, &mut chunk_data, sink);
            }
            rest = &rest[end + terminator_len..];
        }
        if let (true, Some(data)) = (self.has_data, chunk_data) {
            // The event goes on in a later chunk: keep its data line.
            self.data.extend_from_slice(data);
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
        if self.comments && self.line.first().unwrap_or(&partial[0]) == &b':' {
            self.carry_comment(partial);
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

    /// Keeps the start of a comment line, up to what its reported text can hold: its colon,
    /// one space and `max_event_size` bytes. The rest is dropped as it arrives.
    fn carry_comment(&mut self, partial: &[u8]) {
        let room = self
            .max_event_size
            .saturating_add(2)
            .saturating_sub(self.line.len());
        self.line
            .extend_from_slice(&partial[..partial.len().min(room)]);
    }

    fn complete_carried_line<S: EventSink + ?Sized>(
        &mut self,
        tail: &[u8],
        chunk_data: &mut ChunkData<'_>,
        sink: &mut S,
    ) {
        if std::mem::take(&mut self.dropping_line) {
            return;
        }
        if self.comments && self.line[0] == b':' {
            self.carry_comment(tail);
            let mut line = std::mem::take(&mut self.line);
            if let Line::Comment(text) = self.process_line(&line) {
                sink.on_raw_comment(text);
            }
            clear_buffer(&mut line);
            self.line = line;
            return;
        }
        if !self.fits(self.line.len() + tail.len()) {
            self.start_discarding();
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        line.extend_from_slice(tail);
        match self.process_line(&line) {
            Line::Data(value) => self.append_data(chunk_data, value),
            Line::Blank => self.dispatch(chunk_data.take(), sink),
            Line::Comment(text) => sink.on_raw_comment(text),
            Line::Done => {}
        }
        clear_buffer(&mut line);
        self.line = line;
    }

    /// Applies a complete line to the event being built, except what needs the caller: a data
    /// value to store, or a blank line that dispatches the event.
    fn process_line<'l>(&mut self, line: &'l [u8]) -> Line<'l> {
        if line.is_empty() {
            if !std::mem::take(&mut self.discarding_event) {
                return Line::Blank;
            }
            return Line::Done;
        }
        if line[0] == b':' {
            return self.comment(line);
        }
        if self.discarding_event {
            return Line::Done;
        }
        if !self.fits(line.len()) {
            self.start_discarding();
            return Line::Done;
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
            b"data" => return Line::Data(value),
            b"event" => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            b"id" => self.set_id(value),
            b"retry" => {
                if let Some(retry) = RetryMs::parse(value) {
                    self.retry = Some(retry.clone());
                    self.event_retry = Some(retry);
                }
            }
            _ => {}
        }
        Line::Done
    }

    /// A comment line: its text when comments are reported (see [`Parser::with_comments`]).
    #[cold]
    fn comment<'l>(&self, line: &'l [u8]) -> Line<'l> {
        if !self.comments {
            return Line::Done;
        }
        let text = &line[1..];
        let text = text.strip_prefix(b" ").unwrap_or(text);
        Line::Comment(&text[..text.len().min(self.max_event_size)])
    }

    fn set_id(&mut self, value: &[u8]) {
        // The usual id is short ASCII: one inline pass checks it, where `contains` and
        // `from_utf8` are two calls that cost more than the check on a few bytes.
        if value.iter().all(|&byte| byte != 0 && byte.is_ascii()) {
            // SAFETY: ASCII bytes are valid UTF-8.
            let id = unsafe { std::str::from_utf8_unchecked(value) };
            self.id_buffer.clear();
            self.id_buffer.push_str(id);
        } else if !value.contains(&0) {
            self.id_buffer.clear();
            self.id_buffer.push_str(&decode(value));
        } else {
            return; // "If the field value does not contain U+0000 NULL": ignored.
        }
        self.id_set = true;
    }

    /// Adds a data line to an event that already has data, or whose data must outlive the chunk.
    fn append_data(&mut self, chunk_data: &mut ChunkData<'_>, value: &[u8]) {
        if self.has_data {
            if let Some(first) = chunk_data.take() {
                self.data.extend_from_slice(first);
            }
            self.data.push(b'\n');
        } else {
            self.has_data = true;
            *chunk_data = None;
        }
        self.data.extend_from_slice(value);
    }

    fn dispatch<S: EventSink + ?Sized>(&mut self, chunk_data: ChunkData<'_>, sink: &mut S) {
        // The last event ID follows the buffer at every blank line, even with no data.
        let id_set = std::mem::take(&mut self.id_set);
        if id_set && !bytes_eq(self.last_event_id.as_bytes(), self.id_buffer.as_bytes()) {
            // The old ID's allocation becomes the buffer of the next `id:` field.
            std::mem::swap(&mut self.last_event_id, &mut self.id_buffer);
            self.id_version += 1;
        }
        if self.has_data {
            sink.on_raw_event(RawEventRef {
                event: &self.event_type,
                data: chunk_data.unwrap_or(&self.data),
                id: &self.last_event_id,
                id_version: self.id_version,
                retry: self.event_retry.as_ref(),
            });
        } else if self.dataless_blocks && (id_set || self.event_retry.is_some()) {
            self.dispatch_dataless(sink);
        }
        self.clear_event_fields();
    }

    /// A block with an `id:` or `retry:` field and no data, under
    /// [`Parser::with_dataless_blocks`]: an event with empty data.
    #[cold]
    fn dispatch_dataless<S: EventSink + ?Sized>(&mut self, sink: &mut S) {
        sink.on_raw_event(RawEventRef {
            event: &self.event_type,
            data: b"",
            id: &self.last_event_id,
            id_version: self.id_version,
            retry: self.event_retry.as_ref(),
        });
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
        self.id_set = false;
    }

    fn clear_event_fields(&mut self) {
        clear_buffer(&mut self.data);
        self.has_data = false;
        self.event_type.clear();
        self.event_retry = None;
        self.event_size = 0;
    }
}

/// The current event's only data line, while it lies in the chunk being parsed.
///
/// Most events have one data line and end in the chunk that holds it: such a line goes to the
/// sink straight from the chunk. It is copied into [`Parser`]'s buffer only when a second data
/// line follows or the chunk ends before the event does. Meaningful only while the parser's
/// `has_data` is set: the caller's variable may hold the line of an abandoned event.
type ChunkData<'c> = Option<&'c [u8]>;

/// What a complete line asks of the caller of [`Parser::process_line`].
enum Line<'l> {
    /// A blank line that ends an event: dispatch it.
    Blank,
    /// A `data` field with this value.
    Data(&'l [u8]),
    /// A comment to report, with this text.
    Comment(&'l [u8]),
    /// Nothing more: the line was applied, ignored or discarded.
    Done,
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
