//! The fuzz target's invariants (`invariants.rs`) as property tests on the stable toolchain, run
//! by `cargo test` at the root: on generated event streams cut at random (empty chunks and
//! several connections included), on arbitrary bytes read the way the fuzzer reads them, and on
//! every input kept in `fuzz/seeds/chunking/` (the fuzzer's seeds and its findings).

#[path = "invariants.rs"]
mod invariants;

use invariants::{check, check_fuzz_input, decode_fuzz_input, oracle, oracle_with, Plan};
use proptest::prelude::*;

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn special_value() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![
        &b""[..],
        b" ",
        b"x",
        b"\0",
        b"a\0b",
        b"0",
        b"007",
        b"123",
        b"123456789012345678901234567890",
        b"-1",
        b" 1",
        b"1 ",
        "\u{ff11}\u{ff12}".as_bytes(),
        b"\xFF",
        b"\xE2\x82",
        b"\x80",
        b"\xED\xA0\x80",
        "\u{2028}".as_bytes(),
        "\u{85}".as_bytes(),
        BOM,
        b":",
        "é😀".as_bytes(),
    ])
    .prop_map(<[u8]>::to_vec)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => special_value(),
        1 => prop::collection::vec(any::<u8>(), 0..8),
        1 => "[0-9]{1,25}".prop_map(String::into_bytes),
        1 => ".{0,6}".prop_map(String::into_bytes),
    ]
}

fn line_end() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![&b"\n"[..], b"\r", b"\r\n"])
}

fn field_line() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(vec![
        &b"data"[..],
        b"data",
        b"data",
        b"event",
        b"id",
        b"retry",
        b"",
        b"Data",
        b"foo",
        b"data ",
    ]);
    let separator = prop::sample::select(vec![&b""[..], b":", b": ", b": ", b":  "]);
    (name, separator, value(), line_end())
        .prop_map(|(name, separator, value, end)| [name, separator, &value, end].concat())
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => field_line(),
        1 => (value(), line_end()).prop_map(|(value, end)| [b":", &value[..], end].concat()),
        1 => prop::collection::vec(any::<u8>(), 0..10),
        1 => prop::sample::select(vec![BOM, &BOM[..1], &BOM[..2], &BOM[1..]]).prop_map(<[u8]>::to_vec),
    ]
}

/// An event block: a few lines, usually ended by a blank line.
fn block() -> impl Strategy<Value = Vec<u8>> {
    let end = prop::sample::select(vec![&b"\n"[..], b"\r", b"\r\n", b""]);
    (prop::collection::vec(line(), 0..5), end)
        .prop_map(|(lines, end)| [lines.concat(), end.to_vec()].concat())
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    let start = prop::sample::select(vec![&b""[..], b"", BOM, BOM, &BOM[..1], &BOM[..2]]);
    let tail = prop::sample::select(vec![
        &b""[..],
        b"",
        b"data: tail",
        b"data: tail\n",
        b"id: t\n",
    ]);
    (start, prop::collection::vec(block(), 0..7), tail)
        .prop_map(|(start, blocks, tail)| [start, &blocks.concat(), tail].concat())
}

/// A stream cut at random positions (repeated cuts make empty chunks).
fn chunked(stream: Vec<u8>) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let len = stream.len();
    prop::collection::vec(0..=len, 0..12).prop_map(move |mut cuts| {
        cuts.sort_unstable();
        let bounds: Vec<usize> = std::iter::once(0).chain(cuts).chain([len]).collect();
        bounds
            .windows(2)
            .map(|w| stream[w[0]..w[1]].to_vec())
            .collect()
    })
}

fn plan() -> impl Strategy<Value = Plan> {
    let connection = stream().prop_flat_map(chunked);
    let resume = prop::sample::select(vec!["", "42", "é"]);
    (
        prop::collection::vec(connection, 1..4),
        resume,
        any::<bool>(),
    )
        .prop_map(|(connections, resume, dataless_blocks)| Plan {
            connections,
            last_event_id: resume.to_owned(),
            dataless_blocks,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_streams_keep_every_invariant(plan in plan(), limit in 1usize..64) {
        check(&plan, Some(limit));
    }

    #[test]
    fn arbitrary_bytes_keep_every_invariant(input in prop::collection::vec(any::<u8>(), 0..300)) {
        check_fuzz_input(&input);
    }
}

/// Every input kept for the fuzzer: its seeds and each finding, committed as a regression.
#[test]
fn kept_fuzz_inputs_keep_every_invariant() {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/chunking");
    let mut count = 0;
    for entry in std::fs::read_dir(folder).expect("fuzz/seeds/chunking") {
        let path = entry.expect("a directory entry").path();
        let input = std::fs::read(&path).expect("a seed");
        let result = std::panic::catch_unwind(|| check_fuzz_input(&input));
        assert!(result.is_ok(), "{} breaks an invariant", path.display());
        count += 1;
    }
    assert!(count > 0, "no seeds in {folder}");
}

/// The fuzz input format reaches every case: chunk lengths, empty chunks, several connections.
#[test]
fn fuzz_inputs_decode_into_chunks_and_connections() {
    let (plan, limit) = decode_fuzz_input(b"\x09\x45\x02\x00\xff\x01\x03data: x\n\n");
    assert_eq!(limit, 10);
    assert_eq!(plan.last_event_id, "resume");
    assert!(!plan.dataless_blocks);
    let chunks = |c: &[&[u8]]| c.iter().map(|c| c.to_vec()).collect::<Vec<_>>();
    assert_eq!(
        plan.connections,
        [chunks(&[b"da", b""]), chunks(&[b"t", b"a: ", b"x\n\n"])]
    );
    let (plan, limit) = decode_fuzz_input(b"");
    assert_eq!((limit, plan.connections), (1, vec![vec![vec![]]]));
    assert!(decode_fuzz_input(b"\x00\x80id: 1\n\n").0.dataless_blocks);
}

/// The oracle reads the spec as written (it is what the parser is held to, so it is tested too).
#[test]
fn the_oracle_follows_the_spec() {
    let outcome = oracle(
        b"\xEF\xBB\xBFdata: a\r\ndata:b\rid: 7\nretry: 007\n: c\n\nevent\ndata\n\nid: x\0\n\ndata: \xFF",
        "",
    );
    let event = |t: &str, d: &str, id: &str, r: Option<&str>| {
        (
            t.to_owned(),
            d.to_owned(),
            id.to_owned(),
            r.map(str::to_owned),
        )
    };
    assert_eq!(
        outcome.events,
        [
            event("message", "a\nb", "7", Some("7")),
            event("message", "", "7", None)
        ]
    );
    assert_eq!(outcome.comments, ["c"]);
    assert_eq!(outcome.last_event_id, "7");
    assert_eq!(outcome.retry.as_deref(), Some("7"));
    assert!(outcome.pending);
    assert!(!oracle(b"\xEF\xBB", "").pending);
    assert!(!oracle(b"data: x\n\n: partial comment", "").pending);
    assert!(oracle(b"data: x\n", "").pending);
    let dataless = b"id: 1\nretry: 2\n\nevent: x\nid: 3\n\nevent: y\n\n: c\n\nid: \0\nretry: z\n\n";
    assert_eq!(oracle(dataless, "").events, []);
    assert_eq!(
        oracle_with(dataless, "", true).events,
        [
            event("message", "", "1", Some("2")),
            event("x", "", "3", None)
        ]
    );
}
