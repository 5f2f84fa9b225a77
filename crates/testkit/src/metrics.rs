//! Reading values out of a Prometheus text exposition (`GET /metrics`).

/// The value of the sample `name` whose labels include every pair of `labels`; `None` when no
/// sample matches. Several matches are summed (e.g. a counter split by a label not asked for).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(split) => split,
            None => continue,
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
        if matches && let Ok(v) = value.parse::<f64>() {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let text = "# HELP x y\nreq_total{node=\"a\",status=\"200\"} 3\nreq_total{node=\"a\",status=\"500\"} 1\nup 1\n";
        assert_eq!(sample(text, "req_total", &[("status", "200")]), Some(3.0));
        assert_eq!(sample(text, "req_total", &[("node", "a")]), Some(4.0));
        assert_eq!(sample(text, "up", &[]), Some(1.0));
        assert_eq!(sample(text, "req_total", &[("node", "b")]), None);
    }
}
