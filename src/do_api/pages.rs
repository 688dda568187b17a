//! Following the pages of `GET /v2/droplets` safely, whatever the responses say.
//!
//! A listing is what doscale creates and destroys droplets from, so a broken or hostile API
//! must not make it loop, grow or look elsewhere:
//! * every `links.pages.next` must be this API's droplet listing (same scheme, host, port and
//!   path as the configured URL) for the same tag: the token is never sent anywhere else, and a
//!   next page of another tag never brings in foreign droplets;
//! * a page asked for before (a `next` pointing back) stops the listing;
//! * more pages than `meta.total` and the page size imply stop the listing;
//! * a droplet listed twice (on one page or on two) is kept once and reported.
//!
//! Every stop is an error naming what was wrong: a listing that cannot be trusted is not used
//! (nothing is scraped or planned from half of it). Pure: no I/O, fuzzed by `fuzz/` target
//! `api` and by `props::api_responses_never_panic`.

use std::collections::HashSet;

use reqwest::Url;

use super::model::{Droplet, DropletList};

/// Most pages a listing may have whatever `meta.total` says (2 million droplets at 200 a
/// page: far above any account's limit).
pub const MAX_PAGES: u64 = 10_000;

/// The state of one listing.
#[derive(Debug)]
pub struct Pager {
    /// `<api url>/v2/droplets`: every page must be this.
    endpoint: Url,
    tag: String,
    /// Pages asked for so far, by their sorted query pairs.
    asked: HashSet<Vec<(String, String)>>,
    /// Pages received.
    pages: u64,
    /// The largest `meta.total` seen (droplets created while listing raise it).
    total: Option<u64>,
    /// Droplets on the first page: the page size the API uses (it may be below `per_page`).
    page_size: Option<u64>,
    seen: HashSet<u64>,
}

impl Pager {
    /// A listing of `tag` on the API at `base` (the configured URL), `per_page` a page.
    /// Returns the pager and the first page's URL.
    pub fn new(base: &Url, tag: &str, per_page: u32) -> (Pager, Url) {
        let mut endpoint = base.clone();
        let prefix = base.path().trim_end_matches('/');
        endpoint.set_path(&format!("{prefix}/v2/droplets"));
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        let mut first = endpoint.clone();
        first
            .query_pairs_mut()
            .append_pair("tag_name", tag)
            .append_pair("per_page", &per_page.to_string())
            .append_pair("page", "1");
        let mut pager = Pager {
            endpoint,
            tag: tag.to_string(),
            asked: HashSet::new(),
            pages: 0,
            total: None,
            page_size: None,
            seen: HashSet::new(),
        };
        pager.asked.insert(query_key(&first));
        (pager, first)
    }

    /// Takes the response to the last URL asked for. Returns the droplets it lists that no
    /// earlier page (nor itself) listed, the ids it listed again, and the next page's URL
    /// (`None`: the listing is complete). `Err`: the listing cannot be trusted, and why.
    pub fn page(&mut self, list: DropletList) -> Result<Page, String> {
        self.pages += 1;
        let n = self.pages;
        if let Some(t) = list.meta.as_ref().map(|m| m.total) {
            self.total = Some(self.total.map_or(t, |old| old.max(t)));
        }
        let listed = list.droplets.len() as u64;
        if n == 1 {
            self.page_size = Some(listed);
        }
        let mut droplets = Vec::with_capacity(list.droplets.len());
        let mut again = Vec::new();
        for d in list.droplets {
            if self.seen.insert(d.id) {
                droplets.push(d);
            } else if !again.contains(&d.id) {
                again.push(d.id);
            }
        }
        let next = list.links.pages.and_then(|p| p.next);
        // An empty page ends the listing, whatever it says comes next.
        let next = match next {
            Some(next) if listed > 0 => Some(self.next(n, &next)?),
            _ => None,
        };
        Ok(Page {
            droplets,
            again,
            next,
        })
    }

    /// Checks page `n`'s `next` link.
    fn next(&mut self, n: u64, next: &str) -> Result<Url, String> {
        let shown = || {
            let s: String = next.chars().take(200).collect();
            crate::output::sanitize(&s)
        };
        let url = self.endpoint.join(next).map_err(|e| {
            format!(
                "links.pages.next of page {n} is not a URL ({e}): {:?}; the listing stopped",
                shown()
            )
        })?;
        let same_place = url.scheme() == self.endpoint.scheme()
            && url.host_str() == self.endpoint.host_str()
            && url.port_or_known_default() == self.endpoint.port_or_known_default()
            && url.path() == self.endpoint.path()
            && url.username().is_empty()
            && url.password().is_none();
        if !same_place {
            return Err(format!(
                "links.pages.next of page {n} points to {}, which is not this API's droplet listing ({}): not followed (the token goes only to the configured API); the listing stopped",
                shown(),
                self.endpoint
            ));
        }
        let tags: Vec<String> = url
            .query_pairs()
            .filter(|(k, _)| k == "tag_name")
            .map(|(_, v)| v.into_owned())
            .collect();
        if tags != [self.tag.as_str()] {
            return Err(format!(
                "links.pages.next of page {n} lists tag(s) {tags:?}, not {:?}: not followed; the listing stopped",
                self.tag
            ));
        }
        if !self.asked.insert(query_key(&url)) {
            return Err(format!(
                "links.pages.next of page {n} asks for a page already listed again ({}): the API's pages loop; the listing stopped",
                shown()
            ));
        }
        if n >= MAX_PAGES {
            return Err(format!(
                "more pages than {MAX_PAGES}: the API keeps naming a next page; the listing stopped"
            ));
        }
        if let (Some(total), Some(size)) = (self.total, self.page_size) {
            let implied = total.div_ceil(size.max(1)).max(1);
            if n >= implied {
                return Err(format!(
                    "more pages than meta.total implies: page {n} names a next page, but {total} droplet(s) at {size} a page make {implied} page(s); the listing stopped"
                ));
            }
        }
        Ok(url)
    }
}

/// One page, checked.
#[derive(Debug)]
pub struct Page {
    /// Droplets not listed before.
    pub droplets: Vec<Droplet>,
    /// Ids this page listed again (already on an earlier page, or twice on this one).
    pub again: Vec<u64>,
    /// The next page to ask for.
    pub next: Option<Url>,
}

/// A page's identity: its query pairs, sorted (`page=2&tag_name=x` is `tag_name=x&page=2`).
fn query_key(url: &Url) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    pairs.sort();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::do_api::model::{Links, Meta, Pages};

    fn droplet(id: u64) -> Droplet {
        Droplet {
            id,
            name: format!("d{id}"),
            status: "active".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            tags: vec!["web".into()],
            networks: Default::default(),
            vcpus: None,
        }
    }

    fn list(ids: &[u64], total: u64, next: Option<&str>) -> DropletList {
        DropletList {
            droplets: ids.iter().map(|&i| droplet(i)).collect(),
            links: Links {
                pages: Some(Pages {
                    next: next.map(String::from),
                    ..Default::default()
                }),
            },
            meta: Some(Meta { total }),
        }
    }

    fn base() -> Url {
        Url::parse("https://api.example.test").unwrap()
    }

    #[test]
    fn follows_honest_pages_and_collapses_duplicates() {
        let (mut p, first) = Pager::new(&base(), "web", 2);
        assert_eq!(
            first.as_str(),
            "https://api.example.test/v2/droplets?tag_name=web&per_page=2&page=1"
        );
        let a = p
            .page(list(
                &[1, 2],
                3,
                Some("https://api.example.test/v2/droplets?page=2&per_page=2&tag_name=web"),
            ))
            .unwrap();
        assert_eq!(a.droplets.len(), 2);
        assert!(a.next.is_some());
        // a droplet moved between pages: listed again, kept once
        let b = p.page(list(&[2, 3, 3], 3, None)).unwrap();
        assert_eq!(b.droplets.iter().map(|d| d.id).collect::<Vec<_>>(), vec![3]);
        assert_eq!(b.again, vec![2, 3]);
        assert!(b.next.is_none());
    }

    #[test]
    fn a_next_link_pointing_back_stops() {
        let (mut p, _) = Pager::new(&base(), "web", 2);
        let e = p
            .page(list(
                &[1, 2],
                9,
                Some("https://api.example.test/v2/droplets?page=1&per_page=2&tag_name=web"),
            ))
            .unwrap_err();
        assert!(e.contains("already listed again"), "{e}");
        let (mut p, _) = Pager::new(&base(), "web", 2);
        let two = "/v2/droplets?page=2&per_page=2&tag_name=web";
        p.page(list(&[1, 2], 9, Some(two))).unwrap();
        let e = p.page(list(&[3, 4], 9, Some(two))).unwrap_err();
        assert!(e.contains("page 2") && e.contains("again"), "{e}");
    }

    #[test]
    fn a_foreign_next_link_is_never_followed() {
        for next in [
            "https://evil.example/v2/droplets?page=2&tag_name=web",
            "http://api.example.test/v2/droplets?page=2&tag_name=web",
            "https://api.example.test:8443/v2/droplets?page=2&tag_name=web",
            "https://api.example.test/v2/account?page=2&tag_name=web",
            "https://user:pw@api.example.test/v2/droplets?page=2&tag_name=web",
            "//evil.example/v2/droplets?page=2&tag_name=web",
        ] {
            let (mut p, _) = Pager::new(&base(), "web", 2);
            let e = p.page(list(&[1, 2], 9, Some(next))).unwrap_err();
            assert!(e.contains("not this API"), "{next}: {e}");
        }
        let (mut p, _) = Pager::new(&base(), "web", 2);
        let e = p
            .page(list(&[1, 2], 9, Some("/v2/droplets?page=2&tag_name=db")))
            .unwrap_err();
        assert!(e.contains("\"db\""), "{e}");
    }

    #[test]
    fn more_pages_than_the_total_implies_stop() {
        let (mut p, _) = Pager::new(&base(), "web", 2);
        let link = |n: u64| format!("/v2/droplets?page={n}&tag_name=web");
        p.page(list(&[1, 2], 5, Some(&link(2)))).unwrap();
        p.page(list(&[3, 4], 5, Some(&link(3)))).unwrap();
        let e = p.page(list(&[5], 5, Some(&link(4)))).unwrap_err();
        assert!(
            e.contains("more pages") && e.contains("5 droplet(s)"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_page_ends_the_listing() {
        let (mut p, _) = Pager::new(&base(), "web", 2);
        let r = p
            .page(list(&[], 0, Some("/v2/droplets?page=2&tag_name=web")))
            .unwrap();
        assert!(r.next.is_none() && r.droplets.is_empty());
    }
}
