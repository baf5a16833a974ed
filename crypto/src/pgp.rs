//! Sequoia plumbing shared by keys, grants, envelopes and attachments: one
//! decryption helper that records *why* opening failed, so each failure maps to
//! its own [`CryptoError`] instead of a generic "could not decrypt".

use std::io::{Read, Write};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::cert::amalgamation::{ValidAmalgamation, ValidateAmalgamation};
use openpgp::crypto::{Password, S2K, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, GoodChecksum, MessageLayer, MessageStructure,
    VerificationError, VerificationHelper,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::policy::{Policy, StandardPolicy};
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Recipient};
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, Fingerprint, KeyHandle, Packet};
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};
use crate::keys::{AEAD, Certificate, LockParams, SYM, SecretKey};

/// How far a reader may trust what they opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Signed by the key the look-up returned, and the signature checks.
    Valid,
    /// Signed, but the look-up knows no certificate for the signer's fingerprint.
    UnknownSigner,
    /// The signature does not verify (or is missing): content must not be shown as genuine.
    BadSignature,
    /// An attachment blob does not match its signed manifest entry.
    /// ([`crate::open_attachment`] reports this as [`CryptoError::AttachmentChanged`];
    /// the variant lets callers fold it into one status.)
    AttachmentChanged,
}

/// Sequoia's standard policy (rejects SHA-1 signatures, weak ciphers, …).
pub(crate) static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// Look-up from a signer's primary-key fingerprint to their certificate.
pub(crate) type Lookup<'a> = &'a dyn Fn(&Fingerprint) -> Option<Certificate>;

/// Key slots for `to`, addressed by encryption-subkey fingerprint.
pub(crate) fn recipients<'a>(to: &[&'a Certificate]) -> Vec<Recipient<'a>> {
    to.iter()
        .map(|c| {
            Recipient::new(
                c.features().clone(),
                KeyHandle::from(c.enc_key().fingerprint()),
                c.enc_key(),
            )
        })
        .collect()
}

/// Writes a SEIPDv2 (AES-256-OCB) message with no key slot: whoever knows `sk` reads it.
pub(crate) fn encrypt_with_session_key<W: Write + Send + Sync>(
    out: W,
    sk: SessionKey,
    data: &[u8],
) -> Result<()> {
    let msg = Message::new(out);
    let msg = Encryptor::with_session_key(msg, SYM, sk)
        .map_err(CryptoError::pgp)?
        .aead_algo(AEAD)
        .build()
        .map_err(CryptoError::pgp)?;
    let mut lw = LiteralWriter::new(msg).build().map_err(CryptoError::pgp)?;
    lw.write_all(data)?;
    lw.finalize().map_err(CryptoError::pgp)?;
    Ok(())
}

/// What unlocks a message.
pub(crate) enum KeySource<'a> {
    Password(&'a Password),
    Secret(&'a SecretKey),
}

/// What happened while opening; read after a failure to name it precisely.
#[derive(Default)]
pub(crate) struct State {
    decrypt_called: bool,
    /// A slot addressed to our key (or a password slot) was present.
    slot_found: bool,
    /// A slot not addressed to our key nevertheless decrypted with it (its recipient id was altered).
    slot_misaddressed: bool,
    /// A slot yielded a session key.
    slot_decrypted: bool,
    /// The body accepted that session key.
    accepted: bool,
    /// Argon2 parameters were out of bounds.
    bad_params: bool,
    pub(crate) session_key: Option<SessionKey>,
    pub(crate) verification: Option<Verified>,
}

/// Outcome of signature checking.
#[derive(Clone, Debug)]
pub(crate) struct Verified {
    pub(crate) status: Verification,
    pub(crate) signer: Option<Fingerprint>,
    pub(crate) signed_at: Option<SystemTime>,
}

pub(crate) struct Helper<'a, 's> {
    source: KeySource<'a>,
    lookup: Option<Lookup<'a>>,
    state: &'s mut State,
}

impl VerificationHelper for Helper<'_, '_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        let Some(lookup) = self.lookup else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| match id {
                KeyHandle::Fingerprint(fp) => lookup(fp).map(|c| c.cert().clone()),
                KeyHandle::KeyID(_) => None,
            })
            .collect())
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        // Always Ok: we record the status instead of refusing, so the reader can be
        // told "bad signature" and the caller decides what to show.
        let mut best: Option<Verified> = None;
        let rank = |s: &Verification| match s {
            Verification::Valid => 0,
            Verification::UnknownSigner => 1,
            _ => 2,
        };
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    let v = match r {
                        Ok(GoodChecksum { sig, ka }) => Verified {
                            status: Verification::Valid,
                            signer: Some(ka.cert().fingerprint()),
                            signed_at: sig.signature_creation_time(),
                        },
                        Err(VerificationError::MissingKey { sig }) => Verified {
                            status: Verification::UnknownSigner,
                            signer: sig.issuer_fingerprints().next().cloned(),
                            signed_at: sig.signature_creation_time(),
                        },
                        Err(VerificationError::BadSignature { sig, ka, .. })
                        | Err(VerificationError::BadKey { sig, ka, .. }) => Verified {
                            status: Verification::BadSignature,
                            signer: Some(ka.cert().fingerprint()),
                            signed_at: sig.signature_creation_time(),
                        },
                        Err(VerificationError::UnboundKey { sig, .. })
                        | Err(VerificationError::MalformedSignature { sig, .. }) => Verified {
                            status: Verification::BadSignature,
                            signer: sig.issuer_fingerprints().next().cloned(),
                            signed_at: sig.signature_creation_time(),
                        },
                        Err(_) => Verified {
                            status: Verification::BadSignature,
                            signer: None,
                            signed_at: None,
                        },
                    };
                    // Keep the worst result: one bad signature taints the message.
                    if best
                        .as_ref()
                        .is_none_or(|b| rank(&v.status) > rank(&b.status))
                    {
                        best = Some(v);
                    }
                }
            }
        }
        self.state.verification = Some(best.unwrap_or(Verified {
            status: Verification::BadSignature, // unsigned: we never produce these
            signer: None,
            signed_at: None,
        }));
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_, '_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let st = &mut *self.state;
        st.decrypt_called = true;
        match self.source {
            KeySource::Password(pw) => {
                for skesk in skesks {
                    st.slot_found = true;
                    let ok_params = match skesk {
                        SKESK::V6(s) => match s.s2k() {
                            S2K::Argon2 { t, p, m, .. } => LockParams {
                                t: *t,
                                p: *p,
                                m_exp: *m,
                            }
                            .check_pub()
                            .is_ok(),
                            _ => false,
                        },
                        _ => false,
                    };
                    if !ok_params {
                        st.bad_params = true;
                        continue;
                    }
                    if let Ok((algo, sk)) = skesk.decrypt(pw) {
                        st.slot_decrypted = true;
                        if decrypt(algo.or(sym_algo), &sk) {
                            st.accepted = true;
                            st.session_key = Some(sk);
                            return Ok(None);
                        }
                    }
                }
            }
            KeySource::Secret(key) => {
                let mine = KeyHandle::from(key.certificate().enc_key().fingerprint());
                let mut kp = key.decryptor();
                let (ours, others): (Vec<&PKESK>, Vec<&PKESK>) = pkesks
                    .iter()
                    .partition(|p| p.recipient().is_none_or(|r| r.aliases(&mine)));
                for pkesk in ours {
                    st.slot_found = true;
                    if let Some((algo, sk)) = pkesk.decrypt(&mut kp, sym_algo) {
                        st.slot_decrypted = true;
                        if decrypt(algo.or(sym_algo), &sk) {
                            st.accepted = true;
                            st.session_key = Some(sk);
                            return Ok(None);
                        }
                    }
                }
                if !st.slot_found {
                    // A slot whose recipient id was altered still decrypts with our key:
                    // report it as a damaged slot, not as "not addressed to you".
                    for pkesk in others {
                        if pkesk.decrypt(&mut kp, sym_algo).is_some() {
                            st.slot_misaddressed = true;
                            break;
                        }
                    }
                }
            }
        }
        Err(openpgp::Error::MissingSessionKey("no usable key slot".into()).into())
    }
}

impl State {
    /// Names a failure from what was observed.
    pub(crate) fn classify(
        &self,
        source_kind: SourceKind,
        err: impl std::fmt::Display,
    ) -> CryptoError {
        match source_kind {
            SourceKind::Password => {
                if self.bad_params {
                    CryptoError::Malformed(
                        "locked key uses unsupported key-derivation parameters".into(),
                    )
                } else if !self.decrypt_called || !self.slot_found {
                    CryptoError::Malformed(format!("not a locked key: {err}"))
                } else if !self.slot_decrypted {
                    CryptoError::WrongPassword
                } else {
                    CryptoError::Malformed(format!("locked key damaged: {err}"))
                }
            }
            SourceKind::Secret => {
                if !self.decrypt_called {
                    CryptoError::Malformed(err.to_string())
                } else if self.slot_misaddressed {
                    CryptoError::KeySlotDamaged
                } else if !self.slot_found {
                    CryptoError::NotAddressedToYou
                } else if !self.slot_decrypted {
                    CryptoError::KeySlotDamaged
                } else {
                    CryptoError::BodyDamaged
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum SourceKind {
    Password,
    Secret,
}

impl KeySource<'_> {
    fn kind(&self) -> SourceKind {
        match self {
            KeySource::Password(_) => SourceKind::Password,
            KeySource::Secret(_) => SourceKind::Secret,
        }
    }
}

/// A small decrypted message.
pub(crate) struct Plain {
    pub(crate) data: Zeroizing<Vec<u8>>,
    pub(crate) session_key: Option<SessionKey>,
}

/// Decrypts (and verifies, if `lookup` is given) a message small enough to hold in memory.
pub(crate) fn decrypt_small(
    bytes: &[u8],
    source: KeySource<'_>,
    lookup: Option<Lookup<'_>>,
) -> Result<Plain> {
    let kind = source.kind();
    let mut state = State::default();
    // Plaintext is never longer than the ciphertext: reserve once so no
    // reallocation leaves an unzeroized copy behind.
    let mut data = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let res: openpgp::Result<()> = (|| {
        let helper = Helper {
            source,
            lookup,
            state: &mut state,
        };
        let mut d = DecryptorBuilder::from_bytes(bytes)?.with_policy(&POLICY, None, helper)?;
        d.read_to_end(&mut data)?;
        if !d.message_processed() {
            return Err(
                openpgp::Error::InvalidOperation("message not fully processed".into()).into(),
            );
        }
        Ok(())
    })();
    if let Err(e) = res {
        return Err(state.classify(kind, e));
    }
    Ok(Plain {
        data,
        session_key: state.session_key.take(),
    })
}

/// Streams the plaintext of a key-slot-less message (an attachment) in buffers of
/// `chunk` bytes: `on_chunk` takes a filled buffer and hands back an empty one (so
/// buffers can be recycled through a pipeline). Returns the plaintext length.
/// Decryption failures are [`CryptoError::AttachmentChanged`]; `on_chunk`'s errors pass through.
pub(crate) fn decrypt_stream<R: Read + Send + Sync>(
    sealed: R,
    sk: &SessionKey,
    chunk: usize,
    mut on_chunk: impl FnMut(Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<u64> {
    // The packet parser, not the streaming `Decryptor`: the latter holds back data
    // for signature checks and grew to several times the attachment here, while an
    // attachment message carries no signature (its hash is in the signed manifest).
    // Reading the literal body straight off the parser keeps memory to one chunk;
    // every AEAD chunk is authenticated before its plaintext is returned.
    let changed = |_| CryptoError::AttachmentChanged;
    let mut ppr = PacketParser::from_reader(sealed).map_err(changed)?;
    let mut total = 0u64;
    let mut saw_literal = false;
    let mut decrypted = false;
    let mut buf = Zeroizing::new(Vec::with_capacity(chunk));
    while let PacketParserResult::Some(mut pp) = ppr {
        match &pp.packet {
            Packet::SEIP(_) if !decrypted => {
                pp.decrypt(None, sk).map_err(changed)?;
                decrypted = true;
            }
            Packet::Literal(_) if decrypted && !saw_literal => {
                saw_literal = true;
                loop {
                    buf.resize(chunk, 0);
                    let mut n = 0;
                    while n < chunk {
                        match pp.read(&mut buf[n..]) {
                            Ok(0) => break,
                            Ok(k) => n += k,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(_) => return Err(CryptoError::AttachmentChanged),
                        }
                    }
                    if n == 0 {
                        break;
                    }
                    buf.truncate(n);
                    total += n as u64;
                    buf = on_chunk(buf)?;
                }
            }
            _ => return Err(CryptoError::AttachmentChanged),
        }
        ppr = pp.recurse().map_err(changed)?.1;
    }
    // The parser authenticates the final AEAD chunk and tag when the container ends.
    match ppr {
        PacketParserResult::EOF(eof) if saw_literal && eof.is_message().is_ok() => Ok(total),
        _ => Err(CryptoError::AttachmentChanged),
    }
}

/// The top-level packets before the encrypted body: the key slots.
pub(crate) fn top_level_pkesks(bytes: &[u8]) -> Result<Vec<PKESK>> {
    let mut out = Vec::new();
    let mut ppr =
        PacketParser::from_bytes(bytes).map_err(|e| CryptoError::Malformed(e.to_string()))?;
    while let PacketParserResult::Some(pp) = ppr {
        let (packet, next) = pp
            .next()
            .map_err(|e| CryptoError::Malformed(e.to_string()))?;
        match packet {
            Packet::PKESK(p) => out.push(p),
            Packet::SEIP(_) => break,
            _ => {
                return Err(CryptoError::Malformed(
                    "unexpected packet in envelope".into(),
                ));
            }
        }
        ppr = next;
    }
    Ok(out)
}

/// Reads the Argon2 parameters of a locked key without deriving anything.
pub(crate) fn locked_key_params(bytes: &[u8]) -> Result<LockParams> {
    let ppr = PacketParser::from_bytes(bytes).map_err(|e| CryptoError::Malformed(e.to_string()))?;
    if let PacketParserResult::Some(pp) = ppr
        && let Packet::SKESK(SKESK::V6(s)) = &pp.packet
        && let S2K::Argon2 { t, p, m, .. } = s.s2k()
    {
        return Ok(LockParams {
            t: *t,
            p: *p,
            m_exp: *m,
        });
    }
    Err(CryptoError::Malformed("not a locked key".into()))
}

fn malformed(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Malformed(e.to_string())
}

/// Decrypts and verifies a signed envelope straight off the packet parser: key
/// slots, then the SEIPD body holding one-pass signatures, the literal data and
/// the signatures (the parser hashes the literal for us). Same outcomes as the
/// streaming `Decryptor` with [`Helper`] (errors and verification statuses), with
/// none of its buffering, and the key-slot and signature arithmetic on the fast path.
pub(crate) fn decrypt_verify(
    bytes: &[u8],
    key: &SecretKey,
    lookup: Lookup<'_>,
) -> Result<(Zeroizing<Vec<u8>>, Verified)> {
    let mut ppr = PacketParser::from_bytes(bytes).map_err(malformed)?;
    let mut pkesks = Vec::new();
    // Key slots up to the encrypted body.
    let mut pp = loop {
        let PacketParserResult::Some(pp) = ppr else {
            return Err(CryptoError::Malformed("no encrypted body".into()));
        };
        match &pp.packet {
            Packet::SEIP(_) => break pp,
            Packet::PKESK(_) | Packet::SKESK(_) => {
                let (packet, next) = pp.next().map_err(malformed)?;
                if let Packet::PKESK(p) = packet {
                    pkesks.push(p);
                }
                ppr = next;
            }
            _ => {
                return Err(CryptoError::Malformed(
                    "unexpected packet in envelope".into(),
                ));
            }
        }
    };
    // The policy checks the streaming `Decryptor` makes on the container.
    POLICY.packet(&pp.packet).map_err(malformed)?;
    let sym_hint = match &pp.packet {
        Packet::SEIP(openpgp::packet::SEIP::V2(s)) => {
            POLICY
                .symmetric_algorithm(s.symmetric_algo())
                .map_err(malformed)?;
            POLICY.aead_algorithm(s.aead()).map_err(malformed)?;
            Some(s.symmetric_algo())
        }
        _ => None,
    };

    // Unlock: the same order and failure naming as `Helper::decrypt`.
    let mine = KeyHandle::from(key.certificate().enc_fpr().clone());
    let (ours, others): (Vec<&PKESK>, Vec<&PKESK>) = pkesks
        .iter()
        .partition(|p| p.recipient().is_none_or(|r| r.aliases(&mine)));
    let mut state = State {
        decrypt_called: true,
        ..State::default()
    };
    key.with_decryptor(|dec| {
        for pkesk in &ours {
            state.slot_found = true;
            if let Some((algo, sk)) = pkesk.decrypt(dec, sym_hint) {
                state.slot_decrypted = true;
                if pp.decrypt(algo.or(sym_hint), &sk).is_ok() {
                    state.accepted = true;
                    return;
                }
            }
        }
        if !state.slot_found {
            for pkesk in &others {
                if pkesk.decrypt(dec, sym_hint).is_some() {
                    state.slot_misaddressed = true;
                    break;
                }
            }
        }
    });
    if !state.accepted {
        return Err(state.classify(SourceKind::Secret, "no usable key slot"));
    }

    // Inside the body: OPS* Literal Sig*; any failure here is a damaged body
    // (SEIPDv2 authenticates every chunk and the whole length).
    let damaged = |_| CryptoError::BodyDamaged;
    let mut ppr = pp.recurse().map_err(damaged)?.1;
    let mut data = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut sigs = Vec::new();
    let mut saw_literal = false;
    while let PacketParserResult::Some(mut pp) = ppr {
        match &pp.packet {
            Packet::OnePassSig(_) if !saw_literal => {}
            Packet::Literal(_) if !saw_literal => {
                saw_literal = true;
                pp.read_to_end(&mut data)
                    .map_err(|_| CryptoError::BodyDamaged)?;
            }
            Packet::Signature(_) if saw_literal => {}
            _ => return Err(CryptoError::BodyDamaged),
        }
        let (packet, next) = pp.next().map_err(damaged)?;
        if let Packet::Signature(sig) = packet {
            sigs.push(sig);
        }
        ppr = next;
    }
    match ppr {
        PacketParserResult::EOF(eof) if saw_literal && eof.is_message().is_ok() => {}
        _ => return Err(CryptoError::BodyDamaged),
    }

    Ok((data, worst_verification(&sigs, lookup)))
}

/// The worst result of a message's signatures: one bad signature taints it.
fn worst_verification(sigs: &[openpgp::packet::Signature], lookup: Lookup<'_>) -> Verified {
    let rank = |s: &Verification| match s {
        Verification::Valid => 0,
        Verification::UnknownSigner => 1,
        _ => 2,
    };
    let mut best: Option<Verified> = None;
    for sig in sigs {
        let v = verify_one(sig, lookup);
        if best
            .as_ref()
            .is_none_or(|b| rank(&v.status) > rank(&b.status))
        {
            best = Some(v);
        }
    }
    best.unwrap_or(Verified {
        status: Verification::BadSignature, // unsigned: we never produce these
        signer: None,
        signed_at: None,
    })
}

/// Checks one signature as the streaming `Decryptor` does (policy at signature
/// time, key alive, not revoked, signing-capable, signature alive, policy on the
/// signature), verifying Ed25519 keys on the fast path.
fn verify_one(sig: &openpgp::packet::Signature, lookup: Lookup<'_>) -> Verified {
    let issuer_fp = || sig.issuer_fingerprints().next().cloned();
    let bad = |signer| Verified {
        status: Verification::BadSignature,
        signer,
        signed_at: sig.signature_creation_time(),
    };
    let Some(sig_time) = sig.signature_creation_time() else {
        return bad(issuer_fp());
    };
    let issuers = sig.get_issuers();
    let mut result = Verified {
        status: Verification::UnknownSigner,
        signer: issuer_fp(),
        signed_at: Some(sig_time),
    };
    if issuers.is_empty() {
        result.signer = None;
        return result;
    }
    let certs: Vec<Certificate> = issuers
        .iter()
        .filter_map(|id| match id {
            KeyHandle::Fingerprint(fp) => lookup(fp),
            KeyHandle::KeyID(_) => None,
        })
        .collect();
    for c in &certs {
        for ka in c.cert().keys().key_handles(issuers.iter()) {
            let Ok(ka) = ka.with_policy(&POLICY, sig_time) else {
                result = bad(issuer_fp());
                continue;
            };
            let signer = Some(c.fingerprint_typed());
            use openpgp::types::RevocationStatus;
            if ka.valid_cert().alive().is_err()
                || ka.alive().is_err()
                || matches!(
                    ka.valid_cert().revocation_status(),
                    RevocationStatus::Revoked(_)
                )
                || matches!(ka.revocation_status(), RevocationStatus::Revoked(_))
                || !ka.for_signing()
                || sig.signature_alive(None, None).is_err()
            {
                result = bad(signer);
                continue;
            }
            let fpr = ka.key().fingerprint();
            let fast = c
                .signers()
                .iter()
                .find(|s| s.fingerprint == fpr)
                .and_then(|s| s.ed25519.as_ref());
            let ok = match fast {
                Some(vk) => crate::fast::verify_document(sig, ka.key().role_as_unspecified(), vk),
                None => sig.verify_document(ka.key()).is_ok(),
            };
            if ok && POLICY.signature(sig, Default::default()).is_ok() {
                return Verified {
                    status: Verification::Valid,
                    signer,
                    signed_at: Some(sig_time),
                };
            }
            result = bad(signer);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What we write by hand (key slots, one-pass signature, literal, salted v6
    /// signature, SEIPDv2 with large chunks) is what Sequoia's own streaming
    /// `Decryptor` reads and verifies: the reference reader agrees with ours.
    #[test]
    fn reference_decryptor_reads_and_verifies_our_envelopes() -> Result<()> {
        let sender = SecretKey::generate("s")?;
        let readers = [SecretKey::generate("a")?, SecretKey::generate("b")?];
        let to: Vec<&Certificate> = readers.iter().map(|k| k.certificate()).collect();
        let mut draft = crate::Draft::default();
        draft.body = "x".repeat(300_000); // several AEAD chunks
        let sealed = crate::seal(&sender, &to, &draft, vec![])?;
        let cert = sender.cert();
        let lookup = |fp: &Fingerprint| (*fp == cert.fingerprint_typed()).then(|| cert.clone());
        for reader in &readers {
            let mut state = State::default();
            let mut data = Vec::new();
            let helper = Helper {
                source: KeySource::Secret(reader),
                lookup: Some(&lookup),
                state: &mut state,
            };
            let mut d = DecryptorBuilder::from_bytes(sealed.envelope.as_bytes())
                .and_then(|b| b.with_policy(&POLICY, None, helper))
                .map_err(CryptoError::pgp)?;
            d.read_to_end(&mut data)?;
            assert!(d.message_processed());
            drop(d);
            let v = state.verification.take().ok_or(CryptoError::BodyDamaged)?;
            assert_eq!(v.status, Verification::Valid);
            assert_eq!(v.signer, Some(cert.fingerprint_typed()));
            let ours = crate::open(&sealed.envelope, reader, lookup)?;
            assert_eq!(ours.verification, Verification::Valid);
            assert_eq!(ours.inner.body, draft.body);
        }
        Ok(())
    }
}
