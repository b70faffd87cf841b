//! `SyncedMemoryStore::Glob`'s native half: matching a Redis glob against a key
//! byte by byte ([`crate::glob`]), and the character-level Regexp source that
//! `lib/synced_memory_store/glob.rb` gives stores which rebuild a matcher from
//! its `source`.
//!
//! That source matches a subset of what the glob matches, over valid UTF-8
//! keys: an element of one byte keeps its ASCII members only (`?` is one ASCII
//! character, `[^a]` an ASCII character other than `a`, `[é]` nothing), literal
//! bytes that spell a UTF-8 character become that character, and any other
//! literal byte at or above 0x80 matches nothing. A store deleting a subset of
//! what the L1s drop is safe (an L1 refills from its L2); a superset would leave
//! L1s holding what the L2 deleted.

use std::fmt::Write as _;

use magnus::{function, prelude::*, Error, RString, Ruby};

use crate::glob::{self, ByteSet, Element, Glob};

/// Matches nothing, in a Regexp.
const NOTHING: &str = "(?!)";

/// Registers `SyncedMemoryStore::Glob.match?` and `.regexp_source`.
pub fn define(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby
        .define_module("SyncedMemoryStore")?
        .define_module("Glob")?;
    module.define_singleton_method("match?", function!(is_match, 2))?;
    module.define_singleton_method("regexp_source", function!(regexp_source_of, 1))?;
    Ok(())
}

/// `Glob.match?(glob, key)`: whether `key` matches `glob` as Redis's `KEYS glob`
/// would list it, comparing the Strings' bytes whatever their encodings.
fn is_match(glob: RString, key: RString) -> bool {
    // SAFETY: both slices are used at once, with no Ruby call in between that
    // could change or free the Strings.
    unsafe { glob::matches(glob.as_slice(), key.as_slice()) }
}

/// `Glob.regexp_source(glob)`: see [`regexp_source`].
fn regexp_source_of(ruby: &Ruby, glob: RString) -> RString {
    // SAFETY: copied by the parser at once, with no Ruby call in between.
    let glob = Glob::new(unsafe { glob.as_slice() });
    ruby.str_new(&regexp_source(&glob))
}

/// The source of a Ruby Regexp (to be used with `Regexp::MULTILINE`) matching
/// a subset of the valid UTF-8 keys `glob` matches, as the module doc says.
fn regexp_source(glob: &Glob) -> String {
    if glob.too_deep() {
        return NOTHING.to_owned();
    }
    let mut source = String::from("\\A");
    if !glob.matches(b"") {
        source.push_str("(?!\\z)");
    }
    // Literal bytes at or above 0x80, gathered until a character can be told.
    let mut high = Vec::new();
    for element in glob.elements() {
        if let Element::OneOf(set) = element {
            if let Some(byte) = set.only().filter(|byte| !byte.is_ascii()) {
                high.push(byte);
                continue;
            }
        }
        characters(&mut source, &mut high);
        match element {
            Element::Star => source.push_str(".*"),
            Element::OneOf(set) => one_ascii(&mut source, set),
        }
    }
    characters(&mut source, &mut high);
    source.push_str("\\z");
    source
}

/// Writes the characters `bytes` spell in UTF-8, or NOTHING if they spell none.
fn characters(source: &mut String, bytes: &mut Vec<u8>) {
    for chunk in bytes.utf8_chunks() {
        for char in chunk.valid().chars() {
            let _ = write!(source, "\\u{{{:X}}}", u32::from(char));
        }
        if !chunk.invalid().is_empty() {
            source.push_str(NOTHING);
        }
    }
    bytes.clear();
}

/// Writes one character among the ASCII members of `set`.
fn one_ascii(source: &mut String, set: &ByteSet) {
    let members: Vec<u8> = (0..0x80).filter(|&byte| set.contains(byte)).collect();
    match members[..] {
        [] => source.push_str(NOTHING),
        [byte] => literal(source, byte),
        _ => {
            source.push('[');
            for range in members.chunk_by(|a, b| a + 1 == *b) {
                let (first, last) = (range[0], range[range.len() - 1]);
                class_member(source, first);
                if last > first {
                    if last > first + 1 {
                        source.push('-');
                    }
                    class_member(source, last);
                }
            }
            source.push(']');
        }
    }
}

/// An ASCII byte outside a class: as itself when that is unambiguous.
fn literal(source: &mut String, byte: u8) {
    if byte.is_ascii_alphanumeric() || b":_-/@%,;=!&~<>'\"".contains(&byte) {
        source.push(char::from(byte));
    } else {
        let _ = write!(source, "\\x{byte:02X}");
    }
}

/// An ASCII byte inside a class.
fn class_member(source: &mut String, byte: u8) {
    if byte.is_ascii_alphanumeric() {
        source.push(char::from(byte));
    } else {
        let _ = write!(source, "\\x{byte:02X}");
    }
}

#[cfg(test)]
mod tests {
    use super::{regexp_source, Glob};

    fn source(glob: &[u8]) -> String {
        regexp_source(&Glob::new(glob))
    }

    #[test]
    fn stars_are_any_characters_and_literals_themselves() {
        assert_eq!(source(b"user:*"), "\\A(?!\\z)user:.*\\z");
        assert_eq!(source(b"a.b+(c)"), "\\A(?!\\z)a\\x2Eb\\x2B\\x28c\\x29\\z");
        assert_eq!(source(b"a\\*"), "\\A(?!\\z)a\\x2A\\z");
    }

    #[test]
    fn only_the_patterns_redis_gives_the_empty_key_match_it() {
        assert_eq!(source(b""), "\\A\\z");
        assert_eq!(source(b"*"), "\\A.*\\z");
        assert_eq!(source(b"**"), "\\A(?!\\z).*\\z");
    }

    #[test]
    fn one_byte_elements_keep_their_ascii_members() {
        assert_eq!(source(b"?"), "\\A(?!\\z)[\\x00-\\x7F]\\z");
        assert_eq!(source(b"[a-cx]"), "\\A(?!\\z)[a-cx]\\z");
        assert_eq!(source(b"[ab]"), "\\A(?!\\z)[ab]\\z");
        assert_eq!(source(b"[^a]"), "\\A(?!\\z)[\\x00-\\x60b-\\x7F]\\z");
        assert_eq!(source(b"[a]"), "\\A(?!\\z)a\\z");
        assert_eq!(source("[é]".as_bytes()), "\\A(?!\\z)(?!)\\z");
        assert_eq!(source(b"[\\]^]"), "\\A(?!\\z)[\\x5D\\x5E]\\z");
    }

    #[test]
    fn literal_bytes_that_spell_a_character_are_that_character() {
        assert_eq!(source("é?".as_bytes()), "\\A(?!\\z)\\u{E9}[\\x00-\\x7F]\\z");
        assert_eq!(source("😀*".as_bytes()), "\\A(?!\\z)\\u{1F600}.*\\z");
        // Escaped or written as one-member classes, they are still literal bytes.
        assert_eq!(source(b"[\xc3]\\\xa9"), "\\A(?!\\z)\\u{E9}\\z");
        assert_eq!(source(b"\xc3?"), "\\A(?!\\z)(?!)[\\x00-\\x7F]\\z");
        assert_eq!(source(b"\xff"), "\\A(?!\\z)(?!)\\z");
    }

    #[test]
    fn a_pattern_redis_gives_up_on_matches_nothing() {
        assert_eq!(source(&b"*a".repeat(1001)), "(?!)");
    }
}
