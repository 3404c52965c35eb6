//! Static files on the game port (the browser client).
//!
//! Must not read the filesystem at run time: files are compiled in, so the binary is the
//! deployment.

use crate::http::{Request, Response};

/// Answers a non-`/play` request on the game port.
pub fn respond(req: &Request) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::error(405, "method_not_allowed", "use GET").header("Allow", "GET, HEAD");
    }
    Response::error(
        404,
        "not_found",
        "nothing here; game clients connect to /play",
    )
}
