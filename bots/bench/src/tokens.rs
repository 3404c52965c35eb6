//! Tokens minted before a measurement starts, so signing never shows up in the timings:
//! HS256 with the benchmark server's secret, ES256 with the fixture key pair
//! (`tests/fixtures/ec-private.pem`, `kid: "es"`). One account (`sub`) per token.
//!
//! Must not log tokens or keys.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// The `kid` the benchmark server knows the ES256 public key by.
pub const ES_KID: &str = "es";

/// A signing key and its header.
pub struct Signer {
    header: Header,
    key: EncodingKey,
    /// `HS256` or `ES256`.
    pub alg: &'static str,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Signer {
        Signer {
            header: Header::new(Algorithm::HS256),
            key: EncodingKey::from_secret(secret),
            alg: "HS256",
        }
    }

    /// ES256 with a P-256 private key in PEM, announced as `kid`.
    pub fn es256(private_pem: &[u8], kid: &str) -> anyhow::Result<Signer> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        Ok(Signer {
            header,
            key: EncodingKey::from_ec_pem(private_pem).context("reading the EC private key")?,
            alg: "ES256",
        })
    }

    /// `n` tokens for accounts `{prefix}-0` … `{prefix}-{n-1}`, valid for an hour.
    pub fn mint_many(&self, prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (0..n)
            .map(|i| {
                let sub = format!("{prefix}-{i}");
                let claims = serde_json::json!({
                    "sub": sub,
                    "aud": "rallypoint",
                    "iat": now,
                    "exp": now + 3600,
                    "name": sub,
                });
                jsonwebtoken::encode(&self.header, &claims, &self.key).context("signing a token")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn es256_tokens_verify_with_the_fixture_public_key() {
        let signer = Signer::es256(&fixture("ec-private.pem"), ES_KID).unwrap();
        let tokens = signer.mint_many("t", 2).unwrap();
        assert_eq!(tokens.len(), 2);
        let header = jsonwebtoken::decode_header(&tokens[1]).unwrap();
        assert_eq!(header.kid.as_deref(), Some(ES_KID));
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["rallypoint"]);
        let key = DecodingKey::from_ec_pem(&fixture("ec-public.pem")).unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(&tokens[1], &key, &v).unwrap();
        assert_eq!(data.claims["sub"], "t-1");
        let hs = Signer::hs256(b"0123456789abcdef0123456789abcdef");
        assert_eq!(hs.mint_many("h", 3).unwrap().len(), 3);
    }
}
