//! Redis-style glob matching, as `delete_matched` takes it, for peers applying a
//! delete_matched without Ruby. The semantics are those of the Ruby side's
//! `SyncedMemoryStore::Glob` (lib/synced_memory_store/glob.rb), so the sender and
//! its peers drop the same keys: `*` any run, `?` one character, `[abc]`,
//! `[a-z]`, `[^abc]` classes, backslash escapes, an unclosed `[` taken literally.
//! Characters are Unicode scalar values when both sides are UTF-8, bytes otherwise.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    match (std::str::from_utf8(pattern), std::str::from_utf8(text)) {
        (Ok(pattern), Ok(text)) => {
            let pattern: Vec<char> = pattern.chars().collect();
            let text: Vec<char> = text.chars().collect();
            match_from(&pattern, &text)
        }
        _ => {
            let pattern: Vec<char> = pattern.iter().map(|&b| char::from(b)).collect();
            let text: Vec<char> = text.iter().map(|&b| char::from(b)).collect();
            match_from(&pattern, &text)
        }
    }
}

fn match_from(pattern: &[char], text: &[char]) -> bool {
    // Iterative matching with one backtrack point for the last `*`, which is
    // enough for globs (no nested alternation) and never recurses.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {
                    if let Some((matched, next)) = element(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    }
                }
            }
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches the element at `p` (a literal, an escape or a class) against `c`;
/// returns whether it matched and where the next element starts.
fn element(pattern: &[char], p: usize, c: char) -> Option<(bool, usize)> {
    match pattern[p] {
        '\\' => match pattern.get(p + 1) {
            Some(&escaped) => Some((escaped == c, p + 2)),
            None => Some(('\\' == c, p + 1)),
        },
        '[' => Some(class(pattern, p, c).unwrap_or(('[' == c, p + 1))),
        literal => Some((literal == c, p + 1)),
    }
}

/// Matches the class starting at `start` against `c`, or None when the class is
/// never closed (then `[` is literal).
fn class(pattern: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = pattern.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() && pattern[i] != ']' {
        let (low, next) = if pattern[i] == '\\' && i + 1 < pattern.len() {
            (pattern[i + 1], i + 2)
        } else {
            (pattern[i], i + 1)
        };
        // A range needs a dash between two members, not at either end of the class.
        if pattern.get(next) == Some(&'-')
            && pattern.get(next + 1).is_some_and(|&end| end != ']')
            && pattern[i] != '\\'
        {
            let (high, after) = if pattern[next + 1] == '\\' && next + 2 < pattern.len() {
                (pattern[next + 2], next + 3)
            } else {
                (pattern[next + 1], next + 2)
            };
            matched |= low <= c && c <= high;
            i = after;
        } else {
            matched |= low == c;
            i = next;
        }
    }
    (i < pattern.len()).then_some((matched != negated, i + 1))
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn all(pattern: &str, candidates: &[&str]) -> Vec<String> {
        candidates
            .iter()
            .filter(|c| matches(pattern.as_bytes(), c.as_bytes()))
            .map(|c| c.to_string())
            .collect()
    }

    // These cases mirror spec/unit/glob_spec.rb, so both sides agree.
    #[test]
    fn star_matches_any_run_across_newlines() {
        assert_eq!(
            all("user:*", &["user:", "user:1", "user:1\n2", "users:1"]),
            ["user:", "user:1", "user:1\n2"]
        );
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert_eq!(all("user:?", &["user:1", "user:12", "user:"]), ["user:1"]);
        assert_eq!(all("é?", &["éü", "éüü"]), ["éü"]);
    }

    #[test]
    fn classes_ranges_and_negations() {
        assert_eq!(all("v[ab]", &["va", "vb", "vc"]), ["va", "vb"]);
        assert_eq!(all("v[a-c]", &["va", "vc", "vd"]), ["va", "vc"]);
        assert_eq!(all("v[^a]", &["va", "vb"]), ["vb"]);
    }

    #[test]
    fn escapes_and_special_characters_are_literal() {
        assert_eq!(all("a\\*b", &["a*b", "axb"]), ["a*b"]);
        assert_eq!(all("a.b+(c)", &["a.b+(c)", "axbb(c)"]), ["a.b+(c)"]);
    }

    #[test]
    fn an_unclosed_bracket_is_literal_and_the_whole_key_is_anchored() {
        assert_eq!(all("a[b", &["a[b", "ab"]), ["a[b"]);
        assert_eq!(all("b", &["abc", "b"]), ["b"]);
    }

    #[test]
    fn stars_backtrack() {
        assert!(matches(b"*a*b*c", b"xxaxxbxxbxxc"));
        assert!(!matches(b"*a*b*c", b"xxaxxbxxbxx"));
        assert!(matches(b"**", b""));
    }

    #[test]
    fn invalid_utf8_is_matched_bytewise() {
        assert!(matches(b"a?c", b"a\xffc"));
        assert!(!matches(b"a?c", b"a\xff\xffc"));
    }
}
