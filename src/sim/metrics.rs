//! The exposition a simulated droplet serves, shaped like `tests/fixtures/do-agent/droplet-2vcpu.prom`
//! (do-agent 3.18.14): the same families in the same order, the same HELP/TYPE lines and
//! labels, numbers formatted as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does. About half of
//! the droplets also expose a few `sonar_process_*` series, as real ones do.

use std::fmt::Write;

/// Node modes in the order do-agent prints them.
pub(crate) const CPU_MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];

/// Share of busy time spent in each mode (idle excluded: its weight is unused). Sums to 1, so
/// per CPU the modes other than idle advance at `u` seconds per second and idle at `1 - u`.
pub(crate) const BUSY_WEIGHTS: [f64; 8] = [0.0, 0.02, 0.0, 0.01, 0.015, 0.015, 0.19, 0.75];

/// One process of the `sonar_process_*` families.
#[derive(Debug, Clone)]
pub(crate) struct Process {
    pub pid: &'static str,
    pub name: &'static str,
    pub cpu_seconds: f64,
    pub rss_bytes: f64,
}

/// Every number of one droplet's exposition at one instant.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub metric_writes: f64,
    /// Per CPU, seconds per mode in [`CPU_MODES`] order.
    pub cpu: Vec<[f64; 8]>,
    pub disk_discard_time: f64,
    pub disk_discarded_sectors: f64,
    pub disk_discards_completed: f64,
    pub disk_read_bytes: f64,
    pub disk_read_time: f64,
    pub disk_reads_completed: f64,
    pub disk_write_time: f64,
    pub disk_writes_completed: f64,
    pub disk_written_bytes: f64,
    pub fs_free: f64,
    pub fs_size: f64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub mem_cached: f64,
    pub mem_available: f64,
    pub mem_free: f64,
    pub mem_total: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub processes: Vec<Process>,
}

/// A float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it (what client_golang's
/// text format uses): the shortest representation, in exponent form when the decimal exponent
/// is below -4 or at least 6 (`118296`, `1.16920832e+09`, `1e-05`).
pub fn go_float(v: f64) -> String {
    let mut s = String::with_capacity(24);
    push_go_float(&mut s, v);
    s
}

/// [`go_float`] appended to `out`, formatting the shortest digits once (pages are rendered
/// millions of times in a backtest).
pub(crate) fn push_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        // Below 2^53 every integer is a float and its neighbours are at most 1 away, so an
        // integer's shortest round-trip digits are its decimal digits (no formatting of a
        // float needed: most counters and byte gauges of a page are whole).
        push_go_integer(out, v as i64);
        return;
    }
    // Rust's `{:e}` is the shortest round-trip representation: "-1.16920832e9".
    let start = out.len();
    let _ = write!(out, "{v:e}");
    let e = start + out[start..].find('e').expect("{:e} has an exponent");
    let exp: i32 = out[e + 1..].parse().expect("{:e} exponent is an integer");
    if !(-4..6).contains(&exp) {
        out.truncate(e + 1);
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.abs());
        return;
    }
    // The plain form of the same digits (what Display writes).
    let mut digits = [0u8; 40];
    let mut n = 0;
    let neg = out.as_bytes()[start] == b'-';
    for &b in &out.as_bytes()[start..e] {
        if b.is_ascii_digit() {
            digits[n] = b;
            n += 1;
        }
    }
    out.truncate(start);
    if neg {
        out.push('-');
    }
    let digits = std::str::from_utf8(&digits[..n]).expect("ASCII digits");
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int = exp as usize + 1;
        if digits.len() <= int {
            out.push_str(digits);
            for _ in digits.len()..int {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int]);
            out.push('.');
            out.push_str(&digits[int..]);
        }
    }
}

/// [`push_go_float`] of a whole number below 2^53 in magnitude.
fn push_go_integer(out: &mut String, i: i64) {
    let mut buf = itoa::Buffer::new();
    let text = buf.format(i);
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let exp = digits.len() - 1;
    if exp < 6 {
        out.push_str(text);
        return;
    }
    let significant = digits.trim_end_matches('0');
    out.push_str(sign);
    out.push_str(&significant[..1]);
    if significant.len() > 1 {
        out.push('.');
        out.push_str(&significant[1..]);
    }
    let _ = write!(out, "e+{exp:02}");
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    // Pieces, not `writeln!`: the formatting machinery costs more than the copying here.
    for piece in [
        "# HELP ",
        name,
        " ",
        help,
        "\n# TYPE ",
        name,
        " ",
        kind,
        "\n",
    ] {
        out.push_str(piece);
    }
}

fn sample(out: &mut String, name: &str, labels: &str, v: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
    push_go_float(out, v);
    out.push('\n');
}

fn process_labels(p: &Process) -> String {
    let mut labels = String::with_capacity(40);
    for piece in ["pid=\"", p.pid, "\",process=\"", p.name, "\""] {
        labels.push_str(piece);
    }
    labels
}

fn disk(out: &mut String, name: &str, help: &str, vda: f64) {
    family(out, name, help, "counter");
    sample(out, name, "device=\"vda\"", vda);
    sample(out, name, "device=\"zram0\"", 0.0);
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    family(out, name, help, "gauge");
    sample(out, name, "", v);
}

/// The exposition text of one snapshot.
pub(crate) fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(6 * 1024 + s.processes.len() * 160);
    family(
        &mut out,
        "metric_writes",
        "Total successes and failures of metric writers",
        "counter",
    );
    sample(
        &mut out,
        "metric_writes",
        "reason=\"\",result=\"success\",writer=\"file\"",
        s.metric_writes,
    );

    family(
        &mut out,
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
        "counter",
    );
    let mut labels = String::with_capacity(32);
    let mut digits = itoa::Buffer::new();
    for (cpu, modes) in s.cpu.iter().enumerate() {
        for (mode, v) in CPU_MODES.iter().zip(modes) {
            labels.clear();
            for piece in ["cpu=\"", digits.format(cpu), "\",mode=\"", mode, "\""] {
                labels.push_str(piece);
            }
            sample(&mut out, "node_cpu_seconds_total", &labels, *v);
        }
    }
    disk(
        &mut out,
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        s.disk_discard_time,
    );
    disk(
        &mut out,
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        s.disk_discarded_sectors,
    );
    disk(
        &mut out,
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        s.disk_discards_completed,
    );
    disk(
        &mut out,
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        s.disk_read_bytes,
    );
    disk(
        &mut out,
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        s.disk_read_time,
    );
    disk(
        &mut out,
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        s.disk_reads_completed,
    );
    disk(
        &mut out,
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        s.disk_write_time,
    );
    disk(
        &mut out,
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        s.disk_writes_completed,
    );
    disk(
        &mut out,
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        s.disk_written_bytes,
    );
    let fs = "device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"";
    family(
        &mut out,
        "node_filesystem_free_bytes",
        "Filesystem free space in bytes.",
        "gauge",
    );
    sample(&mut out, "node_filesystem_free_bytes", fs, s.fs_free);
    family(
        &mut out,
        "node_filesystem_size_bytes",
        "Filesystem size in bytes.",
        "gauge",
    );
    sample(&mut out, "node_filesystem_size_bytes", fs, s.fs_size);
    gauge(&mut out, "node_load1", "1m load average.", s.load1);
    gauge(&mut out, "node_load15", "15m load average.", s.load15);
    gauge(&mut out, "node_load5", "5m load average.", s.load5);
    let mem = [
        ("Cached_bytes", s.mem_cached),
        ("MemAvailable_bytes", s.mem_available),
        ("MemFree_bytes", s.mem_free),
        ("MemTotal_bytes", s.mem_total),
        ("SwapCached_bytes", 0.0),
        ("SwapFree_bytes", 0.0),
        ("SwapTotal_bytes", 0.0),
    ];
    let (mut name, mut help) = (String::new(), String::new());
    for (field, v) in mem {
        name.clear();
        name.push_str("node_memory_");
        name.push_str(field);
        help.clear();
        help.push_str("Memory information field ");
        help.push_str(field);
        help.push('.');
        gauge(&mut out, &name, &help, v);
    }
    family(
        &mut out,
        "node_network_receive_bytes_total",
        "Network device statistic receive_bytes.",
        "counter",
    );
    sample(
        &mut out,
        "node_network_receive_bytes_total",
        "device=\"eth0\"",
        s.net_rx,
    );
    family(
        &mut out,
        "node_network_transmit_bytes_total",
        "Network device statistic transmit_bytes.",
        "counter",
    );
    sample(
        &mut out,
        "node_network_transmit_bytes_total",
        "device=\"eth0\"",
        s.net_tx,
    );
    family(
        &mut out,
        "sonar_build_info",
        "A metric with a constant '1' value labeled by version from which the agent was built.",
        "gauge",
    );
    sample(
        &mut out,
        "sonar_build_info",
        "revision=\"bc91446\",version=\"3.18.14\"",
        1.0,
    );
    if !s.processes.is_empty() {
        family(
            &mut out,
            "sonar_process_cpu_time_seconds",
            "CPU time in seconds.",
            "gauge",
        );
        for p in &s.processes {
            let labels = process_labels(p);
            sample(
                &mut out,
                "sonar_process_cpu_time_seconds",
                &labels,
                p.cpu_seconds,
            );
        }
        family(
            &mut out,
            "sonar_process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
        );
        for p in &s.processes {
            let labels = process_labels(p);
            sample(
                &mut out,
                "sonar_process_resident_memory_bytes",
                &labels,
                p.rss_bytes,
            );
        }
    }
    out
}

/// What a droplet under the `droplets_garbage` fault serves: an HTML error page followed by
/// bytes that are not UTF-8. No exposition parser should take it for metrics.
pub(crate) fn garbage_body() -> Vec<u8> {
    let mut b = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n\
<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
        .to_vec();
    b.extend_from_slice(&[0x00, 0xff, 0xfe, 0x80, 0x1b, 0x5b, 0x00, 0xc3, 0x28, 0x0a]);
    b
}

/// Size of the `droplets_huge` body.
pub(crate) const HUGE_BYTES: usize = 64 * 1024 * 1024;

const HUGE_HEAD: &str =
    "# HELP doscale_sim_filler_total A series the simulator repeats to make a huge page.\n\
# TYPE doscale_sim_filler_total counter\n";

/// One fixed-width line of the huge body.
fn huge_line(i: usize, out: &mut Vec<u8>) {
    let _ = writeln!(WriteVec(out), "doscale_sim_filler_total{{n=\"{i:010}\"}} 1");
}

/// Length of one huge line (fixed width).
fn huge_line_len() -> usize {
    let mut v = Vec::new();
    huge_line(0, &mut v);
    v.len()
}

/// The number of lines and the exact total length of the huge body.
pub(crate) fn huge_layout() -> (usize, usize) {
    let line = huge_line_len();
    let lines = (HUGE_BYTES - HUGE_HEAD.len()).div_ceil(line);
    (lines, HUGE_HEAD.len() + lines * line)
}

/// The huge body, chunk by chunk: `first` line index, up to `count` lines (the head first).
pub(crate) fn huge_chunk(first: usize, count: usize, total_lines: usize, out: &mut Vec<u8>) {
    out.clear();
    if first == 0 {
        out.extend_from_slice(HUGE_HEAD.as_bytes());
    }
    for i in first..(first + count).min(total_lines) {
        huge_line(i, out);
    }
}

/// Series of the `droplets_many_series` page.
pub(crate) const MANY_SERIES: usize = 150_000;

/// The `droplets_many_series` page: [`MANY_SERIES`] distinct `node_load1` series (a family
/// every scrape keeps, so each one would be stored), about 3.8 MB.
pub(crate) fn many_series_body() -> Vec<u8> {
    let mut out = Vec::with_capacity(MANY_SERIES * 26 + 64);
    out.extend_from_slice(b"# TYPE node_load1 gauge\n");
    for i in 0..MANY_SERIES {
        let _ = writeln!(WriteVec(&mut out), "node_load1{{n=\"{i:06}\"}} 0.5");
    }
    out
}

struct WriteVec<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for WriteVec<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(142.68), "142.68");
        assert_eq!(go_float(118296.0), "118296");
        assert_eq!(go_float(1_169_208_320.0), "1.16920832e+09");
        assert_eq!(go_float(2.57615413248e11), "2.57615413248e+11");
        assert_eq!(go_float(0.348_000_000_000_000_03), "0.34800000000000003");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
    }

    /// The one-pass formatting agrees with formatting twice (`{:e}` for the exponent, then
    /// Display for the plain form), over values of every magnitude.
    #[test]
    fn go_floats_agree_with_the_two_pass_form() {
        fn two_pass(v: f64) -> String {
            let e = format!("{v:e}");
            let (mantissa, exp) = e.split_once('e').unwrap();
            let exp: i32 = exp.parse().unwrap();
            if (-4..6).contains(&exp) {
                format!("{v}")
            } else {
                let sign = if exp < 0 { '-' } else { '+' };
                format!("{mantissa}e{sign}{:02}", exp.abs())
            }
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mag = (i % 24) as i32 - 8;
            let v = (x >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi(mag);
            let v = if i % 3 == 0 { -v } else { v };
            let v = if i % 5 == 0 {
                (v * 100.0).floor() / 100.0
            } else {
                v
            };
            if v != 0.0 {
                assert_eq!(go_float(v), two_pass(v), "{v:?}");
            }
        }
        // Whole numbers (the integer path) of every length, up to and past 2^53.
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x >> (i % 60)) as f64;
            let v = if i % 3 == 0 { -v } else { v };
            if v != 0.0 {
                assert_eq!(go_float(v), two_pass(v), "{v:?}");
            }
        }
        for v in [
            1e-4,
            9.9999e-5,
            1e5,
            999_999.0,
            1e6,
            123_456.5,
            1.0,
            10.0,
            100.0,
            0.1,
            1e15,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            -1e6,
            -999_999.0,
            1.0e7,
            1_169_208_320.0,
        ] {
            assert_eq!(go_float(v), two_pass(v), "{v:?}");
        }
    }

    #[test]
    fn same_families_and_help_as_the_fixture() {
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/do-agent/droplet-2vcpu.prom"
        ))
        .expect("the do-agent fixture in tests/fixtures");
        let s = Snapshot {
            cpu: vec![[0.0; 8]; 2],
            ..Default::default()
        };
        let ours = render(&s);
        let meta = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.starts_with('#'))
                .map(String::from)
                .collect()
        };
        assert_eq!(meta(&ours), meta(&fixture));
        let series = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
                .collect()
        };
        assert_eq!(series(&ours), series(&fixture));
    }

    #[test]
    fn huge_body_is_exactly_its_length() {
        let (lines, total) = huge_layout();
        assert!((HUGE_BYTES..HUGE_BYTES + 100).contains(&total));
        let mut n = 0;
        let mut buf = Vec::new();
        let mut i = 0;
        while i < lines {
            huge_chunk(i, 4096, lines, &mut buf);
            n += buf.len();
            i += 4096;
        }
        assert_eq!(n, total);
    }
}
