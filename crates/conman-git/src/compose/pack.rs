//! A pack of the objects a composition wrote, built by hand: each object
//! whole (no deltas) in a stored — uncompressed — zlib stream.
//!
//! Why not libgit2's packbuilder: for a composition's few hundred small
//! objects its delta search (a window of 10 tried per object, not
//! configurable through git2) and deflate were most of a composition's
//! time. The pack is a few times larger on disk until `git gc` repacks it;
//! libgit2's indexer still checks every object and computes its id, and
//! the trailing checksum, when the pack is stored.
//!
//! Invariant: the bytes are a valid version-2 pack of `objects`, each
//! once; the trailer is the SHA-1 of what precedes it.

use git2::ObjectType;
use sha1::{Digest as _, Sha1};

/// The pack of `objects` (kind and raw data each, ids distinct).
pub(super) fn pack<'a>(objects: impl ExactSizeIterator<Item = (ObjectType, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"PACK");
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(objects.len() as u32).to_be_bytes());
    for (kind, data) in objects {
        header(&mut out, kind, data.len());
        stored_zlib(&mut out, data);
    }
    let trailer = Sha1::digest(&out);
    out.extend_from_slice(&trailer);
    out
}

/// An object's type and size: 3 bits of type, then the size 4 + 7k bits.
fn header(out: &mut Vec<u8>, kind: ObjectType, size: usize) {
    let kind: u8 = match kind {
        ObjectType::Commit => 1,
        ObjectType::Tree => 2,
        ObjectType::Blob => 3,
        _ => 4,
    };
    let mut byte = (kind << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

/// A zlib stream of `data` in stored (uncompressed) deflate blocks.
fn stored_zlib(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&[0x78, 0x01]);
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that cannot overflow before the reduction.
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libgit2's indexer takes the pack (it checks the trailer and every
    /// object), and the objects read back whole: empty, small, and larger
    /// than one stored block.
    #[test]
    fn libgit2_indexes_the_pack_and_reads_its_objects_back() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let objects: [&[u8]; 3] = [b"", b"small\n", &big];
        let pack = pack(objects.iter().map(|data| (ObjectType::Blob, *data)));
        let odb = repo.odb().unwrap();
        let mut writer = odb.packwriter().unwrap();
        writer.write_all(&pack).unwrap();
        writer.commit().unwrap();
        for data in objects {
            let id = git2::Oid::hash_object(ObjectType::Blob, data).unwrap();
            assert_eq!(repo.find_blob(id).unwrap().content(), data);
        }
    }

    #[test]
    fn adler32_of_known_text() {
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        assert_eq!(adler32(b""), 1);
    }

    #[test]
    fn sizes_spill_into_continuation_bytes() {
        let mut out = Vec::new();
        header(&mut out, ObjectType::Tree, 0x234);
        assert_eq!(out, [0x80 | 0x20 | 0x4, 0x23]);
        out.clear();
        header(&mut out, ObjectType::Blob, 0xf);
        assert_eq!(out, [0x30 | 0xf]);
    }
}
