//! Token verification and minting.
//!
//! A [`Verifier`] holds the keys the server trusts and checks a JWT completely: the
//! header's algorithm against an explicit allowlist bound to each key (so a token can
//! never pick its own verification algorithm), `crit` (no extension is understood, so a
//! header naming any is refused, RFC 7515 §4.1.11), the signature, `exp` (required), `nbf`,
//! `aud`, `iss` and `sub`. HS256 uses the shared secret and carries no `kid`; public-key
//! tokens name their key with `kid`, and an unknown `kid` is rejected without fetching
//! anything. Errors say which check failed and never contain the token.
//!
//! Must not log tokens or secrets, and must not do network IO.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::text;

/// Shortest accepted HS256 secret: 256 bits, the size of the HMAC-SHA256 output.
pub const MIN_SECRET_BYTES: usize = 32;

/// What a player may do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Plays: has an entity and sends input.
    Player,
    /// Watches: receives snapshots and events, sends no input.
    Spectator,
}

impl Role {
    /// Lower-case name, as in the `role` claim and the `welcome` message.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Spectator => "spectator",
        }
    }
}

/// A verified identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Account id (`sub`).
    pub sub: String,
    /// Display name: `name`, else `sub`, cleaned by [`text::display_name`].
    pub name: String,
    /// Room pinned by the token.
    pub room: Option<String>,
    /// `role`, `player` by default.
    pub role: Role,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
}

pub use crate::text::MAX_NAME_CHARS;
/// Longest accepted `sub`.
pub const MAX_SUB_BYTES: usize = 128;

/// Why a token was refused. The [`fmt::Display`] text is what the 401 body's `message`
/// says: it names the check, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not three base64url parts with a JSON header and claims.
    #[error("malformed")]
    Malformed,
    /// `alg` is not one this server accepts for the key in question (`none` included).
    #[error("algorithm_not_allowed")]
    AlgorithmNotAllowed,
    /// The header has `crit`: it names extensions that must be understood, and this
    /// server understands none.
    #[error("unsupported_crit")]
    UnsupportedCrit,
    /// `kid` names no configured key, or a public-key token has no `kid`.
    #[error("unknown_kid")]
    UnknownKid,
    /// The signature does not verify.
    #[error("bad_signature")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("not_yet_valid")]
    NotYetValid,
    /// `aud` does not contain the configured audience.
    #[error("wrong_audience")]
    WrongAudience,
    /// `iss` is not the configured issuer.
    #[error("wrong_issuer")]
    WrongIssuer,
    /// A required claim is missing.
    #[error("missing_claim: {0}")]
    MissingClaim(String),
    /// A claim has the wrong type or value.
    #[error("invalid_claim: {0}")]
    InvalidClaim(String),
}

impl AuthError {
    fn from_jwt(e: &jsonwebtoken::errors::Error) -> AuthError {
        match e.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
            ErrorKind::InvalidClaimFormat(c) => AuthError::InvalidClaim(c.clone()),
            ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::InvalidAlgorithmName => AuthError::AlgorithmNotAllowed,
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_) => AuthError::BadSignature,
            _ => AuthError::Malformed,
        }
    }
}

/// A problem with the configured keys, found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The secret is too short to be safe.
    #[error(
        "{path}: the HS256 secret is {len} bytes; use at least {MIN_SECRET_BYTES} random bytes"
    )]
    WeakSecret {
        /// The file.
        path: String,
        /// Its length after trimming.
        len: usize,
    },
    /// A public key file is not an RSA, P-256, P-384 or Ed25519 public key in PEM.
    #[error("{path}: not an RSA, EC (P-256/P-384) or Ed25519 public key in PEM form")]
    UnsupportedKey {
        /// The file.
        path: String,
    },
    /// Two keys share a kid.
    #[error("key id `{0}` is configured twice")]
    DuplicateKid(String),
}

struct PublicKey {
    key: DecodingKey,
    validation: Validation,
}

/// Checks tokens against the configured keys.
pub struct Verifier {
    secret: Option<(DecodingKey, Validation)>,
    by_kid: HashMap<String, PublicKey>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.secret.is_some())
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    /// Any value, even `[]` or `null`: its presence alone is refused.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for any value of the field (serde's `default` gives `false` when absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Claims as they arrive; every field optional so that each check reports itself.
#[derive(Deserialize)]
struct RawClaims {
    sub: Option<serde_json::Value>,
    exp: Option<serde_json::Value>,
    name: Option<serde_json::Value>,
    room: Option<serde_json::Value>,
    role: Option<serde_json::Value>,
}

impl Verifier {
    /// A verifier for the given configuration, reading key files. `dev_secret` is used
    /// when the configuration names no key at all (dev mode).
    pub fn from_config(cfg: &AuthConfig, dev_secret: Option<&[u8]>) -> Result<Verifier, KeyError> {
        let secret = match (&cfg.secret_file, dev_secret) {
            (Some(path), _) => Some(read_secret(path)?),
            (None, Some(s)) => Some(s.to_vec()),
            (None, None) => None,
        };
        let mut public = Vec::new();
        for (kid, path) in &cfg.public_keys {
            let pem = std::fs::read(path).map_err(|source| KeyError::Read {
                path: path.display().to_string(),
                source,
            })?;
            public.push((kid.clone(), pem, path.display().to_string()));
        }
        Verifier::new(secret.as_deref(), &public, cfg)
    }

    /// A verifier from key material: an optional HS256 secret and `(kid, PEM, label)`
    /// public keys.
    pub fn new(
        secret: Option<&[u8]>,
        public_keys: &[(String, Vec<u8>, String)],
        cfg: &AuthConfig,
    ) -> Result<Verifier, KeyError> {
        let mut by_kid = HashMap::new();
        for (kid, pem, label) in public_keys {
            let (key, alg) =
                decoding_key_from_pem(pem).ok_or_else(|| KeyError::UnsupportedKey {
                    path: label.clone(),
                })?;
            if by_kid
                .insert(
                    kid.clone(),
                    PublicKey {
                        key,
                        validation: validation(alg, cfg),
                    },
                )
                .is_some()
            {
                return Err(KeyError::DuplicateKid(kid.clone()));
            }
        }
        let secret = secret.map(|s| {
            (
                DecodingKey::from_secret(s),
                validation(Algorithm::HS256, cfg),
            )
        });
        Ok(Verifier { secret, by_kid })
    }

    /// Verifies a token and returns who it names.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = parse_header(token)?;
        if header.crit {
            return Err(AuthError::UnsupportedCrit);
        }
        let alg = header.alg.as_deref().ok_or(AuthError::Malformed)?;
        let (key, validation) = match header.kid.as_deref() {
            Some(kid) => {
                let pk = self.by_kid.get(kid).ok_or(AuthError::UnknownKid)?;
                (&pk.key, &pk.validation)
            }
            None => match (alg, &self.secret) {
                ("HS256", Some((key, validation))) => (key, validation),
                // Public-key algorithms must name their key; anything else is not ours.
                (
                    "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384"
                    | "EdDSA",
                    _,
                ) if !self.by_kid.is_empty() => {
                    return Err(AuthError::UnknownKid);
                }
                _ => return Err(AuthError::AlgorithmNotAllowed),
            },
        };
        // The allowlist is bound to the key: a token cannot choose HS256 to be checked
        // against an RSA public key used as an HMAC secret.
        if !validation.algorithms.iter().any(|a| alg_name(*a) == alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let data = jsonwebtoken::decode::<RawClaims>(token, key, validation)
            .map_err(|e| AuthError::from_jwt(&e))?;
        identity(data.claims)
    }

    /// Whether any key is configured.
    pub fn has_keys(&self) -> bool {
        self.secret.is_some() || !self.by_kid.is_empty()
    }
}

fn validation(alg: Algorithm, cfg: &AuthConfig) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = cfg.leeway.as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_audience(&[cfg.audience.as_str()]);
    let mut required = vec!["exp", "sub", "aud"];
    if let Some(iss) = &cfg.issuer {
        v.set_issuer(&[iss.as_str()]);
        required.push("iss");
    }
    v.set_required_spec_claims(&required);
    v
}

fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::HS256 => "HS256",
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        _ => "",
    }
}

fn parse_header(token: &str) -> Result<RawHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)
}

fn identity(c: RawClaims) -> Result<Identity, AuthError> {
    let string = |v: Option<serde_json::Value>, name: &str| -> Result<Option<String>, AuthError> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(AuthError::InvalidClaim(name.into())),
        }
    };
    let sub = string(c.sub, "sub")?.ok_or_else(|| AuthError::MissingClaim("sub".into()))?;
    if sub.is_empty() || sub.len() > MAX_SUB_BYTES || sub.chars().any(char::is_control) {
        return Err(AuthError::InvalidClaim("sub".into()));
    }
    let expires_at = c
        .exp
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| AuthError::InvalidClaim("exp".into()))?;
    let name = text::display_name(string(c.name, "name")?.as_deref(), &sub);
    let room = string(c.room, "room")?;
    let role = match string(c.role, "role")?.as_deref() {
        None | Some("player") => Role::Player,
        Some("spectator") => Role::Spectator,
        Some(_) => return Err(AuthError::InvalidClaim("role".into())),
    };
    Ok(Identity {
        sub,
        name,
        room,
        role,
        expires_at,
    })
}

/// The `kid` a token's header names, for logs: printable ASCII only, at most 64
/// characters, `None` when absent or not that.
pub fn header_kid(token: &str) -> Option<String> {
    let kid = parse_header(token).ok()?.kid?;
    (kid.len() <= 64 && kid.bytes().all(|b| b.is_ascii_graphic())).then_some(kid)
}

/// Reads an HS256 secret file, trimming surrounding whitespace (files written with `echo`
/// end in a newline).
pub fn read_secret(path: &Path) -> Result<Vec<u8>, KeyError> {
    let raw = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let secret = raw.trim_ascii().to_vec();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::WeakSecret {
            path: path.display().to_string(),
            len: secret.len(),
        });
    }
    Ok(secret)
}

/// 32 random bytes, hex encoded: a dev-mode secret.
pub fn generate_secret() -> Vec<u8> {
    let mut raw = [0u8; 32];
    // The OS RNG failing is not recoverable in any useful way.
    getrandom::fill(&mut raw).expect("the operating system random number generator failed");
    raw.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

fn decoding_key_from_pem(pem: &[u8]) -> Option<(DecodingKey, Algorithm)> {
    if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        return Some((k, Algorithm::RS256));
    }
    if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        // secp384r1 is OID 1.3.132.0.34; anything else jsonwebtoken accepts is P-256.
        let p384 = pem_der(pem).is_some_and(|der| {
            der.windows(7)
                .any(|w| w == [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22])
        });
        return Some((
            k,
            if p384 {
                Algorithm::ES384
            } else {
                Algorithm::ES256
            },
        ));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        return Some((k, Algorithm::EdDSA));
    }
    None
}

fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

/// Claims of a token minted by this server (the `token` command and dev mode).
#[derive(Debug, Clone, Serialize)]
pub struct MintClaims {
    /// Account id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Issued at.
    pub iat: u64,
    /// Expiry.
    pub exp: u64,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pinned room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl MintClaims {
    /// Claims for `sub` valid from now for `ttl`.
    pub fn new(sub: impl Into<String>, aud: impl Into<String>, ttl: Duration) -> MintClaims {
        let now = unix_now();
        MintClaims {
            sub: sub.into(),
            aud: aud.into(),
            iss: None,
            iat: now,
            exp: now + ttl.as_secs(),
            name: None,
            room: None,
            role: None,
        }
    }
}

/// Signs claims with an HS256 secret.
pub fn mint(secret: &[u8], claims: &MintClaims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing with a byte secret cannot fail")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn verifier() -> Verifier {
        Verifier::new(Some(SECRET), &[], &AuthConfig::default()).unwrap()
    }

    fn claims() -> MintClaims {
        MintClaims::new("alice", "rallypoint", Duration::from_secs(60))
    }

    #[test]
    fn a_minted_token_verifies() {
        let mut c = claims();
        c.name = Some("Alice\u{7}the  Great One of the Northern Realms".into());
        c.role = Some(Role::Spectator);
        c.room = Some("r1".into());
        let id = verifier().verify(&mint(SECRET, &c)).unwrap();
        assert_eq!(id.sub, "alice");
        assert_eq!(id.name.chars().count(), MAX_NAME_CHARS);
        assert!(!id.name.contains('\u{7}'));
        assert_eq!(id.role, Role::Spectator);
        assert_eq!(id.room.as_deref(), Some("r1"));
    }

    #[test]
    fn each_check_names_itself() {
        let v = verifier();
        let mut c = claims();
        c.exp = unix_now() - 3600;
        assert_eq!(v.verify(&mint(SECRET, &c)), Err(AuthError::Expired));
        let mut c = claims();
        c.aud = "other".into();
        assert_eq!(v.verify(&mint(SECRET, &c)), Err(AuthError::WrongAudience));
        assert_eq!(
            v.verify(&mint(b"another secret of thirty-two bytes!", &claims())),
            Err(AuthError::BadSignature)
        );
        assert_eq!(v.verify("not.a.token"), Err(AuthError::Malformed));
        assert_eq!(v.verify("garbage"), Err(AuthError::Malformed));
        assert_eq!(v.verify(""), Err(AuthError::Malformed));
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let body = b64(&format!(
            r#"{{"sub":"a","aud":"rallypoint","exp":{}}}"#,
            unix_now() + 60
        ));
        let token = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), body);
        assert_eq!(
            verifier().verify(&token),
            Err(AuthError::AlgorithmNotAllowed)
        );
        let token = format!("{}.{}.", b64(r#"{"alg":"none","kid":"k1"}"#), body);
        assert_eq!(verifier().verify(&token), Err(AuthError::UnknownKid));
    }

    #[test]
    fn a_crit_header_is_refused_for_every_algorithm() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let sign = |header: &Header, key: &EncodingKey| {
            jsonwebtoken::encode(header, &claims(), key).unwrap()
        };
        let pem = |name: &str| {
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../tests/fixtures")
                    .join(name),
            )
            .unwrap()
        };
        let public = [
            ("ec".to_owned(), pem("ec-public.pem"), "ec".to_owned()),
            ("rsa".to_owned(), pem("rsa-public.pem"), "rsa".to_owned()),
        ];
        let v = Verifier::new(Some(SECRET), &public, &AuthConfig::default()).unwrap();
        let keys = [
            (Algorithm::HS256, None, EncodingKey::from_secret(SECRET)),
            (
                Algorithm::ES256,
                Some("ec"),
                EncodingKey::from_ec_pem(&pem("ec-private.pem")).unwrap(),
            ),
            (
                Algorithm::RS256,
                Some("rsa"),
                EncodingKey::from_rsa_pem(&pem("rsa-private.pem")).unwrap(),
            ),
        ];
        for (alg, kid, key) in keys {
            let mut header = Header::new(alg);
            header.kid = kid.map(str::to_owned);
            assert!(
                v.verify(&sign(&header, &key)).is_ok(),
                "{alg:?} without crit"
            );
            // A header written by hand and signed with the key: valid as it stands.
            let payload = sign(&header, &key).split('.').nth(1).unwrap().to_owned();
            let signed_with = |json: &serde_json::Value| {
                let signed = format!("{}.{payload}", b64(&json.to_string()));
                let signature = jsonwebtoken::crypto::sign(signed.as_bytes(), &key, alg).unwrap();
                format!("{signed}.{signature}")
            };
            let plain: serde_json::Value = serde_json::to_value(&header).unwrap();
            assert!(v.verify(&signed_with(&plain)).is_ok(), "{alg:?} by hand");
            for crit in [r#"["exp"]"#, r#"["b64"]"#, "[]", "null", r#""x""#] {
                let mut json = plain.clone();
                json["crit"] = serde_json::from_str(crit).unwrap();
                assert_eq!(
                    v.verify(&signed_with(&json)),
                    Err(AuthError::UnsupportedCrit),
                    "{alg:?} crit {crit}"
                );
            }
        }
    }

    #[test]
    fn names_are_cleaned_and_fall_back_to_the_sub() {
        let mut c = claims();
        c.name = Some("\u{202E}\u{200B}".into());
        assert_eq!(verifier().verify(&mint(SECRET, &c)).unwrap().name, "alice");
        c.name = Some("ev\u{202E}il\u{0}".into());
        assert_eq!(verifier().verify(&mint(SECRET, &c)).unwrap().name, "evil");
    }

    #[test]
    fn the_kid_is_read_for_logs_only_when_printable() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = |h: &str| format!("{}.e30.sig", b64(h));
        assert_eq!(
            header_kid(&token(r#"{"alg":"ES256","kid":"k1"}"#)).as_deref(),
            Some("k1")
        );
        assert_eq!(header_kid(&token(r#"{"alg":"ES256","kid":"a\nb"}"#)), None);
        assert_eq!(header_kid(&token(r#"{"alg":"HS256"}"#)), None);
        assert_eq!(header_kid("garbage"), None);
    }

    #[test]
    fn secrets_must_be_long() {
        let dir = std::env::temp_dir().join(format!("rp-secret-{}", std::process::id()));
        std::fs::write(&dir, "short\n").unwrap();
        assert!(matches!(
            read_secret(&dir),
            Err(KeyError::WeakSecret { len: 5, .. })
        ));
        std::fs::write(&dir, format!("{}\n", String::from_utf8_lossy(SECRET))).unwrap();
        assert_eq!(read_secret(&dir).unwrap(), SECRET);
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn generated_secrets_differ_and_are_long_enough() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert!(a.len() >= MIN_SECRET_BYTES);
    }
}
