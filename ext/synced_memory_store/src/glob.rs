//! Redis's glob patterns (`KEYS`, `SCAN MATCH`, `RedisCacheStore#delete_matched`),
//! matched exactly as Redis 7's `stringmatchlen` (case-sensitive) matches them,
//! so that a `delete_matched` drops the same keys from Redis, from this process's
//! L1 and from every peer's L1. Patterns and keys are bytes, never characters:
//! `?` is one byte, so `user:??` matches `user:é` (two bytes in UTF-8).
//!
//! ```text
//! pattern := element*
//! element := '*'+                          any run of bytes, the empty run too
//!          | '?'                           any one byte
//!          | '[' '^'? member* (']' | end)  one byte among the members (with '^': not among them);
//!                                          a class never closed runs to the end of the pattern
//!          | '\' byte                      that byte
//!          | byte                          itself; a '\' that ends the pattern too
//! member  := '\' byte                      that byte (a '\' that ends the pattern is itself)
//!          | ']'                           closes the class, even first: "[]" matches nothing,
//!                                          "[^]" any one byte
//!          | byte '-' byte                 a range; ends in either order ("[z-a]" is "[a-z]"),
//!                                          the second may be ']' or '\', taken literally
//!          | byte                          itself ('^' after the first place, '-' at either end, '[')
//! ```
//!
//! Members are read in that order of preference, one after the other, so
//! `[a-]` is the range from `]` to `a` and the class is still open, and `[\a-z]`
//! is `a`, `-` and `z`. Three rules come from how Redis is written rather than
//! from the grammar:
//!
//! - Range ends and the key's byte are compared as C `char`s, which are signed on
//!   x86-64 (where Redis is usually built): bytes 0x80–0xFF sort below 0x00, so
//!   `[a-\xC3]` matches `\xC3`…`\xFF`, `\x00`…`a` and not `b` or `\x80`. (Redis
//!   built where `char` is unsigned, as on ARM, differs for ranges whose ends
//!   straddle 0x80.)
//! - The empty key is matched by the empty pattern only, and by `*`: `KEYS` and
//!   `SCAN` answer the pattern `*` with every key without calling the matcher,
//!   while `stringmatchlen("**", "")` is false.
//! - A pattern with more than [`MAX_NESTING`] stars before its last element
//!   matches nothing: each such star is one level of recursion in Redis, which
//!   gives up beyond that depth (the fix for CVE-2024-31228, in Redis 7.2.6,
//!   7.4.1 and Debian's 7.0.15 packages).
//!
//! The matcher is iterative and takes O(pattern + key × the longest run of
//! elements between two stars) time, Redis's own bound with its
//! `skipLongerMatches`: every element but `*` consumes exactly one byte, so the
//! runs between stars can be placed leftmost-first without backtracking.

/// Stars before the last element beyond which Redis's matcher gives up.
const MAX_NESTING: usize = 1000;

/// A set of bytes: what one element other than `*` accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    const EMPTY: ByteSet = ByteSet([0; 4]);
    const ALL: ByteSet = ByteSet([u64::MAX; 4]);

    fn single(byte: u8) -> ByteSet {
        let mut set = ByteSet::EMPTY;
        set.insert(byte);
        set
    }

    fn insert(&mut self, byte: u8) {
        self.0[usize::from(byte >> 6)] |= 1 << (byte & 63);
    }

    /// Whether `byte` is in the set.
    pub(crate) fn contains(&self, byte: u8) -> bool {
        self.0[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0
    }

    /// The one byte in the set, if it holds exactly one.
    #[cfg_attr(not(feature = "ruby"), allow(dead_code))]
    pub(crate) fn only(&self) -> Option<u8> {
        let total: u32 = self.0.iter().map(|word| word.count_ones()).sum();
        if total != 1 {
            return None;
        }
        (0..=u8::MAX).find(|&byte| self.contains(byte))
    }

    fn complement(self) -> ByteSet {
        ByteSet(self.0.map(|word| !word))
    }
}

/// One element of a parsed pattern.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Element {
    /// Any run of bytes (consecutive stars are one element).
    Star,
    /// One byte from the set: a literal, `?` or a class.
    OneOf(ByteSet),
}

/// A parsed pattern, for matching many keys against it.
#[derive(Debug)]
pub(crate) struct Glob {
    elements: Vec<Element>,
    /// The pattern is exactly `*`, which `KEYS` and `SCAN` answer with every key.
    every_key: bool,
    /// More stars before the last element than Redis recurses through.
    too_deep: bool,
}

impl Glob {
    /// Parses `pattern`; every byte string is a pattern.
    pub(crate) fn new(pattern: &[u8]) -> Glob {
        let mut elements = Vec::new();
        let mut at = 0;
        while at < pattern.len() {
            let (element, next) = match pattern[at] {
                b'*' => (Element::Star, at + 1),
                b'?' => (Element::OneOf(ByteSet::ALL), at + 1),
                b'[' => {
                    let (set, next) = class(pattern, at + 1);
                    (Element::OneOf(set), next)
                }
                b'\\' if at + 1 < pattern.len() => {
                    (Element::OneOf(ByteSet::single(pattern[at + 1])), at + 2)
                }
                byte => (Element::OneOf(ByteSet::single(byte)), at + 1),
            };
            if !(element == Element::Star && elements.last() == Some(&Element::Star)) {
                elements.push(element);
            }
            at = next;
        }
        let stars = elements.iter().filter(|&&e| e == Element::Star).count();
        let inner_stars = stars - usize::from(elements.last() == Some(&Element::Star));
        Glob {
            every_key: pattern == b"*",
            too_deep: inner_stars > MAX_NESTING,
            elements,
        }
    }

    /// The elements, in order.
    #[cfg_attr(not(feature = "ruby"), allow(dead_code))]
    pub(crate) fn elements(&self) -> &[Element] {
        &self.elements
    }

    /// Whether Redis gives up on this pattern (see [`MAX_NESTING`]), so that
    /// it matches no key.
    #[cfg_attr(not(feature = "ruby"), allow(dead_code))]
    pub(crate) fn too_deep(&self) -> bool {
        self.too_deep
    }

    /// Whether `key` matches the pattern as a whole.
    pub(crate) fn matches(&self, key: &[u8]) -> bool {
        if self.every_key {
            return true;
        }
        if key.is_empty() {
            return self.elements.is_empty();
        }
        if self.too_deep {
            return false;
        }
        let elements = &self.elements[..];
        let Some(first_star) = elements.iter().position(|&e| e == Element::Star) else {
            return elements.len() == key.len() && fits(elements, key);
        };
        let last_star = elements.iter().rposition(|&e| e == Element::Star);
        let last_star = last_star.unwrap_or(first_star);
        let (head, tail) = (&elements[..first_star], &elements[last_star + 1..]);
        let Some(middle_len) = key.len().checked_sub(head.len() + tail.len()) else {
            return false;
        };
        let (key_head, rest) = key.split_at(head.len());
        let (mut middle, key_tail) = rest.split_at(middle_len);
        if !fits(head, key_head) || !fits(tail, key_tail) {
            return false;
        }
        // Each run between two stars is placed at its leftmost fit: a later
        // place would leave the runs after it less room, never more.
        let between = &elements[first_star..last_star];
        // `between` starts with the first star: skip the empty piece before it.
        for run in between.split(|&e| e == Element::Star).skip(1) {
            match find(run, middle) {
                Some(at) => middle = &middle[at + run.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Whether `key` matches `pattern` as a whole, as Redis's `KEYS pattern` would
/// list it.
pub(crate) fn matches(pattern: &[u8], key: &[u8]) -> bool {
    Glob::new(pattern).matches(key)
}

/// The class whose members start at `at` (after `[`), and where the element
/// after it starts. The order of the tests is Redis's.
fn class(pattern: &[u8], mut at: usize) -> (ByteSet, usize) {
    let negated = pattern.get(at) == Some(&b'^');
    if negated {
        at += 1;
    }
    let mut set = ByteSet::EMPTY;
    loop {
        let rest = &pattern[at..];
        match rest {
            [b'\\', escaped, ..] => {
                set.insert(*escaped);
                at += 2;
            }
            [b']', ..] => {
                at += 1;
                break;
            }
            // Never closed: the class took the rest of the pattern.
            [] => break,
            [start, b'-', end, ..] => {
                let (low, high) = ordered(signed(*start), signed(*end));
                for byte in 0..=u8::MAX {
                    if (low..=high).contains(&signed(byte)) {
                        set.insert(byte);
                    }
                }
                at += 3;
            }
            [byte, ..] => {
                set.insert(*byte);
                at += 1;
            }
        }
    }
    (if negated { set.complement() } else { set }, at)
}

/// A byte as Redis compares it in a range: a C `char`, signed on x86-64.
fn signed(byte: u8) -> i8 {
    byte as i8
}

fn ordered(a: i8, b: i8) -> (i8, i8) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Whether the star-free `elements` accept `bytes`, one byte each.
fn fits(elements: &[Element], bytes: &[u8]) -> bool {
    elements
        .iter()
        .zip(bytes)
        .all(|(element, &byte)| matches!(element, Element::OneOf(set) if set.contains(byte)))
}

/// Where the star-free `run` first fits in `bytes`.
fn find(run: &[Element], bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(run.len())?;
    (0..=last).find(|&at| fits(run, &bytes[at..at + run.len()]))
}

#[cfg(test)]
mod tests {
    use super::{matches, Element, Glob, MAX_NESTING};

    fn all<'a>(pattern: &[u8], keys: &[&'a [u8]]) -> Vec<&'a [u8]> {
        keys.iter()
            .copied()
            .filter(|key| matches(pattern, key))
            .collect()
    }

    #[test]
    fn a_star_matches_any_run_of_bytes_newlines_included() {
        assert_eq!(
            all(b"user:*", &[b"user:", b"user:1", b"user:1\n2", b"users:1"]),
            [&b"user:"[..], b"user:1", b"user:1\n2"]
        );
        assert!(matches(b"*a*b*c", b"xxaxxbxxbxxc"));
        assert!(!matches(b"*a*b*c", b"xxaxxbxxbxx"));
        assert!(matches(b"a***b", b"a-b"));
    }

    #[test]
    fn a_question_mark_matches_one_byte_not_one_character() {
        assert_eq!(
            all(b"user:?", &[b"user:1", b"user:12", b"user:"]),
            [b"user:1"]
        );
        assert!(matches(b"user:??", "user:é".as_bytes()));
        assert!(!matches(b"user:?", "user:é".as_bytes()));
        assert!(matches("?😀".as_bytes(), "a😀".as_bytes()));
        assert!(matches(b"a????", "a😀".as_bytes()));
        assert!(matches(b"a?c", b"a\xffc"));
    }

    #[test]
    fn literals_are_bytes_and_match_exactly() {
        assert!(matches("é".as_bytes(), "é".as_bytes()));
        assert!(!matches("é".as_bytes(), "e".as_bytes()));
        assert!(matches(b"\xc3?", "é".as_bytes()));
        assert!(!matches(b"User", b"user"));
        assert!(matches(b"a.b+(c)", b"a.b+(c)"));
        assert!(!matches(b"b", b"abc"));
    }

    #[test]
    fn a_backslash_escapes_the_next_byte_and_a_trailing_one_is_itself() {
        assert_eq!(all(b"a\\*b", &[b"a*b", b"axb"]), [b"a*b"]);
        assert_eq!(all(b"\\?", &[b"?", b"x"]), [b"?"]);
        assert_eq!(all(b"\\[a]", &[b"[a]", b"a"]), [b"[a]"]);
        assert_eq!(all(b"\\\\", &[b"\\", b"\\\\"]), [b"\\"]);
        assert_eq!(all(b"a\\", &[b"a", b"a\\"]), [b"a\\"]);
        assert!(matches(b"\\a", b"a"));
    }

    #[test]
    fn classes_hold_members_ranges_and_escapes() {
        assert_eq!(all(b"v[ab]", &[b"va", b"vb", b"vc"]), [b"va", b"vb"]);
        assert_eq!(all(b"v[a-c]", &[b"va", b"vc", b"vd"]), [b"va", b"vc"]);
        assert_eq!(all(b"[\\]]", &[b"]", b"\\"]), [b"]"]);
        assert_eq!(all(b"[*?]", &[b"*", b"?", b"a"]), [b"*", b"?"]);
        assert_eq!(all(b"[a^]", &[b"a", b"^", b"b"]), [b"a", b"^"]);
        assert_eq!(all(b"[[]", &[b"[", b"a"]), [b"["]);
        // A class is one byte, even when its members are the bytes of a character.
        assert_eq!(
            all("[é]".as_bytes(), &[b"\xc3", b"\xa9", "é".as_bytes()]),
            [b"\xc3", b"\xa9"]
        );
    }

    #[test]
    fn a_caret_first_negates_the_class() {
        assert_eq!(all(b"v[^a]", &[b"va", b"vb", b"v\xff"]), [b"vb", b"v\xff"]);
        assert_eq!(all(b"[^a-c]", &[b"a", b"c", b"d"]), [b"d"]);
        assert_eq!(all(b"[^^]", &[b"^", b"a"]), [b"a"]);
    }

    #[test]
    fn a_reversed_range_is_the_same_range() {
        assert_eq!(all(b"[z-a]", &[b"a", b"m", b"z", b"A"]), [b"a", b"m", b"z"]);
    }

    #[test]
    fn ranges_compare_bytes_as_signed_chars() {
        let keys: &[&[u8]] = &[
            b"\x00", b"0", b"a", b"b", b"\x80", b"\xc3", b"\xc4", b"\xff",
        ];
        assert_eq!(
            all(b"[a-\xc3]", keys),
            [b"\x00", b"0", b"a", b"\xc3", b"\xc4", b"\xff"]
        );
        assert_eq!(all(b"[\xc3-\xff]", keys), [b"\xc3", b"\xc4", b"\xff"]);
    }

    #[test]
    fn a_dash_at_either_end_and_range_ends_follow_redis() {
        // A leading dash is a member; after a member, "-]" makes a range up to ']'.
        assert_eq!(all(b"[-a]", &[b"-", b"a", b"b"]), [b"-", b"a"]);
        // "[a-]" is the range ]..a, and the class is still open: it runs to the end.
        assert_eq!(
            all(b"[a-]", &[b"a", b"]", b"^", b"-", b"b"]),
            [b"a", b"]", b"^"]
        );
        assert_eq!(all(b"[a-]x", &[b"x", b"a", b"ax"]), [b"x", b"a"]);
        // A range's end is never an escape; a member after an escape never starts a range.
        assert_eq!(
            all(b"[a-\\]]", &[b"a]", b"\\]", b"]]", b"a", b"b]"]),
            [b"a]", b"\\]", b"]]"]
        );
        assert_eq!(
            all(b"[\\a-z]", &[b"a", b"-", b"z", b"m"]),
            [b"a", b"-", b"z"]
        );
        assert_eq!(all(b"[--/]", &[b"-", b".", b"/", b"0"]), [b"-", b".", b"/"]);
    }

    #[test]
    fn a_bracket_closing_at_once_makes_an_empty_class() {
        assert!(!matches(b"[]", b"]"));
        assert!(!matches(b"[]a]", b"a]"));
        assert!(matches(b"[^]", b"x"));
        assert!(matches(b"[^]a]", b"xa]"));
    }

    #[test]
    fn an_unclosed_class_runs_to_the_end_of_the_pattern() {
        assert_eq!(all(b"[abc", &[b"a", b"c", b"[abc", b"["]), [b"a", b"c"]);
        assert_eq!(all(b"user:[ab", &[b"user:a", b"user:[ab"]), [b"user:a"]);
        assert_eq!(all(b"[*a", &[b"*", b"a", b"xa"]), [b"*", b"a"]);
        assert_eq!(all(b"[a\\", &[b"a", b"\\", b"a\\"]), [b"a", b"\\"]);
        // A lone "[" is a class with no members; "[^" one with every byte.
        assert_eq!(all(b"a[", &[b"a", b"a[", b"ab"]), Vec::<&[u8]>::new());
        assert_eq!(all(b"a[^", &[b"a", b"a[", b"ab"]), [b"a[", b"ab"]);
    }

    #[test]
    fn the_empty_key_is_matched_by_the_empty_pattern_and_by_a_lone_star() {
        assert!(matches(b"", b""));
        assert!(matches(b"*", b""));
        assert!(!matches(b"**", b""));
        assert!(!matches(b"[^]", b""));
        assert!(!matches(b"", b"a"));
    }

    #[test]
    fn stars_after_the_last_element_are_free_and_before_it_are_bounded() {
        let key = vec![b'a'; MAX_NESTING + 1];
        let stars_before = |count: usize| b"*a".repeat(count);
        assert!(matches(&stars_before(MAX_NESTING), &key));
        assert!(!matches(&stars_before(MAX_NESTING + 1), &key));
        let mut trailing = b"a*".repeat(MAX_NESTING + 1);
        assert!(matches(&trailing, &key));
        trailing.extend_from_slice(b"a*");
        assert!(!matches(&trailing, &[b'a'; MAX_NESTING + 2]));
        // Escaped stars and stars in classes are no stars.
        assert!(matches(
            &b"\\*[*]a".repeat(MAX_NESTING + 1),
            &b"**a".repeat(MAX_NESTING + 1)
        ));
        assert!(Glob::new(&stars_before(MAX_NESTING + 1)).too_deep());
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        // Each of these takes Redis's naive recursion exponential time, or
        // would overflow a recursive matcher's stack.
        assert!(matches(&[b'*'; 10_000], b"anything"));
        assert_eq!(Glob::new(&[b'*'; 10_000]).elements(), [Element::Star]);
        let long = vec![b'a'; 50_000];
        assert!(!matches(&b"*?".repeat(50_000), &long));
        assert!(!matches(&b"?*".repeat(50_000), &long));
        assert!(!matches(&[&b"a*".repeat(900)[..], b"b"].concat(), &long));
        let mut near_miss = b"*".to_vec();
        near_miss.extend_from_slice(&[b'a'; 2_000]);
        near_miss.extend_from_slice(b"b*");
        assert!(!matches(&near_miss, &long[..10_000]));
        // One class whose members are 9,999 brackets, never closed.
        assert!(matches(&[b'['; 10_000], b"["));
    }

    #[test]
    fn elements_are_redis_tokens() {
        let glob = Glob::new(b"a**\\*[b-c]");
        assert_eq!(glob.elements().len(), 4);
        assert_eq!(glob.elements()[1], Element::Star);
        let Element::OneOf(class) = glob.elements()[3] else {
            panic!("a class is one element");
        };
        assert_eq!(class.only(), None);
        assert!(class.contains(b'b') && class.contains(b'c') && !class.contains(b'-'));
        let Element::OneOf(escaped) = glob.elements()[2] else {
            panic!("an escape is one element");
        };
        assert_eq!(escaped.only(), Some(b'*'));
    }
}
