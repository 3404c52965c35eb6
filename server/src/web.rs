//! Static files on the game port: the browser client in `server/web/`, and under `/sdk/`
//! and `/vendor/` the JavaScript SDK it is built on (`protocol/js/src/`, `protocol/js/vendor/`).
//!
//! Every file is compiled in (`include_bytes!`), so the binary is the deployment and a
//! request can never reach the filesystem: routing is a lookup in a fixed table, so there
//! is no path to traverse. Each file is served with its `Content-Type`, `nosniff` and a
//! strict `Content-Security-Policy` (scripts, styles and connections from this origin
//! only, plus `ws:`/`wss:` for the game socket); anything else is a 404 JSON error like
//! every other refusal on this port.
//!
//! The MessagePack codec is vendored, not fetched: `@msgpack/msgpack` 3.1.3, its
//! `dist.umd/msgpack.min.js` byte for byte (sha256
//! `3e7ae27410846ac09f94674bd7b91133d6e59bd3c02508080c4139c1386b359b`, checked by a test
//! below). Its URL carries the version, so it can be cached forever; the rest revalidates.
//! The SDK's close-code table is checked against `CloseReason` here too, since this is
//! the crate that ships it.
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

/// A file of the page (`server/web/`) or of the SDK (`protocol/js/`), by its path there.
macro_rules! static_file {
    ($path:literal, web $source:literal, $type:expr) => {
        static_file!(@ $path, concat!("../web/", $source), $type, Caching::Revalidate)
    };
    ($path:literal, sdk $source:literal, $type:expr) => {
        static_file!(@ $path, concat!("../../protocol/js/", $source), $type, Caching::Revalidate)
    };
    ($path:literal, sdk $source:literal, $type:expr, $caching:expr) => {
        static_file!(@ $path, concat!("../../protocol/js/", $source), $type, $caching)
    };
    (@ $path:literal, $file:expr, $type:expr, $caching:expr) => {
        StaticFile {
            path: $path,
            content_type: $type,
            caching: $caching,
            body: include_bytes!($file),
        }
    };
}

/// Every path served, and nothing else.
static FILES: &[StaticFile] = &[
    static_file!("/", web "index.html", HTML),
    static_file!("/index.html", web "index.html", HTML),
    static_file!("/style.css", web "style.css", CSS),
    static_file!("/favicon.svg", web "favicon.svg", SVG),
    static_file!("/app.js", web "app.js", JS),
    static_file!("/hud.js", web "hud.js", JS),
    static_file!("/input.js", web "input.js", JS),
    static_file!("/render.js", web "render.js", JS),
    static_file!("/token.js", web "token.js", JS),
    static_file!("/world.js", web "world.js", JS),
    static_file!("/sdk/index.js", sdk "src/index.js", JS),
    static_file!("/sdk/arena.js", sdk "src/arena.js", JS),
    static_file!("/sdk/backoff.js", sdk "src/backoff.js", JS),
    static_file!("/sdk/client.js", sdk "src/client.js", JS),
    static_file!("/sdk/clock.js", sdk "src/clock.js", JS),
    static_file!("/sdk/closecodes.js", sdk "src/closecodes.js", JS),
    static_file!("/sdk/codec.js", sdk "src/codec.js", JS),
    static_file!("/sdk/emitter.js", sdk "src/emitter.js", JS),
    static_file!("/sdk/inputs.js", sdk "src/inputs.js", JS),
    static_file!("/sdk/interpolation.js", sdk "src/interpolation.js", JS),
    static_file!("/sdk/v2.js", sdk "src/v2.js", JS),
    static_file!(
        "/vendor/msgpack-3.1.3.min.js",
        sdk "vendor/msgpack-3.1.3.min.js",
        JS,
        Caching::Immutable
    ),
    static_file!(
        "/vendor/msgpack-LICENSE.txt",
        sdk "vendor/msgpack-LICENSE.txt",
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
    use rallypoint_protocol::CloseReason;

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

    /// Every same-origin URL the page and its modules refer to (`/x.js`, `./x.js`,
    /// `../x/y.js`, resolved against the referring file) is served, so a renamed or an
    /// unlisted file cannot silently break the client.
    #[test]
    fn every_referenced_file_is_served() {
        let served = |p: &str| FILES.iter().any(|f| f.path == p);
        for f in FILES
            .iter()
            .filter(|f| f.content_type == HTML || f.content_type == JS)
            .filter(|f| !f.path.starts_with("/vendor/"))
        {
            let text = without_block_comments(std::str::from_utf8(f.body).expect("utf-8 source"));
            let refs = text
                .split(['"', '\''])
                .filter(|s| s.starts_with("./") || s.starts_with("../") || s.starts_with('/'))
                .filter(|s| s.ends_with(".js") || s.ends_with(".css") || s.ends_with(".svg"));
            for r in refs {
                let path = resolve(f.path, r);
                assert!(
                    served(&path),
                    "{} refers to {r} ({path}), which is not served",
                    f.path
                );
            }
        }
        assert_eq!(resolve("/sdk/codec.js", "../vendor/m.js"), "/vendor/m.js");
        assert_eq!(resolve("/app.js", "./sdk/index.js"), "/sdk/index.js");
    }

    /// The text less its `/* */` comments: JSDoc names type files (`import("../index.js")`)
    /// that browsers never fetch.
    fn without_block_comments(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("/*") {
            out.push_str(&rest[..start]);
            rest = rest[start..]
                .split_once("*/")
                .map_or("", |(_, after)| after);
        }
        out.push_str(rest);
        out
    }

    /// A URL path relative to the file at `from`, as a browser resolves it.
    fn resolve(from: &str, reference: &str) -> String {
        if reference.starts_with('/') {
            return reference.to_owned();
        }
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop(); // the file name
        for segment in reference.split('/') {
            match segment {
                "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        parts.join("/")
    }

    /// The SDK's close-code table (`protocol/js/src/closecodes.js`, one row per line) has
    /// exactly the server's reasons: every `CloseReason` as a row with its code and
    /// `error.code`, and no row with an `error.code` the server does not send. Rows
    /// without one (the transport's 1005, 1006, 1015) must use codes the server
    /// does not send with a reason. Either side changing alone fails here.
    #[test]
    fn sdk_close_codes_match_the_close_reasons() {
        let file = FILES
            .iter()
            .find(|f| f.path == "/sdk/closecodes.js")
            .expect("served");
        let text = std::str::from_utf8(file.body).expect("utf-8");
        let rows: Vec<(u16, Option<String>)> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("{ code: "))
            .map(|rest| {
                let (code, rest) = rest.split_once(", error: ").expect("code, then error");
                let error = rest.split(',').next().expect("error value");
                let error = (error != "null").then(|| error.trim_matches('"').to_owned());
                (code.parse().expect("numeric code"), error)
            })
            .collect();
        assert!(rows.len() >= CloseReason::ALL.len(), "parsed {rows:?}");
        let mut from_js: Vec<(u16, String)> = rows
            .iter()
            .filter_map(|(c, e)| Some((*c, e.clone()?)))
            .collect();
        let mut from_rust: Vec<(u16, String)> = CloseReason::ALL
            .iter()
            .map(|r| (r.code(), r.error_code().to_owned()))
            .collect();
        from_js.sort();
        from_rust.sort();
        assert_eq!(from_js, from_rust, "closecodes.js against CloseReason");
        for (code, _) in rows.iter().filter(|(_, e)| e.is_none()) {
            assert!(
                CloseReason::ALL.iter().all(|r| r.code() != *code),
                "{code} is sent by the server with a reason: give its row that error.code"
            );
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
