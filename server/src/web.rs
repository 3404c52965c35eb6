//! Static files on the game port: the browser client in `server/web/`.
//!
//! Every file is compiled in (`include_bytes!`), so the binary is the deployment and a
//! request can never reach the filesystem: routing is a lookup in a fixed table, so there
//! is no path to traverse. Each file is served with its `Content-Type`, `nosniff` and a
//! strict `Content-Security-Policy` (scripts, styles and connections from this origin
//! only, plus `ws:`/`wss:` for the game socket); anything else is a 404 JSON error like
//! every other refusal on this port.
//!
//! The MessagePack decoder is vendored, not fetched: `@msgpack/msgpack` 3.1.3, its
//! `dist.umd/msgpack.min.js` byte for byte (sha256
//! `3e7ae27410846ac09f94674bd7b91133d6e59bd3c02508080c4139c1386b359b`, checked by a test
//! below). Its URL carries the version, so it can be cached forever; the rest revalidates.
//!
//! Must not read the filesystem or log query strings (a token may be in one).

use crate::http::{Request, Response};

/// The policy for every page and script: nothing from other origins, no inline script or
/// style, no plugins, no `<base>` rewriting, no form posts. `ws:`/`wss:` are listed
/// because older browsers do not count the page's own WebSocket origin as `'self'`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'none'";

/// How long a browser may keep a file without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caching {
    /// Revalidate on every load, so a server upgrade reaches players at once.
    Revalidate,
    /// The path names the content (a pinned version): keep it for a year.
    Immutable,
}

/// One compiled-in file.
#[derive(Debug)]
struct StaticFile {
    path: &'static str,
    content_type: &'static str,
    caching: Caching,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! static_file {
    ($path:literal, $source:literal, $type:expr, $caching:expr) => {
        StaticFile {
            path: $path,
            content_type: $type,
            caching: $caching,
            body: include_bytes!(concat!("../web/", $source)),
        }
    };
    ($path:literal, $source:literal, $type:expr) => {
        static_file!($path, $source, $type, Caching::Revalidate)
    };
}

/// Every path served, and nothing else.
static FILES: &[StaticFile] = &[
    static_file!("/", "index.html", HTML),
    static_file!("/index.html", "index.html", HTML),
    static_file!("/style.css", "style.css", CSS),
    static_file!("/favicon.svg", "favicon.svg", SVG),
    static_file!("/app.js", "app.js", JS),
    static_file!("/closecodes.js", "closecodes.js", JS),
    static_file!("/hud.js", "hud.js", JS),
    static_file!("/input.js", "input.js", JS),
    static_file!("/net.js", "net.js", JS),
    static_file!("/render.js", "render.js", JS),
    static_file!("/token.js", "token.js", JS),
    static_file!("/world.js", "world.js", JS),
    static_file!(
        "/vendor/msgpack-3.1.3.min.js",
        "vendor/msgpack-3.1.3.min.js",
        JS,
        Caching::Immutable
    ),
    static_file!(
        "/vendor/msgpack-LICENSE.txt",
        "vendor/msgpack-LICENSE.txt",
        TEXT
    ),
];

/// Answers a non-`/play` request on the game port.
pub fn respond(req: &Request) -> Response {
    let head_only = match req.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return Response::error(405, "method_not_allowed", "use GET")
                .header("Allow", "GET, HEAD")
                .header("X-Content-Type-Options", "nosniff");
        }
    };
    let Some(file) = FILES.iter().find(|f| f.path == req.path) else {
        return Response::error(
            404,
            "not_found",
            "nothing here; the game client is at / and game clients connect to /play",
        )
        .header("X-Content-Type-Options", "nosniff");
    };
    let cache = match file.caching {
        Caching::Revalidate => "no-cache",
        Caching::Immutable => "public, max-age=31536000, immutable",
    };
    let response = Response::new(200, file.content_type, file.body)
        .header("Cache-Control", cache)
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("X-Content-Type-Options", "nosniff")
        // Nothing on this origin needs to tell other sites where a player came from.
        .header("Referrer-Policy", "no-referrer")
        .header("Cross-Origin-Opener-Policy", "same-origin");
    if head_only { response.head() } else { response }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(method: &str, path: &str) -> Response {
        respond(&Request {
            method: method.into(),
            path: path.into(),
            query: Some("token=secret".into()),
            minor_version: 1,
            headers: Vec::new(),
        })
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn serves_the_page_with_types_and_security_headers() {
        let r = get("GET", "/");
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-type"), Some(HTML));
        assert_eq!(
            header(&r, "content-security-policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
        assert!(String::from_utf8_lossy(&r.body).contains("<canvas"));
        let js = get("GET", "/app.js");
        assert_eq!(header(&js, "content-type"), Some(JS));
        assert_eq!(header(&js, "cache-control"), Some("no-cache"));
        let vendor = get("GET", "/vendor/msgpack-3.1.3.min.js");
        assert!(
            header(&vendor, "cache-control")
                .unwrap()
                .contains("immutable")
        );
    }

    #[test]
    fn head_has_the_get_headers_and_no_body() {
        let full = get("GET", "/style.css").to_bytes();
        let head = get("HEAD", "/style.css").to_bytes();
        let text = String::from_utf8_lossy(&head);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Type: text/css"));
        let len = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: ").map(str::to_owned))
        };
        assert_eq!(len(&head), len(&full), "HEAD announces the GET length");
        assert!(text.ends_with("\r\n\r\n"), "and sends no body");
    }

    #[test]
    fn unknown_paths_and_methods_are_json_errors() {
        for path in [
            "/nope",
            "/../Cargo.toml",
            "/vendor/",
            "/web/app.js",
            "/play/x",
        ] {
            let r = get("GET", path);
            assert_eq!(r.status, 404, "{path}");
            assert_eq!(r.error_code().as_deref(), Some("not_found"));
        }
        let r = get("POST", "/");
        assert_eq!(r.status, 405);
        assert_eq!(header(&r, "allow"), Some("GET, HEAD"));
    }

    /// Every same-origin URL the page and its modules refer to is served, so a renamed
    /// file cannot silently break the client.
    #[test]
    fn every_referenced_file_is_served() {
        let served = |p: &str| FILES.iter().any(|f| f.path == p);
        for f in FILES
            .iter()
            .filter(|f| f.content_type == HTML || f.content_type == JS)
        {
            let text = std::str::from_utf8(f.body).expect("utf-8 source");
            if f.path.starts_with("/vendor/") {
                continue;
            }
            let refs = text
                .split(['"', '\''])
                .filter(|s| s.starts_with("./") || s.starts_with('/'))
                .filter(|s| s.ends_with(".js") || s.ends_with(".css") || s.ends_with(".svg"));
            for r in refs {
                let path = r.strip_prefix('.').unwrap_or(r);
                assert!(
                    served(path),
                    "{} refers to {r}, which is not served",
                    f.path
                );
            }
        }
    }

    #[test]
    fn vendored_msgpack_matches_its_pinned_checksum() {
        let rustls::SupportedCipherSuite::Tls13(suite) =
            rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        else {
            panic!("a TLS 1.3 suite");
        };
        let file = FILES
            .iter()
            .find(|f| f.path == "/vendor/msgpack-3.1.3.min.js")
            .expect("vendored file");
        let digest = suite.common.hash_provider.hash(file.body);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "3e7ae27410846ac09f94674bd7b91133d6e59bd3c02508080c4139c1386b359b"
        );
    }
}
