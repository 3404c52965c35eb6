//! Reading the flat arrays the directory's Lua scripts return.
//!
//! Scripts answer with one array of strings, integers and nils, in an order each script
//! documents; [`Reply`] walks it field by field. Anything out of shape is a
//! [`DirectoryError::Rejected`]: Redis answered, but not as this version expects.
//!
//! Must not talk to Redis: it only decodes values already received.

use redis::Value;

use super::DirectoryError;

/// A script's reply, consumed front to back.
#[derive(Debug)]
pub(super) struct Reply {
    script: &'static str,
    items: std::vec::IntoIter<Value>,
}

impl Reply {
    /// The reply of `script`, which must be an array.
    pub(super) fn new(script: &'static str, value: Value) -> Result<Reply, DirectoryError> {
        match value {
            Value::Array(items) => Ok(Reply {
                script,
                items: items.into_iter(),
            }),
            other => Err(Reply::shape(script, &format!("not an array: {other:?}"))),
        }
    }

    fn shape(script: &str, what: &str) -> DirectoryError {
        DirectoryError::Rejected(format!("{script}: unexpected reply ({what})"))
    }

    fn next(&mut self) -> Result<Value, DirectoryError> {
        self.items
            .next()
            .ok_or_else(|| Reply::shape(self.script, "too short"))
    }

    /// Fields not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.items.len()
    }

    /// A string field (Redis may encode short ones as simple strings).
    pub(super) fn text(&mut self) -> Result<String, DirectoryError> {
        match self.next()? {
            Value::BulkString(b) => {
                String::from_utf8(b).map_err(|_| Reply::shape(self.script, "a string is not UTF-8"))
            }
            Value::SimpleString(s) => Ok(s),
            Value::Nil => Ok(String::new()),
            other => Err(Reply::shape(
                self.script,
                &format!("expected a string, got {other:?}"),
            )),
        }
    }

    /// A non-negative integer field (an integer, or a string of digits).
    pub(super) fn int(&mut self) -> Result<u64, DirectoryError> {
        let parsed = match self.next()? {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::BulkString(b) => std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()),
            Value::Nil => Some(0),
            _ => None,
        };
        parsed.ok_or_else(|| Reply::shape(self.script, "expected a non-negative integer"))
    }

    /// A `u32` field (counts and capacities).
    pub(super) fn count(&mut self) -> Result<u32, DirectoryError> {
        let n = self.int()?;
        u32::try_from(n).map_err(|_| Reply::shape(self.script, "count out of range"))
    }

    /// A 0/1 flag.
    pub(super) fn flag(&mut self) -> Result<bool, DirectoryError> {
        Ok(self.int()? != 0)
    }

    /// A binary field that may be nil.
    pub(super) fn bytes(&mut self) -> Result<Option<Vec<u8>>, DirectoryError> {
        match self.next()? {
            Value::Nil => Ok(None),
            Value::BulkString(b) => Ok(Some(b)),
            other => Err(Reply::shape(
                self.script,
                &format!("expected bytes, got {other:?}"),
            )),
        }
    }

    /// An outcome word nobody expected at this point.
    pub(super) fn unexpected(&self, word: &str) -> DirectoryError {
        Reply::shape(self.script, &format!("unknown outcome `{word}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn fields_are_read_in_order() {
        let v = Value::Array(vec![
            bulk("ok"),
            Value::Int(42),
            bulk("17"),
            Value::Nil,
            Value::BulkString(vec![0, 255]),
            Value::Int(1),
        ]);
        let mut r = Reply::new("t", v).unwrap();
        assert_eq!(r.remaining(), 6);
        assert_eq!(r.text().unwrap(), "ok");
        assert_eq!(r.int().unwrap(), 42);
        assert_eq!(r.count().unwrap(), 17);
        assert_eq!(r.bytes().unwrap(), None);
        assert_eq!(r.bytes().unwrap(), Some(vec![0, 255]));
        assert!(r.flag().unwrap());
        assert!(matches!(r.text(), Err(DirectoryError::Rejected(_))));
    }

    #[test]
    fn out_of_shape_replies_are_rejected() {
        assert!(Reply::new("t", Value::Okay).is_err());
        let mut r = Reply::new("t", Value::Array(vec![Value::Int(-1), bulk("x")])).unwrap();
        assert!(r.int().is_err());
        assert!(r.int().is_err());
        let mut big = Reply::new("t", Value::Array(vec![Value::Int(1 << 40)])).unwrap();
        assert!(big.count().is_err());
    }
}
