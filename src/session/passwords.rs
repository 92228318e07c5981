//! The hashes an account keeps instead of its password, and the checks of the two MySQL
//! challenge-response plugins against them. The server never sees or keeps a password on
//! login: the client proves it knows one by scrambling it with the connection's random salt.
//!
//! - `mysql_native_password`: stored `SHA1(SHA1(p))` (`*` + 40 hex digits, MySQL's form); the
//!   client sends `SHA1(p) XOR SHA1(salt + SHA1(SHA1(p)))`.
//! - `caching_sha2_password` (fast path): stored `SHA256(SHA256(p))`; the client sends
//!   `SHA256(p) XOR SHA256(SHA256(SHA256(p)) + salt)`.
//!
//! Both stored forms are unsalted, as the protocols require; they live only in the catalog
//! (0600) and are never printed.

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The stored form for `mysql_native_password`: `*` and 40 upper-case hex digits.
pub fn native_hash(password: &str) -> String {
    let stage2 = Sha1::digest(Sha1::digest(password.as_bytes()));
    format!("*{}", hex::encode_upper(stage2))
}

/// The stored form for `caching_sha2_password`: 64 hex digits.
pub fn sha2_hash(password: &str) -> String {
    hex::encode(Sha256::digest(Sha256::digest(password.as_bytes())))
}

/// Constant-time equality of two byte strings of the same length.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a `mysql_native_password` answer to `salt` against the stored `*HEX` hash.
pub fn verify_native(stored: &str, salt: &[u8], answer: &[u8]) -> bool {
    let Ok(stage2) = hex::decode(stored.trim_start_matches('*')) else {
        return false;
    };
    if answer.len() != 20 || stage2.len() != 20 {
        return false;
    }
    let mut h = Sha1::new();
    h.update(salt);
    h.update(&stage2);
    let mask = h.finalize();
    let stage1: Vec<u8> = answer.iter().zip(mask.iter()).map(|(a, m)| a ^ m).collect();
    same(&Sha1::digest(&stage1), &stage2)
}

/// Checks a `caching_sha2_password` scramble to `salt` against the stored hex hash.
pub fn verify_sha2(stored: &str, salt: &[u8], answer: &[u8]) -> bool {
    let Ok(stage2) = hex::decode(stored) else {
        return false;
    };
    if answer.len() != 32 || stage2.len() != 32 {
        return false;
    }
    let mut h = Sha256::new();
    h.update(&stage2);
    h.update(salt);
    let mask = h.finalize();
    let stage1: Vec<u8> = answer.iter().zip(mask.iter()).map(|(a, m)| a ^ m).collect();
    same(&Sha256::digest(&stage1), &stage2)
}

/// What a client sends for `password` and `salt` with `mysql_native_password` (tests).
pub fn native_answer(password: &str, salt: &[u8]) -> Vec<u8> {
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(salt);
    h.update(stage2);
    let mask = h.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, m)| a ^ m).collect()
}

/// What a client sends for `password` and `salt` with `caching_sha2_password` (tests).
pub fn sha2_answer(password: &str, salt: &[u8]) -> Vec<u8> {
    let stage1 = Sha256::digest(password.as_bytes());
    let stage2 = Sha256::digest(stage1);
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(salt);
    let mask = h.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, m)| a ^ m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_plugins_round_trip() {
        // MySQL's own PASSWORD('123456').
        assert_eq!(
            native_hash("123456"),
            "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"
        );
        let salt = b"0123456789abcdefghij";
        let n = native_hash("s3cret");
        assert!(verify_native(&n, salt, &native_answer("s3cret", salt)));
        assert!(!verify_native(&n, salt, &native_answer("wrong", salt)));
        assert!(!verify_native(
            &n,
            b"other-salt-000000000",
            &native_answer("s3cret", salt)
        ));
        assert!(!verify_native(&n, salt, b""));
        let s = sha2_hash("s3cret");
        assert!(verify_sha2(&s, salt, &sha2_answer("s3cret", salt)));
        assert!(!verify_sha2(&s, salt, &sha2_answer("wrong", salt)));
        assert!(!verify_sha2(&s, salt, &native_answer("s3cret", salt)));
        assert!(!verify_sha2("zz", salt, &sha2_answer("s3cret", salt)));
    }
}
