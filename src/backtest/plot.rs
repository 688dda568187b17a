//! `backtest --plot FILE.svg`: demand and each configuration's supply over time, drawn with
//! plotters' SVG backend (text is left to the browser's fonts: no font library is linked).

use plotters::prelude::*;

use super::metrics::Step;

/// One line of the chart: a name for the legend and its (hours since start, droplets) steps.
pub struct Line<'a> {
    pub name: String,
    pub steps: &'a [Step],
    pub value: fn(&Step) -> u32,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// The points of a step function: a point where the value changes (and its end), so a month
/// of one-minute passes draws as its changes rather than 43 200 segments.
fn step_points(
    line: &Line<'_>,
    start: chrono::DateTime<chrono::Utc>,
    end_h: f64,
) -> Vec<(f64, f64)> {
    let hours = |s: &Step| (s.t - start).num_milliseconds() as f64 / 3_600_000.0;
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut last: Option<u32> = None;
    for s in line.steps {
        let v = (line.value)(s);
        let x = hours(s);
        if let Some(prev) = last {
            if prev != v {
                out.push((x, f64::from(prev)));
                out.push((x, f64::from(v)));
            }
        } else {
            out.push((x, f64::from(v)));
        }
        last = Some(v);
    }
    if let Some(v) = last {
        out.push((end_h, f64::from(v)));
    }
    out
}

/// The SVG text of the chart. `title` is the chart's caption; `interval_h` the length of the
/// last pass, in hours.
pub fn render(title: &str, lines: &[Line<'_>], interval_h: f64) -> Result<String, String> {
    let Some(first) = lines.iter().find_map(|l| l.steps.first()) else {
        return Err("nothing to plot: the run has no passes".into());
    };
    let start = first.t;
    let end_h = lines
        .iter()
        .filter_map(|l| l.steps.last())
        .map(|s| (s.t - start).num_milliseconds() as f64 / 3_600_000.0 + interval_h)
        .fold(interval_h, f64::max);
    let ymax = lines
        .iter()
        .flat_map(|l| l.steps.iter().map(|s| (l.value)(s)))
        .max()
        .unwrap_or(1)
        .max(1);
    let ymax = f64::from(ymax) * 1.1 + 1.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..end_h, 0f64..ymax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("time since the start of the trace (hours)")
            .y_desc("droplets")
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, line) in lines.iter().enumerate() {
            let colour = if i == 0 {
                BLACK
            } else {
                COLOURS[(i - 1) % COLOURS.len()]
            };
            let style = ShapeStyle {
                color: colour.to_rgba(),
                filled: false,
                stroke_width: if i == 0 { 2 } else { 1 },
            };
            chart
                .draw_series(LineSeries::new(step_points(line, start, end_h), style))
                .map_err(|e| e.to_string())?
                .label(line.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<Step> {
        [(2, 2), (4, 2), (1, 5)]
            .iter()
            .enumerate()
            .map(|(i, &(d, a))| Step {
                t: chrono::DateTime::from_timestamp(1_767_600_000 + 60 * i as i64, 0).unwrap(),
                load: f64::from(d),
                demand: d,
                active: a,
                provisioned: a,
                desired: a,
                created: 0,
                destroyed: 0,
                error: None,
            })
            .collect()
    }

    #[test]
    fn svg_has_title_axes_with_units_and_a_legend() {
        let s = steps();
        let lines = [
            Line {
                name: "demand".into(),
                steps: &s,
                value: |s| s.demand,
            },
            Line {
                name: "supply: a.toml".into(),
                steps: &s,
                value: |s| s.active,
            },
        ];
        let svg = render("doscale backtest: t.csv", &lines, 1.0 / 60.0).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "doscale backtest: t.csv",
            "time since the start of the trace (hours)",
            "droplets",
            "demand",
            "supply: a.toml",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(svg.contains("<polyline"), "the lines are drawn");
        // The step function: demand 2 → 4 at 1 min, 4 → 1 at 2 min, to the end at 3 min.
        let pts = step_points(&lines[0], s[0].t, 0.05);
        assert_eq!(pts.len(), 6);
        assert_eq!(pts[1], (1.0 / 60.0, 2.0));
        assert_eq!(pts[2], (1.0 / 60.0, 4.0));
        assert_eq!(pts[5], (0.05, 1.0));
    }
}
