//! What doscale knows of do-agent's metric families without seeing a droplet: which ones come
//! with one series per instance (per cpu, per disk, per interface, per file system, per
//! process). A selector of such a family that does not pin the instance labels matches several
//! series on every droplet, so outside an aggregation it is refused when the configuration is
//! loaded rather than turning into "no data" at every evaluation.
//!
//! Derived from the label sets of `tests/fixtures/do-agent/*.prom` (a test keeps it in sync).
//! Families not listed are allowed; if they do match several series, the evaluation says so.

/// Every metric family a do-agent page carries (do-agent 3.18.14, `--web.listen`), sorted.
/// `check` warns about a metric name outside this list (and the group's `extra_metrics`):
/// a misspelt name would otherwise match nothing at every pass and its policy never fire.
pub const DO_AGENT: &[&str] = &[
    "metric_writes",
    "node_cpu_seconds_total",
    "node_disk_discard_time_seconds_total",
    "node_disk_discarded_sectors_total",
    "node_disk_discards_completed_total",
    "node_disk_read_bytes_total",
    "node_disk_read_time_seconds_total",
    "node_disk_reads_completed_total",
    "node_disk_write_time_seconds_total",
    "node_disk_writes_completed_total",
    "node_disk_written_bytes_total",
    "node_filesystem_free_bytes",
    "node_filesystem_size_bytes",
    "node_load1",
    "node_load15",
    "node_load5",
    "node_memory_Cached_bytes",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemFree_bytes",
    "node_memory_MemTotal_bytes",
    "node_memory_SwapCached_bytes",
    "node_memory_SwapFree_bytes",
    "node_memory_SwapTotal_bytes",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "sonar_build_info",
    "sonar_process_cpu_time_seconds",
    "sonar_process_resident_memory_bytes",
];

/// Whether do-agent serves the family `name`.
pub fn is_do_agent(name: &str) -> bool {
    DO_AGENT.binary_search(&name).is_ok()
}

/// The do-agent family closest to `name` (for "did you mean"): by Jaro-Winkler similarity,
/// which weighs a shared prefix (`node_`) and forgives a dropped or swapped letter.
pub fn closest(name: &str) -> &'static str {
    DO_AGENT
        .iter()
        .copied()
        .max_by(|a, b| strsim::jaro_winkler(name, a).total_cmp(&strsim::jaro_winkler(name, b)))
        .expect("the list is not empty")
}

/// A family (or a family prefix) exposed with per-instance labels.
#[derive(Debug)]
pub(super) struct Family {
    /// Metric name, or a prefix when it ends with `_`.
    pub name: &'static str,
    /// The labels that tell its series apart on one droplet.
    pub labels: &'static [&'static str],
    /// A label that identifies a series on its own (so pinning it alone is enough).
    pub alone: &'static [&'static str],
}

pub(super) const PER_INSTANCE: &[Family] = &[
    Family {
        name: "node_cpu_seconds_total",
        labels: &["cpu", "mode"],
        alone: &[],
    },
    Family {
        name: "node_disk_",
        labels: &["device"],
        alone: &[],
    },
    Family {
        name: "node_network_",
        labels: &["device"],
        alone: &[],
    },
    // One series per mounted file system; a mount point names one on its own.
    Family {
        name: "node_filesystem_",
        labels: &["device", "fstype", "mountpoint"],
        alone: &["mountpoint"],
    },
    // One series per process; a pid names one on its own.
    Family {
        name: "sonar_process_",
        labels: &["pid", "process"],
        alone: &["pid"],
    },
    Family {
        name: "sonar_build_info",
        labels: &["revision", "version"],
        alone: &[],
    },
    Family {
        name: "metric_writes",
        labels: &["reason", "result", "writer"],
        alone: &[],
    },
];

/// The per-instance description of `name`, if do-agent exposes it with one.
pub(super) fn per_instance(name: &str) -> Option<&'static Family> {
    PER_INSTANCE.iter().find(|f| {
        if f.name.ends_with('_') {
            name.starts_with(f.name)
        } else {
            name == f.name
        }
    })
}

impl Family {
    /// Whether labels pinned with `=` single out one series of this family.
    pub fn pinned_by(&self, pinned: &[&str]) -> bool {
        self.alone.iter().any(|l| pinned.contains(l))
            || self.labels.iter().all(|l| pinned.contains(l))
    }

    /// The labels still to pin, for the message.
    pub fn missing<'a>(&'a self, pinned: &[&str]) -> Vec<&'a str> {
        self.labels
            .iter()
            .copied()
            .filter(|l| !pinned.contains(l))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Every family that has several series on one droplet in the do-agent fixtures is
    /// listed, with every label that varies among its series.
    #[test]
    fn table_covers_the_do_agent_fixtures() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/do-agent");
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let mut checked = 0;
        for e in entries {
            let path = e.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("prom") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // family → label name → distinct values
            let mut fams: BTreeMap<String, (usize, BTreeMap<String, BTreeSet<String>>)> =
                BTreeMap::new();
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            {
                let series = line.rsplit_once(' ').unwrap().0;
                let (name, labels) = crate::series::parse(series).unwrap();
                let entry = fams.entry(name.to_string()).or_default();
                entry.0 += 1;
                for (k, v) in labels {
                    entry.1.entry(k).or_default().insert(v);
                }
            }
            for (name, (count, labels)) in fams {
                if count < 2 {
                    continue;
                }
                let fam = per_instance(&name).unwrap_or_else(|| {
                    panic!(
                        "{}: {name} has {count} series: add it to PER_INSTANCE",
                        path.display()
                    )
                });
                for (label, values) in labels {
                    if values.len() > 1 {
                        assert!(
                            fam.labels.contains(&label.as_str()),
                            "{name}: label {label} varies: add it"
                        );
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 0);
    }

    /// The families of every do-agent fixture page, the page named for each.
    fn fixture_families() -> BTreeMap<String, String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/do-agent");
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = e.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("prom") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            {
                let series = line.rsplit_once(' ').unwrap().0;
                let (name, _) = crate::series::parse(series).unwrap();
                out.entry(name.to_string())
                    .or_insert_with(|| path.display().to_string());
            }
        }
        out
    }

    /// DO_AGENT is exactly the set of families the real pages carry, sorted (for the binary
    /// search).
    #[test]
    fn do_agent_list_is_the_fixture_families() {
        let fams = fixture_families();
        assert!(fams.len() > 20, "{fams:?}");
        for (name, page) in &fams {
            assert!(is_do_agent(name), "{page}: {name} is missing from DO_AGENT");
        }
        for name in DO_AGENT {
            assert!(fams.contains_key(*name), "{name} is on no do-agent page");
        }
        assert!(
            DO_AGENT.windows(2).all(|w| w[0] < w[1]),
            "DO_AGENT is not sorted"
        );
    }

    #[test]
    fn closest_names_the_likely_meant_family() {
        assert_eq!(closest("node_lod1"), "node_load1");
        assert_eq!(closest("node_load_1"), "node_load1");
        assert_eq!(
            closest("node_memory_MemAvailable"),
            "node_memory_MemAvailable_bytes"
        );
        assert_eq!(closest("node_cpu_seconds"), "node_cpu_seconds_total");
        assert!(!is_do_agent("node_lod1"));
        assert!(is_do_agent("node_load15"));
    }

    #[test]
    fn pinning() {
        let cpu = per_instance("node_cpu_seconds_total").unwrap();
        assert!(!cpu.pinned_by(&["mode"]));
        assert!(cpu.pinned_by(&["mode", "cpu"]));
        assert_eq!(cpu.missing(&["mode"]), vec!["cpu"]);
        let fs = per_instance("node_filesystem_free_bytes").unwrap();
        assert!(fs.pinned_by(&["mountpoint"]));
        assert!(per_instance("node_load1").is_none());
        assert!(per_instance("node_disk_read_bytes_total").is_some());
    }
}
