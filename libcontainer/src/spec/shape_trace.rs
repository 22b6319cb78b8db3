//! The shapes of oci-spec's `Spec`, read from its own `Deserialize` impls: a `Spec` is
//! deserialized from a [`Tracer`] that answers every request with a sample value and records,
//! per path (keys joined by `/`, `*` for array items and map values), the fields each struct
//! asks for, and which paths are maps of the user's keys.
//!
//! This runs at build time (build.rs, which includes this file): the table it makes is compiled
//! into keys.rs. At run time it cost 1.3 MiB of peak memory and the CPU of a `Spec`
//! deserialization per `create`. Plain serde, no crate item, so build.rs can use it as is.

use std::collections::HashMap;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// What the spec has at one path.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    /// A struct with these field names.
    Fields(&'static [&'static str]),
    /// A map with keys of the user's choosing.
    Map,
}

pub type Shapes = HashMap<String, Shape>;

/// Deserialize `Spec` from the tracer until every field was reached: a field whose sample
/// value its type refuses (a string that must be a capability name...) ends that attempt, and
/// the next one leaves it out.
pub fn trace() -> Shapes {
    let mut state = State::default();
    // Each attempt either succeeds or marks one more field to skip (three attempts with
    // oci-spec 0.10); the bound only guards against a type that fails without naming a field.
    for _ in 0..1000 {
        state.failed_at = None;
        let ok = <oci_spec::runtime::Spec as de::Deserialize>::deserialize(Tracer {
            state: &mut state,
            path: String::new(),
        })
        .is_ok();
        match state.failed_at.take() {
            Some(field) if !ok => {
                state.skip.insert(field);
            }
            _ => break,
        }
    }
    state.shapes
}

#[derive(Default)]
struct State {
    shapes: Shapes,
    /// `path` of fields not to visit again.
    skip: std::collections::HashSet<String>,
    /// The innermost field being visited when an attempt failed.
    failed_at: Option<String>,
}

#[derive(Debug)]
struct TraceError(String);

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        TraceError(msg.to_string())
    }
}

struct Tracer<'a> {
    state: &'a mut State,
    path: String,
}

impl<'a> Tracer<'a> {
    fn child(&mut self, key: &str) -> Tracer<'_> {
        Tracer {
            state: &mut *self.state,
            path: format!("{}/{key}", self.path),
        }
    }
}

/// Visits each field of a struct once (the ones not skipped), or one entry of a map or one item
/// of a sequence, each with a tracer one level down.
struct Access<'a, 'b> {
    tracer: &'b mut Tracer<'a>,
    keys: Vec<&'static str>,
    next: usize,
}

impl<'de> de::MapAccess<'de> for Access<'_, '_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TraceError> {
        let Some(key) = self.keys.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TraceError> {
        let key = self.keys[self.next];
        self.next += 1;
        let child = self.tracer.child(key);
        let field = child.path.clone();
        let r = seed.deserialize(child);
        if r.is_err() && self.tracer.state.failed_at.is_none() {
            self.tracer.state.failed_at = Some(field);
        }
        r
    }
}

impl<'de> de::SeqAccess<'de> for Access<'_, '_> {
    type Error = TraceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, TraceError> {
        if self.next > 0 {
            return Ok(None);
        }
        self.next = 1;
        // An item the sample cannot make (a set of capability names) leaves the sequence empty
        // rather than failing the attempt: its path was traced as far as it went.
        let failed_before = self.tracer.state.failed_at.is_some();
        match seed.deserialize(self.tracer.child("*")) {
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                if !failed_before {
                    self.tracer.state.failed_at = None;
                }
                Ok(None)
            }
        }
    }
}

impl<'de> de::EnumAccess<'de> for Access<'_, '_> {
    type Error = TraceError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), TraceError> {
        let name = self.keys.first().copied().unwrap_or("");
        let v = seed.deserialize(name.into_deserializer())?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Access<'_, '_> {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, TraceError> {
        let path = self.tracer.path.clone();
        seed.deserialize(Tracer {
            state: &mut *self.tracer.state,
            path,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_seq(self)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let path = self.tracer.path.clone();
        let t = Tracer {
            state: &mut *self.tracer.state,
            path,
        };
        de::Deserializer::deserialize_struct(t, "", fields, visitor)
    }
}

macro_rules! sample {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = TraceError;

    sample! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0),
        deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u8(0),
        deserialize_u16 => visit_u16(0),
        deserialize_u32 => visit_u32(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f32(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('a'),
        deserialize_str => visit_str("/"),
        deserialize_string => visit_str("/"),
        deserialize_bytes => visit_bytes(b""),
        deserialize_byte_buf => visit_bytes(b""),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str(""),
        deserialize_ignored_any => visit_unit(),
        // serde_json::Value fields and the like: nothing to trace inside.
        deserialize_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_seq(Access {
            tracer: &mut self,
            keys: Vec::new(),
            next: 0,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, TraceError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, TraceError> {
        self.state.shapes.insert(self.path.clone(), Shape::Map);
        // One entry, its key a sample, its value traced at `path/*`.
        visitor.visit_map(Access {
            tracer: &mut self,
            keys: vec!["*"],
            next: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.state.shapes.insert(self.path.clone(), Shape::Fields(fields));
        let keys = if self.state.skip.is_empty() {
            fields.to_vec()
        } else {
            let path = &self.path;
            fields
                .iter()
                .copied()
                .filter(|f| !self.state.skip.contains(&format!("{path}/{f}")))
                .collect()
        };
        visitor.visit_map(Access {
            tracer: &mut self,
            keys,
            next: 0,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        visitor.visit_enum(Access {
            tracer: &mut self,
            keys: variants.to_vec(),
            next: 0,
        })
    }
}
