//! The RESP2 frames a subscribed connection receives, parsed in place from
//! the bytes read (see `plain_subscription.rs`): no allocation, no copy of a
//! payload before it is verified.
//!
//! A subscribed RESP2 connection receives flat arrays of scalars (`message`,
//! `subscribe` confirmations, the `pong` of a PING), error lines and, before
//! it subscribes, simple strings. [`parse`] returns those as [`Frame`]s
//! borrowing the buffer; anything else well formed (a longer or nested
//! array) is measured and returned as [`Frame::Other`], to be skipped.
//! Whatever breaks the protocol is [`Malformed`] (the connection is then
//! dropped and rebuilt); an incomplete frame is `Ok(None)`, to be parsed
//! again with more bytes.

/// The most items of an array returned as [`Frame::Array`].
pub(crate) const ARRAY_ITEMS: usize = 3;

/// The longest bulk string accepted: Redis's own default limit
/// (`proto-max-bulk-len`).
pub(crate) const MAX_BULK: usize = 512 * 1024 * 1024;

/// The most items of any array, and how deep arrays may nest, in what is
/// skipped: far beyond what pub/sub sends, small enough that a forged frame
/// cannot make the parser work for long.
const MAX_ITEMS: usize = 1 << 20;
const MAX_LINE: usize = 64 * 1024;
const MAX_DEPTH: usize = 8;

/// One scalar: a bulk string (None: the null bulk), an integer or a simple string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scalar<'a> {
    Bulk(Option<&'a [u8]>),
    Integer(i64),
    Simple(&'a [u8]),
}

/// One frame, borrowing the buffer it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A scalar at the top level.
    Scalar(Scalar<'a>),
    /// An error line, without its `-`.
    Error(&'a [u8]),
    /// A flat array of at most [`ARRAY_ITEMS`] scalars (`len` of them).
    Array {
        items: [Scalar<'a>; ARRAY_ITEMS],
        len: usize,
    },
    /// Any other well-formed frame (a null or longer or nested array).
    Other,
}

impl<'a> Frame<'a> {
    /// The channel and payload of a pub/sub `message` frame.
    pub(crate) fn message(&self) -> Option<(&'a [u8], &'a [u8])> {
        match *self {
            Frame::Array {
                items:
                    [Scalar::Bulk(Some(b"message")), Scalar::Bulk(Some(channel)), Scalar::Bulk(Some(payload))],
                len: 3,
            } => Some((channel, payload)),
            _ => None,
        }
    }

    /// Whether this is the answer to a PING on a subscribed connection.
    pub(crate) fn is_subscribed_pong(&self) -> bool {
        matches!(
            self,
            Frame::Array { items: [Scalar::Bulk(Some(kind)), ..], len: 2 }
                if kind.eq_ignore_ascii_case(b"pong")
        )
    }
}

/// The bytes do not follow RESP2.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// Parses the frame at the start of `bytes`: the frame and how many bytes it
/// took, or None if `bytes` holds only part of it.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<(Frame<'_>, usize)>, Malformed> {
    let Some((kind, line, mut at)) = line(bytes, 0)? else {
        return Ok(None);
    };
    let frame = match kind {
        b'-' => Frame::Error(line),
        b'*' => match length(line, MAX_ITEMS)? {
            Some(count) if count <= ARRAY_ITEMS => {
                let mut items = [Scalar::Bulk(None); ARRAY_ITEMS];
                let mut flat = true;
                for (index, item) in items.iter_mut().enumerate().take(count) {
                    match scalar(bytes, at)? {
                        Parsed::Incomplete => return Ok(None),
                        Parsed::Scalar(found, next) => {
                            *item = found;
                            at = next;
                        }
                        // A nested array or an error inside: skip what is left.
                        Parsed::Aggregate => {
                            let Some(next) = skip_items(bytes, at, count - index, 1)? else {
                                return Ok(None);
                            };
                            at = next;
                            flat = false;
                            break;
                        }
                    }
                }
                if flat {
                    Frame::Array { items, len: count }
                } else {
                    Frame::Other
                }
            }
            Some(count) => match skip_items(bytes, at, count, 1)? {
                Some(next) => {
                    at = next;
                    Frame::Other
                }
                None => return Ok(None),
            },
            None => Frame::Other,
        },
        _ => match scalar(bytes, 0)? {
            Parsed::Incomplete => return Ok(None),
            Parsed::Scalar(found, next) => {
                at = next;
                Frame::Scalar(found)
            }
            Parsed::Aggregate => return Err(Malformed("an unexpected aggregate")),
        },
    };
    Ok(Some((frame, at)))
}

/// What [`scalar`] found at a position.
enum Parsed<'a> {
    Incomplete,
    Scalar(Scalar<'a>, usize),
    /// An array or error where a scalar was expected: skipped by the caller.
    Aggregate,
}

/// The scalar at `at`, or that it is incomplete, or that an aggregate is there.
fn scalar(bytes: &[u8], at: usize) -> Result<Parsed<'_>, Malformed> {
    let Some((kind, line, next)) = line(bytes, at)? else {
        return Ok(Parsed::Incomplete);
    };
    Ok(match kind {
        b'+' => Parsed::Scalar(Scalar::Simple(line), next),
        b':' => Parsed::Scalar(Scalar::Integer(integer(line)?), next),
        b'$' => match length(line, MAX_BULK)? {
            None => Parsed::Scalar(Scalar::Bulk(None), next),
            Some(len) => {
                let end = next + len;
                if bytes.len() < end + 2 {
                    return Ok(Parsed::Incomplete);
                }
                if &bytes[end..end + 2] != b"\r\n" {
                    return Err(Malformed("a bulk string not ended by CRLF"));
                }
                Parsed::Scalar(Scalar::Bulk(Some(&bytes[next..end])), end + 2)
            }
        },
        b'*' | b'-' => Parsed::Aggregate,
        _ => return Err(Malformed("an unknown frame type")),
    })
}

/// Skips `count` values from `at` (arrays nested at most to [`MAX_DEPTH`]);
/// returns where they end, or None if they are incomplete.
fn skip_items(
    bytes: &[u8],
    mut at: usize,
    count: usize,
    depth: usize,
) -> Result<Option<usize>, Malformed> {
    if depth > MAX_DEPTH {
        return Err(Malformed("arrays nested too deep"));
    }
    for _ in 0..count {
        let Some((kind, line, next)) = line(bytes, at)? else {
            return Ok(None);
        };
        at = match kind {
            b'*' => match length(line, MAX_ITEMS)? {
                Some(items) => match skip_items(bytes, next, items, depth + 1)? {
                    Some(end) => end,
                    None => return Ok(None),
                },
                None => next,
            },
            b'-' => next,
            _ => match scalar(bytes, at)? {
                Parsed::Incomplete => return Ok(None),
                Parsed::Scalar(_, end) => end,
                Parsed::Aggregate => return Err(Malformed("an unexpected aggregate")),
            },
        };
    }
    Ok(Some(at))
}

/// A line: its type byte, its text and where the next line begins.
type Line<'a> = (u8, &'a [u8], usize);

/// The line at `at`, or None if it is not complete yet.
fn line(bytes: &[u8], at: usize) -> Result<Option<Line<'_>>, Malformed> {
    let Some(rest) = bytes.get(at..) else {
        return Ok(None);
    };
    // A header or error line is short: one longer than MAX_LINE is not RESP
    // (whether or not its end has arrived yet).
    let window = &rest[..rest.len().min(MAX_LINE + 1)];
    let Some(end) = window.iter().position(|&byte| byte == b'\n') else {
        return if rest.len() > MAX_LINE {
            Err(Malformed("a line too long"))
        } else {
            Ok(None)
        };
    };
    if end < 2 || rest[end - 1] != b'\r' {
        return Err(Malformed("a line not ended by CRLF"));
    }
    Ok(Some((rest[0], &rest[1..end - 1], at + end + 1)))
}

/// A length line: None for -1 (null), else a count of at most `max`.
fn length(line: &[u8], max: usize) -> Result<Option<usize>, Malformed> {
    match integer(line)? {
        -1 => Ok(None),
        n if n < 0 => Err(Malformed("a negative length")),
        n => usize::try_from(n)
            .ok()
            .filter(|&n| n <= max)
            .map(Some)
            .ok_or(Malformed("a length over the limit")),
    }
}

/// A decimal integer line.
fn integer(line: &[u8]) -> Result<i64, Malformed> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(Malformed("not an integer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::{self, apply, edits, largest_allocation, Tally};
    use proptest::prelude::*;

    const MESSAGE: &[u8] = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";

    fn whole(bytes: &[u8]) -> (Frame<'_>, usize) {
        parse(bytes).unwrap().unwrap()
    }

    #[test]
    fn a_message_is_its_channel_and_payload_borrowed_from_the_buffer() {
        let mut bytes = MESSAGE.to_vec();
        bytes.extend_from_slice(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        let (frame, used) = whole(&bytes);
        assert_eq!(used, MESSAGE.len());
        assert_eq!(frame.message(), Some((&b"ch"[..], &b"hello"[..])));
        assert!(!frame.is_subscribed_pong());
        let (pong, rest) = whole(&bytes[used..]);
        assert!(pong.is_subscribed_pong());
        assert_eq!(pong.message(), None);
        assert_eq!(used + rest, bytes.len());
    }

    #[test]
    fn confirmations_errors_and_simple_strings_are_told_apart() {
        let (confirmation, _) = whole(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
        assert_eq!(
            confirmation,
            Frame::Array {
                items: [
                    Scalar::Bulk(Some(b"subscribe")),
                    Scalar::Bulk(Some(b"ch")),
                    Scalar::Integer(1)
                ],
                len: 3
            }
        );
        assert_eq!(confirmation.message(), None);
        assert_eq!(
            whole(b"-NOPERM no channel\r\n").0,
            Frame::Error(b"NOPERM no channel")
        );
        assert_eq!(whole(b"+OK\r\n").0, Frame::Scalar(Scalar::Simple(b"OK")));
        assert_eq!(whole(b"$-1\r\n").0, Frame::Scalar(Scalar::Bulk(None)));
        assert!(!whole(b"+PONG\r\n").0.is_subscribed_pong());
    }

    #[test]
    fn a_frame_is_incomplete_until_its_last_byte() {
        for end in 0..MESSAGE.len() {
            assert_eq!(parse(&MESSAGE[..end]), Ok(None), "{end} bytes");
        }
        assert!(parse(MESSAGE).unwrap().is_some());
    }

    #[test]
    fn longer_and_nested_arrays_are_measured_and_skipped() {
        let nested = b"*2\r\n*2\r\n:1\r\n$1\r\na\r\n-ERR inside\r\n+after\r\n";
        assert_eq!(whole(nested), (Frame::Other, nested.len() - 8));
        let long = b"*4\r\n:1\r\n:2\r\n:3\r\n$1\r\nx\r\n";
        assert_eq!(whole(long), (Frame::Other, long.len()));
        let inner = b"*2\r\n$3\r\nabc\r\n*1\r\n:5\r\n";
        assert_eq!(whole(inner), (Frame::Other, inner.len()));
        assert_eq!(whole(b"*-1\r\n"), (Frame::Other, 5));
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).is_err(), "nested too deep");
    }

    #[test]
    fn what_is_not_resp2_is_malformed() {
        for bytes in [
            &b"?what\r\n"[..],
            b"+no carriage return\n",
            b"\r\n",
            b"$3\r\nabcd\r\n",
            b"$-2\r\n",
            b":12x\r\n",
            b"*1\r\n?\r\n",
        ] {
            assert!(
                parse(bytes).is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let mut endless = vec![b'+'; MAX_LINE + 2];
        assert!(parse(&endless).is_err(), "a line that never ends");
        endless.extend_from_slice(b"\r\n");
        assert!(parse(&endless).is_err(), "a line too long, whole");
        let huge = format!("${}\r\n", MAX_BULK + 1);
        assert!(parse(huge.as_bytes()).is_err(), "a bulk over the limit");
    }

    /// A RESP2 value and its encoding.
    #[derive(Clone, Debug)]
    enum Value {
        Simple(Vec<u8>),
        Error(Vec<u8>),
        Integer(i64),
        Bulk(Option<Vec<u8>>),
        Array(Option<Vec<Value>>),
    }

    impl Value {
        fn encode(&self, out: &mut Vec<u8>) {
            match self {
                Value::Simple(text) => line(out, b'+', text),
                Value::Error(text) => line(out, b'-', text),
                Value::Integer(n) => line(out, b':', n.to_string().as_bytes()),
                Value::Bulk(None) => line(out, b'$', b"-1"),
                Value::Bulk(Some(bytes)) => {
                    line(out, b'$', bytes.len().to_string().as_bytes());
                    out.extend_from_slice(bytes);
                    out.extend_from_slice(b"\r\n");
                }
                Value::Array(None) => line(out, b'*', b"-1"),
                Value::Array(Some(items)) => {
                    line(out, b'*', items.len().to_string().as_bytes());
                    items.iter().for_each(|item| item.encode(out));
                }
            }
        }

        /// The scalar this value parses to, if it is one.
        fn scalar(&self) -> Option<Scalar<'_>> {
            match self {
                Value::Simple(text) => Some(Scalar::Simple(text)),
                Value::Integer(n) => Some(Scalar::Integer(*n)),
                Value::Bulk(bytes) => Some(Scalar::Bulk(bytes.as_deref())),
                Value::Error(_) | Value::Array(_) => None,
            }
        }

        /// The frame this value parses to.
        fn frame(&self) -> Frame<'_> {
            match self {
                Value::Error(text) => Frame::Error(text),
                Value::Array(Some(items)) if items.len() <= ARRAY_ITEMS => {
                    let scalars: Option<Vec<Scalar<'_>>> =
                        items.iter().map(Value::scalar).collect();
                    match scalars {
                        Some(scalars) => {
                            let mut items = [Scalar::Bulk(None); ARRAY_ITEMS];
                            items[..scalars.len()].copy_from_slice(&scalars);
                            Frame::Array {
                                items,
                                len: scalars.len(),
                            }
                        }
                        None => Frame::Other,
                    }
                }
                Value::Array(_) => Frame::Other,
                scalar => Frame::Scalar(scalar.scalar().unwrap()),
            }
        }
    }

    fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
        out.push(kind);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }

    fn values() -> impl Strategy<Value = Value> {
        let text = prop::collection::vec(
            any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'),
            0..12,
        );
        let scalar = prop_oneof![
            text.clone().prop_map(Value::Simple),
            text.prop_map(Value::Error),
            any::<i64>().prop_map(Value::Integer),
            prop::option::weighted(0.9, prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(Value::Bulk),
        ];
        scalar.prop_recursive(3, 24, 5, |inner| {
            prop::option::weighted(0.95, prop::collection::vec(inner, 0..5)).prop_map(Value::Array)
        })
    }

    #[test]
    fn encoded_frames_parse_back_whole_at_any_split_and_without_allocating() {
        const NAME: &str = "resp_frames_parse_back_whole_at_any_split";
        fuzz::check(NAME, (values(), any::<usize>()), |(value, split)| {
            let mut bytes = Vec::new();
            value.encode(&mut bytes);
            let (parsed, largest) = largest_allocation(|| parse(&bytes));
            prop_assert_eq!(largest, 0, "parsing allocated");
            prop_assert_eq!(parsed, Ok(Some((value.frame(), bytes.len()))));
            let split = split % bytes.len();
            prop_assert_eq!(parse(&bytes[..split]), Ok(None), "a part is incomplete");
            bytes.extend_from_slice(b"+next\r\n");
            prop_assert_eq!(parse(&bytes).unwrap().unwrap().1, bytes.len() - 7);
            Ok(())
        });
    }

    #[test]
    fn mutated_and_random_bytes_parse_within_bounds() {
        const NAME: &str = "resp_mutated_and_random_bytes_parse_within_bounds";
        static WHOLE: Tally = Tally::new();
        static MALFORMED: Tally = Tally::new();
        let inputs = prop_oneof![
            (values(), edits()).prop_map(|(value, edits)| {
                let mut bytes = Vec::new();
                value.encode(&mut bytes);
                apply(&bytes, &edits)
            }),
            prop::collection::vec(any::<u8>(), 0..64),
        ];
        fuzz::check(NAME, inputs, |bytes| {
            let (parsed, largest) = largest_allocation(|| parse(&bytes));
            prop_assert_eq!(largest, 0, "parsing allocated");
            if let Ok(Some((_, used))) = parsed {
                prop_assert!(used > 0 && used <= bytes.len());
            }
            WHOLE.count(matches!(parsed, Ok(Some(_))));
            MALFORMED.count(parsed.is_err());
            Ok(())
        });
        // Most mutations break the frame; enough of them leave one whole.
        WHOLE.at_least(0.04, NAME, "parsed to a whole frame");
        MALFORMED.at_least(0.3, NAME, "were malformed");
    }
}
