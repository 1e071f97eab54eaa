//! PNG plots of a soak, drawn with plotters' bitmap backend: final latency,
//! resident memory, CPU, ring fill and buffer size over session time, with
//! the fault windows shaded.
//!
//! Text is rendered with ab_glyph from a TrueType font read at run time
//! from the Debian package `fonts-dejavu-core` (no fontconfig or freetype
//! needed); without it the plots are skipped with an error naming the font.
//!
//! Not real-time safe.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::report::SoakReport;
use crate::monitor::{Sample, SourceSample};

/// Where the font is looked for, first found wins.
pub const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];
/// The family name plots ask for (the font is registered under it).
const FONT_FAMILY: &str = "sans-serif";
const PLOT_SIZE_PX: (u32, u32) = (1000, 420);
const MB: f64 = 1024.0 * 1024.0;
const FAULT_SHADE: RGBAColor = RGBAColor(220, 60, 60, 0.15);
const SERIES_COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Why plots could not be drawn (the soak's report is still written).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlotError {
    #[error(
        "no font for plot text: none of {} exists (install the Debian package fonts-dejavu-core)",
        FONT_PATHS.join(", ")
    )]
    NoFont,
    #[error("font {path} is not a usable TrueType font")]
    BadFont { path: PathBuf },
    #[error("cannot draw {path}: {detail}")]
    Draw { path: PathBuf, detail: String },
}

/// Loads and registers the font once per process.
fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<Result<(), PlotError>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = FONT_PATHS
                .iter()
                .map(Path::new)
                .find(|p| p.is_file())
                .ok_or(PlotError::NoFont)?;
            let bad = || PlotError::BadFont {
                path: path.to_path_buf(),
            };
            let bytes = std::fs::read(path).map_err(|_| bad())?;
            // plotters keeps fonts for the whole process; this runs once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes).map_err(|_| bad())
        })
        .clone()
}

/// One line on a chart.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// One chart: a title, a y axis, lines, and session-time windows to shade.
struct Chart<'a> {
    file: &'a str,
    title: &'a str,
    y_label: &'a str,
    series: Vec<Series>,
    shaded: &'a [(f64, f64)],
    /// Draw points instead of lines (sparse data such as finals).
    points: bool,
    /// The y axis reaches at least this high (100 for a fill ratio).
    y_top_at_least: f64,
}

/// Draws the plots into `dir`; returns the file names written.
pub fn draw(report: &SoakReport, dir: &Path) -> Result<Vec<String>, PlotError> {
    register_font()?;
    let shaded: Vec<(f64, f64)> = report
        .faults
        .iter()
        .map(|f| (f.removed_at_s, f.home_at_s.unwrap_or(report.duration_s)))
        .collect();
    let x_end = report.duration_s.max(1.0);
    let mut files = Vec::new();
    for chart in &charts(report, &shaded) {
        let path = dir.join(chart.file);
        draw_chart(chart, &path, x_end).map_err(|detail| PlotError::Draw {
            path: path.clone(),
            detail,
        })?;
        files.push(chart.file.to_owned());
    }
    Ok(files)
}

/// One series over the monitor's samples, in session time (samples are
/// timed from the sampler's start).
fn sampled(report: &SoakReport, name: &str, value: impl Fn(&Sample) -> f64) -> Series {
    let offset = report.session_start_in_samples_s;
    Series {
        name: name.into(),
        points: report
            .samples
            .iter()
            .map(|s| (s.t_s - offset, value(s)))
            .collect(),
    }
}

/// One series per source over the monitor's samples.
fn per_source(report: &SoakReport, value: impl Fn(&SourceSample) -> f64) -> Vec<Series> {
    let offset = report.session_start_in_samples_s;
    report
        .sources
        .iter()
        .map(|source| Series {
            name: source.source.clone(),
            points: report
                .samples
                .iter()
                .filter_map(|s| {
                    let src = s.sources.iter().find(|x| x.source == source.source)?;
                    Some((s.t_s - offset, value(src)))
                })
                .collect(),
        })
        .collect()
}

/// The charts of a soak.
fn charts<'a>(report: &SoakReport, shaded: &'a [(f64, f64)]) -> [Chart<'a>; 5] {
    let chart = |file, title, y_label, series, points, y_top_at_least| Chart {
        file,
        title,
        y_label,
        series,
        shaded,
        points,
        y_top_at_least,
    };
    let finals = Series {
        name: "finals".into(),
        points: report.latency_series.clone(),
    };
    [
        chart(
            "latency.png",
            "Final latency (emitted minus end of its audio)",
            "seconds",
            vec![finals],
            true,
            0.0,
        ),
        chart(
            "rss.png",
            "Resident memory",
            "MB",
            vec![sampled(report, "RSS", |s| s.rss_bytes as f64 / MB)],
            false,
            0.0,
        ),
        chart(
            "cpu.png",
            "CPU",
            "percent",
            vec![
                sampled(report, "hark, % of one core", |s| {
                    f64::from(s.process_cpu_percent)
                }),
                sampled(report, "machine, % of all cores", |s| {
                    f64::from(s.cpu_total_percent)
                }),
            ],
            false,
            0.0,
        ),
        chart(
            "ring_fill.png",
            "Hand-off ring fill",
            "percent",
            per_source(report, |s| f64::from(s.ring_fill) * 100.0),
            false,
            100.0,
        ),
        chart(
            "buffer_ms.png",
            "Buffer size (pump chunk)",
            "ms",
            vec![sampled(report, "buffer", |s| f64::from(s.buffer_ms))],
            false,
            0.0,
        ),
    ]
}

/// The y range: from zero (or the lowest value if negative) to a little
/// above the highest.
fn y_range(series: &[Series]) -> (f64, f64) {
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let high = if high - low < 1e-9 { low + 1.0 } else { high };
    (low, high + (high - low) * 0.1)
}

fn draw_chart(chart: &Chart, path: &Path, x_end: f64) -> Result<(), String> {
    let root = BitMapBackend::new(path, PLOT_SIZE_PX).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (y_low, y_high) = y_range(&chart.series);
    let y_high = y_high.max(chart.y_top_at_least);
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, (FONT_FAMILY, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_end, y_low..y_high)
        .map_err(|e| e.to_string())?;
    ctx.configure_mesh()
        .x_desc("session time, s")
        .y_desc(chart.y_label)
        .label_style((FONT_FAMILY, 14))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut any_shaded = false;
    for &(from, to) in chart.shaded {
        let area = Rectangle::new([(from, y_low), (to, y_high)], FAULT_SHADE.filled());
        let drawn = ctx
            .draw_series(std::iter::once(area))
            .map_err(|e| e.to_string())?;
        if !any_shaded {
            drawn.label("device removed until back").legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 16, y + 5)], FAULT_SHADE.filled())
            });
            any_shaded = true;
        }
    }
    for (i, series) in chart.series.iter().enumerate() {
        let color = SERIES_COLORS[i % SERIES_COLORS.len()];
        let points = series.points.iter().copied().filter(|p| p.1.is_finite());
        let drawn = if chart.points {
            ctx.draw_series(points.map(|p| Circle::new(p, 3, color.filled())))
        } else {
            ctx.draw_series(LineSeries::new(points, color.stroke_width(2)))
        }
        .map_err(|e| e.to_string())?;
        drawn.label(series.name.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
        });
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_range_starts_at_zero_and_leaves_headroom() {
        let series = vec![Series {
            name: "a".into(),
            points: vec![(0.0, 2.0), (1.0, 10.0)],
        }];
        assert_eq!(y_range(&series), (0.0, 11.0));
        assert_eq!(y_range(&[]), (0.0, 1.1));
    }

    #[test]
    fn a_chart_is_a_png_with_text() {
        // scripts/setup.sh installs fonts-dejavu-core.
        register_font().expect("plot font");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.png");
        let chart = Chart {
            file: "t.png",
            title: "test",
            y_label: "units",
            series: vec![Series {
                name: "line".into(),
                points: (0..20).map(|i| (f64::from(i), f64::from(i * i))).collect(),
            }],
            shaded: &[(5.0, 8.0)],
            points: false,
            y_top_at_least: 0.0,
        };
        draw_chart(&chart, &path, 20.0).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
