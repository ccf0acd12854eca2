//! Raw framing: every non-empty body chunk is one token on the text channel (DESIGN §4: for
//! `raw` streams TTFT is the first non-empty chunk).
//!
//! Does not: look for structure. Decodes UTF-8 incrementally: a code point split across
//! chunks is carried (at most 3 bytes) and completes in the chunk that finishes it, so a chunk
//! holding only the start of a character produces no token yet.

use std::borrow::Cow;

use super::{Channel, DecodeError, Event};

#[derive(Debug, Default)]
pub(crate) struct RawDecoder {
    /// Leading bytes of a code point cut by the previous chunk boundary.
    carry: Vec<u8>,
}

impl RawDecoder {
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        base: u64,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.carry.is_empty() {
            let (text, tail) = split_utf8(chunk, base)?;
            self.carry.extend_from_slice(tail);
            emit(Cow::Borrowed(text), sink);
        } else {
            // Rare: only when a chunk boundary cut a character. Join and decode the copy.
            let carried = self.carry.len() as u64;
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(chunk);
            let (text, tail) = split_utf8(&joined, base - carried)?;
            self.carry = tail.to_vec();
            emit(Cow::Owned(text.to_owned()), sink);
        }
        Ok(())
    }

    /// A code point still incomplete at EOF is invalid.
    pub(crate) fn finish(&mut self, end_offset: u64) -> Result<(), DecodeError> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            let offset = end_offset - self.carry.len() as u64;
            self.carry.clear();
            Err(DecodeError::InvalidUtf8 { offset })
        }
    }
}

fn emit(text: Cow<'_, str>, sink: &mut dyn FnMut(Event<'_>)) {
    if !text.is_empty() {
        sink(Event::Token {
            channel: Channel::Text,
            text,
        });
    }
}

/// Splits `bytes` into its valid UTF-8 prefix and an incomplete code point at the very end.
fn split_utf8(bytes: &[u8], base: u64) -> Result<(&str, &[u8]), DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((s, &[])),
        Err(e) if e.error_len().is_none() => {
            let (valid, tail) = bytes.split_at(e.valid_up_to());
            // `valid_up_to` guarantees the prefix is valid; re-checking keeps this unsafe-free.
            let text = std::str::from_utf8(valid)
                .map_err(|_| DecodeError::InvalidUtf8 { offset: base })?;
            Ok((text, tail))
        }
        Err(e) => Err(DecodeError::InvalidUtf8 {
            offset: base + e.valid_up_to() as u64,
        }),
    }
}
