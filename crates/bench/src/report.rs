//! The benchmark's table: each figure with its goal beside it, printed and written as JSON.

use serde::Serialize;

/// A goal for a figure.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum Goal {
    /// The figure should not exceed this.
    AtMost(f64),
    /// The figure should reach at least this.
    AtLeast(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtMost(limit) => value <= limit,
            Goal::AtLeast(floor) => value >= floor,
        }
    }

    fn text(self, unit: &str) -> String {
        match self {
            Goal::AtMost(v) => format!("≤ {} {unit}", fmt(v)),
            Goal::AtLeast(v) => format!("≥ {} {unit}", fmt(v)),
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figure {
    /// Stable key for comparing runs.
    pub key: String,
    /// What was measured.
    pub label: String,
    /// The measurement.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The goal, if the project set one.
    pub goal: Option<Goal>,
    /// Whether the goal was met (when there is one).
    pub met: Option<bool>,
    /// How it was measured, or what limits it.
    pub note: String,
    /// Over several runs (`--runs`): the value of each run; `value` is then their median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

/// How one figure varied over several runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    /// Every run's value, in run order.
    pub values: Vec<f64>,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Whether the goal was met in every run (when there is one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met_in_every_run: Option<bool>,
}

/// Several runs of the same scenarios: each figure's median and spread, and every run whole.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Runs {
    /// CPU count and OS.
    pub machine: String,
    /// When the first run started.
    pub started_at: String,
    /// Each figure once, its value the median over the runs, with its spread.
    pub figures: Vec<Figure>,
    /// Every run as it was measured.
    pub runs: Vec<Report>,
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl Runs {
    /// Summarises `runs`: for each figure key of the first run, in its order, the median of the
    /// values every run measured, their range, and whether each run met the goal.
    pub fn summarise(runs: Vec<Report>) -> Self {
        let first = runs.first();
        let machine = first.map(|r| r.machine.clone()).unwrap_or_default();
        let started_at = first.map(|r| r.started_at.clone()).unwrap_or_default();
        let figures = first
            .map(|r| r.figures.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|template| {
                let measured: Vec<&Figure> = runs
                    .iter()
                    .filter_map(|run| run.figures.iter().find(|f| f.key == template.key))
                    .collect();
                let values: Vec<f64> = measured.iter().map(|f| f.value).collect();
                let value = median(&values);
                let spread = Spread {
                    min: values.iter().copied().fold(f64::INFINITY, f64::min),
                    max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    met_in_every_run: template
                        .goal
                        .map(|_| measured.iter().all(|f| f.met == Some(true))),
                    values,
                };
                Figure {
                    value,
                    met: template.goal.map(|g| g.met(value)),
                    spread: Some(spread),
                    ..(*template).clone()
                }
            })
            .collect();
        Self {
            machine,
            started_at,
            figures,
            runs,
        }
    }

    /// The summary table, as Markdown: median, range, and the goal judged on the median and on
    /// every run.
    pub fn table(&self) -> String {
        let mut out = format!(
            "stockmesh bench — {} — {} — {} runs\n\n| figure | median | min – max | goal | met (median) | met in every run | note |\n|---|---|---|---|---|---|---|\n",
            self.machine,
            self.started_at,
            self.runs.len()
        );
        for f in &self.figures {
            let goal = f
                .goal
                .map(|g| g.text(&f.unit))
                .unwrap_or_else(|| "report".into());
            let yes_no = |met: Option<bool>| match met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            };
            let (range, every) = match &f.spread {
                Some(s) => (
                    format!("{} – {}", fmt(s.min), fmt(s.max)),
                    yes_no(s.met_in_every_run),
                ),
                None => (String::new(), ""),
            };
            out.push_str(&format!(
                "| {} | {} {} | {} | {} | {} | {} | {} |\n",
                f.label,
                fmt(f.value),
                f.unit,
                range,
                goal,
                yes_no(f.met),
                every,
                f.note
            ));
        }
        out
    }
}

/// Every figure of a run, with the machine it ran on.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// CPU count and OS.
    pub machine: String,
    /// When the run started.
    pub started_at: String,
    /// The figures, in the order measured.
    pub figures: Vec<Figure>,
}

fn fmt(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

impl Report {
    /// An empty report for this machine.
    pub fn new() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        Self {
            machine: format!(
                "{cpus} CPUs, {} {}",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            started_at: chrono::Utc::now().to_rfc3339(),
            figures: Vec::new(),
        }
    }

    /// Adds a figure and prints it at once (a long run shows progress).
    pub fn add(
        &mut self,
        key: &str,
        label: impl Into<String>,
        value: f64,
        unit: &str,
        goal: Option<Goal>,
        note: impl Into<String>,
    ) {
        let figure = Figure {
            key: key.to_owned(),
            label: label.into(),
            value,
            unit: unit.to_owned(),
            goal,
            met: goal.map(|g| g.met(value)),
            note: note.into(),
            spread: None,
        };
        eprintln!("  measured {}: {} {}", figure.label, fmt(value), unit);
        self.figures.push(figure);
    }

    /// The table, as Markdown.
    pub fn table(&self) -> String {
        let mut out = format!(
            "stockmesh bench — {} — {}\n\n| figure | value | goal | met | note |\n|---|---|---|---|---|\n",
            self.machine, self.started_at
        );
        for f in &self.figures {
            let goal = f
                .goal
                .map(|g| g.text(&f.unit))
                .unwrap_or_else(|| "report".into());
            let met = match f.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            };
            out.push_str(&format!(
                "| {} | {} {} | {} | {} | {} |\n",
                f.label,
                fmt(f.value),
                f.unit,
                goal,
                met,
                f.note
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(latency: f64, rate: f64) -> Report {
        let mut report = Report::new();
        report.add("p99", "p99", latency, "ms", Some(Goal::AtMost(10.0)), "");
        report.add("rate", "rate", rate, "/s", None, "");
        report
    }

    #[test]
    fn a_summary_takes_the_median_and_keeps_every_run() {
        let runs = Runs::summarise(vec![run(9.0, 100.0), run(12.0, 300.0), run(8.0, 200.0)]);
        assert_eq!(runs.runs.len(), 3);
        let p99 = &runs.figures[0];
        assert_eq!(p99.value, 9.0);
        assert_eq!(p99.met, Some(true), "the median meets the goal");
        let spread = p99.spread.as_ref().expect("spread");
        assert_eq!(spread.values, [9.0, 12.0, 8.0]);
        assert_eq!((spread.min, spread.max), (8.0, 12.0));
        assert_eq!(spread.met_in_every_run, Some(false), "one run missed it");
        let rate = &runs.figures[1];
        assert_eq!(rate.value, 200.0);
        assert_eq!(rate.spread.as_ref().and_then(|s| s.met_in_every_run), None);
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn the_summary_table_shows_the_range_and_both_verdicts() {
        let table = Runs::summarise(vec![run(9.0, 1.0), run(12.0, 1.0)]).table();
        assert!(table.contains("2 runs"), "{table}");
        assert!(
            table.contains("| p99 | 10.5 ms | 9.00 – 12.0 | ≤ 10.0 ms | NO | NO |"),
            "{table}"
        );
    }
}
