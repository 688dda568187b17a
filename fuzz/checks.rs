//! The checks of the fuzz targets, one per target: what each asserts of an input beyond "never
//! panics". Shared by the fuzz targets (`fuzz/fuzz_targets/<target>.rs`) and by
//! `tests/it/props.rs`, which replays every file of `fuzz/regressions/` with them in CI.
#![allow(dead_code)] // each fuzz target uses one of them

pub fn exposition(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = doscale::exposition::parse(text, &doscale::exposition::KeepAll) {
        for key in p.series.keys() {
            assert!(
                doscale::series::parse(key).is_some(),
                "unparsable key {key:?}"
            );
        }
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count() as u64;
        assert_eq!(
            p.series.len() as u64 + p.bad_lines,
            lines,
            "kept + reported"
        );
        assert!(p.series.len() as u64 <= p.samples);
    }
}

pub fn expr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match doscale::expr::parse(text) {
        Ok(e) => {
            let mut series = doscale::series::SeriesMap::new();
            series.insert("node_load1".into(), 1.5);
            series.insert(
                r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#.into(),
                10.0,
            );
            let cur = doscale::expr::Sample {
                at_ms: 10_000,
                series: &series,
            };
            let prev = doscale::expr::Sample {
                at_ms: 5_000,
                series: &series,
            };
            let _ = e.eval(cur, Some(prev));
            let _ = e.eval(cur, None);
        }
        Err(err) => assert!(err.offset() <= text.len(), "{err}"),
    }
}

pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = doscale::config::parse(
        std::path::Path::new("/fuzz/doscale.toml"),
        text,
        &Default::default(),
    ) {
        assert!(e.line <= text.lines().count() + 1, "{e}");
    }
}

pub fn state(data: &[u8]) {
    if let Ok(state) = doscale::state::parse(data) {
        let bytes = serde_json::to_vec(&state).unwrap();
        let again = doscale::state::parse(&bytes).unwrap();
        // Equal, or (a kept NaN value is not equal to itself) equal as text.
        assert!(
            again == state || format!("{again:?}") == format!("{state:?}"),
            "{again:?}\n!=\n{state:?}"
        );
    }
}

/// API responses, as a hostile or broken API could send them: the input is cut at NUL bytes
/// into up to eight pieces, each used as a header value (`retry-after`, `ratelimit-reset`)
/// and as a response body (list, one droplet, create, action, error). Beyond "never panics":
/// every wait is at most `MAX_WAIT`; an error message carries no control character; a
/// listing whose pages are these bodies, in turn, ends (by its last page or an error) within
/// one page more than there are distinct bodies, hands on each droplet id once, and never
/// names a page outside the API's droplet listing.
pub fn api(data: &[u8]) {
    use doscale::do_api::model::*;
    use doscale::do_api::{pages::Pager, rate_limit_wait_at, ApiError, MAX_WAIT};
    use doscale::model::AddressKind;
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let pieces: Vec<&[u8]> = data.split(|b| *b == 0).take(8).collect();
    for (i, p) in pieces.iter().enumerate() {
        let other = pieces.get(i + 1).copied();
        for (retry, reset) in [(Some(*p), None), (None, Some(*p)), (Some(*p), other)] {
            if let Some(w) = rate_limit_wait_at(retry, reset, now) {
                assert!(w <= MAX_WAIT, "{w:?}");
            }
        }
        let _ = serde_json::from_slice::<DropletOne>(p);
        let _ = serde_json::from_slice::<CreateResponse>(p);
        let _ = serde_json::from_slice::<ActionOne>(p);
        if let Ok(b) = serde_json::from_slice::<ApiErrorBody>(p) {
            let e = ApiError::Status {
                method: "GET".into(),
                path: "/v2/droplets".into(),
                status: 500,
                id: Some(b.id),
                message: Some(b.message),
                request_id: b.request_id,
            };
            let text = e.to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
    let lists: Vec<DropletList> = pieces
        .iter()
        .filter_map(|p| serde_json::from_slice(p).ok())
        .collect();
    if lists.is_empty() {
        return;
    }
    let base = url::Url::parse("https://api.example.test/").unwrap();
    let (mut pager, _) = Pager::new(&base, "web", 200);
    let mut ids = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let list = lists[pages % lists.len()].clone();
        pages += 1;
        assert!(pages <= lists.len() + 1, "the listing did not end");
        match pager.page(list) {
            Err(e) => {
                assert!(!e.chars().any(char::is_control), "{e:?}");
                break;
            }
            Ok(page) => {
                for d in &page.droplets {
                    assert!(ids.insert(d.id), "droplet {} handed on twice", d.id);
                    for kind in [AddressKind::Private, AddressKind::Public, AddressKind::Ipv6] {
                        let _ = d.address(kind);
                    }
                }
                match page.next {
                    None => break,
                    Some(u) => {
                        assert_eq!(u.host_str(), Some("api.example.test"), "{u}");
                        assert_eq!(u.path(), "/v2/droplets", "{u}");
                        assert_eq!(u.scheme(), "https", "{u}");
                    }
                }
            }
        }
    }
}
