//! Pictures (DESIGN §12): self-contained HTML pages with server-side SVG plots, as pure
//! functions from plain data to a `String`. One page shell (`page`) with its style sheet, one
//! escaper (`Escaped`), one palette; the plots themselves are in `burst.rs` (a burst's summary
//! table, TTFT CDF, ITL histogram, waterfall, tokens/s), `compare.rs` (both sides' CDFs, the
//! change table) and `target.rs` (TTFT p50/p95 per retained burst with the baseline band).
//!
//! Every page works offline and under a strict Content-Security-Policy: no script, no external
//! URL of any kind (font, image, style sheet), the plots are inline `<svg class="plot"
//! data-plot="KIND">` elements that render without scripts. The shell repeats the policy in a
//! `<meta>` element so that a saved `run --html` file is held to it too. Colours come from the
//! Okabe–Ito palette (readable with every common colour-vision deficiency) and never carry
//! meaning alone: outcomes also differ by hatching, marker shape, text and `<title>` hover text.
//!
//! Does not: read files, know about HTTP, or compute verdicts; callers hand over the data.

pub mod burst;
pub mod compare;
mod svg;
pub mod target;

use std::fmt::{self, Write as _};

/// The policy every HTML page is served with (and states in its own `<meta>`): nothing may be
/// loaded from anywhere, inline styles are allowed, images only as `data:` URLs, no script at
/// all (the pages have none).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The same policy as a page states it in `<meta>`: browsers ignore (and complain about)
/// `frame-ancestors` there, so it is left out; the header carries it.
const META_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
     base-uri 'none'; form-action 'none'";

/// Okabe–Ito colours (Okabe & Ito 2008, "Color Universal Design"), named by hue.
pub(crate) mod palette {
    pub const BLACK: &str = "#000000";
    pub const ORANGE: &str = "#E69F00";
    pub const SKY_BLUE: &str = "#56B4E9";
    pub const GREEN: &str = "#009E73";
    pub const YELLOW: &str = "#F0E442";
    pub const BLUE: &str = "#0072B2";
    pub const VERMILLION: &str = "#D55E00";
    pub const PURPLE: &str = "#CC79A7";
    pub const LIGHT_GREY: &str = "#CCCCCC";
}

/// A navigation link in a page's header: `(href, text)`; hrefs are site-relative paths the
/// caller made from checked names.
pub type Nav<'a> = &'a [(&'a str, &'a str)];

/// The shell every page shares: doctype, the CSP `<meta>`, the style sheet, `title` (escaped) as
/// document title and heading, optional navigation links and refresh; `body` is HTML.
pub fn page(title: &str, nav: Nav<'_>, refresh_seconds: Option<u32>, body: &str) -> String {
    let title = Escaped(title);
    let mut html = String::with_capacity(4096 + body.len());
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{META_POLICY}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>"
    );
    if let Some(s) = refresh_seconds {
        let _ = write!(html, "<meta http-equiv=\"refresh\" content=\"{s}\">");
    }
    html.push_str("<style>");
    html.push_str(STYLE);
    html.push_str("</style></head><body>\n");
    if !nav.is_empty() {
        html.push_str("<nav>");
        for (i, (href, text)) in nav.iter().enumerate() {
            if i > 0 {
                html.push_str(" · ");
            }
            let _ = write!(html, "<a href=\"{}\">{}</a>", Escaped(href), Escaped(text));
        }
        html.push_str("</nav>\n");
    }
    let _ = writeln!(html, "<h1>{title}</h1>");
    html.push_str(body);
    html.push_str("</body></html>\n");
    html
}

/// One style sheet for every page: system fonts only (no web font), tables, plots, verdicts.
const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1200px}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}\
nav{margin-bottom:.5em}\
table{border-collapse:collapse;margin:.5em 0}\
td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}\
th{background:#f4f4f4}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.nw{white-space:nowrap}.bad{color:#D55E00}.ok{color:#007a58}code{font-size:12px}\
svg.plot{display:block;max-width:100%;height:auto;margin:.4em 0}\
svg.plot text{font:11px system-ui,sans-serif;fill:#222}\
svg.plot .grid{stroke:#e6e6e6}svg.plot .axis{stroke:#444}\
.note{color:#555;font-size:12px;max-width:900px}\
.legend span{display:inline-block;margin-right:1.2em;font-size:12px}\
.legend i{display:inline-block;width:12px;height:12px;margin-right:.35em;vertical-align:-2px;border:1px solid #555}\
.v{font-weight:600;padding:.1em .45em;border-radius:3px;white-space:nowrap}\
.v-regressed{background:#D55E00;color:#fff}.v-improved{background:#0072B2;color:#fff}\
.v-no_change{background:#e8e8e8;color:#222}.v-inconclusive{background:#F0E442;color:#222}\
.v-insufficient_data{background:#fff;color:#555;border:1px dashed #999}";

/// Text made safe for HTML element content and quoted attribute values:
/// `write!(html, "<b>{}</b>", Escaped(name))`.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A verdict as a badge: its name in words (never colour alone) with an arrow for a change.
pub(crate) fn verdict_badge(verdict: &str) -> String {
    let (class, text) = match verdict {
        "regressed" => ("regressed", "▲ regressed"),
        "improved" => ("improved", "▼ improved"),
        "no_change" => ("no_change", "= no change"),
        "inconclusive" => ("inconclusive", "? inconclusive"),
        "insufficient_data" => ("insufficient_data", "… insufficient data"),
        // Unknown to this build (a newer file): shown as written, unstyled.
        other => return format!("<span class=\"v\">{}</span>", Escaped(other)),
    };
    format!("<span class=\"v v-{class}\">{text}</span>")
}

#[cfg(test)]
/// Nothing that loads: no script, style sheet, image, frame or `@import`; every link is
/// site-relative (`/…`) or in-page (`#…`), and the only `url(` is an in-document `url(#id)`
/// reference to an SVG pattern. (A target's URL shown as text is not a reference.)
pub(crate) fn assert_no_external_reference(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script",
        "<link",
        "<img",
        "<iframe",
        "<object",
        "<embed",
        "@import",
        " src=",
        "xlink:href",
    ] {
        assert!(!lower.contains(bad), "page loads something: {bad}");
    }
    for (i, _) in lower.match_indices("href=\"") {
        let value = &lower[i + 6..];
        assert!(
            (value.starts_with('/') && !value.starts_with("//")) || value.starts_with('#'),
            "link outside the site: {}",
            &value[..value.find('"').unwrap_or(value.len()).min(80)]
        );
    }
    for (i, _) in lower.match_indices("url(") {
        assert!(lower[i..].starts_with("url(#"), "external url( at {i}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_covers_markup_and_both_quotes() {
        assert_eq!(
            Escaped(r#"<a href="x" title='y'>&amp;</a>"#).to_string(),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(Escaped("plain — text").to_string(), "plain — text");
    }

    #[test]
    fn the_shell_states_the_policy_and_loads_nothing() {
        let html = page("a <b>", &[("/", "status")], Some(15), "<p>x</p>");
        assert!(html.contains(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{META_POLICY}\">"
        )));
        assert!(CONTENT_SECURITY_POLICY.starts_with(META_POLICY));
        assert!(html.contains("<title>a &lt;b&gt;</title>"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"15\">"));
        assert!(html.contains("<nav><a href=\"/\">status</a></nav>"));
        assert_no_external_reference(&html);
    }

    #[test]
    fn verdict_badges_say_their_verdict_in_words() {
        assert_eq!(
            verdict_badge("regressed"),
            "<span class=\"v v-regressed\">▲ regressed</span>"
        );
        assert_eq!(verdict_badge("<x>"), "<span class=\"v\">&lt;x&gt;</span>");
    }
}
