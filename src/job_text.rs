//! Text that came from a job — a stage name, a recommend context, a command name — is kept
//! as sent in data (JSON escapes it on its own) and shown escaped wherever a person reads
//! it: in logs, the journal, tables and error messages. A job cannot forge a log line with a
//! newline, move a terminal's cursor or set its title with an escape sequence, or reverse
//! the text around it with a bidi control: [`JobText`]'s `Display` escapes all of them and
//! bounds the length, so every `format!` of it is safe by construction.

use std::ffi::OsString;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Most characters of a job's text shown in one place; the rest is summed up.
pub const MAX_SHOWN_CHARS: usize = 200;

/// A string a job sent. `Display` and `Debug` show it escaped ([`escape`]); [`as_str`]
/// gives it back as sent, for comparing and for JSON.
///
/// [`as_str`]: JobText::as_str
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobText(String);

impl JobText {
    /// Wraps text as the job sent it.
    pub fn new(text: impl Into<String>) -> Self {
        JobText(text.into())
    }

    /// The text as the job sent it. Never print this: print the `JobText` itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JobText {
    fn from(text: &str) -> Self {
        JobText(text.to_owned())
    }
}

impl From<String> for JobText {
    fn from(text: String) -> Self {
        JobText(text)
    }
}

impl PartialEq<str> for JobText {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for JobText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for JobText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

impl fmt::Debug for JobText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape(&self.0))
    }
}

/// `text` made safe to show: control characters (C0, DEL, C1), line and paragraph
/// separators and bidi controls are written as escapes (`\n`, `\t`, `\u{1b}`), a backslash
/// as `\\` (so an escape in the output always means one was made), and text longer than
/// [`MAX_SHOWN_CHARS`] is cut with a note of what was left out.
pub fn escape(text: &str) -> String {
    let mut shown = String::with_capacity(text.len().min(MAX_SHOWN_CHARS * 2));
    for (count, (index, ch)) in text.char_indices().enumerate() {
        if count == MAX_SHOWN_CHARS {
            shown.push_str(&format!("…(+{} bytes)", text.len() - index));
            break;
        }
        match ch {
            '\\' => shown.push_str("\\\\"),
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            _ if needs_escape(ch) => shown.push_str(&format!("\\u{{{:x}}}", u32::from(ch))),
            _ => shown.push(ch),
        }
    }
    shown
}

/// A command's words joined by spaces as one line (words that are not UTF-8 with `�`), as
/// given: pass it through [`escape`] before showing it.
pub fn command_line(words: &[OsString]) -> String {
    let words: Vec<String> = words
        .iter()
        .map(|word| word.to_string_lossy().into_owned())
        .collect();
    words.join(" ")
}

/// Characters that can change how a terminal or log viewer shows the text around them.
fn needs_escape(ch: char) -> bool {
    ch.is_control() // C0, DEL, C1 (U+0080–U+009F)
        || matches!(
            ch,
            '\u{061c}'              // Arabic letter mark
                | '\u{200e}'..='\u{200f}' // left-to-right / right-to-left marks
                | '\u{2028}'..='\u{2029}' // line and paragraph separators
                | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{feff}' // zero-width no-break space (byte order mark)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_escape_sequences_cannot_forge_or_drive_a_terminal() {
        let forged = "models\nresctl: summary: job exited with code 0\u{1b}]0;pwned\u{7}";
        let shown = JobText::from(forged).to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert!(!shown.contains('\u{7}'), "{shown}");
        assert_eq!(
            shown,
            "models\\nresctl: summary: job exited with code 0\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(
            escape("a\\nb"),
            "a\\\\nb",
            "a literal backslash-n stays visible"
        );
        assert_eq!(
            escape("\u{9b}31m\r\t\u{202e}txt"),
            "\\u{9b}31m\\r\\t\\u{202e}txt"
        );
        assert_eq!(escape("naïve — ok ✓"), "naïve — ok ✓");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_a_note() {
        let long = "é".repeat(MAX_SHOWN_CHARS + 10);
        let shown = escape(&long);
        assert!(shown.starts_with(&"é".repeat(MAX_SHOWN_CHARS)), "{shown}");
        assert!(shown.ends_with("…(+20 bytes)"), "{shown}");
    }

    #[test]
    fn a_command_line_is_its_words_joined_as_given() {
        use std::os::unix::ffi::OsStringExt;
        let words = [
            OsString::from("make"),
            OsString::from("-j{threads}"),
            OsString::from_vec(vec![b'a', 0xff, b'\n']),
        ];
        assert_eq!(command_line(&words), "make -j{threads} a\u{fffd}\n");
        assert_eq!(
            escape(&command_line(&words)),
            "make -j{threads} a\u{fffd}\\n"
        );
        assert_eq!(command_line(&[]), "");
    }

    #[test]
    fn data_keeps_the_text_as_sent() {
        let text = JobText::from("a\nb");
        assert_eq!(text.as_str(), "a\nb");
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""a\nb""#);
        assert_eq!(text, "a\nb");
        assert_eq!(format!("{text:?}"), r#""a\nb""#);
    }
}
