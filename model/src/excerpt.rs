//! Input quoted back in an error, cut to what a person can read: a parser
//! that quotes the offending line (TOML shows it, and a value in it may be
//! quoted again in the message) would otherwise echo a 50 MB line onto
//! stderr, once per layer that quotes it.

use std::borrow::Cow;

/// The most characters of one line of input an error quotes.
pub const QUOTED_CHARS: usize = 200;

/// `text` as it is when at most [`QUOTED_CHARS`] characters, else its
/// first [`QUOTED_CHARS`] and `… (N bytes)`.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(QUOTED_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len())),
    }
}

/// A parser's error message with each of its lines cut by [`excerpt`]:
/// for messages that quote input lines (TOML's show the line at fault).
pub fn excerpt_lines(message: &str) -> String {
    message.lines().map(excerpt).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_and_long_text_cut_with_its_size() {
        assert_eq!(excerpt("port = \"x\""), "port = \"x\"");
        let long = "é".repeat(1000);
        let cut = excerpt(&long);
        assert!(cut.starts_with(&"é".repeat(QUOTED_CHARS)) && cut.ends_with("… (2000 bytes)"), "{cut}");
        assert_eq!(cut.chars().count(), QUOTED_CHARS + " … (2000 bytes)".chars().count() - 1);
    }

    #[test]
    fn every_line_of_a_message_is_cut() {
        let message = format!("line 1\n{}\nexpected a number", "x".repeat(5_000_000));
        let cut = excerpt_lines(&message);
        assert!(cut.len() < 400, "{} bytes", cut.len());
        assert!(cut.starts_with("line 1\n") && cut.ends_with("(5000000 bytes)\nexpected a number"), "{cut}");
    }
}
