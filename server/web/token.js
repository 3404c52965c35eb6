// Where the page's token comes from. First match wins:
//
// 1. `window.RALLYPOINT_GET_TOKEN`: a function returning a token or a promise of one,
//    called before every connection, so the embedding page can refresh expired tokens.
// 2. `window.RALLYPOINT_TOKEN`: a fixed token string.
// 3. `#token=<jwt>` in the page URL. Fragments never reach the server, proxies or their
//    logs. The token is moved to sessionStorage (so a reload of this tab still works) and
//    removed from the address bar (so it is not copied into a chat by accident).
// 4. Dev mode: `GET /dev/token`, which the server answers only for loopback clients when
//    it runs without a key. The account id is made up once per page load, so reconnects
//    (and re-signing after an expiry) keep the same player. `?role=spectator` asks for a
//    spectator's token.
//
// Never logs or displays a token.

import { TokenError } from "./sdk/index.js";

const STORAGE_KEY = "rallypoint.token";

function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    try {
      sessionStorage.setItem(STORAGE_KEY, token);
    } catch {
      // Storage disabled: the token lives in memory only; a reload needs a new link.
    }
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    return token;
  }
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/**
 * Picks the token source for this page.
 * @param {URLSearchParams} query the page's query (`name` is used in dev mode)
 * @returns {{kind: string, refreshable: boolean, sub: string|null,
 *   get: (opts: {fresh: boolean}) => Promise<string>}}
 */
export function tokenSource(query) {
  if (typeof window.RALLYPOINT_GET_TOKEN === "function") {
    const provider = window.RALLYPOINT_GET_TOKEN;
    return {
      kind: "embedding page (RALLYPOINT_GET_TOKEN)",
      refreshable: true,
      sub: null,
      get: async () => {
        const t = await provider();
        if (typeof t !== "string" || !t) throw new TokenError("The page gave no token.", false);
        return t;
      },
    };
  }
  if (typeof window.RALLYPOINT_TOKEN === "string" && window.RALLYPOINT_TOKEN) {
    const t = window.RALLYPOINT_TOKEN;
    return { kind: "embedding page (RALLYPOINT_TOKEN)", refreshable: false, sub: null, get: async () => t };
  }
  const fragment = fromFragment();
  if (fragment) {
    return { kind: "URL fragment", refreshable: false, sub: null, get: async () => fragment };
  }
  return devSource(query);
}

function devSource(query) {
  const sub = "web-" + randomHex(6);
  const name = (query.get("name") || "").trim() || "guest-" + sub.slice(-4);
  const params = { sub, name };
  if (query.get("role") === "spectator") params.role = "spectator";
  let cached = null;
  return {
    kind: "dev mode (/dev/token)",
    refreshable: true,
    sub,
    get: async ({ fresh }) => {
      if (cached && !fresh) return cached;
      let res;
      try {
        res = await fetch("/dev/token?" + new URLSearchParams(params), {
          cache: "no-store",
          credentials: "omit",
        });
      } catch {
        throw new TokenError("Cannot reach the server.", true);
      }
      if (res.status === 404) {
        throw new TokenError(
          "No token: this server is not in dev mode. Open the game through your sign-in " +
            "page, or with #token=<jwt> in the URL.",
          false,
        );
      }
      if (!res.ok) {
        // 403: not a loopback client; 429/503: try again later.
        throw new TokenError(`The server refused a dev token (HTTP ${res.status}).`, res.status !== 403);
      }
      const body = await res.json();
      if (typeof body.token !== "string") throw new TokenError("The dev token answer had no token.", false);
      cached = body.token;
      return cached;
    },
  };
}
