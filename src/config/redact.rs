//! What may be shown of a target: URLs and headers with secrets, credential-named values and
//! secret-bearing query parameters replaced by `<redacted>`; the endpoint label (no query at
//! all). The one place that decides it, for `check`, reports, result files, logs, metrics and the
//! status page.

use super::model::{Header, Target};

pub const REDACTED: &str = "<redacted>";

impl Target {
    /// The URL as humans see it: secrets and secret-bearing query values read `<redacted>`,
    /// placeholders read `{{column}}`.
    pub fn display_url(&self) -> String {
        redact_url(&redact_userinfo(&self.url.redacted(self.columns())))
    }

    /// `scheme://host[:port]/path` of the URL, placeholders and secrets redacted, without
    /// credentials, query or fragment: safe as a metric label and on the status page.
    pub fn endpoint(&self) -> String {
        let shown = self.url.redacted(self.columns());
        match url::Url::parse(&shown) {
            Ok(u) => {
                let host = u.host_str().unwrap_or("");
                match u.port() {
                    Some(p) => format!("{}://{}:{}{}", u.scheme(), host, p, u.path()),
                    None => format!("{}://{}{}", u.scheme(), host, u.path()),
                }
            }
            Err(_) => shown.split('?').next().unwrap_or("").to_owned(),
        }
    }

    /// A header value as humans see it: `<redacted>` when it holds a secret or its name says
    /// it is a credential (even written literally, as old config files do).
    pub fn display_header_value(&self, header: &Header) -> String {
        if header.value.has_secret() || is_sensitive_name(&header.name) {
            REDACTED.to_owned()
        } else {
            header.value.redacted(self.columns())
        }
    }

    /// The data source's column names (for showing placeholders), empty without one.
    pub fn columns(&self) -> &[String] {
        self.data.as_ref().map_or(&[], |d| d.columns())
    }
}

/// Header (or query parameter) names whose values are credentials even when written literally
/// in the config.
pub fn is_sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const EXACT: [&str; 6] = [
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "x-goog-api-key",
    ];
    const PARTS: [&str; 6] = ["token", "secret", "key", "auth", "password", "cookie"];
    EXACT.contains(&name.as_str()) || PARTS.iter().any(|p| name.contains(p))
}

/// Replaces a URL's `user:password@` with `<redacted>@` (a proxy URL's credentials, or a
/// target URL's); everything else is kept as written.
pub fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}{REDACTED}{}", &url[..authority_start], &rest[at..]),
        None => url.to_owned(),
    }
}

/// Takes an already `Template::redacted` URL and blanks every query value that held a secret
/// (a value `abc<redacted>` would still show its literal part) or whose name is sensitive
/// (`?key=...` written literally). Everything else, fragment included, is kept as written.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let Some((base, query)) = before_fragment.split_once('?') else {
        return url.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value))
                if value.contains(REDACTED) || (is_sensitive_name(name) && !value.is_empty()) =>
            {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}{fragment}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_header_names() {
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "X-API-Key",
            "api-key",
            "Cookie",
            "x-goog-api-key",
            "X-Auth-Token",
            "X-Client-Secret",
            "anthropic-key",
        ] {
            assert!(is_sensitive_name(name), "{name}");
        }
        for name in [
            "Content-Type",
            "Accept",
            "X-Request-Id",
            "anthropic-version",
        ] {
            assert!(!is_sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn url_credentials_are_blanked() {
        assert_eq!(
            redact_userinfo("http://user:pass@proxy:3128"),
            "http://<redacted>@proxy:3128"
        );
        assert_eq!(
            redact_userinfo("http://user:<redacted>@proxy:3128/x?a=b@c"),
            "http://<redacted>@proxy:3128/x?a=b@c"
        );
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(redact_userinfo("https://h/p?to=a@b"), "https://h/p?to=a@b");
        assert_eq!(redact_userinfo("<redacted>"), "<redacted>");
    }

    #[test]
    fn endpoint_keeps_scheme_host_port_and_path_only() {
        let endpoint = |url: &str| {
            let yaml = format!("targets:\n  - name: t\n    url: \"{url}\"\n");
            let config = crate::config::load_str(&yaml, std::path::Path::new("t.yaml"));
            config.expect("valid").targets[0].endpoint()
        };
        assert_eq!(
            endpoint("https://user:pw@h:8443/v1/chat?key=sk-1&alt=sse#f"),
            "https://h:8443/v1/chat"
        );
        assert_eq!(endpoint("http://h/v1?x=1"), "http://h/v1");
    }

    #[test]
    fn url_query_values_holding_secrets_are_blanked() {
        assert_eq!(
            redact_url("https://h/v1?alt=sse&key=pre<redacted>&x=1#frag"),
            "https://h/v1?alt=sse&key=<redacted>&x=1#frag"
        );
        assert_eq!(
            redact_url("https://h/v1?api_key=sk-literal&q={{content}}"),
            "https://h/v1?api_key=<redacted>&q={{content}}"
        );
        assert_eq!(redact_url("https://h/v1/chat"), "https://h/v1/chat");
        assert_eq!(redact_url("https://h/?flag&key="), "https://h/?flag&key=");
    }
}
