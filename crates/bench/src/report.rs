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
