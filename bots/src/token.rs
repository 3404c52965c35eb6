//! Tokens for bots: minted HS256 JWTs with one account (`sub`) per bot.
//!
//! The claims are what the server checks (`sub`, `aud`, optional `iss`, `iat`, `exp`)
//! plus the display `name`. Tokens from a file or from `/dev/token` are used as given
//! (see [`crate::net::Target::dev_token`]). Must not log tokens or the secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::config::MintOptions;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    iat: u64,
    exp: u64,
    name: &'a str,
}

/// Signs a token for `sub` valid for `ttl` from now.
pub fn mint(
    opts: &MintOptions,
    sub: &str,
    name: &str,
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub,
        aud: &opts.aud,
        iss: opts.iss.as_deref(),
        iat: now,
        exp: now + ttl.as_secs().max(60),
        name,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&opts.secret),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn minted_tokens_verify_with_the_secret() {
        let mut opts = MintOptions::new(b"0123456789abcdef0123456789abcdef".to_vec());
        opts.iss = Some("studio".into());
        let token = mint(&opts, "bot-1", "Bot 1", Duration::from_secs(600)).unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&["rallypoint"]);
        v.set_issuer(&["studio"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(&opts.secret),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "bot-1");
        assert_eq!(data.claims["name"], "Bot 1");
    }
}
