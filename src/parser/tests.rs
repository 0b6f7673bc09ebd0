use super::*;

fn event(event: &str, data: &str, id: &str) -> Event {
    Event {
        event: event.into(),
        data: data.into(),
        id: id.into(),
        retry: None,
    }
}

fn message(data: &str) -> Event {
    event("message", data, "")
}

/// Parses `stream` whole, then split at every position and byte by byte, and checks that every
/// chunking gives the same events and the same final state.
fn parse(stream: &[u8]) -> Vec<Event> {
    parse_with(stream, Parser::new)
}

/// [`parse`] with parsers made by `new`.
fn parse_with(stream: &[u8], new: impl Fn() -> Parser) -> Vec<Event> {
    let mut whole = new();
    let expected = whole.feed_to_vec(stream);
    let chunkings: Vec<Vec<&[u8]>> = (0..=stream.len())
        .map(|at| vec![&stream[..at], &stream[at..]])
        .chain(std::iter::once(stream.chunks(1).collect()))
        .collect();
    for chunks in chunkings {
        let mut parser = new();
        let mut events = Vec::new();
        for chunk in &chunks {
            parser.feed(chunk, &mut events);
        }
        assert_eq!(events, expected, "chunking {chunks:?}");
        assert_eq!(parser.last_event_id(), whole.last_event_id());
        assert_eq!(parser.retry(), whole.retry());
    }
    expected
}

#[test]
fn data_lines_are_joined_and_the_trailing_newline_removed() {
    assert_eq!(parse(b"data: a\ndata:b\ndata\n\n"), [message("a\nb\n")]);
}

#[test]
fn cr_lf_and_crlf_all_end_lines() {
    assert_eq!(
        parse(b"data: 1\r\rdata: 2\n\ndata: 3\r\n\r\ndata: 4\r\n\n"),
        ["1", "2", "3", "4"].map(message)
    );
}

#[test]
fn a_crlf_split_between_chunks_is_one_line_end() {
    let mut parser = Parser::new();
    let mut events = parser.feed_to_vec(b"data: a\r");
    events.extend(parser.feed_to_vec(b"\ndata: b\r"));
    events.extend(parser.feed_to_vec(b"\n\r"));
    events.extend(parser.feed_to_vec(b"\n"));
    assert_eq!(events, [message("a\nb")]);
}

#[test]
fn one_leading_bom_is_stripped_only_at_stream_start() {
    assert_eq!(parse(b"\xEF\xBB\xBFdata: a\n\n"), [message("a")]);
    // A second BOM is part of the line, so the field name is not "data".
    assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), []);
    assert_eq!(parse(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"), [message("a")]);
}

#[test]
fn a_broken_bom_prefix_is_kept_as_data() {
    assert_eq!(parse(b"\xEF\xBBdata: a\n\n"), []);
    assert_eq!(parse(b"\xEF\xBB\n\ndata: a\n\n"), [message("a")]);
    let mut parser = Parser::new();
    assert_eq!(parser.feed_to_vec(b"\xEF"), []);
    assert_eq!(
        parser.feed_to_vec(b":x\ndata: \xEF\n\n"),
        [message("\u{FFFD}")]
    );
}

#[test]
fn finish_restarts_bom_stripping_and_keeps_the_last_event_id() {
    let mut parser = Parser::new();
    assert_eq!(
        parser.feed_to_vec(b"\xEF\xBB\xBFid: 7\ndata: a\n\ndata: cut"),
        [event("message", "a", "7")]
    );
    assert!(parser.finish());
    assert_eq!(
        parser.feed_to_vec(b"\xEF\xBB\xBFdata: b\n\n"),
        [event("message", "b", "7")]
    );
    assert!(!parser.finish());
}

#[test]
fn an_unterminated_event_is_discarded_with_its_id() {
    let mut parser = Parser::new();
    assert_eq!(parser.feed_to_vec(b"id: 1\ndata: x\n"), []);
    assert!(parser.finish());
    assert_eq!(parser.last_event_id(), "");
    assert_eq!(parser.feed_to_vec(b"data: y\n\n"), [message("y")]);
}

#[test]
fn fields_and_values() {
    assert_eq!(
        parse(b"event: add\ndata:  two spaces\nfoo: bar\n: comment\ndata\n\n"),
        [event("add", " two spaces\n", "")]
    );
    assert_eq!(parse(b"event\ndata: x\n\n"), [message("x")]);
    assert_eq!(parse(b"DATA: x\n\n"), []);
    assert_eq!(parse(b"data:\n\n"), [message("")]);
    assert_eq!(parse(b"data: a:b: c\n\n"), [message("a:b: c")]);
}

#[test]
fn ids_persist_reset_and_ignore_nul() {
    assert_eq!(
        parse(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x003\ndata: c\n\nid\ndata: d\n\n"),
        [
            event("message", "a", "1"),
            event("message", "b", "1"),
            event("message", "c", "1"),
            event("message", "d", ""),
        ]
    );
}

#[test]
fn blocks_without_data_are_not_dispatched_but_set_the_last_event_id() {
    let mut parser = Parser::new();
    assert_eq!(parser.feed_to_vec(b"id: 5\n\nevent: x\n\n"), []);
    assert_eq!(parser.last_event_id(), "5");
    assert_eq!(
        parser.feed_to_vec(b"data: a\n\n"),
        [event("message", "a", "5")]
    );
}

#[test]
fn retry_accepts_only_ascii_digits_and_keeps_any_size() {
    let mut parser = Parser::new();
    let events = parser.feed_to_vec(b"retry: 0042\ndata: a\n\n");
    assert_eq!(events[0].retry.as_ref().map(RetryMs::digits), Some("42"));
    assert_eq!(parser.retry().and_then(RetryMs::as_u64), Some(42));
    for bad in [
        &b"retry: -1"[..],
        b"retry: +1",
        b"retry:  1",
        b"retry: 1 ",
        b"retry: 1_000",
        b"retry: \xEF\xBC\x91",
        b"retry: 1.5",
        b"retry:",
    ] {
        let mut stream = bad.to_vec();
        stream.extend_from_slice(b"\ndata: b\n\n");
        let events = parser.feed_to_vec(&stream);
        assert_eq!(events[0].retry, None, "{bad:?}");
        assert_eq!(parser.retry().and_then(RetryMs::as_u64), Some(42));
    }
    parser.feed_to_vec(b"retry: 123456789012345678901234567890\n\n");
    let retry = parser.retry().unwrap();
    assert_eq!(retry.digits(), "123456789012345678901234567890");
    assert_eq!(retry.as_u64(), None);
    parser.feed_to_vec(b"retry: 000\n\n");
    assert_eq!(parser.retry().unwrap().digits(), "0");
}

#[test]
fn line_separators_other_than_cr_and_lf_are_data() {
    let stream = "data: a\u{2028}b\u{2029}c\u{85}d\u{B}e\u{C}f\n\n";
    assert_eq!(
        parse(stream.as_bytes()),
        [message("a\u{2028}b\u{2029}c\u{85}d\u{B}e\u{C}f")]
    );
}

#[test]
fn utf8_split_anywhere_and_invalid_bytes_replaced() {
    assert_eq!(parse("data: é€😀\n\n".as_bytes()), [message("é€😀")]);
    assert_eq!(
        parse(b"data: a\xFFb\xE2\x82\n\n"),
        [message("a\u{FFFD}b\u{FFFD}")]
    );
    assert_eq!(
        parse(b"event: \xC3\ndata: x\n\n"),
        [event("\u{FFFD}", "x", "")]
    );
}

#[test]
fn an_oversized_event_is_discarded_and_parsing_resumes() {
    let mut parser = Parser::new().with_max_event_size(16);
    let events =
        parser.feed_to_vec(b"data: ok\n\ndata: 0123456789abcdef\ndata: more\n\ndata: next\n\n");
    assert_eq!(events, [message("ok"), message("next")]);
    assert_eq!(parser.oversized(), 1);
    // Several lines that together exceed the limit.
    let events = parser.feed_to_vec(b"data: 12345\ndata: 12345\ndata: x\n\ndata: y\n\n");
    assert_eq!(events, [message("y")]);
    assert_eq!(parser.oversized(), 2);
}

#[test]
fn an_oversized_line_split_over_chunks_is_never_buffered_whole() {
    let mut parser = Parser::new().with_max_event_size(1024);
    parser.feed_to_vec(b"id: 1\ndata: a\n\nid: 2\ndata: ");
    for _ in 0..1000 {
        assert_eq!(parser.feed_to_vec(&[b'x'; 4096]), []);
        assert!(parser.line.capacity() <= 2048);
    }
    assert_eq!(parser.oversized(), 1);
    let events = parser.feed_to_vec(b"xxx\ndata: still discarded\n\ndata: b\n\n");
    assert_eq!(events, [event("message", "b", "1")]);
}

#[test]
fn comments_of_any_length_do_not_count_against_the_limit() {
    let mut parser = Parser::new().with_max_event_size(8);
    parser.feed_to_vec(b": ");
    for _ in 0..100 {
        parser.feed_to_vec(&[b'x'; 1000]);
    }
    assert_eq!(parser.feed_to_vec(b"\ndata: a\n\n"), [message("a")]);
    assert_eq!(parser.oversized(), 0);
}

#[test]
fn starting_last_event_id_is_used_until_replaced() {
    let mut parser = Parser::new().with_last_event_id("41");
    assert_eq!(
        parser.feed_to_vec(b"data: a\n\n"),
        [event("message", "a", "41")]
    );
    assert_eq!(
        parser.feed_to_vec(b"id: 42\ndata: b\n\n"),
        [event("message", "b", "42")]
    );
}

/// Every two-chunk split of `stream` under `max_event_size` gives `expected` and ends with the
/// last event ID `last_id`.
fn parse_limited(stream: &[u8], max_event_size: usize, expected: &[Event], last_id: &str) {
    for at in 0..=stream.len() {
        let mut parser = Parser::new().with_max_event_size(max_event_size);
        let mut events = parser.feed_to_vec(&stream[..at]);
        events.extend(parser.feed_to_vec(&stream[at..]));
        assert_eq!(events, expected, "split at {at}");
        assert_eq!(parser.last_event_id(), last_id, "split at {at}");
    }
}

#[test]
fn an_abandoned_events_data_and_id_never_reach_the_next_event() {
    // The abandoned event's first data line was read from the chunk, then a line too long for
    // the limit dropped the event: neither that line nor the event's id may leak.
    parse_limited(
        b"data: keep\n\nid: 9\ndata: lost\ndata: 0123456789abcdef\n\nevent: e\n\ndata: next\n\n",
        16,
        &[message("keep"), message("next")],
        "",
    );
    // The same with the event's only data line ending a chunk, kept for the next one.
    parse_limited(
        b"id: 1\ndata: a\n\nid: 2\ndata: partial\n0123456789abcdef0\n\ndata: b\n\n",
        16,
        &[event("message", "a", "1"), event("message", "b", "1")],
        "1",
    );
}

#[test]
fn data_lines_join_wherever_the_chunks_split_them() {
    // One data line read from the chunk, a second from the next chunk, a third carried over.
    let stream = b"data: one\ndata: two\ndata: three\n\ndata:\ndata\n\ndata: last\n\n";
    assert_eq!(
        parse(stream),
        [message("one\ntwo\nthree"), message("\n"), message("last")]
    );
}

#[test]
fn the_last_event_id_outlives_finish_unlike_the_specs_letter() {
    // The spec starts each stream with an empty buffer; browsers (and this parser) keep it, so
    // that a reconnection resumes from it.
    let mut parser = Parser::new();
    parser.feed_to_vec(b"id: 5\ndata: a\n\n");
    parser.finish();
    assert_eq!(parser.last_event_id(), "5");
    assert_eq!(
        parser.feed_to_vec(b"data: b\n\n"),
        [event("message", "b", "5")]
    );
}

/// Events and comments, as a sink that asked for comments receives them.
#[derive(Debug, Default, PartialEq)]
struct WithComments {
    events: Vec<Event>,
    comments: Vec<String>,
}

impl EventSink for WithComments {
    fn on_event(&mut self, event: crate::EventRef<'_>) {
        self.events.push(event.into());
    }

    fn on_comment(&mut self, comment: &str) {
        self.comments.push(comment.to_owned());
    }
}

/// Parses `stream` with comments reported, whole, split at every position and byte by byte;
/// every chunking must give the same events and comments.
fn parse_with_comments(stream: &[u8], max_event_size: usize) -> WithComments {
    let new = || {
        Parser::new()
            .with_comments(true)
            .with_max_event_size(max_event_size)
    };
    let mut expected = WithComments::default();
    new().feed(stream, &mut expected);
    let chunkings: Vec<Vec<&[u8]>> = (0..=stream.len())
        .map(|at| vec![&stream[..at], &stream[at..]])
        .chain(std::iter::once(stream.chunks(1).collect()))
        .collect();
    for chunks in chunkings {
        let mut parser = new();
        let mut got = WithComments::default();
        for chunk in &chunks {
            parser.feed(chunk, &mut got);
        }
        assert_eq!(got, expected, "chunking {chunks:?}");
    }
    expected
}

#[test]
fn comments_are_reported_in_order_when_asked_for() {
    let stream = b": ping\n:\n:  two spaces\ndata: x\n:in an event\r\n\r:last\r";
    let got = parse_with_comments(stream, DEFAULT_MAX_EVENT_SIZE);
    assert_eq!(got.events, [message("x")]);
    assert_eq!(
        got.comments,
        ["ping", "", " two spaces", "in an event", "last"]
    );
    // Without the flag, the same stream gives the same events and no comment.
    let mut silent = WithComments::default();
    Parser::new().feed(stream, &mut silent);
    assert_eq!(silent.events, got.events);
    assert_eq!(silent.comments, Vec::<String>::new());
}

#[test]
fn a_comment_is_decoded_with_replacement_and_after_a_bom() {
    let got = parse_with_comments(b"\xEF\xBB\xBF: \xC3\xA9 \xFF\n", DEFAULT_MAX_EVENT_SIZE);
    assert_eq!(got.comments, ["\u{e9} \u{fffd}"]);
}

#[test]
fn a_long_comment_is_cut_to_max_event_size_and_never_buffered_whole() {
    let got = parse_with_comments(b": 0123456789abc\n:abcdefghijklm\ndata: 0123\n\n", 10);
    assert_eq!(got.comments, ["0123456789", "abcdefghij"]);
    assert_eq!(got.events, [message("0123")]);

    let mut parser = Parser::new().with_comments(true).with_max_event_size(1024);
    let mut sink = WithComments::default();
    parser.feed(b": ", &mut sink);
    for _ in 0..1000 {
        parser.feed(&[b'x'; 4096], &mut sink);
        assert!(parser.line.len() <= 1026, "{}", parser.line.len());
        assert!(!parser.pending(), "a comment is no event");
    }
    parser.feed(b"\ndata: a\n\n", &mut sink);
    assert_eq!(sink.comments, ["x".repeat(1024)]);
    assert_eq!(sink.events, [message("a")]);
    assert_eq!(parser.oversized(), 0);
}

#[test]
fn comments_inside_a_discarded_event_are_still_reported() {
    let got = parse_with_comments(b"data: 0123456789\n: alive\ndata: more\n\ndata: ok\n\n", 8);
    assert_eq!(got.comments, ["alive"]);
    assert_eq!(got.events, [message("ok")]);
}

#[test]
fn an_unterminated_comment_is_dropped_at_the_end_of_the_stream() {
    let mut parser = Parser::new().with_comments(true);
    let mut sink = WithComments::default();
    parser.feed(b": complete\n: cut off", &mut sink);
    assert!(!parser.pending());
    assert!(!parser.finish());
    parser.feed(b"\n", &mut sink);
    assert_eq!(sink.comments, ["complete"]);
}

/// [`parse`] with [`Parser::with_dataless_blocks`].
fn parse_dataless(stream: &[u8]) -> Vec<Event> {
    parse_with(stream, || Parser::new().with_dataless_blocks(true))
}

fn with_retry(mut event: Event, retry: &[u8]) -> Event {
    event.retry = RetryMs::parse(retry);
    event
}

#[test]
fn dataless_blocks_are_off_by_default() {
    assert!(!Parser::new().dataless_blocks());
    assert!(Parser::new().with_dataless_blocks(true).dataless_blocks());
    assert_eq!(parse(b"id: evt-1\nretry: 0\n\nevent: x\nid: 5\n\n"), []);
}

#[test]
fn a_priming_block_is_dispatched_with_its_id_and_retry() {
    assert_eq!(
        parse_dataless(b"id: evt-1\nretry: 0\n\nid: evt-2\ndata: x\n\n"),
        [
            with_retry(event("message", "", "evt-1"), b"0"),
            event("message", "x", "evt-2"),
        ]
    );
}

#[test]
fn an_id_only_block_before_an_event_is_its_own_event() {
    assert_eq!(
        parse_dataless(b"data: a\n\nid: 7\n\ndata: b\n\n"),
        [
            event("message", "a", ""),
            event("message", "", "7"),
            event("message", "b", "7"),
        ]
    );
}

#[test]
fn a_block_repeating_the_current_id_or_retry_is_dispatched() {
    assert_eq!(
        parse_dataless(b"id: 3\nretry: 5\ndata: a\n\nid: 3\n\nretry: 5\n\n"),
        [
            with_retry(event("message", "a", "3"), b"5"),
            event("message", "", "3"),
            with_retry(event("message", "", "3"), b"5"),
        ]
    );
}

#[test]
fn a_dataless_block_has_its_own_event_type() {
    assert_eq!(
        parse_dataless(b"event: x\nid: 5\n\nretry: 9\nevent: y\n\nid: 6\n\n"),
        [
            event("x", "", "5"),
            with_retry(event("y", "", "5"), b"9"),
            event("message", "", "6"),
        ]
    );
}

#[test]
fn blocks_with_only_an_event_type_comments_or_ignored_fields_are_not_dispatched() {
    assert_eq!(
        parse_dataless(
            b"event: x\n\n: ping\n\nfoo: 1\n\nid: a\x00b\n\nretry: 1s\n\n\n\ndata: d\n\n"
        ),
        [message("d")]
    );
}

#[test]
fn a_dataless_block_is_dispatched_only_once_it_ends() {
    let mut parser = Parser::new().with_dataless_blocks(true);
    assert_eq!(parser.feed_to_vec(b"id: 1\nretry: 2\n"), []);
    assert!(parser.pending());
    // Its data may still come: then it is an ordinary event.
    assert_eq!(
        parser.feed_to_vec(b"data: x\n\n"),
        [with_retry(event("message", "x", "1"), b"2")]
    );
    assert_eq!(parser.feed_to_vec(b"id: 2\n"), []);
    assert!(
        parser.finish(),
        "an unterminated block is dropped, as an event is"
    );
    assert_eq!(parser.feed_to_vec(b"\n"), []);
    assert_eq!(parser.last_event_id(), "1");
}

#[test]
fn an_oversized_dataless_block_is_discarded() {
    let mut parser = Parser::new()
        .with_dataless_blocks(true)
        .with_max_event_size(8);
    assert_eq!(
        parser.feed_to_vec(b"id: 123456789\n\nid: 1\n\n"),
        [event("message", "", "1")]
    );
    assert_eq!(parser.oversized(), 1);
}
