//! Where configuration values came from, and the errors that say so.
//!
//! serde-saphyr gives line/column for syntax and type errors. Semantic errors (found by
//! `validate` after parsing) need the position of the *key*; for that the text is parsed a
//! second time into a tree of keys with their spans ([`KeyTree`]), which also tells a legacy
//! file (top-level `orchestrator`) from a native one.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Localizer, MessageFormatter, SnippetMode, Spanned, UserMessageFormatter};

/// The origin shown for values that came from command-line overrides.
pub const COMMAND_LINE: &str = "command line";
/// The origin shown for a configuration that was not read from a file.
pub const BUILT_IN: &str = "built-in defaults";

/// A dotted key path split into its keys (`["memory", "moderate"]`).
pub type KeyPath = Vec<String>;

/// Splits a dotted native key path (`memory.moderate`) into keys.
pub fn key_path(dotted: &str) -> KeyPath {
    dotted.split('.').map(str::to_string).collect()
}

/// Where in a configuration source something is: `FILE:LINE:COL`, or just `FILE` (or
/// `command line`) when no line is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file name as given, `command line`, or `built-in defaults`.
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
}

impl Position {
    /// A position naming only the origin.
    pub fn origin_only(origin: &str) -> Position {
        Position {
            origin: origin.to_string(),
            line: None,
            column: None,
        }
    }

    /// A position with line and column.
    pub fn at(origin: &str, line: u64, column: u64) -> Position {
        Position {
            origin: origin.to_string(),
            line: Some(line),
            column: Some(column),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(formatter, ":{line}")?;
            if let Some(column) = self.column {
                write!(formatter, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// Why a configuration could not be loaded or is not acceptable. `Display` reads
/// `FILE:LINE:COL: message` (or `FILE: message` when the line is unknown).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the configuration: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema (unknown key, wrong type,
    /// duplicate key, bad size or duration).
    #[error("{at}: {message}")]
    Yaml {
        /// Where the parser stopped.
        at: Position,
        /// What the parser says, without position.
        message: String,
        /// The parser's report with the offending lines, for a terminal.
        snippet: String,
    },
    /// The values parse but do not make sense together (order of thresholds, bounds,
    /// unknown signal, slice name).
    #[error("{at}: {message}")]
    Invalid {
        /// Where the offending key is (file and line, or the command line).
        at: Position,
        /// The offending key as written in the source (`memory.moderate`).
        key: String,
        /// What is wrong, naming the key and its value.
        message: String,
    },
}

impl ConfigError {
    /// Where the error is, when it is tied to a source (not for read errors).
    pub fn position(&self) -> Option<&Position> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Yaml { at, .. } | ConfigError::Invalid { at, .. } => Some(at),
        }
    }

    /// The line and column, when known.
    pub fn line_column(&self) -> Option<(u64, u64)> {
        let position = self.position()?;
        Some((position.line?, position.column?))
    }

    /// The offending key of a semantic error.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Converts a serde-saphyr error on the text from `origin`.
    pub(crate) fn from_yaml(error: &serde_saphyr::Error, origin: &str) -> ConfigError {
        let at = match error.location() {
            Some(location) if location.line() > 0 => {
                Position::at(origin, location.line(), location.column())
            }
            _ => Position::origin_only(origin),
        };
        let message = error.render_with_options(serde_saphyr::render_options! {
            formatter: &PlainMessages,
            snippets: SnippetMode::Off,
        });
        let snippet = error.render_with_options(serde_saphyr::render_options! {
            source_name: Some(origin),
        });
        ConfigError::Yaml {
            at,
            message,
            snippet,
        }
    }
}

/// serde-saphyr's user-facing wording, without its ` at line X, column Y` suffix (we put
/// the position in front, compiler style).
struct PlainMessages;

/// A localizer that leaves positions out of messages.
struct NoPositionSuffix;

impl Localizer for NoPositionSuffix {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _: serde_saphyr::Location) -> Cow<'a, str> {
        base
    }
}

impl MessageFormatter for PlainMessages {
    fn localizer(&self) -> &dyn Localizer {
        &NoPositionSuffix
    }

    fn format_message<'a>(&self, error: &'a serde_saphyr::Error) -> Cow<'a, str> {
        UserMessageFormatter.format_message(error)
    }
}

/// The parser options every configuration is read with: strict booleans (`yes`/`on` are
/// not `true`); duplicate keys are rejected (serde-saphyr's default).
pub(crate) fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
    }
}

/// A key's position in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

/// The mapping keys of a YAML document with their spans, values ignored.
#[derive(Debug, Default)]
pub(crate) struct KeyTree {
    /// Each key in document order, with where it is and what is below it.
    children: Vec<(String, Span, KeyTree)>,
}

impl KeyTree {
    /// Parses `text` into its key tree.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<KeyTree, ConfigError> {
        serde_saphyr::from_str_with_options(text, parse_options())
            .map_err(|error| ConfigError::from_yaml(&error, origin))
    }

    /// Whether the top level has a key `name`.
    pub(crate) fn has_top_level(&self, name: &str) -> bool {
        self.children.iter().any(|(key, _, _)| key == name)
    }

    /// Every key path with its span.
    pub(crate) fn index(&self) -> BTreeMap<KeyPath, Span> {
        let mut index = BTreeMap::new();
        self.collect(&mut Vec::new(), &mut index);
        index
    }

    fn collect(&self, prefix: &mut KeyPath, index: &mut BTreeMap<KeyPath, Span>) {
        for (key, span, below) in &self.children {
            prefix.push(key.clone());
            index.entry(prefix.clone()).or_insert(*span);
            below.collect(prefix, index);
            prefix.pop();
        }
    }
}

impl<'de> Deserialize<'de> for KeyTree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyTreeVisitor)
    }
}

/// Builds a [`KeyTree`] from any YAML node.
struct KeyTreeVisitor;

impl<'de> Visitor<'de> for KeyTreeVisitor {
    type Value = KeyTree;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a YAML document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyTree, A::Error> {
        let mut tree = KeyTree::default();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let below: KeyTree = map.next_value()?;
            let span = Span {
                line: key.referenced.line(),
                column: key.referenced.column(),
            };
            tree.children.push((key.value, span, below));
        }
        Ok(tree)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<KeyTree, A::Error> {
        while sequence.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyTree::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<KeyTree, D::Error> {
        KeyTree::deserialize(deserializer)
    }
}

/// A key as it appears in the source: where, and how to name it in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceKey {
    /// Where the key is.
    pub(crate) span: Span,
    /// Its name in the source's own vocabulary (`memory.moderate`, or for a legacy file
    /// `memory_monitoring.thresholds.moderate_mb`).
    pub(crate) name: String,
}

/// Where a [`Config`](super::Config)'s values came from: the file (with the position of
/// every key), the command line, or the built-in defaults. Used only for error messages:
/// two configurations with equal values compare equal whatever their provenance.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The file name as given; empty for the built-in defaults.
    origin: String,
    /// Native key path → where the file sets it.
    keys: BTreeMap<KeyPath, SourceKey>,
    /// Native key paths set by command-line overrides.
    command_line: BTreeSet<KeyPath>,
    /// The slice whose overrides were merged in by `for_slice`, if any.
    scope: Option<String>,
}

impl PartialEq for Provenance {
    /// Provenance never makes two configurations differ.
    fn eq(&self, _: &Provenance) -> bool {
        true
    }
}

impl Provenance {
    /// Provenance of a file named `origin` whose keys are `keys`.
    pub(crate) fn from_file(origin: &str, keys: BTreeMap<KeyPath, SourceKey>) -> Provenance {
        Provenance {
            origin: origin.to_string(),
            keys,
            ..Provenance::default()
        }
    }

    /// Provenance of a native file: every key is named by its own dotted path.
    pub(crate) fn from_native(origin: &str, index: BTreeMap<KeyPath, Span>) -> Provenance {
        let keys = index
            .into_iter()
            .map(|(path, span)| {
                let name = path.join(".");
                (path, SourceKey { span, name })
            })
            .collect();
        Provenance::from_file(origin, keys)
    }

    /// The file name, or `built-in defaults`.
    pub fn origin(&self) -> &str {
        if self.origin.is_empty() {
            BUILT_IN
        } else {
            &self.origin
        }
    }

    /// The slice whose overrides this configuration holds, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Marks `path` as set from the command line.
    pub(crate) fn mark_command_line(&mut self, dotted: &str) {
        self.command_line.insert(key_path(dotted));
    }

    /// Records that the slice `name`'s overrides were merged in.
    pub(crate) fn set_scope(&mut self, name: &str) {
        self.scope = Some(name.to_string());
    }

    /// The file key for native `path`: inside the current slice's section first, then at
    /// the top level.
    fn file_key(&self, path: &[String]) -> Option<&SourceKey> {
        if let Some(slice) = &self.scope {
            let mut scoped = vec!["slices".to_string(), slice.clone()];
            scoped.extend(path.iter().cloned());
            if let Some(key) = self.keys.get(&scoped) {
                return Some(key);
            }
        }
        self.keys.get(path)
    }

    /// How to call native `dotted` in a message.
    pub(crate) fn name(&self, dotted: &str) -> String {
        let path = key_path(dotted);
        if self.command_line.contains(&path) {
            return dotted.to_string();
        }
        match self.file_key(&path) {
            Some(key) => key.name.clone(),
            None => dotted.to_string(),
        }
    }

    /// Where native `dotted` was set: `command line`, or `FILE:LINE:COLUMN` of the key
    /// (named in the file's own vocabulary); `None` for a built-in default.
    pub fn source_of(&self, dotted: &str) -> Option<String> {
        let path = key_path(dotted);
        if self.command_line.contains(&path) {
            return Some(COMMAND_LINE.to_string());
        }
        self.file_key(&path).map(|key| {
            format!(
                "{}:{}:{} ({})",
                self.origin(),
                key.span.line,
                key.span.column,
                key.name
            )
        })
    }

    /// Where to point for a problem involving the native keys `dotted` (most relevant
    /// first): a command-line override wins, then the first key the file sets.
    pub(crate) fn position(&self, dotted: &[&str]) -> Position {
        let paths: Vec<KeyPath> = dotted.iter().map(|key| key_path(key)).collect();
        if paths.iter().any(|path| self.command_line.contains(path)) {
            return Position::origin_only(COMMAND_LINE);
        }
        paths
            .iter()
            .find_map(|path| self.file_key(path))
            .map(|key| Position::at(self.origin(), key.span.line, key.span.column))
            .unwrap_or_else(|| Position::origin_only(self.origin()))
    }

    /// Where the raw `path` (not translated, e.g. a slice name under `slices`) is.
    pub(crate) fn raw_position(&self, path: &[String]) -> Position {
        match self.keys.get(path) {
            Some(key) => Position::at(self.origin(), key.span.line, key.span.column),
            None => Position::origin_only(self.origin()),
        }
    }
}
