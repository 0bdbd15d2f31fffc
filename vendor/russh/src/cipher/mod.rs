// Copyright 2016 Pierre-Étienne Meunier
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//!
//! This module exports cipher names for use with [Preferred].
use std::borrow::Borrow;
use std::collections::HashMap;
use std::convert::TryFrom;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::num::Wrapping;
use std::sync::LazyLock;

use aes::{Aes128, Aes192, Aes256};
use byteorder::{BigEndian, ByteOrder};
use block::CtrWrapper;
use ctr::Ctr128BE;
use bytes::{Bytes, BytesMut};
use delegate::delegate;
use log::trace;
use ssh_encoding::Encode;
use tokio::io::{AsyncRead, AsyncReadExt};

use self::cbc::CbcWrapper;
use crate::Error;
use crate::mac::MacAlgorithm;
use crate::sshbuffer::SSHBuffer;

pub(crate) mod block;
pub(crate) mod cbc;
pub(crate) mod chacha20poly1305;
pub(crate) mod clear;
/// AES-GCM from AWS-LC (`gcm.rs` over aws-lc-rs's `aead`).
#[cfg(feature = "aws-lc-rs")]
pub(crate) mod gcm_aws_lc {
    use aws_lc_rs as backend;
    include!("gcm.rs");
}
/// AES-GCM from ring (`gcm.rs` over ring's `aead`).
#[cfg(feature = "ring")]
pub(crate) mod gcm_ring {
    use ring as backend;
    include!("gcm.rs");
}

use block::SshBlockCipher;
use chacha20poly1305::SshChacha20Poly1305Cipher;
use clear::Clear;

pub(crate) trait Cipher {
    fn needs_mac(&self) -> bool {
        false
    }
    fn key_len(&self) -> usize;
    fn nonce_len(&self) -> usize {
        0
    }
    fn make_opening_key(
        &self,
        key: &[u8],
        nonce: &[u8],
        mac_key: &[u8],
        mac: &dyn MacAlgorithm,
    ) -> Box<dyn OpeningKey + Send>;
    fn make_sealing_key(
        &self,
        key: &[u8],
        nonce: &[u8],
        mac_key: &[u8],
        mac: &dyn MacAlgorithm,
    ) -> Box<dyn SealingKey + Send>;
}

/// `clear`
pub const CLEAR: Name = Name("clear");
/// `3des-cbc`
#[cfg(feature = "des")]
pub const TRIPLE_DES_CBC: Name = Name("3des-cbc");
/// `aes128-ctr`
pub const AES_128_CTR: Name = Name("aes128-ctr");
/// `aes192-ctr`
pub const AES_192_CTR: Name = Name("aes192-ctr");
/// `aes128-cbc`
pub const AES_128_CBC: Name = Name("aes128-cbc");
/// `aes192-cbc`
pub const AES_192_CBC: Name = Name("aes192-cbc");
/// `aes256-cbc`
pub const AES_256_CBC: Name = Name("aes256-cbc");
/// `aes256-ctr`
pub const AES_256_CTR: Name = Name("aes256-ctr");
/// `aes128-gcm@openssh.com`
pub const AES_128_GCM: Name = Name("aes128-gcm@openssh.com");
/// `aes256-gcm@openssh.com`
pub const AES_256_GCM: Name = Name("aes256-gcm@openssh.com");
/// `chacha20-poly1305@openssh.com`
pub const CHACHA20_POLY1305: Name = Name("chacha20-poly1305@openssh.com");
/// `none`
pub const NONE: Name = Name("none");

pub(crate) static _CLEAR: Clear = Clear {};
#[cfg(feature = "des")]
static _3DES_CBC: SshBlockCipher<CbcWrapper<des::TdesEde3>> = SshBlockCipher(PhantomData);
static _AES_128_CTR: SshBlockCipher<CtrWrapper<Ctr128BE<Aes128>>> = SshBlockCipher(PhantomData);
static _AES_192_CTR: SshBlockCipher<CtrWrapper<Ctr128BE<Aes192>>> = SshBlockCipher(PhantomData);
static _AES_256_CTR: SshBlockCipher<CtrWrapper<Ctr128BE<Aes256>>> = SshBlockCipher(PhantomData);
#[cfg(feature = "aws-lc-rs")]
static _AES_128_GCM_AWS_LC: gcm_aws_lc::GcmCipher =
    gcm_aws_lc::GcmCipher(&aws_lc_rs::aead::AES_128_GCM);
#[cfg(feature = "aws-lc-rs")]
static _AES_256_GCM_AWS_LC: gcm_aws_lc::GcmCipher =
    gcm_aws_lc::GcmCipher(&aws_lc_rs::aead::AES_256_GCM);
#[cfg(feature = "ring")]
static _AES_128_GCM_RING: gcm_ring::GcmCipher = gcm_ring::GcmCipher(&ring::aead::AES_128_GCM);
#[cfg(feature = "ring")]
static _AES_256_GCM_RING: gcm_ring::GcmCipher = gcm_ring::GcmCipher(&ring::aead::AES_256_GCM);
static _AES_128_CBC: SshBlockCipher<CbcWrapper<Aes128>> = SshBlockCipher(PhantomData);
static _AES_192_CBC: SshBlockCipher<CbcWrapper<Aes192>> = SshBlockCipher(PhantomData);
static _AES_256_CBC: SshBlockCipher<CbcWrapper<Aes256>> = SshBlockCipher(PhantomData);
static _CHACHA20_POLY1305: SshChacha20Poly1305Cipher = SshChacha20Poly1305Cipher {};

pub static ALL_CIPHERS: &[&Name] = &[
    &CLEAR,
    &NONE,
    #[cfg(feature = "des")]
    &TRIPLE_DES_CBC,
    &AES_128_CTR,
    &AES_192_CTR,
    &AES_256_CTR,
    &AES_128_GCM,
    &AES_256_GCM,
    &AES_128_CBC,
    &AES_192_CBC,
    &AES_256_CBC,
    &CHACHA20_POLY1305,
];

pub(crate) static CIPHERS: LazyLock<HashMap<&'static Name, &(dyn Cipher + Send + Sync)>> =
    LazyLock::new(|| {
        let mut h: HashMap<&'static Name, &(dyn Cipher + Send + Sync)> = HashMap::new();
        h.insert(&CLEAR, &_CLEAR);
        h.insert(&NONE, &_CLEAR);
        #[cfg(feature = "des")]
        h.insert(&TRIPLE_DES_CBC, &_3DES_CBC);
        h.insert(&AES_128_CTR, &_AES_128_CTR);
        h.insert(&AES_192_CTR, &_AES_192_CTR);
        h.insert(&AES_256_CTR, &_AES_256_CTR);
        let [aes_128_gcm, aes_256_gcm] = aes_gcm();
        h.insert(&AES_128_GCM, aes_128_gcm);
        h.insert(&AES_256_GCM, aes_256_gcm);
        h.insert(&AES_128_CBC, &_AES_128_CBC);
        h.insert(&AES_192_CBC, &_AES_192_CBC);
        h.insert(&AES_256_CBC, &_AES_256_CBC);
        h.insert(&CHACHA20_POLY1305, &_CHACHA20_POLY1305);
        assert_eq!(h.len(), ALL_CIPHERS.len());
        h
    });

/// `aes128-gcm@openssh.com` and `aes256-gcm@openssh.com`: from AWS-LC or ring, whichever is
/// built; where both are, from the one with the faster routine for this CPU
/// ([`aes_gcm_from_ring`]).
fn aes_gcm() -> [&'static (dyn Cipher + Send + Sync); 2] {
    #[cfg(all(feature = "aws-lc-rs", feature = "ring"))]
    if aes_gcm_from_ring() {
        log::debug!("AES-GCM from ring (no AVX-512 AES-GCM in AWS-LC on this CPU)");
        return [&_AES_128_GCM_RING, &_AES_256_GCM_RING];
    }
    #[cfg(feature = "aws-lc-rs")]
    return [&_AES_128_GCM_AWS_LC, &_AES_256_GCM_AWS_LC];
    #[cfg(not(feature = "aws-lc-rs"))]
    return [&_AES_128_GCM_RING, &_AES_256_GCM_RING];
}

/// Whether ring's AES-GCM is the faster where both libraries are built. AWS-LC (aws-lc-sys
/// 0.47) has a vector AES-GCM only for AVX-512: VAES, VPCLMULQDQ and AVX-512 F, DQ, BW and VL
/// (`crypto_gcm_avx512_enabled` in its `gcm.c`; never on Windows); without it, AWS-LC runs the
/// AES-NI routine OpenSSL has, where ring (0.17.14) has a VAES/AVX2 one and otherwise the same
/// AES-NI routine. Tunnelbook measured both ways on x86-64 (docs/PERFORMANCE.md, 2026-12-02):
/// AWS-LC 7 % less CPU per GiB with AVX-512, ring 5–7 % less with AVX2 and VAES. Other
/// architectures keep AWS-LC (not measured).
#[cfg(all(feature = "aws-lc-rs", feature = "ring"))]
fn aes_gcm_from_ring() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let aws_lc_avx512 = !cfg!(windows)
            && has!("vaes")
            && has!("vpclmulqdq")
            && has!("avx512f")
            && has!("avx512dq")
            && has!("avx512bw")
            && has!("avx512vl");
        !aws_lc_avx512
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[derive(Debug, PartialEq, Eq, Copy, Clone, Hash)]
pub struct Name(&'static str);
impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl Encode for Name {
    delegate! { to self.as_ref() {
        fn encoded_len(&self) -> Result<usize, ssh_encoding::Error>;
        fn encode(&self, writer: &mut impl ssh_encoding::Writer) -> Result<(), ssh_encoding::Error>;
    }}
}

impl Borrow<str> for &Name {
    fn borrow(&self) -> &str {
        self.0
    }
}

impl TryFrom<&str> for Name {
    type Error = ();
    fn try_from(s: &str) -> Result<Name, ()> {
        CIPHERS.keys().find(|x| x.0 == s).map(|x| **x).ok_or(())
    }
}

pub(crate) struct CipherPair {
    pub local_to_remote: Box<dyn SealingKey + Send>,
    pub remote_to_local: Box<dyn OpeningKey + Send>,
}

impl Debug for CipherPair {
    fn fmt(&self, _: &mut std::fmt::Formatter) -> Result<(), std::fmt::Error> {
        Ok(())
    }
}

pub(crate) trait OpeningKey {
    fn packet_length_to_read_for_block_length(&self) -> usize {
        4
    }

    fn decrypt_packet_length(&self, seqn: u32, encrypted_packet_length: &[u8]) -> [u8; 4];

    fn tag_len(&self) -> usize;

    fn open<'a>(&mut self, seqn: u32, ciphertext_and_tag: &'a mut [u8]) -> Result<&'a [u8], Error>;
}

pub(crate) trait SealingKey {
    fn padding_length(&self, plaintext: &[u8]) -> usize;

    fn fill_padding(&self, padding_out: &mut [u8]);

    fn tag_len(&self) -> usize;

    fn seal(&mut self, seqn: u32, plaintext_in_ciphertext_out: &mut [u8], tag_out: &mut [u8]);

    #[allow(clippy::indexing_slicing)] // PacketWriter reserves and sizes the packet buffer first
    fn finish_packet(&mut self, offset: usize, payload_len: usize, buffer: &mut SSHBuffer) {
        let payload_start = offset + PACKET_LENGTH_LEN + PADDING_LENGTH_LEN;
        let payload_end = payload_start + payload_len;

        trace!("writing, seqn = {:?}", buffer.seqn.0);
        let padding_length = self.padding_length(&buffer.buffer[payload_start..payload_end]);
        trace!("padding length {padding_length:?}");
        let packet_length = PADDING_LENGTH_LEN + payload_len + padding_length;
        trace!("packet_length {packet_length:?}");

        // Maximum packet length:
        // https://tools.ietf.org/html/rfc4253#section-6.1
        assert!(packet_length <= u32::MAX as usize);
        BigEndian::write_u32(
            &mut buffer.buffer[offset..offset + PACKET_LENGTH_LEN],
            packet_length as u32,
        );

        assert!(padding_length <= u8::MAX as usize);
        buffer.buffer[offset + PACKET_LENGTH_LEN] = padding_length as u8;
        buffer.buffer.resize(payload_end + padding_length, 0);
        #[allow(clippy::indexing_slicing)] // length checked
        self.fill_padding(&mut buffer.buffer[payload_end..]);
        let tag_offset = buffer.buffer.len();
        buffer.buffer.resize(tag_offset + self.tag_len(), 0);

        #[allow(clippy::indexing_slicing)] // length checked
        let (plaintext, tag) =
            buffer.buffer[offset..].split_at_mut(PACKET_LENGTH_LEN + packet_length);

        self.seal(buffer.seqn.0, plaintext, tag);

        buffer.bytes += payload_len;
        // Sequence numbers are on 32 bits and wrap.
        // https://tools.ietf.org/html/rfc4253#section-6.4
        buffer.seqn += Wrapping(1);
    }

    fn write(&mut self, payload: &[u8], buffer: &mut SSHBuffer) {
        // https://tools.ietf.org/html/rfc4253#section-6
        //
        // The variables `payload`, `packet_length` and `padding_length` refer
        // to the protocol fields of the same names.
        trace!("writing, seqn = {:?}", buffer.seqn.0);

        let padding_length = self.padding_length(payload);
        trace!("padding length {padding_length:?}");
        let packet_length = PADDING_LENGTH_LEN + payload.len() + padding_length;
        trace!("packet_length {packet_length:?}");
        let offset = buffer.buffer.len();

        // Maximum packet length:
        // https://tools.ietf.org/html/rfc4253#section-6.1
        assert!(packet_length <= u32::MAX as usize);
        buffer
            .buffer
            .extend_from_slice(&(packet_length as u32).to_be_bytes());

        assert!(padding_length <= u8::MAX as usize);
        buffer.buffer.push(padding_length as u8);
        buffer.buffer.extend_from_slice(payload);
        let pad_offset = buffer.buffer.len();
        buffer.buffer.resize(pad_offset + padding_length, 0);
        #[allow(clippy::indexing_slicing)] // length checked
        self.fill_padding(&mut buffer.buffer[pad_offset..]);
        let tag_offset = buffer.buffer.len();
        buffer.buffer.resize(tag_offset + self.tag_len(), 0);

        #[allow(clippy::indexing_slicing)] // length checked
        let (plaintext, tag) =
            buffer.buffer[offset..].split_at_mut(PACKET_LENGTH_LEN + packet_length);

        self.seal(buffer.seqn.0, plaintext, tag);

        buffer.bytes += payload.len();
        // Sequence numbers are on 32 bits and wrap.
        // https://tools.ietf.org/html/rfc4253#section-6.4
        buffer.seqn += Wrapping(1);
    }
}

/// The packet length in `probe` (the first bytes of a packet, as many as
/// `packet_length_to_read_for_block_length`), decrypted and checked: not above
/// [`MAXIMUM_PACKET_LEN`], and not so short that the packet (with its MAC tag) would end inside
/// the probe.
fn checked_packet_length(
    cipher: &(dyn OpeningKey + Send),
    seqn: u32,
    probe: &[u8],
) -> Result<usize, Error> {
    let len = BigEndian::read_u32(&cipher.decrypt_packet_length(seqn, probe)) as usize;
    if len > MAXIMUM_PACKET_LEN {
        return Err(Error::PacketSize(len));
    }
    // A valid packet (with its MAC tag) can never be shorter than the
    // block we already read to probe it; a smaller value would shrink
    // the buffer below the probe and panic on slicing past it.
    // Reject it as a protocol error instead. The tag counts:
    // with an EtM MAC and 8-byte blocks (3des-cbc), packet_length can
    // be 8, and the probe also reads the start of the tag.
    if len + PACKET_LENGTH_LEN + cipher.tag_len() < cipher.packet_length_to_read_for_block_length()
    {
        return Err(Error::PacketSize(len));
    }
    Ok(len)
}

/// Where the padding starts in a decrypted packet's `plaintext` (which begins with the padding
/// length), and the payload's length.
fn unpadded(plaintext: &[u8]) -> Result<(usize, usize), Error> {
    let padding_length = *plaintext.first().unwrap_or(&0) as usize;
    trace!("reading, padding_length {padding_length:?}");
    let plaintext_end = plaintext
        .len()
        .checked_sub(padding_length)
        .ok_or(Error::IndexOutOfBounds)?;
    Ok((plaintext_end, plaintext_end.saturating_sub(PADDING_LENGTH_LEN)))
}

pub(crate) async fn read<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut SSHBuffer,
    cipher: &mut (dyn OpeningKey + Send),
) -> Result<usize, Error> {
    if buffer.len == 0 {
        let mut len = vec![0; cipher.packet_length_to_read_for_block_length()];

        stream.read_exact(&mut len).await?;
        trace!("reading, len = {len:?}");
        {
            let seqn = buffer.seqn.0;
            buffer.buffer.clear();
            buffer.buffer.extend_from_slice(&len);
            trace!("reading, seqn = {seqn:?}");
            let len = checked_packet_length(cipher, seqn, &len)?;
            buffer.len = len + cipher.tag_len();
            trace!("reading, clear len = {:?}", buffer.len);
        }
    }

    buffer.buffer.resize(buffer.len + 4, 0);
    trace!("read_exact {:?}", buffer.len + 4);

    let l = cipher.packet_length_to_read_for_block_length();

    #[allow(clippy::indexing_slicing)] // length checked
    stream.read_exact(&mut buffer.buffer[l..]).await?;

    trace!("read_exact done");
    let seqn = buffer.seqn.0;
    let plaintext = cipher.open(seqn, &mut buffer.buffer)?;
    let (plaintext_end, payload_len) = unpadded(plaintext)?;

    // Sequence numbers are on 32 bits and wrap.
    // https://tools.ietf.org/html/rfc4253#section-6.4
    buffer.seqn += Wrapping(1);
    buffer.bytes = buffer.bytes.saturating_add(payload_len);
    buffer.len = 0;

    // Remove the padding
    buffer.buffer.resize(plaintext_end + 4, 0);

    Ok(plaintext_end + 4)
}

/// Packets at least this long are handed on as slices of the read buffer; shorter ones are
/// copied out, so that a small packet kept for long (a slow channel's queue) does not keep a
/// whole read buffer alive.
const SHARED_PACKET_MIN: usize = 4096;

/// Size of a new read buffer, and the least spare room a read is given (below it a new buffer is
/// started): reads take what the socket holds, many packets at a time.
const READ_BUFFER: usize = 256 * 1024;
const READ_MIN: usize = 64 * 1024;

/// Reads the next packet like [`read`], from `stream` through `buffer.pending`, a read buffer
/// kept between calls: packets are decrypted where they were read and returned as [`Bytes`]
/// holding the packet length, the padding length, the payload and no padding, the layout
/// [`read`] leaves in `buffer.buffer`. Unlike [`read`], no copy is made between the stream and
/// the packet handed on (for packets of [`SHARED_PACKET_MIN`] bytes or more). `buffer` keeps the
/// sequence number and byte count; its `buffer` is not used.
///
/// Bytes read past the packet stay in `buffer.pending` for the next call, so the stream must
/// only be read through it from the first packet on.
pub(crate) async fn read_shared<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut SSHBuffer,
    cipher: &mut (dyn OpeningKey + Send),
) -> Result<Bytes, Error> {
    let pending = &mut buffer.pending;
    let probe = cipher.packet_length_to_read_for_block_length();
    fill(stream, pending, probe).await?;
    let seqn = buffer.seqn.0;
    #[allow(clippy::indexing_slicing)] // filled above
    let len = checked_packet_length(cipher, seqn, &pending[..probe])?;
    let total = PACKET_LENGTH_LEN + len + cipher.tag_len();
    fill(stream, pending, total).await?;

    let mut packet = pending.split_to(total);
    let plaintext = cipher.open(seqn, &mut packet)?;
    let (plaintext_end, payload_len) = unpadded(plaintext)?;

    buffer.seqn += Wrapping(1);
    buffer.bytes = buffer.bytes.saturating_add(payload_len);

    packet.truncate(plaintext_end + PACKET_LENGTH_LEN);
    Ok(if packet.len() >= SHARED_PACKET_MIN {
        packet.freeze()
    } else {
        Bytes::copy_from_slice(&packet)
    })
}

/// Reads from `stream` until `pending` holds at least `want` bytes.
async fn fill<R: AsyncRead + Unpin>(
    stream: &mut R,
    pending: &mut BytesMut,
    want: usize,
) -> Result<(), Error> {
    while pending.len() < want {
        let need = want - pending.len();
        if pending.capacity() - pending.len() < need.max(READ_MIN) {
            pending.reserve(need.max(READ_BUFFER));
        }
        if stream.read_buf(pending).await? == 0 {
            return Err(Error::IO(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(())
}

pub(crate) const PACKET_LENGTH_LEN: usize = 4;

const MINIMUM_PACKET_LEN: usize = 16;
// Keep the transport limit aligned with the 256 KiB channel packet baseline.
const MAXIMUM_PACKET_LEN_BASELINE: usize = 256 * 1024;
const CHANNEL_DATA_PACKET_OVERHEAD: usize = 1 + 4 + 4;
const CHANNEL_EXTENDED_DATA_PACKET_OVERHEAD: usize = CHANNEL_DATA_PACKET_OVERHEAD + 4;
const PADDING_LENGTH_LEN: usize = 1;
// SSH requires at least four bytes of padding; with 16-byte blocks, that means
// a full-size channel packet can need up to 19 bytes of transport padding.
const MAXIMUM_PADDING_LEN: usize = 19;
const MAXIMUM_PACKET_LEN_HEADROOM: usize =
    PADDING_LENGTH_LEN + CHANNEL_EXTENDED_DATA_PACKET_OVERHEAD + MAXIMUM_PADDING_LEN;
const MAXIMUM_PACKET_LEN: usize = MAXIMUM_PACKET_LEN_BASELINE + MAXIMUM_PACKET_LEN_HEADROOM;
// Keep post-decompression growth within the same packet-acceptance model as
// the transport read path.
pub(crate) const MAXIMUM_DECOMPRESSED_PACKET_LEN: usize = MAXIMUM_PACKET_LEN;

#[cfg(feature = "_bench")]
pub mod benchmark;

#[cfg(all(test, feature = "aws-lc-rs", feature = "ring"))]
mod aes_gcm_tests {
    use super::*;
    use crate::mac::_NONE;

    /// A packet sealed by one library opens with the other, with the same bytes on the wire, and
    /// a changed byte is refused by both: either may be picked for a connection.
    #[test]
    fn aws_lc_and_ring_agree() {
        let ciphers: [[&(dyn Cipher + Send + Sync); 2]; 2] = [
            [&_AES_128_GCM_AWS_LC, &_AES_128_GCM_RING],
            [&_AES_256_GCM_AWS_LC, &_AES_256_GCM_RING],
        ];
        for [aws_lc, ring] in ciphers {
            assert_eq!(aws_lc.key_len(), ring.key_len());
            let key: Vec<u8> = (0..aws_lc.key_len() as u8).collect();
            let nonce = [7u8; 12];
            // packet_length (sent in the clear), padding_length, payload, padding
            let mut plain = vec![0, 0, 0, 28, 4];
            plain.extend((0..23u8).map(|i| i.wrapping_mul(37)));
            plain.extend([0; 4]);
            let mut wire = Vec::new();
            for sealer in [aws_lc, ring] {
                let mut sealing = sealer.make_sealing_key(&key, &nonce, &[], &_NONE);
                // Two packets: the second checks that both advance the nonce alike.
                let packets: Vec<Vec<u8>> = (0..2)
                    .map(|seqn| {
                        let mut packet = plain.clone();
                        let mut tag = vec![0; sealing.tag_len()];
                        sealing.seal(seqn, &mut packet, &mut tag);
                        packet.extend_from_slice(&tag);
                        packet
                    })
                    .collect();
                wire.push(packets);
            }
            assert_eq!(wire[0], wire[1], "same key and nonce, same bytes on the wire");
            assert_ne!(wire[0][0], wire[0][1], "the nonce advances");
            assert_ne!(wire[0][0][4..plain.len()], plain[4..]);
            for opener in [aws_lc, ring] {
                let mut opening = opener.make_opening_key(&key, &nonce, &[], &_NONE);
                for (seqn, packet) in wire[0].iter().enumerate() {
                    let mut packet = packet.clone();
                    assert_eq!(opening.open(seqn as u32, &mut packet).unwrap(), &plain[4..]);
                }
                let mut opening = opener.make_opening_key(&key, &nonce, &[], &_NONE);
                let mut changed = wire[0][0].clone();
                changed[10] ^= 1;
                assert!(opening.open(0, &mut changed).is_err());
            }
        }
    }
}

#[cfg(all(test, feature = "des"))]
mod tests {
    use super::*;
    use crate::mac::_HMAC_SHA512_ETM;

    #[tokio::test]
    async fn read_accepts_shortest_3des_etm_packet() {
        let key = [1; 24];
        let iv = [2; 8];
        let mac_key = [3; 64];
        let mut sealing_key = _3DES_CBC.make_sealing_key(&key, &iv, &mac_key, &_HMAC_SHA512_ETM);
        let mut opening_key = _3DES_CBC.make_opening_key(&key, &iv, &mac_key, &_HMAC_SHA512_ETM);

        // With EtM the packet_length is not encrypted, so with 8-byte blocks
        // OpenSSH sends packet_length 8 for a one-byte payload: the padding
        // length, the payload and six bytes of padding.
        let mut packet = vec![0, 0, 0, 8, 6, 52, 0, 0, 0, 0, 0, 0];
        let mut tag = vec![0; sealing_key.tag_len()];
        sealing_key.seal(0, &mut packet, &mut tag);
        packet.extend_from_slice(&tag);

        let mut buffer = SSHBuffer::new();
        let n = read(&mut &packet[..], &mut buffer, opening_key.as_mut())
            .await
            .unwrap();

        #[allow(clippy::indexing_slicing)]
        let payload = &buffer.buffer[5..n];
        assert_eq!(payload, [52]);
    }
}

#[cfg(test)]
mod read_shared_tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;
    use crate::mac::_NONE;

    /// A stream handing out `chunk` bytes per read at most, then EOF.
    struct Chunked {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = self.chunk.min(self.data.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    fn cipher() -> &'static (dyn Cipher + Send + Sync) {
        *CIPHERS.get(&AES_256_GCM).unwrap()
    }

    /// `payloads` sealed as consecutive aes256-gcm packets (sequence numbers from 0).
    fn wire(payloads: &[Vec<u8>]) -> Vec<u8> {
        let key = [5u8; 32];
        let mut sealing = cipher().make_sealing_key(&key, &[9; 12], &[], &_NONE);
        let mut wire = Vec::new();
        for (seqn, payload) in payloads.iter().enumerate() {
            let mut padding = 16 - (1 + payload.len()) % 16;
            if padding < 4 {
                padding += 16;
            }
            let len = (1 + payload.len() + padding) as u32;
            let mut packet = len.to_be_bytes().to_vec();
            packet.push(padding as u8);
            packet.extend_from_slice(payload);
            packet.extend(std::iter::repeat_n(0xAA, padding));
            let mut tag = vec![0; sealing.tag_len()];
            sealing.seal(seqn as u32, &mut packet, &mut tag);
            packet.extend_from_slice(&tag);
            wire.extend_from_slice(&packet);
        }
        wire
    }

    fn opening() -> Box<dyn OpeningKey + Send> {
        cipher().make_opening_key(&[5u8; 32], &[9; 12], &[], &_NONE)
    }

    /// Packets whose bytes arrive in any split (one byte at a time, odd sizes, all at once)
    /// come out whole and in order, without padding, with the sequence number and byte count
    /// advanced as `read` does; the end of the stream after them is `UnexpectedEof`.
    #[tokio::test]
    async fn packets_come_out_whole_however_the_stream_splits_them() {
        let payloads: Vec<Vec<u8>> = [10usize, 40_000, 5_000, 1, 4_091]
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 31 + i) as u8).collect())
            .collect();
        let data = wire(&payloads);
        for chunk in [1, 7, 4096, 70_000, usize::MAX] {
            let mut stream = Chunked { data: data.clone(), at: 0, chunk };
            let (mut buffer, mut key) = (SSHBuffer::new(), opening());
            for payload in &payloads {
                let packet = read_shared(&mut stream, &mut buffer, key.as_mut())
                    .await
                    .unwrap();
                assert_eq!(packet.len(), 5 + payload.len(), "chunk {chunk}");
                assert_eq!(&packet[5..], &payload[..], "chunk {chunk}");
            }
            assert_eq!(buffer.seqn.0, payloads.len() as u32);
            assert_eq!(buffer.bytes, payloads.iter().map(Vec::len).sum::<usize>());
            let end = read_shared(&mut stream, &mut buffer, key.as_mut()).await;
            assert!(
                matches!(end, Err(Error::IO(ref e)) if e.kind() == std::io::ErrorKind::UnexpectedEof),
                "chunk {chunk}: {end:?}"
            );
        }
    }

    /// A stream that ends inside a packet, a packet longer than the maximum and a changed byte
    /// are errors, as with `read`.
    #[tokio::test]
    async fn bad_streams_are_refused() {
        let data = wire(&[vec![1; 100]]);
        let mut cut = Chunked { data: data[..data.len() - 1].to_vec(), at: 0, chunk: 13 };
        let got = read_shared(&mut cut, &mut SSHBuffer::new(), opening().as_mut()).await;
        assert!(matches!(got, Err(Error::IO(ref e)) if e.kind() == std::io::ErrorKind::UnexpectedEof), "{got:?}");

        let mut long = data.clone();
        long[..4].copy_from_slice(&((MAXIMUM_PACKET_LEN + 1) as u32).to_be_bytes());
        let mut long = Chunked { data: long, at: 0, chunk: usize::MAX };
        let got = read_shared(&mut long, &mut SSHBuffer::new(), opening().as_mut()).await;
        assert!(matches!(got, Err(Error::PacketSize(_))), "{got:?}");

        let mut changed = data;
        changed[20] ^= 1;
        let mut changed = Chunked { data: changed, at: 0, chunk: usize::MAX };
        let got = read_shared(&mut changed, &mut SSHBuffer::new(), opening().as_mut()).await;
        assert!(got.is_err(), "{got:?}");
    }
}
