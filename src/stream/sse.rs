//! Server-sent events framing (WHATWG HTML "event stream interpretation"): bytes in any
//! chunking → dispatched events (`event` type + joined `data`).
//!
//! Does not: parse the data (dialects do), reconnect, or keep `id`/`retry` (a probe never
//! reconnects, so the last event id and the reconnection time have no use here).

use memchr::{memchr, memchr2};

use super::{DecodeError, Frame};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Incremental SSE parser. Complete lines inside a chunk are parsed in place; only a partial
/// trailing line is copied, into `line`. Both `line` and the event's `data` are bounded by
/// `max`.
#[derive(Debug)]
pub(crate) struct SseFramer {
    /// The unterminated tail of the previous chunk (no line terminator).
    line: Vec<u8>,
    /// Stream offset of `line[0]`, for `InvalidUtf8` offsets.
    line_start: u64,
    /// `line` is complete, ended by a CR that was the last byte of its chunk. An LF at the start
    /// of the next chunk belongs to the same CRLF terminator, so the line is processed only
    /// once that byte is known; this makes a CRLF-framed event complete at its LF whatever the
    /// chunking (the corpus measures "end of the dispatching blank line" that way).
    pending_cr: bool,
    /// Data buffer of the event being assembled: the data lines joined with `\n`.
    data: String,
    data_lines: usize,
    /// Event type buffer (`""` when the event has no `event:` field).
    event: String,
    /// The last line ended with a terminator: an event pending at EOF may be dispatched.
    last_line_complete: bool,
    seen_first_line: bool,
    max: usize,
}

impl SseFramer {
    pub(crate) fn new(max: usize) -> Self {
        SseFramer {
            line: Vec::new(),
            line_start: 0,
            pending_cr: false,
            data: String::new(),
            data_lines: 0,
            event: String::new(),
            last_line_complete: true,
            seen_first_line: false,
            max,
        }
    }

    /// Parses `chunk`, which starts at stream offset `base`, calling `on_frame` for every event
    /// it completes.
    pub(crate) fn feed<F>(
        &mut self,
        chunk: &[u8],
        base: u64,
        on_frame: &mut F,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Frame<'_>) -> Result<(), DecodeError>,
    {
        let mut pos = 0;
        if self.pending_cr && !chunk.is_empty() {
            self.pending_cr = false;
            if chunk[0] == b'\n' {
                pos = 1;
            }
            self.flush_line(on_frame)?;
        }
        while pos < chunk.len() {
            let Some(i) = memchr2(b'\n', b'\r', &chunk[pos..]) else {
                self.buffer(&chunk[pos..], base + pos as u64)?;
                self.last_line_complete = false;
                break;
            };
            let end = pos + i;
            let next = if chunk[end] == b'\n' {
                end + 1
            } else if end + 1 == chunk.len() {
                // CR as the last byte: wait for the next byte to see whether it is CRLF.
                self.buffer(&chunk[pos..end], base + pos as u64)?;
                self.pending_cr = true;
                self.last_line_complete = true;
                return Ok(());
            } else if chunk[end + 1] == b'\n' {
                end + 2
            } else {
                end + 1
            };
            if self.line.is_empty() {
                let line = &chunk[pos..end];
                if line.len() > self.max {
                    return Err(DecodeError::TooLong { limit: self.max });
                }
                self.process_line(line, base + pos as u64, on_frame)?;
            } else {
                self.buffer(&chunk[pos..end], base + pos as u64)?;
                self.flush_line(on_frame)?;
            }
            self.last_line_complete = true;
            pos = next;
        }
        Ok(())
    }

    /// End of stream. A pending CR line is processed. Deliberate leniency beyond the spec
    /// (which discards an event whose blank line never came): an event whose last line *was*
    /// terminated is dispatched, because some servers close right after `data: [DONE]\n`
    /// and calling that stream truncated would be a false failure. A partial last line
    /// (no terminator) is discarded, as the spec says.
    pub(crate) fn finish<F>(&mut self, on_frame: &mut F) -> Result<(), DecodeError>
    where
        F: FnMut(Frame<'_>) -> Result<(), DecodeError>,
    {
        if self.pending_cr {
            self.pending_cr = false;
            self.flush_line(on_frame)?;
        }
        self.line.clear();
        if self.last_line_complete {
            self.dispatch(on_frame)?;
        }
        self.reset_event();
        Ok(())
    }

    fn buffer(&mut self, bytes: &[u8], offset: u64) -> Result<(), DecodeError> {
        if self.line.len() + bytes.len() > self.max {
            return Err(DecodeError::TooLong { limit: self.max });
        }
        if self.line.is_empty() {
            self.line_start = offset;
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn flush_line<F>(&mut self, on_frame: &mut F) -> Result<(), DecodeError>
    where
        F: FnMut(Frame<'_>) -> Result<(), DecodeError>,
    {
        let line = std::mem::take(&mut self.line);
        let result = self.process_line(&line, self.line_start, on_frame);
        self.line = line;
        self.line.clear();
        result
    }

    fn process_line<F>(
        &mut self,
        mut line: &[u8],
        mut offset: u64,
        on_frame: &mut F,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Frame<'_>) -> Result<(), DecodeError>,
    {
        if !self.seen_first_line {
            self.seen_first_line = true;
            // A UTF-8 BOM is allowed only at the very start of the stream.
            if let Some(rest) = line.strip_prefix(BOM) {
                line = rest;
                offset += BOM.len() as u64;
            }
        }
        if line.is_empty() {
            return self.dispatch(on_frame);
        }
        if line[0] == b':' {
            return Ok(()); // comment (keep-alive)
        }
        // Field name up to the first colon; the value after it, minus one leading space.
        let (field, value_at) = match memchr(b':', line) {
            Some(c) if line.get(c + 1) == Some(&b' ') => (&line[..c], c + 2),
            Some(c) => (&line[..c], c + 1),
            None => (line, line.len()),
        };
        let value = &line[value_at..];
        let value_offset = offset + value_at as u64;
        match field {
            b"data" => {
                let value = utf8(value, value_offset)?;
                let sep = usize::from(self.data_lines > 0);
                if self.data.len() + sep + value.len() > self.max {
                    return Err(DecodeError::TooLong { limit: self.max });
                }
                if sep == 1 {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.data_lines += 1;
            }
            b"event" => {
                let value = utf8(value, value_offset)?;
                self.event.clear();
                self.event.push_str(value);
            }
            // `id`, `retry` and unknown fields: validated, otherwise ignored.
            _ => {
                utf8(line, offset)?;
            }
        }
        Ok(())
    }

    /// A blank line: dispatch the event if it has at least one data line (an event with only
    /// `event:`/`id:` fields — e.g. Dify's `event: ping` — is not an event).
    fn dispatch<F>(&mut self, on_frame: &mut F) -> Result<(), DecodeError>
    where
        F: FnMut(Frame<'_>) -> Result<(), DecodeError>,
    {
        let result = if self.data_lines > 0 {
            on_frame(Frame {
                event: &self.event,
                data: &self.data,
            })
        } else {
            Ok(())
        };
        self.reset_event();
        result
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.data_lines = 0;
        self.event.clear();
    }
}

fn utf8(bytes: &[u8], offset: u64) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        offset: offset + e.valid_up_to() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut f = SseFramer::new(1 << 20);
        let mut out = Vec::new();
        let mut push = |fr: Frame<'_>| {
            out.push((fr.event.to_owned(), fr.data.to_owned()));
            Ok(())
        };
        let mut base = 0;
        for c in chunks {
            f.feed(c, base, &mut push).unwrap();
            base += c.len() as u64;
        }
        f.finish(&mut push).unwrap();
        out
    }

    #[test]
    fn spec_fields() {
        let got = frames(&[
            b"\xEF\xBB\xBFdata:a\r\ndata: b\r\r: c\nevent:x\nid: 1\nretry: 5\ndata\n\nevent: y\n\n",
        ]);
        assert_eq!(got, [("".into(), "a\nb".into()), ("x".into(), "".into())]);
    }

    #[test]
    fn cr_lf_split_across_chunks_is_one_terminator() {
        let got = frames(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]);
        assert_eq!(got, [("".into(), "a".into()), ("".into(), "b".into())]);
    }

    #[test]
    fn too_long_line_fails_in_any_chunking() {
        let mut f = SseFramer::new(8);
        let mut sink = |_: Frame<'_>| Ok(());
        assert_eq!(
            f.feed(b"data: 0123", 0, &mut sink),
            Err(DecodeError::TooLong { limit: 8 })
        );
        let mut f = SseFramer::new(8);
        assert_eq!(
            f.feed(b"data: 0123\n\n", 0, &mut sink),
            Err(DecodeError::TooLong { limit: 8 })
        );
    }
}
