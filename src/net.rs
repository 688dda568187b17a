//! Where doscale may connect: the API only over https (plain http to loopback alone), and
//! never to a link-local, multicast or unspecified address, whatever the API lists (the
//! scrape and apply's health check both ask). Pure checks, shared by config, the API client,
//! scraping and apply.

use std::net::IpAddr;

/// `https://` anywhere, `http://` only to loopback (the simulator, a local mock).
pub fn check_api_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| format!("not a URL ({e}): expected e.g. \"https://api.digitalocean.com\""))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(url_host::Domain(d)) => d == "localhost",
                Some(url_host::Ipv4(ip)) => ip.is_loopback(),
                Some(url_host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err("plain http:// is only allowed to a loopback address (the token would travel in clear): use https://".into())
            }
        }
        other => Err(format!("unsupported scheme {other:?}: use https://")),
    }
}

mod url_host {
    pub use url::Host::{Domain, Ipv4, Ipv6};
}

/// Addresses a scrape or a health check never reaches: link-local (the metadata service 169.254.169.254),
/// unspecified, multicast, broadcast.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() {
                Some("unspecified")
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some("multicast/broadcast")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if let Some(v4) = v6.to_ipv4_mapped() {
                forbidden(IpAddr::V4(v4))
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_are_https_or_loopback() {
        assert!(check_api_url("http://127.0.0.1:8080").is_ok());
        assert!(check_api_url("http://[::1]:8080").is_ok());
        assert!(check_api_url("https://api.digitalocean.com").is_ok());
        assert!(check_api_url("http://api.digitalocean.com").is_err());
        assert!(check_api_url("ftp://x").is_err());
    }

    #[test]
    fn metadata_and_other_special_addresses_are_refused() {
        assert_eq!(
            forbidden("169.254.169.254".parse().unwrap()),
            Some("link-local")
        );
        assert_eq!(forbidden("fe80::1".parse().unwrap()), Some("link-local"));
        assert_eq!(
            forbidden("::ffff:169.254.169.254".parse().unwrap()),
            Some("link-local")
        );
        assert_eq!(forbidden("0.0.0.0".parse().unwrap()), Some("unspecified"));
        assert_eq!(forbidden("10.0.0.5".parse().unwrap()), None);
        assert_eq!(forbidden("127.3.0.9".parse().unwrap()), None);
    }
}
