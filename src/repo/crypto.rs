//! Encrypted repositories (format version 2): what is encrypted, with which keys, and how.
//!
//! - **Keys.** The user gives a 256-bit key (`encryption.key`, 64 hex digits, or
//!   `encryption.key_file`) or a passphrase (`encryption.passphrase_env` names the environment
//!   variable), stretched with Argon2id (salt and costs in the format file). From that master
//!   secret HKDF-SHA256 derives three independent keys: the data key, the name key and the
//!   check key. The format file holds `key_check` = HMAC(check key, a fixed text), so a wrong
//!   key is refused when the repository is opened, before any object is read or written.
//! - **Objects and manifests** are sealed with AES-256-GCM in the STREAM construction (aead's
//!   `stream`, big-endian 32-bit counter): a header (`SRBENC` 0 1, then a random 32-byte salt),
//!   then segments of [`SEGMENT`] plaintext bytes each followed by its 16-byte tag, the last
//!   one shorter (possibly empty) and flagged as last. Each object's AES key is HKDF(data key,
//!   its salt), so nonces (counters under a fresh key) never repeat. A changed byte, a
//!   reordered, missing or added segment, or a truncated object fails authentication.
//! - **Names.** An object is named by HMAC-SHA256(name key, SHA-256 of its content) rather
//!   than by the SHA-256 itself, so equal content still has one name (dedup within the
//!   repository, and a backup still knows an object's name before reading the file) but the
//!   names say nothing to whoever lacks the key (a known file's SHA-256 cannot be looked up).
//!   Manifests, which are encrypted, keep the plain SHA-256, and every read checks it.
//!
//! Kopia's design, not restic's: restic names blobs by the plain SHA-256 of their content.

use std::io::Write;

use aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256 as Sha256Hasher;

use super::format::Sha256;

pub use super::config::ENCRYPTION_ALGORITHM as ALGORITHM;
/// Plaintext bytes per sealed segment.
pub const SEGMENT: usize = 1024 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 8] = b"SRBENC\x00\x01";
const SALT: usize = 32;
/// Header bytes before the first segment.
pub const HEADER: usize = MAGIC.len() + SALT;
const CHECK_TEXT: &[u8] = b"srbackup repository key check, version 2";

pub use super::format::{EncryptionInfo, Kdf};

/// Argon2id costs for new repositories (OWASP's first recommendation: 64 MiB, 3 passes).
const KDF_MEMORY_KIB: u32 = 64 * 1024;
const KDF_ITERATIONS: u32 = 3;
const KDF_PARALLELISM: u32 = 1;
/// The most a format file may ask for: four times the costs this version writes (a hostile file
/// must not make every command take seconds and gigabytes before it fails).
const KDF_MAX_MEMORY_KIB: u32 = 4 * KDF_MEMORY_KIB;
const KDF_MAX_ITERATIONS: u32 = 4 * KDF_ITERATIONS;
/// The shortest passphrase a new repository takes.
pub const MIN_PASSPHRASE: usize = 12;

/// Argon2id with a new salt, for a new passphrase repository.
pub fn new_kdf() -> Kdf {
    Kdf {
        name: "argon2id".into(),
        salt: hex::encode(rand::random::<[u8; 16]>()),
        memory_kib: KDF_MEMORY_KIB,
        iterations: KDF_ITERATIONS,
        parallelism: KDF_PARALLELISM,
    }
}

/// The 256-bit master secret of `passphrase` under `kdf`.
pub fn derive(kdf: &Kdf, passphrase: &[u8]) -> Result<[u8; 32], String> {
    if kdf.name != "argon2id" {
        return Err(format!("unknown key derivation {:?}", kdf.name));
    }
    if kdf.memory_kib > KDF_MAX_MEMORY_KIB
        || kdf.iterations > KDF_MAX_ITERATIONS
        || kdf.parallelism == 0
        || kdf.parallelism > 4
    {
        return Err("the key derivation's costs are out of range".into());
    }
    let salt = hex::decode(&kdf.salt).map_err(|_| "the KDF salt is not hex".to_string())?;
    let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| format!("bad KDF parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(passphrase, &salt, &mut out)
        .map_err(|e| format!("key derivation failed: {e}"))?;
    Ok(out)
}

/// The keys of an open encrypted repository. Never printed (no Debug of the bytes).
pub struct Keys {
    data: [u8; 32],
    name: [u8; 32],
    check: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(…)")
    }
}

fn expand(master: &[u8; 32], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let hk = Hkdf::<Sha256Hasher>::new(Some(salt), master);
    let mut out = [0u8; 32];
    hk.expand(info, &mut out)
        .expect("32 bytes is a valid HKDF length");
    out
}

impl Keys {
    /// The keys of a repository whose format file holds `salt` (32 bytes).
    pub fn from_master(master: &[u8; 32], salt: &[u8]) -> Keys {
        Keys {
            data: expand(master, salt, b"srbackup data key"),
            name: expand(master, salt, b"srbackup name key"),
            check: expand(master, salt, b"srbackup check key"),
        }
    }

    /// A new repository's salt, hex.
    pub fn new_salt() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    /// What the format file records to recognise these keys.
    pub fn key_check(&self) -> String {
        let mut mac = <Hmac<Sha256Hasher> as Mac>::new_from_slice(&self.check)
            .expect("HMAC takes any key length");
        mac.update(CHECK_TEXT);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `recorded` is these keys' check (in constant time).
    pub fn matches(&self, recorded: &str) -> bool {
        let Ok(bytes) = hex::decode(recorded) else {
            return false;
        };
        let mut mac = <Hmac<Sha256Hasher> as Mac>::new_from_slice(&self.check)
            .expect("HMAC takes any key length");
        mac.update(CHECK_TEXT);
        mac.verify_slice(&bytes).is_ok()
    }

    /// The name an object of content hash `hash` is stored under.
    pub fn object_name(&self, hash: &Sha256) -> Sha256 {
        let mut mac = <Hmac<Sha256Hasher> as Mac>::new_from_slice(&self.name)
            .expect("HMAC takes any key length");
        mac.update(&hex::decode(hash.as_str()).unwrap_or_default());
        Sha256::parse(&hex::encode(mac.finalize().into_bytes()))
            .expect("an HMAC-SHA256 is 64 hex digits")
    }

    /// The salt of an object stored as is, derived from its content's hash: two uploads of the
    /// same content (racing backups, a damaged object replaced) write the same bytes, so a
    /// reader never mixes two versions of one object. Compressed objects take a random salt
    /// instead: the same content compressed at another level is another plaintext.
    pub fn object_salt(&self, hash: &Sha256) -> [u8; SALT] {
        let mut mac = <Hmac<Sha256Hasher> as Mac>::new_from_slice(&self.name)
            .expect("HMAC takes any key length");
        mac.update(b"srbackup object salt");
        mac.update(&hex::decode(hash.as_str()).unwrap_or_default());
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self, salt: &[u8]) -> Aes256Gcm {
        let hk = Hkdf::<Sha256Hasher>::new(Some(salt), &self.data);
        let mut key = [0u8; 32];
        hk.expand(b"srbackup object key", &mut key)
            .expect("32 bytes is a valid HKDF length");
        Aes256Gcm::new(&key.into())
    }
}

/// The STREAM nonce prefix: zero, as every object has a key of its own.
fn nonce() -> aead::stream::Nonce<Aes256Gcm, aead::stream::StreamBE32<Aes256Gcm>> {
    Default::default()
}

/// Seals a stream: plaintext in with [`Sealer::push`], ciphertext out.
pub struct Sealer {
    encryptor: EncryptorBE32<Aes256Gcm>,
    header: Option<Vec<u8>>,
    held: Vec<u8>,
}

impl Sealer {
    /// A sealer with a random salt (manifests, the retention policy, compressed objects).
    pub fn new(keys: &Keys) -> Sealer {
        Sealer::with_salt(keys, rand::random())
    }

    /// A sealer whose salt (and so whose per-object key) is `salt`. Only for content the salt
    /// is derived from ([`Keys::object_salt`]): one key must never seal two plaintexts.
    pub fn with_salt(keys: &Keys, salt: [u8; SALT]) -> Sealer {
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&salt);
        Sealer {
            encryptor: EncryptorBE32::from_aead(keys.cipher(&salt), &nonce()),
            header: Some(header),
            held: Vec::new(),
        }
    }

    /// Appends the ciphertext of what `data` completes to `out`. A segment is sealed only
    /// once more follows it (the last one is sealed, flagged last, by [`Sealer::finish`]).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        self.held.extend_from_slice(data);
        let mut start = 0;
        while self.held.len() - start > SEGMENT {
            let sealed = self
                .encryptor
                .encrypt_next(&self.held[start..start + SEGMENT])
                .map_err(|_| std::io::Error::other("encryption failed"))?;
            out.extend_from_slice(&sealed);
            start += SEGMENT;
        }
        self.held.drain(..start);
        Ok(())
    }

    pub fn finish(mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        let sealed = self
            .encryptor
            .encrypt_last(self.held.as_slice())
            .map_err(|_| std::io::Error::other("encryption failed"))?;
        out.extend_from_slice(&sealed);
        Ok(())
    }
}

/// Seals a whole small value (a manifest).
pub fn seal(keys: &Keys, plaintext: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(plaintext.len() + HEADER + TAG * (plaintext.len() / SEGMENT + 1));
    let mut s = Sealer::new(keys);
    s.push(plaintext, &mut out).expect("sealing into memory");
    s.finish(&mut out).expect("sealing into memory");
    out
}

fn damaged(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}

const AUTH: &str = "authentication failed: the stored bytes were changed, cut short or reordered, or the key is wrong";

/// Opens a sealed stream written into it, writing the plaintext to `inner`; [`Opener::finish`]
/// checks the last segment. Nothing unauthenticated ever reaches `inner`.
pub struct Opener<'k, W: Write> {
    keys: &'k Keys,
    inner: W,
    decryptor: Option<DecryptorBE32<Aes256Gcm>>,
    held: Vec<u8>,
    start: usize,
}

impl<'k, W: Write> Opener<'k, W> {
    pub fn new(keys: &'k Keys, inner: W) -> Self {
        Opener {
            keys,
            inner,
            decryptor: None,
            held: Vec::new(),
            start: 0,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.held[self.start..]
    }

    fn header(&mut self) -> std::io::Result<()> {
        if self.decryptor.is_none() && self.pending().len() >= HEADER {
            let head = &self.pending()[..HEADER];
            if &head[..MAGIC.len()] != MAGIC {
                return Err(damaged("not an encrypted srbackup object (bad header)"));
            }
            let cipher = self.keys.cipher(&head[MAGIC.len()..]);
            self.decryptor = Some(DecryptorBE32::from_aead(cipher, &nonce()));
            self.start += HEADER;
        }
        Ok(())
    }

    /// Ends the stream: the last segment must be there and authentic.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.header()?;
        let Some(decryptor) = self.decryptor.take() else {
            return Err(damaged("the encrypted object is shorter than its header"));
        };
        let plain = decryptor
            .decrypt_last(self.pending())
            .map_err(|_| damaged(AUTH))?;
        self.inner.write_all(&plain)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Opener<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.held.extend_from_slice(data);
        self.header()?;
        if let Some(decryptor) = self.decryptor.as_mut() {
            while self.held.len() - self.start > SEGMENT + TAG {
                let segment = &self.held[self.start..self.start + SEGMENT + TAG];
                let plain = decryptor.decrypt_next(segment).map_err(|_| damaged(AUTH))?;
                self.inner.write_all(&plain)?;
                self.start += SEGMENT + TAG;
            }
        }
        // Keep the buffer from growing: drop what was consumed once it is most of it.
        if self.start > 0 && self.start * 2 >= self.held.len() {
            self.held.drain(..self.start);
            self.start = 0;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Opens a whole sealed value (a manifest).
pub fn open(keys: &Keys, sealed: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut o = Opener::new(keys, Vec::new());
    o.write_all(sealed)?;
    o.finish()
}

/// The 256-bit key of `"encryption.key"` or of a key file: 64 hex digits (white space around
/// them ignored), or exactly 32 raw bytes.
pub fn key_from_text(bytes: &[u8]) -> Result<[u8; 32], String> {
    let text = std::str::from_utf8(bytes).ok().map(str::trim);
    if let Some(t) = text
        && t.len() == 64
        && let Ok(raw) = hex::decode(t)
    {
        return Ok(raw.try_into().expect("64 hex digits are 32 bytes"));
    }
    // 32 hex characters are a 128-bit key written as text (`openssl rand -hex 16`), not 32
    // raw bytes: refused rather than taken for a weaker key than it looks.
    if let Some(t) = text
        && t.len() == 32
        && t.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err("32 hex digits are a 128-bit key: give 64 hex digits (256 bits)".into());
    }
    if bytes.len() == 32 {
        return Ok(bytes.try_into().expect("checked length"));
    }
    Err("a key is 64 hex digits (256 bits), or a file of exactly 32 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_master(&[7u8; 32], b"salt")
    }

    fn roundtrip(len: usize, chunk: usize) {
        let k = keys();
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut sealed = Vec::new();
        let mut s = Sealer::new(&k);
        for c in data.chunks(chunk.max(1)) {
            s.push(c, &mut sealed).unwrap();
        }
        s.finish(&mut sealed).unwrap();
        assert_eq!(
            sealed.len(),
            HEADER + len + TAG * (len.saturating_sub(1) / SEGMENT + 1)
        );
        // Fed back in pieces of another size.
        let mut o = Opener::new(&k, Vec::new());
        for c in sealed.chunks(chunk / 3 + 7) {
            o.write_all(c).unwrap();
        }
        assert_eq!(o.finish().unwrap(), data);
    }

    #[test]
    fn streams_round_trip_at_every_segment_boundary() {
        for len in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            2 * SEGMENT,
            3 * SEGMENT + 5,
        ] {
            roundtrip(len, 8 * 1024 * 1024);
            roundtrip(len, 4096);
        }
    }

    #[test]
    fn any_change_fails_authentication() {
        let k = keys();
        let data = vec![42u8; 2 * SEGMENT + 10];
        let sealed = seal(&k, &data);
        for at in [
            0,
            HEADER - 1,
            HEADER,
            HEADER + SEGMENT + 3,
            sealed.len() - 1,
        ] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(open(&k, &bad).is_err(), "a flip at {at} went unnoticed");
        }
        // Cut short at a segment boundary, or a segment dropped.
        assert!(open(&k, &sealed[..HEADER + SEGMENT + TAG]).is_err());
        let mut dropped = sealed[..HEADER + SEGMENT + TAG].to_vec();
        dropped.extend_from_slice(&sealed[HEADER + 2 * (SEGMENT + TAG)..]);
        assert!(open(&k, &dropped).is_err());
        // Another key.
        assert!(open(&Keys::from_master(&[8u8; 32], b"salt"), &sealed).is_err());
        assert_eq!(open(&k, &sealed).unwrap(), data);
    }

    #[test]
    fn names_are_keyed_and_checks_recognise_only_their_key() {
        let h = Sha256::parse(&"ab".repeat(32)).unwrap();
        let a = keys();
        let b = Keys::from_master(&[8u8; 32], b"salt");
        assert_eq!(a.object_name(&h), a.object_name(&h));
        assert_ne!(a.object_name(&h), b.object_name(&h));
        assert_ne!(a.object_name(&h), h);
        assert!(a.matches(&a.key_check()));
        // The same key under another repository's salt: unrelated.
        let other = Keys::from_master(&[7u8; 32], b"other salt");
        assert_ne!(a.key_check(), other.key_check());
        assert_ne!(a.object_name(&h), other.object_name(&h));
        assert!(!a.matches(&b.key_check()));
        assert!(!a.matches("zz"));
    }

    #[test]
    fn keys_are_read_as_hex_or_raw_bytes() {
        assert_eq!(
            key_from_text(format!(" {}\n", "0f".repeat(32)).as_bytes()).unwrap(),
            [15u8; 32]
        );
        assert_eq!(key_from_text(&[1u8; 32]).unwrap(), [1u8; 32]);
        assert!(key_from_text(b"short").is_err());
        assert!(key_from_text("0f".repeat(16).as_bytes()).is_err());
        assert!(key_from_text("zz".repeat(32).as_bytes()).is_err());
    }
}
