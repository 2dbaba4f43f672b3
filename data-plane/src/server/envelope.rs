//! The parts of a JSON-RPC message the guard checks and routing reads,
//! parsed in one pass without building the message: `params` (a tool's
//! arguments, possibly large) are skipped except for `name` and `uri`, and
//! strings are borrowed from the body where they have no escapes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// One JSON-RPC message object, as far as the proxy looks into it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Envelope<'a> {
    /// `jsonrpc`, if it is a string.
    #[serde(borrow, default)]
    pub(crate) jsonrpc: Text<'a>,
    /// `method`, if it is a string.
    #[serde(borrow, default)]
    pub(crate) method: Text<'a>,
    /// `id`, when present (`null` included).
    #[serde(default, deserialize_with = "present")]
    pub(crate) id: Option<Value>,
    /// Whether `result` is present.
    #[serde(default, deserialize_with = "present_any")]
    pub(crate) result: Option<IgnoredAny>,
    /// Whether `error` is present.
    #[serde(default, deserialize_with = "present_any")]
    pub(crate) error: Option<IgnoredAny>,
    /// `params.name` and `params.uri`, if `params` is an object.
    #[serde(borrow, default)]
    pub(crate) params: Params<'a>,
}

/// A value that is kept if it is a string, and skipped otherwise.
#[derive(Debug, Default)]
pub(crate) struct Text<'a>(pub(crate) Option<Cow<'a, str>>);

impl Text<'_> {
    /// The string, if the value was one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// The routing names of `params`.
#[derive(Debug, Default)]
pub(crate) struct Params<'a> {
    /// `params.name` (tools, prompts), if a string.
    pub(crate) name: Text<'a>,
    /// `params.uri` (resources), if a string.
    pub(crate) uri: Text<'a>,
    /// The trace context in `params._meta`, where MCP carries it.
    pub(crate) trace: TraceMeta<'a>,
}

/// `traceparent` and `tracestate` of `params._meta` (SEP-414), if strings.
#[derive(Debug, Default)]
pub(crate) struct TraceMeta<'a> {
    /// W3C `traceparent`.
    pub(crate) traceparent: Text<'a>,
    /// W3C `tracestate`.
    pub(crate) tracestate: Text<'a>,
}

/// The `visit_*` methods of a visitor of an object that takes any other
/// value as an empty one.
macro_rules! anything_else_is_empty {
    ($value:ty) => {
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<$value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(<$value>::default())
        }

        fn visit_bool<E>(self, _: bool) -> Result<$value, E> {
            Ok(<$value>::default())
        }

        fn visit_i64<E>(self, _: i64) -> Result<$value, E> {
            Ok(<$value>::default())
        }

        fn visit_u64<E>(self, _: u64) -> Result<$value, E> {
            Ok(<$value>::default())
        }

        fn visit_f64<E>(self, _: f64) -> Result<$value, E> {
            Ok(<$value>::default())
        }

        fn visit_str<E>(self, _: &str) -> Result<$value, E> {
            Ok(<$value>::default())
        }

        fn visit_unit<E>(self) -> Result<$value, E> {
            Ok(<$value>::default())
        }
    };
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn present_any<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<IgnoredAny>, D::Error> {
    IgnoredAny::deserialize(deserializer).map(Some)
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }

            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }

            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }

            fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }

            fn visit_i64<E>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }

            fn visit_u64<E>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }

            fn visit_f64<E>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }

            fn visit_unit<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }

            fn visit_none<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Params<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;

        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params<'de>, A::Error> {
                let mut params = Params::default();
                let keys = KeyOf(&["name", "uri", "_meta"]);
                while let Some(key) = map.next_key_seed(keys)? {
                    match key {
                        // The last of repeated keys wins, as in a parsed object.
                        Some(0) => params.name = map.next_value()?,
                        Some(1) => params.uri = map.next_value()?,
                        Some(2) => params.trace = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(params)
            }

            anything_else_is_empty!(Params<'de>);
        }

        deserializer.deserialize_any(ParamsVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for TraceMeta<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetaVisitor;

        impl<'de> Visitor<'de> for MetaVisitor {
            type Value = TraceMeta<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TraceMeta<'de>, A::Error> {
                let mut meta = TraceMeta::default();
                let keys = KeyOf(&["traceparent", "tracestate"]);
                while let Some(key) = map.next_key_seed(keys)? {
                    match key {
                        Some(0) => meta.traceparent = map.next_value()?,
                        Some(1) => meta.tracestate = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(meta)
            }

            anything_else_is_empty!(TraceMeta<'de>);
        }

        deserializer.deserialize_any(MetaVisitor)
    }
}

/// Which of its names an object key is (`None` for any other key), read
/// without an allocation: serde's `Cow<str>` comes out owned whatever
/// the input, and these keys are read on every call.
#[derive(Clone, Copy)]
struct KeyOf(&'static [&'static str]);

impl<'de> de::DeserializeSeed<'de> for KeyOf {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyOf {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Envelope<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn reads_the_trace_context_of_meta_and_takes_any_other_meta_as_none() {
        let traced = parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{"traceparent":"00-x","tracestate":"k=v","progressToken":3}}}"#,
        );
        assert_eq!(traced.params.trace.traceparent.as_str(), Some("00-x"));
        assert_eq!(traced.params.trace.tracestate.as_str(), Some("k=v"));
        assert_eq!(traced.params.name.as_str(), Some("a"));
        for meta in [
            r#"[1,{"traceparent":"00-x"}]"#,
            "7",
            r#""s""#,
            "null",
            r#"{"traceparent":5}"#,
        ] {
            let text =
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"_meta":{meta}}}}}"#);
            let message: Envelope<'_> = serde_json::from_str(&text).unwrap();
            assert_eq!(message.params.trace.traceparent.as_str(), None, "{meta}");
            assert_eq!(message.method.as_str(), Some("m"));
        }
    }

    #[test]
    fn reads_what_routing_needs_and_skips_the_rest() {
        let call = parse(
            r#"{"jsonrpc":"2.0","id":"a\"1","method":"tools/call","params":{"name":"add","arguments":{"a":[1,{"b":null}]}}}"#,
        );
        assert_eq!(call.jsonrpc.as_str(), Some("2.0"));
        assert_eq!(call.method.as_str(), Some("tools/call"));
        assert_eq!(call.id, Some(Value::String("a\"1".into())));
        assert_eq!(call.params.name.as_str(), Some("add"));
        assert!(call.result.is_none() && call.error.is_none());

        let answer = parse(r#"{"jsonrpc":"2.0","id":null,"result":null}"#);
        assert_eq!(answer.id, Some(Value::Null), "a null id is present");
        assert!(answer.result.is_some(), "a null result is present");

        let odd = parse(r#"{"jsonrpc":2,"method":["x"],"params":[1,2]}"#);
        assert_eq!(odd.jsonrpc.as_str(), None);
        assert_eq!(odd.method.as_str(), None);
        assert!(odd.id.is_none());
        assert_eq!(odd.params.name.as_str(), None);

        let repeated = r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#;
        assert!(
            serde_json::from_str::<Envelope<'_>>(repeated).is_err(),
            "a repeated key is ambiguous, so it is refused"
        );

        let read = parse(r#"{"method":"resources/read","params":{"uri":"file:///a","name":7}}"#);
        assert_eq!(read.params.uri.as_str(), Some("file:///a"));
        assert_eq!(read.params.name.as_str(), None);
    }

    #[test]
    fn keys_are_read_as_json_has_them_escaped_or_not() {
        // `n\u0061me` is the key `name` to any JSON parser, and so to the
        // member: routing must read the same key.
        let escaped = parse(
            r#"{"method":"tools/call","params":{"n\u0061me":"add","_met\u0061":{"tr\u0061ceparent":"00-y"}}}"#,
        );
        assert_eq!(escaped.params.name.as_str(), Some("add"));
        assert_eq!(escaped.params.trace.traceparent.as_str(), Some("00-y"));
        let near = parse(r#"{"method":"tools/call","params":{"Name":"a","names":"b"}}"#);
        assert_eq!(near.params.name.as_str(), None);
    }
}
