//! Secrets the API must keep but never show (SMTP passwords): sealed with XChaCha20-Poly1305
//! under a key derived from the store's server secret, so a copy of the table alone (a backup,
//! an export) does not reveal them, and every process sharing the store can open them.

use crate::App;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PURPOSE: &[u8] = b"linkcrm sealed secrets v1";

impl App {
    fn sealing_cipher(&self) -> XChaCha20Poly1305 {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.server_secret()).expect("any key length");
        mac.update(PURPOSE);
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        XChaCha20Poly1305::new(&key.into())
    }

    /// `v1.<hex nonce>.<hex ciphertext>`
    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).expect("the OS provides randomness");
        let ct =
            self.sealing_cipher().encrypt(&XNonce::from(nonce), plaintext.as_bytes()).expect("encryption cannot fail");
        format!("v1.{}.{}", hex::encode(nonce), hex::encode(ct))
    }

    pub fn open_sealed(&self, sealed: &str) -> Option<String> {
        let mut parts = sealed.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let nonce: [u8; 24] = hex::decode(parts.next()?).ok()?.try_into().ok()?;
        let ct = hex::decode(parts.next()?).ok()?;
        let pt = self.sealing_cipher().decrypt(&XNonce::from(nonce), ct.as_slice()).ok()?;
        String::from_utf8(pt).ok()
    }
}
