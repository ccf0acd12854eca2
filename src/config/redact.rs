//! What may be shown of a target: URLs and headers with secrets, credential-named values and
//! secret-bearing query parameters replaced by `<redacted>`; the endpoint label (no query at
//! all); and text from the server (streamed output, error messages) with every secret value the
//! target sends scrubbed out. The one place that decides it, for `check`, reports, result files,
//! logs, metrics and the status page.
//!
//! The policy: a value that came from a secret reference (`${VAR}`, `${file:...}`,
//! `${credential:...}`) is always hidden; a value written literally is hidden when its header
//! or query parameter name is one of `CREDENTIAL_NAMES`, compared exactly and
//! case-insensitively. Nothing else is: `?tokens=10` or `max_tokens` are data, not secrets
//! (matching on name parts hid them).

use std::borrow::Cow;

use super::model::{Body, Header, Target};

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
        if header.value.has_secret() || is_credential_name(&header.name) {
            REDACTED.to_owned()
        } else {
            header.value.redacted(self.columns())
        }
    }

    /// Every secret value this target sends (in its URL, headers, body and proxy
    /// credentials), longest first, so one that contains another is scrubbed whole.
    pub fn secret_values(&self) -> Vec<&str> {
        let mut values: Vec<&str> = self
            .headers
            .iter()
            .map(|h| &h.value)
            .chain(std::iter::once(&self.url))
            .chain(self.body.as_ref().map(Body::template))
            .flat_map(|t| t.secret_values())
            .chain(self.proxy.as_ref().and_then(|p| p.password()))
            .collect();
        values.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        values.dedup();
        values
    }

    /// `text` from the server (streamed output, an error message) with every occurrence of a
    /// secret value this target sends replaced by `<redacted>`: a server that echoes the
    /// request (or the key it rejected) must not put the key in a result file or a log.
    pub fn scrub_secrets<'a>(&self, text: &'a str) -> Cow<'a, str> {
        scrub(text, &self.secret_values())
    }

    /// The data source's column names (for showing placeholders), empty without one.
    pub fn columns(&self) -> &[String] {
        self.data.as_ref().map_or(&[], |d| d.columns())
    }
}

/// Header and query-parameter names whose values are credentials, lower case. Compared exactly
/// (case-insensitively): a name that merely contains `key` or `token` is not one of them.
pub const CREDENTIAL_NAMES: [&str; 29] = [
    // HTTP authentication (RFC 9110) and cookies (RFC 6265).
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    // Provider API-key headers: Anthropic and many gateways, Azure OpenAI, Gemini, Azure API
    // Management, OpenStack and similar token headers, GitLab, AWS temporary credentials.
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "x-auth-token",
    "x-access-token",
    "x-session-token",
    "private-token",
    "x-amz-security-token",
    // Query parameters: Gemini's `?key=`, the usual API-key and OAuth spellings, signed URLs
    // (Azure SAS `sig`, AWS SigV4 `X-Amz-Signature`/`X-Amz-Credential`), passwords.
    "key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "password",
    "passwd",
    "secret",
    "client_secret",
];

/// Whether a header or query parameter of this name carries a credential even when its value
/// is written literally (old config files, `-H 'Authorization: Bearer sk-...'`).
pub fn is_credential_name(name: &str) -> bool {
    CREDENTIAL_NAMES
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name.trim()))
}

/// `text` with every occurrence of each of `values` (longest first) replaced by `<redacted>`.
pub fn scrub<'a>(text: &'a str, values: &[&str]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for value in values.iter().filter(|v| !v.is_empty()) {
        if out.contains(value) {
            out = Cow::Owned(out.replace(value, REDACTED));
        }
    }
    out
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
                if value.contains(REDACTED) || (is_credential_name(name) && !value.is_empty()) =>
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
    fn credential_names_are_matched_exactly() {
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "X-API-Key",
            "api-key",
            "Cookie",
            "x-goog-api-key",
            "X-Auth-Token",
            "key",
            "API_KEY",
            "access_token",
            "sig",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        // Names that only contain a credential word are data (issue 10, item 7).
        for name in [
            "Content-Type",
            "Accept",
            "X-Request-Id",
            "anthropic-version",
            "tokens",
            "max_tokens",
            "keyword",
            "monkey",
            "author",
            "x-client-secret-hint",
            "passwords_seen",
        ] {
            assert!(!is_credential_name(name), "{name}");
        }
    }

    #[test]
    fn credential_names_are_lower_case_and_unique() {
        let mut names = CREDENTIAL_NAMES.to_vec();
        assert!(names.iter().all(|n| *n == n.to_ascii_lowercase()));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CREDENTIAL_NAMES.len());
    }

    #[test]
    fn scrub_replaces_every_occurrence_longest_first() {
        assert_eq!(
            scrub(
                "secret sk-abc and sk-abcdef, sk-abc",
                &["sk-abcdef", "sk-abc"]
            ),
            "secret <redacted> and <redacted>, <redacted>"
        );
        assert!(matches!(
            scrub("nothing here", &["sk-abc"]),
            Cow::Borrowed(_)
        ));
        assert_eq!(scrub("x", &[""]), "x");
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
            let yaml = format!("targets:\n  - name: t\n    url: \"{url}\"\n    method: GET\n");
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
    fn literal_query_values_are_hidden_only_under_credential_names() {
        assert_eq!(
            redact_url("https://h/v1?tokens=10&max_tokens=5&Key=AIza-1&sig=abc"),
            "https://h/v1?tokens=10&max_tokens=5&Key=<redacted>&sig=<redacted>"
        );
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
