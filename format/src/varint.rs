//! LEB128 varints and zigzag, with bounds-checked decoding.

#[inline]
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag(v));
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over untrusted bytes: every read is bounds-checked.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    #[inline(always)]
    pub fn u64(&mut self) -> Option<u64> {
        // Most values in a block are one byte (small deltas).
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Some(b as u64);
            }
        }
        self.u64_slow()
    }

    #[inline(never)]
    fn u64_slow(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let part = (b & 0x7f) as u64;
            if shift == 63 && part > 1 {
                return None; // overflow
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// Step over `k` varints without decoding them.
    pub fn skip_varints(&mut self, k: usize) -> Option<()> {
        if k == 0 {
            return Some(());
        }
        let rest = self.buf.get(self.pos..)?;
        let mut left = k;
        // Eight bytes at a time while the count stays ahead of them.
        let mut i = 0;
        while left > 8 && i + 8 <= rest.len() {
            let w = u64::from_le_bytes(rest[i..i + 8].try_into().unwrap());
            let ends = (!w & 0x8080_8080_8080_8080).count_ones() as usize;
            left -= ends;
            i += 8;
        }
        for (j, b) in rest[i..].iter().enumerate() {
            let i = i + j;
            if b & 0x80 == 0 {
                left -= 1;
                if left == 0 {
                    self.pos += i + 1;
                    return Some(());
                }
            }
        }
        None
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.u64().map(unzigzag)
    }
    /// A varint used as a length or count, capped by `max`.
    pub fn len(&mut self, max: usize) -> Option<usize> {
        let v = self.u64()?;
        if v > max as u64 {
            return None;
        }
        Some(v as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn skip_matches_decoding() {
        let mut buf = Vec::new();
        let mut x = 1u64;
        for i in 0..500u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            put_u64(&mut buf, if i % 3 == 0 { x >> (x % 64) } else { i % 100 });
        }
        for k in 0..=500 {
            let (mut a, mut b) = (Cursor::new(&buf), Cursor::new(&buf));
            for _ in 0..k {
                a.u64().unwrap();
            }
            b.skip_varints(k).unwrap();
            assert_eq!(a.pos(), b.pos(), "k={k}");
        }
        assert!(Cursor::new(&buf).skip_varints(501).is_none());
    }

    #[test]
    fn roundtrip() {
        let vals = [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut b = Vec::new();
        for v in vals {
            put_u64(&mut b, v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -300] {
            put_i64(&mut b, v);
        }
        let mut c = Cursor::new(&b);
        for v in vals {
            assert_eq!(c.u64(), Some(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -300] {
            assert_eq!(c.i64(), Some(v));
        }
        assert_eq!(c.u8(), None);
    }
    #[test]
    fn overlong_rejected() {
        let b = [0xffu8; 11];
        assert_eq!(Cursor::new(&b).u64(), None);
        let b = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Cursor::new(&b).u64(), None);
        assert_eq!(Cursor::new(&[0x80]).u64(), None);
    }
}
