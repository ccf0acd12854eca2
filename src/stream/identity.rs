//! The responding model and `system_fingerprint` of one stream, reported as an
//! [`Event::Identity`] when first seen and again only when it changes.
//!
//! Most protocols repeat the model on every chunk (OpenAI, vLLM and DeepSeek also the
//! fingerprint, Gemini its `modelVersion`, Ollama its `model`). Comparing the borrowed value
//! with the stored one costs a short `memcmp` per chunk and allocates only when it changes, so
//! the token path stays allocation-free and consumers see one event per stream, not one per
//! token. Does not: bound the strings (consumers do, where they become labels or file keys).

use std::borrow::Cow;

use super::Event;

#[derive(Debug, Default)]
pub(crate) struct Identity {
    model: Option<String>,
    fingerprint: Option<String>,
}

impl Identity {
    /// What a frame says about the responding model. `None` or an empty string means the
    /// frame does not say (the last value stands); a new value is reported with the other one.
    pub(crate) fn observe(
        &mut self,
        model: Option<&str>,
        fingerprint: Option<&str>,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        let new_model = changed(model, &self.model);
        let new_fingerprint = changed(fingerprint, &self.fingerprint);
        if new_model.is_none() && new_fingerprint.is_none() {
            return;
        }
        if let Some(m) = new_model {
            replace(&mut self.model, m);
        }
        if let Some(f) = new_fingerprint {
            replace(&mut self.fingerprint, f);
        }
        sink(Event::Identity {
            model: self.model.as_deref().map(Cow::Borrowed),
            fingerprint: self.fingerprint.as_deref().map(Cow::Borrowed),
        });
    }
}

/// `new` when it is a value different from `old`.
fn changed<'a>(new: Option<&'a str>, old: &Option<String>) -> Option<&'a str> {
    new.filter(|s| !s.is_empty())
        .filter(|s| old.as_deref() != Some(*s))
}

/// Stores `value`, reusing the old allocation.
fn replace(slot: &mut Option<String>, value: &str) {
    let s = slot.get_or_insert_with(String::new);
    s.clear();
    s.push_str(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &mut Identity, model: Option<&str>, fp: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        id.observe(model, fp, &mut |e| out.push(format!("{e:?}")));
        out
    }

    #[test]
    fn reports_once_then_only_changes() {
        let mut id = Identity::default();
        assert_eq!(seen(&mut id, Some("m1"), Some("fp_a")).len(), 1);
        assert!(seen(&mut id, Some("m1"), Some("fp_a")).is_empty());
        // A frame that stopped repeating a field does not change it.
        assert!(seen(&mut id, Some("m1"), None).is_empty());
        assert!(seen(&mut id, Some(""), Some("")).is_empty());
        let changed = seen(&mut id, None, Some("fp_b"));
        assert_eq!(
            changed,
            [format!(
                "{:?}",
                Event::Identity {
                    model: Some(Cow::Borrowed("m1")),
                    fingerprint: Some(Cow::Borrowed("fp_b")),
                }
            )]
        );
        assert!(seen(&mut id, None, None).is_empty());
    }
}
