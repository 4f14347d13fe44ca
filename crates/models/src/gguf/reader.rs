//! A bounds-checked little-endian cursor over the bytes of a GGUF file.
//!
//! Every read checks the bytes left *before* touching them or allocating, so a hostile
//! length can never cause a large allocation or an out-of-bounds read.

use crate::{Error, Result};

/// Cursor over a byte slice; `pos` only moves forward.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current offset from the start of the file.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Take `n` bytes, or fail naming `what` and the shortfall.
    pub(crate) fn take(&mut self, n: usize, what: &dyn std::fmt::Display) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Gguf(format!(
                "truncated: {what} needs {n} bytes at offset {}, only {} left",
                self.pos,
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Take exactly `N` bytes as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &dyn std::fmt::Display,
    ) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &dyn std::fmt::Display) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &dyn std::fmt::Display) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &dyn std::fmt::Display) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A u64 length or count, capped at `cap` and at what `min_each` bytes per item allow.
    pub(crate) fn count(
        &mut self,
        cap: u64,
        min_each: usize,
        what: &dyn std::fmt::Display,
    ) -> Result<usize> {
        let n = self.u64(what)?;
        if n > cap {
            return Err(Error::Gguf(format!(
                "{what}: length {n} exceeds the limit {cap}"
            )));
        }
        let n = usize::try_from(n)
            .map_err(|_| Error::Gguf(format!("{what}: length {n} does not fit in memory")))?;
        let need = n.checked_mul(min_each);
        match need {
            Some(need) if need <= self.remaining() => Ok(n),
            _ => Err(Error::Gguf(format!(
                "{what}: length {n} needs at least {} bytes but only {} are left in the file",
                need.map_or_else(|| "2^64 or more".to_string(), |b| b.to_string()),
                self.remaining()
            ))),
        }
    }

    /// A GGUF string: u64 length (≤ `cap`, ≤ bytes left) then UTF-8 bytes.
    pub(crate) fn string(&mut self, cap: u64, what: &dyn std::fmt::Display) -> Result<String> {
        let n = self.count(cap, 1, what)?;
        let bytes = self.take(n, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| Error::Gguf(format!("{what}: not valid UTF-8 ({e})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_bounds() {
        let bytes = [1u8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u32(&"a").unwrap(), 1);
        assert_eq!(r.u64(&"b").unwrap(), 2);
        assert_eq!(r.remaining(), 1);
        let err = r.u32(&"c").unwrap_err().to_string();
        assert!(
            err.contains("truncated: c needs 4 bytes at offset 12, only 1 left"),
            "{err}"
        );
        // A failed read does not move the cursor.
        assert_eq!(r.u8(&"d").unwrap(), 9);
    }

    #[test]
    fn count_checks_bytes_left_before_allocating() {
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let err = Reader::new(&bytes)
            .count(u64::MAX, 8, &"x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not fit") || err.contains("only 8 are left"),
            "{err}"
        );
        let bytes = 2u64.to_le_bytes();
        let err = Reader::new(&bytes)
            .count(1, 1, &"y")
            .unwrap_err()
            .to_string();
        assert!(err.contains("exceeds the limit 1"), "{err}");
    }
}
