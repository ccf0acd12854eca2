//! Newline-delimited JSON framing (Ollama, JSON Lines): bytes in any chunking → one frame per
//! non-blank line.
//!
//! Does not: parse the JSON (dialects do). Lines end at LF; a CR before it is dropped, so CRLF
//! producers work too. Blank and whitespace-only lines are skipped; a final line without `\n`
//! is flushed by `finish`.

use memchr::memchr;

use super::{DecodeError, Frame};

#[derive(Debug)]
pub(crate) struct LineFramer {
    /// The unterminated tail of the previous chunk.
    line: Vec<u8>,
    /// Stream offset of `line[0]`.
    line_start: u64,
    max: usize,
}

impl LineFramer {
    pub(crate) fn new(max: usize) -> Self {
        LineFramer {
            line: Vec::new(),
            line_start: 0,
            max,
        }
    }

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
        while pos < chunk.len() {
            let Some(i) = memchr(b'\n', &chunk[pos..]) else {
                self.buffer(&chunk[pos..], base + pos as u64)?;
                break;
            };
            let end = pos + i;
            if self.line.is_empty() {
                line_frame(&chunk[pos..end], base + pos as u64, self.max, on_frame)?;
            } else {
                self.buffer(&chunk[pos..end], base + pos as u64)?;
                self.flush(on_frame)?;
            }
            pos = end + 1;
        }
        Ok(())
    }

    pub(crate) fn finish<F>(&mut self, on_frame: &mut F) -> Result<(), DecodeError>
    where
        F: FnMut(Frame<'_>) -> Result<(), DecodeError>,
    {
        self.flush(on_frame)
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

    fn flush<F>(&mut self, on_frame: &mut F) -> Result<(), DecodeError>
    where
        F: FnMut(Frame<'_>) -> Result<(), DecodeError>,
    {
        let result = line_frame(&self.line, self.line_start, self.max, on_frame);
        self.line.clear();
        result
    }
}

fn line_frame<F>(line: &[u8], offset: u64, max: usize, on_frame: &mut F) -> Result<(), DecodeError>
where
    F: FnMut(Frame<'_>) -> Result<(), DecodeError>,
{
    if line.len() > max {
        return Err(DecodeError::TooLong { limit: max });
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|e| DecodeError::InvalidUtf8 {
        offset: offset + e.valid_up_to() as u64,
    })?;
    // A BOM can only start the first line; JSON parsers reject it, so drop it anywhere.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(());
    }
    on_frame(Frame {
        event: "",
        data: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_blank_crlf_and_unterminated_tail() {
        let mut f = LineFramer::new(64);
        let mut out: Vec<String> = Vec::new();
        let mut push = |fr: Frame<'_>| {
            out.push(fr.data.to_owned());
            Ok(())
        };
        f.feed(b"{\"a\":1}\r\n\n  \n{\"b\"", 0, &mut push).unwrap();
        f.feed(b":2}\n{\"c\":3}", 18, &mut push).unwrap();
        f.finish(&mut push).unwrap();
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
    }
}
