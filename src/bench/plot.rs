//! `resctl bench --plot FILE.svg`: the sweep as a picture, two panels over the thread
//! count — speedup (against the smallest count that succeeded, said in the chart) above,
//! peak memory below — with the recommended count marked and the failed counts drawn as
//! red crosses with why they failed. [`svg`] is pure: report in, SVG text out; the file is
//! written where the other exports are.
//!
//! Text is laid out by plotters' own estimate (no font crate: its SVG backend writes
//! `<text>` elements the viewer renders with its fonts); plotters escapes `<`, `&` and
//! quotes, and the command, which the job's user wrote, goes through [`escape`] first so
//! a control character cannot make the file invalid XML or reorder the caption.

use std::ffi::OsString;
use std::time::SystemTime;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{outcome, BenchReport, CountResult};
use crate::job_text::{command_line, escape};
use crate::units::format_size;

/// Width and height of the picture, pixels.
pub const SIZE: (u32, u32) = (1080, 720);
/// The speedup line and its points.
pub const SPEEDUP_COLOR: RGBColor = RGBColor(31, 119, 180);
/// The peak memory line and its points.
pub const MEMORY_COLOR: RGBColor = RGBColor(255, 127, 14);
/// A count that failed (OOM-killed or a non-zero exit in any of its runs).
pub const FAILED_COLOR: RGBColor = RGBColor(214, 39, 40);
/// The recommended count's line.
pub const RECOMMENDED_COLOR: RGBColor = RGBColor(44, 160, 44);

/// Room right of each panel for its legend, pixels.
const LEGEND_WIDTH: i32 = 280;
/// Characters of the command per caption line.
const COMMAND_LINE_CHARS: usize = 120;
/// Caption lines the command may take; the rest is cut with `…`.
const COMMAND_LINES: usize = 2;

/// What the chart says besides the figures.
#[derive(Debug, Clone)]
pub struct PlotCaption<'a> {
    /// The benchmarked command as given (`{threads}` unreplaced); shown escaped.
    pub command: &'a [OsString],
    /// When the sweep was measured (shown in UTC).
    pub measured_at: SystemTime,
}

/// Why no chart was drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The report has no count at all.
    #[error("no thread count was run")]
    Empty,
    /// plotters refused to draw.
    #[error("{0}")]
    Draw(String),
}

/// One point of a panel.
struct Point {
    threads: u32,
    value: f64,
    ok: bool,
    label: String,
}

/// What differs between the two panels.
struct Panel {
    /// Name of the series, in the legend.
    name: &'static str,
    color: RGBColor,
    y_desc: String,
    y_max: f64,
    tick: Box<dyn Fn(f64) -> String>,
    points: Vec<Point>,
    /// Whether the line goes on through a failed count (memory was measured there) or
    /// breaks (no speedup of a count that failed).
    line_through_failures: bool,
}

/// The thread-count axis, shared by both panels.
struct XAxis {
    range: std::ops::Range<u32>,
    counts: Vec<u32>,
    recommended: Option<u32>,
}

/// The report as an SVG document of [`SIZE`]: speedup and peak memory per thread count.
///
/// # Errors
///
/// [`PlotError::Empty`] for a report without counts, [`PlotError::Draw`] if plotters fails.
pub fn svg(report: &BenchReport, caption: &PlotCaption) -> Result<String, PlotError> {
    if report.results.is_empty() {
        return Err(PlotError::Empty);
    }
    let mut results: Vec<&CountResult> = report.results.iter().collect();
    results.sort_by_key(|result| result.threads);
    let axis = x_axis(&results, report.recommended);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let header = header_lines(report, caption);
        let header_height = 16 + 20 * i32::try_from(header.len()).unwrap_or(0);
        for (index, (line, style)) in header.iter().enumerate() {
            let y = 12 + 20 * i32::try_from(index).unwrap_or(0);
            root.draw(&Text::new(line.as_str(), (16, y), style.clone()))
                .map_err(draw_error)?;
        }
        let (_, body) = root.split_vertically(header_height);
        let panels = body.split_evenly((2, 1));
        draw_panel(&panels[0], &axis, &speedup_panel(&results))?;
        draw_panel(&panels[1], &axis, &memory_panel(&results))?;
        root.present().map_err(draw_error)?;
    }
    Ok(text)
}

fn draw_error(err: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(err.to_string())
}

/// The counts tried as the x axis, with room on both sides (one count has a range too).
fn x_axis(results: &[&CountResult], recommended: Option<u32>) -> XAxis {
    let counts: Vec<u32> = results.iter().map(|r| r.threads).collect();
    let low = counts.iter().copied().min().unwrap_or(1);
    let high = counts.iter().copied().max().unwrap_or(1);
    let pad = ((high - low) / 16).max(1);
    XAxis {
        range: low.saturating_sub(pad)..high.saturating_add(pad),
        counts,
        recommended,
    }
}

/// The lines above the panels: what the chart is, the command, when, the baseline, the
/// verdict; each with its style.
fn header_lines<'a>(report: &BenchReport, caption: &PlotCaption) -> Vec<(String, TextStyle<'a>)> {
    let title = ("sans-serif", 20)
        .into_font()
        .style(FontStyle::Bold)
        .color(&BLACK);
    let command_style = ("monospace", 14).into_font().color(&BLACK);
    let plain = ("sans-serif", 14).into_font().color(&BLACK);
    let mut lines = vec![(
        "resctl bench: speedup and peak memory by thread count".to_owned(),
        title,
    )];
    let shown: Vec<char> = format!("$ {}", escape(&command_line(caption.command)))
        .chars()
        .collect();
    let chunks: Vec<&[char]> = shown.chunks(COMMAND_LINE_CHARS).collect();
    for (index, chunk) in chunks.iter().take(COMMAND_LINES).enumerate() {
        let mut line: String = chunk.iter().collect();
        if index + 1 == COMMAND_LINES && chunks.len() > COMMAND_LINES {
            line.push('…');
        }
        lines.push((line, command_style.clone()));
    }
    let baseline = match report.baseline() {
        Some(1) => "speedup relative to the 1-thread run (median wall times)".to_owned(),
        Some(threads) => format!(
            "speedup relative to the {threads}-thread run, the smallest count that succeeded (median wall times)"
        ),
        None => "no count succeeded: no speedup to show".to_owned(),
    };
    lines.push((
        format!(
            "measured {}; {baseline}",
            humantime::format_rfc3339_seconds(caption.measured_at)
        ),
        plain.clone(),
    ));
    lines.push((report.verdict(), plain));
    lines
}

/// The upper panel: each count's speedup; a failed count is a cross on the axis.
fn speedup_panel(results: &[&CountResult]) -> Panel {
    let highest = results.iter().filter_map(|r| r.speedup).fold(1.0, f64::max);
    Panel {
        name: "speedup (median)",
        color: SPEEDUP_COLOR,
        y_desc: "speedup (×)".to_owned(),
        y_max: highest * 1.25,
        tick: Box::new(|value| format!("{}×", short_number(value))),
        points: results
            .iter()
            .map(|r| Point {
                threads: r.threads,
                value: r.speedup.unwrap_or(0.0),
                ok: r.speedup.is_some(),
                label: match r.speedup {
                    Some(speedup) => format!("{speedup:.2}×"),
                    None => outcome(r),
                },
            })
            .collect(),
        line_through_failures: false,
    }
}

/// The lower panel: each count's highest peak memory, in the binary unit that suits the
/// largest (the points are labelled like the table, `512M`, `1.5G`).
fn memory_panel(results: &[&CountResult]) -> Panel {
    let highest = results.iter().map(|r| r.peak_memory).max().unwrap_or(0);
    let (unit, suffix, shift) = match highest {
        bytes if bytes >= 1 << 30 => ("GiB", "G", 30),
        bytes if bytes >= 1 << 20 => ("MiB", "M", 20),
        _ => ("KiB", "K", 10),
    };
    let scale = f64::from(1u32 << shift);
    let in_unit = |bytes: u64| bytes as f64 / scale;
    Panel {
        name: "peak memory (highest of the runs)",
        color: MEMORY_COLOR,
        y_desc: format!("peak memory ({unit})"),
        y_max: (in_unit(highest) * 1.25).max(1.0),
        tick: Box::new(move |value| format!("{}{suffix}", short_number(value))),
        points: results
            .iter()
            .map(|r| Point {
                threads: r.threads,
                value: in_unit(r.peak_memory),
                ok: r.ok,
                label: if r.ok {
                    format_size(r.peak_memory)
                } else {
                    format!("{} ({})", format_size(r.peak_memory), outcome(r))
                },
            })
            .collect(),
        line_through_failures: true,
    }
}

/// `value` with at most two decimals and no trailing zeros: `2`, `1.5`, `0.25`.
fn short_number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// One panel: axes, the line (split where it must not cross a failure), the points with
/// their labels, the failed counts as crosses, the recommended count as a dashed line.
fn draw_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    axis: &XAxis,
    panel: &Panel,
) -> Result<(), PlotError> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(LEGEND_WIDTH)
        .margin_top(8)
        .margin_bottom(4)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(
            axis.range.clone().with_key_points(axis.counts.clone()),
            0.0..panel.y_max,
        )
        .map_err(draw_error)?;
    let y_tick = |value: &f64| (panel.tick)(*value);
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc(panel.y_desc.as_str())
        .y_label_formatter(&y_tick)
        .y_labels(6)
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(draw_error)?;

    let line_style = panel.color.stroke_width(2);
    let mut segments: Vec<Vec<(u32, f64)>> = vec![Vec::new()];
    for point in &panel.points {
        if point.ok || panel.line_through_failures {
            if let Some(segment) = segments.last_mut() {
                segment.push((point.threads, point.value));
            }
        } else {
            segments.push(Vec::new());
        }
    }
    for segment in segments.into_iter().filter(|s| !s.is_empty()) {
        chart
            .draw_series(LineSeries::new(segment, line_style))
            .map_err(draw_error)?;
    }
    let label_style = ("sans-serif", 12).into_font().color(&BLACK);
    chart
        .draw_series(panel.points.iter().filter(|p| p.ok).map(|point| {
            EmptyElement::at((point.threads, point.value))
                + Circle::new((0, 0), 4, panel.color.filled())
                + Text::new(point.label.clone(), (7, -20), label_style.clone())
        }))
        .map_err(draw_error)?;
    let failed_label = ("sans-serif", 12).into_font().color(&FAILED_COLOR);
    chart
        .draw_series(panel.points.iter().filter(|p| !p.ok).map(|point| {
            EmptyElement::at((point.threads, point.value))
                + failed_mark((0, 0))
                + Text::new(point.label.clone(), (9, -24), failed_label.clone())
        }))
        .map_err(draw_error)?;
    let mut legend = vec![(panel.name.to_owned(), Mark::Line(panel.color))];
    if panel.points.iter().any(|p| !p.ok) {
        legend.push((
            "failed (OOM-killed or non-zero exit)".to_owned(),
            Mark::Failed,
        ));
    }
    if let Some(recommended) = axis.recommended {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(recommended, 0.0), (recommended, panel.y_max)],
                8,
                5,
                RECOMMENDED_COLOR.stroke_width(2),
            ))
            .map_err(draw_error)?;
        legend.push((
            format!("recommended: {recommended} threads"),
            Mark::Dashed(RECOMMENDED_COLOR),
        ));
    }
    draw_legend(area, &legend)
}

/// A legend entry's sample.
enum Mark {
    /// A line of this colour.
    Line(RGBColor),
    /// A dashed line of this colour.
    Dashed(RGBColor),
    /// The failed count's cross.
    Failed,
}

/// The cross of a failed count, centred on `at` (pixels from its anchor).
fn failed_mark(at: (i32, i32)) -> Cross<(i32, i32), i32> {
    Cross::new(at, 7, FAILED_COLOR.stroke_width(3))
}

/// The legend in the room right of the panel's plot ([`LEGEND_WIDTH`]), where it covers
/// no point (plotters' own legend stays inside the plot).
fn draw_legend(
    area: &DrawingArea<SVGBackend, Shift>,
    entries: &[(String, Mark)],
) -> Result<(), PlotError> {
    let width = i32::try_from(area.dim_in_pixel().0).unwrap_or(0);
    let left = width - LEGEND_WIDTH + 20;
    let style = ("sans-serif", 13).into_font().color(&BLACK);
    for (index, (label, mark)) in entries.iter().enumerate() {
        let y = 24 + 22 * i32::try_from(index).unwrap_or(0);
        match mark {
            Mark::Line(color) => area.draw(&PathElement::new(
                vec![(left, y), (left + 24, y)],
                color.stroke_width(2),
            )),
            Mark::Dashed(color) => area
                .draw(&PathElement::new(
                    vec![(left, y), (left + 9, y)],
                    color.stroke_width(2),
                ))
                .and_then(|()| {
                    area.draw(&PathElement::new(
                        vec![(left + 15, y), (left + 24, y)],
                        color.stroke_width(2),
                    ))
                }),
            Mark::Failed => area.draw(&failed_mark((left + 12, y))),
        }
        .map_err(draw_error)?;
        area.draw(&Text::new(
            label.as_str(),
            (left + 34, y),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(draw_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::bench::{report, BenchRun};
    use crate::test_support::render::{of_color, painted, render};

    fn run(secs: f64, exit_code: i32, oom_kills: u64, peak_mib: u64) -> BenchRun {
        BenchRun {
            exit_code,
            wall: Duration::from_secs_f64(secs),
            cpu: Duration::from_secs_f64(secs),
            peak_memory: peak_mib << 20,
            oom_kills,
        }
    }

    fn caption(command: &[OsString]) -> PlotCaption<'_> {
        PlotCaption {
            command,
            // 2026-12-02T13:03:07Z
            measured_at: UNIX_EPOCH + Duration::from_secs(1_796_216_587),
        }
    }

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    /// The text of every `<text>` element, unescaped enough for the tests' strings.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|rest| {
                let body = rest.split_once('>')?.1;
                Some(body.split_once("</text>")?.0.trim().to_owned())
            })
            .collect()
    }

    /// 1, 2 and 4 threads succeed (2 recommended), 8 is OOM-killed.
    fn sweep_with_an_oom() -> BenchReport {
        report(
            vec![
                (1, vec![run(8.0, 0, 0, 100)]),
                (2, vec![run(4.0, 0, 0, 180)]),
                (4, vec![run(3.9, 0, 0, 350)]),
                (8, vec![run(1.0, 137, 1, 512)]),
            ],
            0.05,
        )
    }

    #[test]
    fn speedup_memory_the_recommendation_and_a_failed_count_are_all_in_the_chart() {
        let report = sweep_with_an_oom();
        let command = words("make -j{threads}");
        let svg = svg(&report, &caption(&command)).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains(r#"width="1080" height="720""#), "{svg}");
        let texts = texts(&svg);
        let has = |wanted: &str| texts.iter().any(|t| t == wanted);
        for wanted in [
            "$ make -j{threads}",
            "measured 2026-12-02T13:03:07Z; speedup relative to the 1-thread run (median wall times)",
            "recommended: 2 threads: 4.00 s median, within 5 % of the fastest (4 threads, 3.90 s) with fewer threads",
            "1.00×",
            "2.00×",
            "2.05×",
            "100M",
            "350M",
            "512M (1× OOM)",
            "1× OOM",
            "threads",
            "speedup (×)",
            "peak memory (MiB)",
            "recommended: 2 threads",
            "failed (OOM-killed or non-zero exit)",
        ] {
            assert!(has(wanted), "no text {wanted:?} in {texts:#?}");
        }
        // The failed count is a red cross in both panels, the recommendation a green line
        // in both.
        let red = format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            FAILED_COLOR.0, FAILED_COLOR.1, FAILED_COLOR.2
        );
        // Two lines a cross: the failed count in each panel and each panel's legend.
        assert_eq!(svg.matches(&red).count(), 4 * 2, "{svg}");
        let green = format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            RECOMMENDED_COLOR.0, RECOMMENDED_COLOR.1, RECOMMENDED_COLOR.2
        );
        assert!(svg.matches(&green).count() >= 2, "{svg}");
    }

    #[test]
    fn the_speedup_line_breaks_at_a_failed_count_and_the_memory_line_does_not() {
        let report = report(
            vec![
                (1, vec![run(4.0, 0, 0, 10)]),
                (2, vec![run(2.0, 1, 0, 20)]),
                (4, vec![run(1.5, 0, 0, 40)]),
            ],
            0.05,
        );
        let command = words("job");
        let svg = svg(&report, &caption(&command)).unwrap();
        let blue = format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            SPEEDUP_COLOR.0, SPEEDUP_COLOR.1, SPEEDUP_COLOR.2
        );
        let orange = format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            MEMORY_COLOR.0, MEMORY_COLOR.1, MEMORY_COLOR.2
        );
        let polylines = |stroke: &str| {
            svg.lines()
                .filter(|line| line.starts_with("<polyline") && line.contains(stroke))
                .map(|line| line.matches(',').count())
                .collect::<Vec<usize>>()
        };
        // Speedup: 1 and 4 threads each alone (no line across the failure at 2): a
        // polyline of one point each. Memory: one line through all three counts. Each
        // panel's legend adds a polyline of two points.
        assert_eq!(polylines(&blue), [1, 1, 2], "{svg}");
        assert_eq!(polylines(&orange), [3, 2], "{svg}");
        assert!(texts(&svg).iter().any(|t| t == "exit 1"), "{svg}");
    }

    #[test]
    fn a_single_count_is_drawn_with_room_around_it() {
        let report = report(vec![(4, vec![run(2.0, 0, 0, 3 << 10)])], 0.05);
        let command = words("job --threads {threads}");
        let svg = svg(&report, &caption(&command)).unwrap();
        let texts = texts(&svg);
        for wanted in [
            "speedup relative to the 4-thread run",
            "recommended: 4 threads: the fastest (2.00 s median)",
            "3G",
            "peak memory (GiB)",
            "1.00×",
        ] {
            assert!(
                texts.iter().any(|t| t.contains(wanted)),
                "no text {wanted:?} in {texts:#?}"
            );
        }
        let axis = x_axis(&report.results.iter().collect::<Vec<_>>(), Some(4));
        assert_eq!(axis.range, 3..5);
        assert_eq!(axis.counts, [4]);
    }

    #[test]
    fn nothing_succeeded_is_said_and_still_drawn() {
        let report = report(vec![(2, vec![run(1.0, 137, 1, 64)]), (4, vec![])], 0.05);
        let command = words("job");
        let svg = svg(&report, &caption(&command)).unwrap();
        let texts = texts(&svg);
        assert!(
            texts
                .iter()
                .any(|t| t.ends_with("no count succeeded: no speedup to show")),
            "{texts:#?}"
        );
        assert!(
            texts.iter().any(|t| t.starts_with("no recommendation")),
            "{texts:#?}"
        );
        assert!(!svg.contains("recommended:"), "{svg}");
    }

    #[test]
    fn the_command_is_escaped_and_cut_to_two_lines() {
        let report = report(vec![(1, vec![run(1.0, 0, 0, 1)])], 0.05);
        let command = vec![
            OsString::from("sh"),
            OsString::from("-c"),
            OsString::from("echo '<b>&amp;\"'\n\u{1b}]0;title\u{7}\u{202e}"),
        ];
        let svg = svg(&report, &caption(&command)).unwrap();
        assert!(
            svg.contains(
                "$ sh -c echo &apos;&lt;b&gt;&amp;amp;&quot;&apos;\\n\\u{1b}]0;title\\u{7}\\u{202e}"
            ),
            "{svg}"
        );
        for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
            assert!(!svg.contains(raw), "{raw:?} in {svg}");
        }
        assert!(!svg.contains("<b>"), "{svg}");

        // escape() cuts a long command with a note; two lines hold it.
        let long = vec![OsString::from("x".repeat(400))];
        let shown = command_lines(&super::svg(&report, &caption(&long)).unwrap());
        assert_eq!(shown.len(), COMMAND_LINES, "{shown:?}");
        assert!(shown[1].ends_with("x…(+200 bytes)"), "{shown:?}");
        // Escapes make it longer than two lines: cut after the second.
        let controls = vec![OsString::from("\u{1}".repeat(150))];
        let shown = command_lines(&super::svg(&report, &caption(&controls)).unwrap());
        assert_eq!(shown.len(), COMMAND_LINES, "{shown:?}");
        assert_eq!(shown[0].chars().count(), COMMAND_LINE_CHARS, "{shown:?}");
        assert!(shown[1].ends_with('…'), "{shown:?}");
    }

    /// The caption's lines of the command (`$ ` and what follows).
    fn command_lines(svg: &str) -> Vec<String> {
        let texts = texts(svg);
        let Some(first) = texts.iter().position(|t| t.starts_with("$ ")) else {
            return Vec::new();
        };
        let end = texts[first..]
            .iter()
            .position(|t| t.starts_with("measured "))
            .map_or(texts.len(), |at| first + at);
        texts[first..end].to_vec()
    }

    #[test]
    fn the_chart_renders_at_its_size_with_its_lines_marks_and_text() {
        let command = words("make -j{threads}");
        let (pixmap, fonts) = render(&svg(&sweep_with_an_oom(), &caption(&command)).unwrap());
        assert_eq!((pixmap.width(), pixmap.height()), SIZE);
        let all = (SIZE.0 * SIZE.1) as usize;
        let painted_all = painted(&pixmap, 0..SIZE.1);
        assert!(
            painted_all > all / 50 && painted_all < all / 2,
            "{painted_all} of {all} pixels painted"
        );
        for (name, color, least) in [
            ("speedup line", SPEEDUP_COLOR, 300),
            ("memory line", MEMORY_COLOR, 300),
            ("recommended line", RECOMMENDED_COLOR, 300),
            ("failed crosses", FAILED_COLOR, 100),
        ] {
            let pixels = of_color(&pixmap, color);
            assert!(pixels >= least, "{name}: {pixels} pixels");
        }
        // The header is text only: painted means its glyphs were drawn.
        if fonts {
            let header = painted(&pixmap, 0..60);
            assert!(header > 1_000, "{header} pixels of header text");
        } else {
            eprintln!("no fonts on this host: the text's rendering is not checked");
        }
    }

    #[test]
    fn no_red_without_a_failure_and_one_count_renders_too() {
        let command = words("job");
        let report = report(
            vec![(1, vec![run(2.0, 0, 0, 10)]), (2, vec![run(1.2, 0, 0, 20)])],
            0.05,
        );
        let (pixmap, _) = render(&svg(&report, &caption(&command)).unwrap());
        assert_eq!(of_color(&pixmap, FAILED_COLOR), 0);
        assert!(of_color(&pixmap, SPEEDUP_COLOR) >= 300);

        let single = crate::bench::report(vec![(4, vec![run(2.0, 0, 0, 3 << 10)])], 0.05);
        let (pixmap, _) = render(&svg(&single, &caption(&command)).unwrap());
        assert_eq!((pixmap.width(), pixmap.height()), SIZE);
        assert_eq!(of_color(&pixmap, FAILED_COLOR), 0);
        // One point each (no line), the recommendation's line through both panels.
        assert!(of_color(&pixmap, SPEEDUP_COLOR) >= 30);
        assert!(of_color(&pixmap, MEMORY_COLOR) >= 30);
        assert!(of_color(&pixmap, RECOMMENDED_COLOR) >= 300);
    }

    #[test]
    fn an_empty_report_is_refused() {
        let report = report(vec![], 0.05);
        let err = svg(&report, &caption(&[])).unwrap_err();
        assert_eq!(err.to_string(), "no thread count was run");
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(10.0), "10");
        assert_eq!(short_number(2.0), "2");
        assert_eq!(short_number(1.5), "1.5");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(0.30000000000000004), "0.3");
    }
}
