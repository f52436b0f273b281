//! `--plot`: per-class throughput over time, Mbit/s against seconds, one
//! labelled line per class (leaves solid, inner classes dashed), a legend
//! beside the chart with each class's average over the window, and the
//! warm-up shaded.
//!
//! Text is laid out (and, for PNG, rasterised) with plotters' `ab_glyph`
//! backend and DejaVu Sans embedded in the binary, so no system font
//! library (fontconfig/freetype) is needed to build or run.

use std::path::Path;
use std::sync::Once;

use htb::sim::SimReport;
use htb::{ClassId, ClassInfo};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::input::CliError;

/// Classes drawn when the user names none and there are more than this.
pub const DEFAULT_MAX_LINES: usize = 16;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

/// The format `path`'s extension asks for.
pub fn format_of(path: &Path) -> Result<Format, CliError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => Ok(Format::Svg),
        Some("png") => Ok(Format::Png),
        _ => Err(CliError::Input(format!(
            "htb: error: --plot {}: the file name must end in .svg or .png",
            path.display()
        ))),
    }
}

/// All classes when there are at most [`DEFAULT_MAX_LINES`]; otherwise the
/// top-level and inner classes, then the busiest leaves, up to that many
/// (in tree order). Says so on stderr when it leaves classes out.
pub fn default_selection(infos: &[ClassInfo], r: &SimReport) -> Vec<ClassId> {
    if infos.len() <= DEFAULT_MAX_LINES {
        return infos.iter().map(|c| c.id).collect();
    }
    let rate = |id: ClassId| r.class(id).map_or(0.0, |w| w.rate_bps);
    let mut keep: Vec<ClassId> = infos
        .iter()
        .filter(|c| !c.is_leaf)
        .map(|c| c.id)
        .take(DEFAULT_MAX_LINES / 2)
        .collect();
    let mut leaves: Vec<ClassId> = infos.iter().filter(|c| c.is_leaf).map(|c| c.id).collect();
    leaves.sort_by(|a, b| rate(*b).total_cmp(&rate(*a)));
    let room = DEFAULT_MAX_LINES - keep.len();
    keep.extend(leaves.into_iter().take(room));
    let order = |id: &ClassId| infos.iter().position(|c| c.id == *id);
    keep.sort_by_key(order);
    eprintln!(
        "htb: plotting {} of {} classes (the inner ones and the busiest leaves); \
         choose others with --plot-classes",
        keep.len(),
        infos.len()
    );
    keep
}

/// Tableau 10, then darker variants: distinct and colour-blind friendlier
/// than plotters' default palette.
const COLORS: [(u8, u8, u8); 20] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (16, 60, 90),
    (160, 80, 8),
    (22, 90, 22),
    (120, 20, 20),
    (80, 55, 110),
    (80, 50, 40),
    (150, 60, 120),
    (60, 60, 60),
    (110, 110, 20),
    (12, 100, 110),
];

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans is a valid font; a failure would only mean no text.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// One line to draw.
struct Line {
    label: String,
    avg: String,
    inner: bool,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Draws `ids`' throughput over time to `path` (SVG or PNG by extension).
pub fn draw(
    path: &Path,
    title: &str,
    infos: &[ClassInfo],
    r: &SimReport,
    ids: &[ClassId],
    warmup_ns: u64,
) -> Result<(), CliError> {
    let format = format_of(path)?;
    register_fonts();
    let mut lines = Vec::new();
    for (n, &id) in ids.iter().enumerate() {
        let Some(col) = r.classes.iter().position(|c| c.id == id) else {
            continue;
        };
        let info = infos.iter().find(|c| c.id == id);
        let inner = info.is_some_and(|c| !c.is_leaf);
        let mut prev = 0u64;
        let mut points = Vec::with_capacity(r.series.len());
        for (end, bytes) in &r.series {
            let dt = end.saturating_sub(prev).max(1);
            let mid = (prev + end) as f64 / 2.0 / 1e9;
            let mbps = bytes.get(col).copied().unwrap_or(0) as f64 * 8.0 * 1e3 / dt as f64;
            points.push((mid, mbps));
            prev = *end;
        }
        let kind = match info {
            Some(c) if c.is_leaf => format!("leaf, prio {}", c.prio),
            Some(c) if c.parent.is_none() => "top".to_string(),
            _ => "inner".to_string(),
        };
        let (cr, cg, cb) = COLORS[n % COLORS.len()];
        lines.push(Line {
            label: format!("{id}  ({kind})"),
            avg: format!(
                "{:.3} Mbit/s",
                r.class(id).map_or(0.0, |w| w.rate_bps) / 1e6
            ),
            inner,
            color: RGBColor(cr, cg, cb),
            points,
        });
    }
    let x_max = r.duration_ns as f64 / 1e9;
    let y_peak = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_max = if y_peak > 0.0 { y_peak * 1.08 } else { 1.0 };
    let warmup = warmup_ns as f64 / 1e9;

    let fail = |e: String| {
        CliError::Output(format!(
            "htb: error: cannot draw the plot {}: {e}",
            path.display()
        ))
    };
    match format {
        Format::Svg => {
            let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            paint(&root, title, &lines, x_max, y_max, warmup).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        Format::Png => {
            // Rendered into memory and encoded with the `png` crate, which
            // spares the build plotters' `image` dependency (its largest).
            let mut rgb = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
            {
                let root =
                    BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
                paint(&root, title, &lines, x_max, y_max, warmup).map_err(fail)?;
                root.present().map_err(|e| fail(e.to_string()))?;
            }
            write_png(path, &rgb).map_err(|e| fail(e.to_string()))?;
        }
    }
    // plotters reports some write failures only through a missing file.
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => Err(fail("nothing was written".into())),
    }
}

/// Writes an RGB8 image of WIDTH × HEIGHT as a PNG file.
fn write_png(path: &Path, rgb: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, WIDTH, HEIGHT);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let mut w = enc.write_header()?;
    w.write_image_data(rgb)?;
    w.finish()?;
    Ok(())
}

fn paint<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    lines: &[Line],
    x_max: f64,
    y_max: f64,
    warmup: f64,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let legend_w = 300;
    let (chart_area, legend_area) = root.split_horizontally(WIDTH - legend_w);

    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, ("sans-serif", 20).into_font())
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("throughput (Mbit/s)")
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()
        .map_err(e)?;
    if warmup > 0.0 {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, 0.0), (warmup, y_max)],
                RGBColor(120, 120, 120).mix(0.12).filled(),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                "warm-up",
                (warmup * 0.5, y_max * 0.97),
                ("sans-serif", 13)
                    .into_font()
                    .color(&RGBColor(90, 90, 90))
                    .pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Top,
                    )),
            )))
            .map_err(e)?;
    }
    // Inner classes first (dashed, wider), so the leaves stay on top.
    for l in lines.iter().filter(|l| l.inner) {
        chart
            .draw_series(DashedLineSeries::new(
                l.points.iter().copied(),
                10,
                6,
                l.color.stroke_width(3),
            ))
            .map_err(e)?;
    }
    for l in lines.iter().filter(|l| !l.inner) {
        chart
            .draw_series(LineSeries::new(
                l.points.iter().copied(),
                l.color.stroke_width(2),
            ))
            .map_err(e)?;
    }

    // The legend: a sample of each line, the class, its average.
    let legend = legend_area.margin(60, 16, 8, 16);
    legend
        .draw_text(
            "class   average over the window",
            &("sans-serif", 14).into_font().color(&BLACK),
            (0, 0),
        )
        .map_err(e)?;
    let row_h = ((HEIGHT as i32 - 140) / lines.len().max(1) as i32).clamp(18, 34);
    for (i, l) in lines.iter().enumerate() {
        let y = 28 + i as i32 * row_h;
        let style = l.color.stroke_width(if l.inner { 3 } else { 2 });
        if l.inner {
            legend
                .draw(&PathElement::new(vec![(0, y + 8), (12, y + 8)], style))
                .map_err(e)?;
            legend
                .draw(&PathElement::new(vec![(18, y + 8), (30, y + 8)], style))
                .map_err(e)?;
        } else {
            legend
                .draw(&PathElement::new(vec![(0, y + 8), (30, y + 8)], style))
                .map_err(e)?;
        }
        legend
            .draw_text(
                &format!("{}  {}", l.label, l.avg),
                &("sans-serif", 14).into_font().color(&BLACK),
                (38, y),
            )
            .map_err(e)?;
    }
    Ok(())
}
