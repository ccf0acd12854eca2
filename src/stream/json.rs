//! Borrowed-JSON building blocks shared by the dialect parsers: a lenient string that borrows
//! from the frame when it has no escapes, a sequence type that holds its usual single element
//! without a heap allocation, and the extraction of a human-readable message from an error
//! object.
//!
//! Does not: know any protocol's event names or decide what a token is.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Channel, Event};

/// Longest error message handed to callers, in characters. Error texts end up in result files
/// and progress lines; some servers put whole stack traces into them.
pub(crate) const MAX_MESSAGE_CHARS: usize = 256;

/// A JSON string field, borrowed from the input when it contains no escapes.
///
/// Lenient on purpose: `null`, a missing field and any non-string value (some
/// OpenAI-compatible servers send `content` as an array of parts) all read as `None`, so an
/// unexpected shape in a field we only sample never turns a good stream into a decode error.
#[derive(Debug, Default)]
pub(crate) struct Str<'a>(pub Option<Cow<'a, str>>);

impl<'a> Str<'a> {
    /// The string when present and non-empty: the test for "this field carries a token".
    pub(crate) fn non_empty(&self) -> Option<&Cow<'a, str>> {
        self.0.as_ref().filter(|s| !s.is_empty())
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub(crate) fn is(&self, s: &str) -> bool {
        self.as_str() == Some(s)
    }

    /// Emits the string as a token on `channel` when it is non-empty.
    pub(crate) fn emit(self, channel: Channel, sink: &mut dyn FnMut(Event<'_>)) {
        if let Some(text) = self.0.filter(|s| !s.is_empty()) {
            sink(Event::Token { channel, text });
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Str(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Str(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Str(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON token count, lenient like [`Str`]: a non-negative integer (or an integral float,
/// which some Python servers write) reads as `Some`; `null`, a missing field and anything else
/// read as `None`, so a count we only sample never turns a good stream into a decode error.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count(pub Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Count, E> {
                Ok(Count(Some(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Count, E> {
                Ok(Count(u64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Count, E> {
                let integral = v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64;
                Ok(Count(integral.then_some(v as u64)))
            }
            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_none<E>(self) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Count(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Count(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `{"cached_tokens": N}`, `{"reasoning_tokens": N}`: OpenAI's usage detail objects (and
/// the Responses API's `input_tokens_details` / `output_tokens_details`). Any field that is
/// not an object reads as empty.
#[derive(Debug, Default)]
pub(crate) struct Details {
    pub cached_tokens: Count,
    pub reasoning_tokens: Count,
}

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Details;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a usage details object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Details, A::Error> {
                let mut details = Details::default();
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    match key.as_str() {
                        Some("cached_tokens") => details.cached_tokens = map.next_value()?,
                        Some("reasoning_tokens") => details.reasoning_tokens = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(details)
            }
            fn visit_unit<E>(self) -> Result<Details, E> {
                Ok(Details::default())
            }
            fn visit_none<E>(self) -> Result<Details, E> {
                Ok(Details::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Details, E> {
                Ok(Details::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Details, E> {
                Ok(Details::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Details, E> {
                Ok(Details::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Details, E> {
                Ok(Details::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Details, E> {
                Ok(Details::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Details, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Details::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON array that almost always has one element (`choices`, `candidates`, `parts`,
/// `tool_calls`). The first element lives inline, so the common case allocates nothing; `null`
/// reads as empty.
#[derive(Debug)]
pub(crate) struct Few<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for Few<T> {
    fn default() -> Self {
        Few {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> Few<T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

impl<T> IntoIterator for Few<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Few<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Few<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Few::default())
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Few::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut few = Few::default();
                if let Some(first) = seq.next_element()? {
                    few.first = Some(first);
                    while let Some(more) = seq.next_element()? {
                        few.rest.push(more);
                    }
                }
                Ok(few)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A human-readable message from an error value in any of the shapes LLM servers use:
/// `"text"`, `{"message": ..}`, `{"error": ..}` (OpenAI, Anthropic, Gemini, Ollama, TGI),
/// `{"detail": ..}` (FastAPI), or an array of those (Gemini wraps errors in a list).
pub(crate) fn message_of(v: &Value) -> Option<String> {
    fn find(v: &Value, depth: u8) -> Option<&str> {
        if depth > 4 {
            return None;
        }
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s),
            Value::Array(items) => items.iter().find_map(|i| find(i, depth + 1)),
            Value::Object(map) => ["error", "message", "detail", "msg", "error_msg"]
                .iter()
                .find_map(|k| map.get(*k).and_then(|i| find(i, depth + 1)))
                // An error object with only a code/type still says more than nothing.
                .or_else(|| {
                    ["type", "code", "status"]
                        .iter()
                        .find_map(|k| map.get(*k).and_then(Value::as_str))
                }),
            _ => None,
        }
    }
    find(v, 0).map(bounded)
}

/// `s` trimmed and cut to [`MAX_MESSAGE_CHARS`] characters (at a char boundary, marked `…`).
pub(crate) fn bounded(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
}

/// A JSON value counts as "set" for `done`/`error` pointers: `true`, a non-empty string, a
/// non-zero number, any array or object. `null`, `false`, `""` and `0` do not.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_borrows_without_escapes_and_owns_with_them() {
        let plain: Str = serde_json::from_str(r#""abc""#).unwrap();
        assert!(matches!(plain.0, Some(Cow::Borrowed("abc"))));
        let escaped: Str = serde_json::from_str(r#""a\u00e9""#).unwrap();
        assert!(matches!(escaped.0, Some(Cow::Owned(ref s)) if s == "aé"));
        let other: Str = serde_json::from_str(r#"[{"type":"text"}]"#).unwrap();
        assert!(other.0.is_none());
    }

    #[test]
    fn counts_and_details_are_lenient() {
        let c = |json: &str| serde_json::from_str::<Count>(json).unwrap().0;
        assert_eq!(c("12"), Some(12));
        assert_eq!(c("12.0"), Some(12));
        assert_eq!(c("-1"), None);
        assert_eq!(c("1.5"), None);
        assert_eq!(c("null"), None);
        assert_eq!(c(r#""12""#), None);
        assert_eq!(c(r#"{"a":1}"#), None);
        let d: Details =
            serde_json::from_str(r#"{"audio_tokens":0,"cached_tokens":7,"x":[1]}"#).unwrap();
        assert_eq!((d.cached_tokens.0, d.reasoning_tokens.0), (Some(7), None));
        let d: Details = serde_json::from_str(r#""n/a""#).unwrap();
        assert_eq!(d.cached_tokens.0, None);
    }

    #[test]
    fn few_keeps_order() {
        let f: Few<u32> = serde_json::from_str("[1,2,3]").unwrap();
        assert_eq!(f.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
        let n: Few<u32> = serde_json::from_str("null").unwrap();
        assert!(n.is_empty());
    }

    #[test]
    fn bounded_cuts_at_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 5);
        let b = bounded(&long);
        assert_eq!(b.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(b.ends_with('…'));
        assert_eq!(bounded("  short \n"), "short");
    }
}
