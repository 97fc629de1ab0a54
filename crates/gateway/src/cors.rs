//! CORS for APIs and function URLs, with API Gateway HTTP API semantics.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by
//! the gateway with `204` whether or not a route exists; the `Access-Control-Allow-*`
//! headers are present only when the origin and method are allowed. Other responses get
//! `Access-Control-Allow-Origin` (and expose/credentials headers) when the origin is
//! allowed, and any CORS headers the function set are replaced, as API Gateway ignores them
//! when CORS is configured.

use bytes::Bytes;
use gust_model::CorsConfig;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

/// A compiled [`CorsConfig`].
pub(crate) struct Cors {
    any_origin: bool,
    /// Lower-case origins; an entry may hold one `*` (`https://*.example.com`).
    origins: Vec<String>,
    any_method: bool,
    methods: Vec<String>,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

fn joined(list: &[String]) -> Option<HeaderValue> {
    if list.is_empty() {
        return None;
    }
    HeaderValue::from_str(&list.join(",")).ok()
}

impl Cors {
    pub fn compile(c: &CorsConfig) -> Cors {
        Cors {
            any_origin: c.allow_origins.iter().any(|o| o == "*"),
            origins: c
                .allow_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            any_method: c.allow_methods.iter().any(|m| m == "*"),
            methods: c
                .allow_methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            allow_methods: joined(
                &c.allow_methods
                    .iter()
                    .map(|m| m.to_ascii_uppercase())
                    .collect::<Vec<_>>(),
            ),
            allow_headers: joined(
                &c.allow_headers
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect::<Vec<_>>(),
            ),
            expose_headers: joined(
                &c.expose_headers
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect::<Vec<_>>(),
            ),
            credentials: c.allow_credentials,
            max_age: c.max_age.map(HeaderValue::from),
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|o| match o.split_once('*') {
            None => *o == origin,
            Some((pre, post)) => {
                origin.len() > pre.len() + post.len()
                    && origin.starts_with(pre)
                    && origin.ends_with(post)
            }
        })
    }

    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// The gateway's answer when `headers` make a preflight request, else `None`.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response<Bytes>> {
        if method != Method::OPTIONS {
            return None;
        }
        let origin = headers.get(ORIGIN)?;
        let requested = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        let mut resp = Response::new(Bytes::new());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let origin_ok = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
        let method_ok = self.any_method
            || requested
                .to_str()
                .is_ok_and(|m| self.methods.iter().any(|a| a.eq_ignore_ascii_case(m)));
        if origin_ok && method_ok {
            let h = resp.headers_mut();
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
            if let Some(v) = &self.allow_methods {
                h.insert(ACCESS_CONTROL_ALLOW_METHODS, v.clone());
            }
            if let Some(v) = &self.allow_headers {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
            }
            if let Some(v) = &self.max_age {
                h.insert(ACCESS_CONTROL_MAX_AGE, v.clone());
            }
            if self.credentials {
                h.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            if !self.any_origin {
                h.insert(VARY, HeaderValue::from_static("Origin"));
            }
        }
        Some(resp)
    }

    /// Adds the CORS headers of a normal (non-preflight) response.
    pub fn apply(&self, request_origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        for h in [
            ACCESS_CONTROL_ALLOW_ORIGIN,
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            ACCESS_CONTROL_EXPOSE_HEADERS,
            ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_HEADERS,
            ACCESS_CONTROL_MAX_AGE,
        ] {
            headers.remove(h);
        }
        let Some(origin) = request_origin else {
            return;
        };
        if !origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
            return;
        }
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
        if let Some(v) = &self.expose_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
        if self.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if !self.any_origin {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors::compile(&CorsConfig {
            allow_credentials: true,
            allow_headers: vec!["Content-Type".into(), "X-Api-Key".into()],
            allow_methods: vec!["GET".into(), "post".into()],
            allow_origins: vec![
                "https://app.example.com".into(),
                "https://*.test.dev".into(),
            ],
            expose_headers: vec!["X-Trace".into()],
            max_age: Some(600),
        })
    }

    fn preflight(origin: &str, method: &str) -> Response<Bytes> {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        h.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_str(method).unwrap(),
        );
        cors().preflight(&Method::OPTIONS, &h).unwrap()
    }

    #[test]
    fn preflights() {
        let r = preflight("https://app.example.com", "POST");
        assert_eq!(r.status(), 204);
        let h = r.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "content-type,x-api-key");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let r = preflight("https://a.test.dev", "GET");
        assert!(r.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let r = preflight("https://evil.com", "GET");
        assert_eq!(r.status(), 204);
        assert!(!r.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let r = preflight("https://app.example.com", "DELETE");
        assert!(!r.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(cors().preflight(&Method::GET, &HeaderMap::new()).is_none());
    }

    #[test]
    fn simple_responses() {
        let mut h = HeaderMap::new();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        let origin = HeaderValue::from_static("https://app.example.com");
        cors().apply(Some(&origin), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_EXPOSE_HEADERS], "x-trace");
        let mut h = HeaderMap::new();
        cors().apply(Some(&HeaderValue::from_static("https://x.org")), &mut h);
        assert!(h.is_empty());
    }
}
