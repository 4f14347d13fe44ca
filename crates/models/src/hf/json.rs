//! Strict JSON checks shared by the Hugging Face readers: one parser that rejects
//! duplicate object keys at any depth (serde_json's maps silently keep the last one,
//! the parser differential of reliability F9).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Parses anything and checks objects for repeated keys.
struct NoDup;

impl<'de> Deserialize<'de> for NoDup {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDupVisitor)
    }
}

struct NoDupVisitor;

impl<'de> Visitor<'de> for NoDupVisitor {
    type Value = NoDup;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<NoDup, E> {
        Ok(NoDup)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDup, E> {
        Ok(NoDup)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDup, E> {
        Ok(NoDup)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDup, E> {
        Ok(NoDup)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDup, E> {
        Ok(NoDup)
    }
    fn visit_unit<E>(self) -> Result<NoDup, E> {
        Ok(NoDup)
    }
    fn visit_none<E>(self) -> Result<NoDup, E> {
        Ok(NoDup)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NoDup, D::Error> {
        NoDup::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<NoDup, A::Error> {
        while s.next_element::<NoDup>()?.is_some() {}
        Ok(NoDup)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<NoDup, A::Error> {
        let mut seen = HashSet::new();
        while let Some(k) = m.next_key::<String>()? {
            m.next_value::<NoDup>()?;
            if !seen.insert(k.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{k}`")));
            }
        }
        Ok(NoDup)
    }
}

/// Fail with serde_json's message (with line/column) on bad JSON or a repeated key.
pub(crate) fn check_no_duplicate_keys(text: &str) -> Result<(), String> {
    serde_json::from_str::<NoDup>(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_at_any_depth() {
        assert!(check_no_duplicate_keys(r#"{"a": 1, "b": [{"c": null}]}"#).is_ok());
        let e = check_no_duplicate_keys(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(e.contains("duplicate key `a`"), "{e}");
        let e = check_no_duplicate_keys(r#"{"w": {"x": "1", "x": "2"}}"#).unwrap_err();
        assert!(e.contains("duplicate key `x`"), "{e}");
        assert!(check_no_duplicate_keys(r#"{"a": "#).is_err());
    }
}
