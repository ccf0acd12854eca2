//! The drawing kit the plots share: a plot frame (margins around the data area), linear scales,
//! "nice" ticks (1, 2 or 5 × 10ⁿ), axes with grid lines and labels in sensible units (time in
//! ms below one second, in s above), and number formatting that keeps files small.
//!
//! Does not: know what is plotted; `burst.rs`, `compare.rs` and `target.rs` do.

use std::fmt::Write as _;

use super::Escaped;

/// A plot's size in SVG user units and the margins around its data area.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Frame {
    pub fn new(width: f64, height: f64) -> Frame {
        Frame {
            width,
            height,
            left: 64.0,
            right: 16.0,
            top: 12.0,
            bottom: 40.0,
        }
    }

    /// Left and right edge of the data area.
    pub fn x_range(&self) -> (f64, f64) {
        (self.left, self.width - self.right)
    }

    /// Bottom and top edge of the data area (SVG y grows downwards).
    pub fn y_range(&self) -> (f64, f64) {
        (self.height - self.bottom, self.top)
    }

    /// Opens the plot's `<svg>`: the DOM contract is `class="plot" data-plot="KIND"` plus the
    /// plot's own `data-*` attributes (`attrs`, already formatted: ` data-rows="3"`).
    pub fn open(&self, out: &mut String, kind: &str, attrs: &str, label: &str) {
        let _ = write!(
            out,
            "<svg class=\"plot\" data-plot=\"{kind}\"{attrs} viewBox=\"0 0 {w} {h}\" \
             width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{label}\">",
            w = num(self.width),
            h = num(self.height),
            label = Escaped(label),
        );
    }
}

/// A linear map from data to SVG units; values outside the domain are clamped to its ends, so
/// an outlier never draws outside the frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub d0: f64,
    pub d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    /// `domain` → `range`; an empty domain is widened so that the map stays defined.
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Scale {
        let (mut d0, mut d1) = domain;
        if !matches!(d1.partial_cmp(&d0), Some(std::cmp::Ordering::Greater)) {
            let pad = if d0 == 0.0 { 1.0 } else { d0.abs() * 0.1 };
            d0 -= pad;
            d1 = d0 + 2.0 * pad;
        }
        Scale {
            d0,
            d1,
            r0: range.0,
            r1: range.1,
        }
    }

    pub fn map(&self, v: f64) -> f64 {
        let v = v.clamp(self.d0, self.d1);
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// The tick step for about `n` ticks over `span`: 1, 2 or 5 × 10ⁿ.
pub(crate) fn nice_step(span: f64, n: usize) -> f64 {
    if span.is_nan() || span <= 0.0 || span.is_infinite() {
        return 1.0;
    }
    let raw = span / n.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A domain from 0 (or `lo`) to `hi` rounded up to a whole step, and its ticks.
pub(crate) fn nice_domain(lo: f64, hi: f64, n: usize) -> ((f64, f64), Vec<f64>) {
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let step = nice_step(hi - lo, n);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut i = 0.0;
    loop {
        let t = start + i * step;
        if t > end + step * 1e-9 {
            break;
        }
        // Rounding to 12 decimals keeps values like 0.15000000000000002 out of labels.
        ticks.push((t * 1e12).round() / 1e12);
        i += 1.0;
    }
    ((start, end), ticks)
}

/// How a time axis labels its ticks: in ms when its largest value is below one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    Ms,
    S,
}

impl TimeUnit {
    pub fn for_max(max_seconds: f64) -> TimeUnit {
        if max_seconds < 1.0 {
            TimeUnit::Ms
        } else {
            TimeUnit::S
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Ms => "ms",
            TimeUnit::S => "s",
        }
    }

    /// A tick label: as many decimals as the step needs, no more.
    pub fn label(self, seconds: f64, step_seconds: f64) -> String {
        let scale = match self {
            TimeUnit::Ms => 1000.0,
            TimeUnit::S => 1.0,
        };
        plain(seconds * scale, step_seconds * scale)
    }
}

/// `v` with the decimals `step` needs (step 0.5 → one decimal, 20 → none).
pub(crate) fn plain(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step < 1.0 {
        (-step.log10().floor()) as usize
    } else {
        0
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_owned()
    } else {
        s
    }
}

/// A duration for people, as the text report and the compare tables print it.
pub(crate) use crate::output::short_duration as duration;

/// A coordinate with at most one decimal and no trailing `.0`: SVG files stay small.
pub(crate) fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// The x axis: grid lines at `ticks`, their labels (`label`), and `title` under the axis.
pub(crate) fn x_axis(
    out: &mut String,
    frame: &Frame,
    scale: &Scale,
    ticks: &[f64],
    label: impl Fn(f64) -> String,
    title: &str,
) {
    let (y0, y1) = frame.y_range();
    out.push_str("<g class=\"x-axis\">");
    for &t in ticks {
        let x = num(scale.map(t));
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(y1),
            num(y0),
            num(y0 + 14.0),
            Escaped(&label(t))
        );
    }
    let (x0, x1) = frame.x_range();
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>",
        num(x0),
        num(x1),
        num((x0 + x1) / 2.0),
        num(frame.height - 6.0),
        Escaped(title),
        y = num(y0),
    );
}

/// The y axis: grid lines at `ticks`, their labels, and `title` turned along the axis.
pub(crate) fn y_axis(
    out: &mut String,
    frame: &Frame,
    scale: &Scale,
    ticks: &[f64],
    label: impl Fn(f64) -> String,
    title: &str,
) {
    let (x0, x1) = frame.x_range();
    out.push_str("<g class=\"y-axis\">");
    for &t in ticks {
        let y = num(scale.map(t));
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text x=\"{}\" y=\"{y}\" dy=\"4\" text-anchor=\"end\">{}</text>",
            num(x0),
            num(x1),
            num(x0 - 6.0),
            Escaped(&label(t))
        );
    }
    let (y0, y1) = frame.y_range();
    let mid = num((y0 + y1) / 2.0);
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"/>\
         <text x=\"14\" y=\"{mid}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {mid})\">{}</text></g>",
        num(y0),
        num(y1),
        Escaped(title),
        x = num(x0),
    );
}

/// A colour legend under a plot: `(swatch style, text)` pairs; the swatch style is inline CSS
/// (`background:#0072B2`), so hatched swatches can say so in words too.
pub(crate) fn legend(out: &mut String, items: &[(&str, &str)]) {
    out.push_str("<div class=\"legend\">");
    for (style, text) in items {
        let _ = write!(
            out,
            "<span><i style=\"{}\"></i>{}</span>",
            Escaped(style),
            Escaped(text)
        );
    }
    out.push_str("</div>\n");
}

/// The empirical CDF of ascending `sorted` as an SVG path (a step function: each sample lifts
/// the curve by 1/n at its value), from 0 to 1. Samples that land on the same drawn x make one
/// step, so the path grows with the plot's width, not with the number of samples.
pub(crate) fn cdf_path(sorted: &[f64], x: &Scale, y: &Scale) -> String {
    let n = sorted.len();
    let mut d = String::with_capacity(16 * n.min(2000) + 16);
    if n == 0 {
        return d;
    }
    let _ = write!(d, "M{} {}", num(x.map(sorted[0])), num(y.map(0.0)));
    let mut i = 0;
    while i < n {
        let px = num(x.map(sorted[i]));
        // The last sample drawn at this x: the step rises to its rank.
        let mut j = i;
        while j + 1 < n && num(x.map(sorted[j + 1])) == px {
            j += 1;
        }
        let _ = write!(d, "H{px}V{}", num(y.map((j + 1) as f64 / n as f64)));
        i = j + 1;
    }
    d
}

/// A centred note inside an empty plot's frame ("no successful requests").
pub(crate) fn empty_note(out: &mut String, frame: &Frame, text: &str) {
    let (x0, x1) = frame.x_range();
    let (y0, y1) = frame.y_range();
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        num((x0 + x1) / 2.0),
        num((y0 + y1) / 2.0),
        Escaped(text)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(0.37, 5), 0.1);
        assert_eq!(nice_step(730.0, 6), 200.0);
        assert_eq!(nice_step(0.0, 5), 1.0);
        let ((lo, hi), ticks) = nice_domain(0.0, 0.234, 5);
        assert_eq!((lo, hi), (0.0, 0.25));
        assert_eq!(ticks, [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]);
    }

    #[test]
    fn time_labels_are_ms_below_a_second_and_s_above() {
        assert_eq!(TimeUnit::for_max(0.9), TimeUnit::Ms);
        assert_eq!(TimeUnit::Ms.label(0.25, 0.05), "250");
        assert_eq!(TimeUnit::Ms.label(0.0025, 0.0005), "2.5");
        assert_eq!(TimeUnit::for_max(2.4), TimeUnit::S);
        assert_eq!(TimeUnit::S.label(1.5, 0.5), "1.5");
        assert_eq!(TimeUnit::S.label(20.0, 5.0), "20");
        assert_eq!(duration(0.2345), "234.5 ms");
        assert_eq!(duration(2.5), "2.500 s");
    }

    #[test]
    fn cdf_paths_step_once_per_drawn_x() {
        let x = Scale::new((0.0, 10.0), (0.0, 100.0));
        let y = Scale::new((0.0, 1.0), (100.0, 0.0));
        assert_eq!(
            cdf_path(&[1.0, 1.0, 5.0, 10.0], &x, &y),
            "M10 100H10V50H50V25H100V0"
        );
        // A million samples on a 100-unit axis: at most one step per 0.1 unit.
        let many: Vec<f64> = (0..1_000_000).map(|i| i as f64 / 100_000.0).collect();
        assert!(cdf_path(&many, &x, &y).len() < 1001 * 16);
        assert_eq!(cdf_path(&[], &x, &y), "");
    }

    #[test]
    fn scales_clamp_and_survive_empty_domains() {
        let s = Scale::new((0.0, 10.0), (100.0, 200.0));
        assert_eq!(s.map(5.0), 150.0);
        assert_eq!(s.map(50.0), 200.0);
        let flat = Scale::new((3.0, 3.0), (0.0, 10.0));
        assert!(flat.map(3.0).is_finite());
        assert_eq!(num(12.04), "12");
        assert_eq!(num(12.06), "12.1");
        assert_eq!(plain(-0.0001, 0.1), "0.0");
    }
}
