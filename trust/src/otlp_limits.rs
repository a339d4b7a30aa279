//! How much an OTLP request may hold, counted on the encoded bytes before anything is decoded.
//!
//! A decoded message costs far more memory than its encoding: an empty span is two bytes of
//! protobuf (`0x12 0x00`) or OTLP/JSON (`{}`) but a few hundred bytes as a `Span`, so 66 MB of
//! empty spans asked for 8.8 GB and aborted the server. A limit on the decoded body size alone
//! cannot stop that; a limit on what the body *holds* can. These walkers count spans and every
//! other message (attributes, events, links, nested values) without allocating per element and
//! stop at the first limit passed.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::otlp::OtlpError;

/// What one OTLP request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Spans in one request (the OpenTelemetry Collector batches 8,192 by default).
    pub max_spans: usize,
    /// Messages of any kind (resource and scope blocks, spans, attributes, events, links,
    /// values) in protobuf, or JSON values in OTLP/JSON.
    pub max_elements: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // Decoded, a span costs about 2.2 KB and an attribute about 420 B: at these limits one
        // request decodes to ~130 MB, within a default server's 256 MB (50,000 spans and
        // 1,000,000 elements took 400-540 MB). The Collector batches 8,192 spans by default.
        DecodeLimits {
            max_spans: 20_000,
            max_elements: 200_000,
        }
    }
}

/// What a request holds, as counted on its encoded bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub spans: usize,
    pub elements: usize,
}

impl Counts {
    fn add(&mut self, limits: &DecodeLimits, spans: usize) -> Result<(), OtlpError> {
        self.elements += 1;
        self.spans += spans;
        if self.spans > limits.max_spans {
            return Err(OtlpError::TooManyElements {
                what: "spans",
                limit: limits.max_spans,
            });
        }
        if self.elements > limits.max_elements {
            return Err(OtlpError::TooManyElements {
                what: "elements",
                limit: limits.max_elements,
            });
        }
        Ok(())
    }
}

// ---- protobuf -------------------------------------------------------------------------------

/// The OTLP trace messages, and which of their fields hold which sub-message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    /// `Resource.entity_refs`: its `id_keys` and `description_keys` are repeated strings,
    /// which cost memory per item like messages do.
    EntityRef,
    /// A message of a field this walker does not know (newer OTLP), or an item of a repeated
    /// scalar field: counted, not entered.
    Opaque,
}

impl Kind {
    fn child(self, field: u64) -> Option<Kind> {
        use Kind::*;
        Some(match (self, field) {
            (Request, 1) => ResourceSpans,
            (ResourceSpans, 1) => Resource,
            (ResourceSpans, 2) => ScopeSpans,
            (Resource, 1) => KeyValue,
            (ScopeSpans, 1) => Scope,
            (ScopeSpans, 2) => Span,
            (Scope, 3) => KeyValue,
            (Span, 9) => KeyValue,
            (Span, 11) => Event,
            (Span, 13) => Link,
            (Span, 15) => Status,
            (Event, 3) => KeyValue,
            (Link, 4) => KeyValue,
            (KeyValue, 2) => AnyValue,
            (AnyValue, 5) => ArrayValue,
            (AnyValue, 6) => KeyValueList,
            (ArrayValue, 1) => AnyValue,
            (KeyValueList, 1) => KeyValue,
            (Resource, 3) => EntityRef,
            (EntityRef, 3 | 4) => Opaque,
            _ => return None,
        })
    }
}

/// Values can nest (arrays of key-value lists of arrays …); prost stops at 100 levels.
const MAX_DEPTH: usize = 100;

/// Counts an `ExportTraceServiceRequest`'s spans and messages; a body that is not well-formed
/// protobuf is left for the decoder to report.
pub fn check_protobuf(body: &[u8], limits: &DecodeLimits) -> Result<Counts, OtlpError> {
    let mut counts = Counts::default();
    walk(body, Kind::Request, 0, limits, &mut counts)?;
    Ok(counts)
}

fn walk(
    mut buf: &[u8],
    kind: Kind,
    depth: usize,
    limits: &DecodeLimits,
    counts: &mut Counts,
) -> Result<(), OtlpError> {
    if depth > MAX_DEPTH || kind == Kind::Opaque {
        return Ok(());
    }
    while !buf.is_empty() {
        let Some((key, rest)) = varint(buf) else {
            return Ok(());
        };
        buf = rest;
        let field = key >> 3;
        let payload = match key & 7 {
            0 => match varint(buf) {
                Some((_, rest)) => {
                    buf = rest;
                    continue;
                }
                None => return Ok(()),
            },
            1 => 8,
            5 => 4,
            2 => match varint(buf) {
                Some((len, rest)) => {
                    buf = rest;
                    match usize::try_from(len) {
                        Ok(len) if len <= buf.len() => {
                            let (inner, rest) = buf.split_at(len);
                            buf = rest;
                            if let Some(child) = kind.child(field) {
                                counts.add(limits, usize::from(child == Kind::Span))?;
                                walk(inner, child, depth + 1, limits, counts)?;
                            }
                            continue;
                        }
                        _ => return Ok(()),
                    }
                }
                None => return Ok(()),
            },
            // A group: no OTLP field is one, but the decoder skips a group in an unknown field
            // and decodes what follows, so the walker must skip it too, not stop counting.
            3 => match skip_group(buf, field, depth) {
                Some(rest) => {
                    buf = rest;
                    continue;
                }
                None => return Ok(()),
            },
            // A stray end of group, or no wire type at all: the decoder refuses the body.
            _ => return Ok(()),
        };
        if buf.len() < payload {
            return Ok(());
        }
        buf = &buf[payload..];
    }
    Ok(())
}

/// The bytes after the group of field `field` that starts `buf` (its start key already read),
/// as the decoder skips it: nested fields and groups up to the end key of the same field.
/// `None` if it is malformed or nested deeper than the decoder accepts (the decoder then
/// refuses the body).
fn skip_group(mut buf: &[u8], field: u64, depth: usize) -> Option<&[u8]> {
    if depth > MAX_DEPTH {
        return None;
    }
    loop {
        let (key, rest) = varint(buf)?;
        buf = rest;
        let payload = match key & 7 {
            0 => {
                buf = varint(buf)?.1;
                continue;
            }
            1 => 8,
            2 => {
                let (len, rest) = varint(buf)?;
                buf = rest;
                usize::try_from(len).ok()?
            }
            3 => {
                buf = skip_group(buf, key >> 3, depth + 1)?;
                continue;
            }
            4 if key >> 3 == field => return Some(buf),
            5 => 4,
            _ => return None,
        };
        buf = buf.get(payload..)?;
    }
}

fn varint(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &buf[i + 1..]));
        }
    }
    None
}

// ---- OTLP/JSON ------------------------------------------------------------------------------

/// Where a JSON value sits, as far as counting spans needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    ResourceSpansList,
    ResourceSpans,
    ScopeSpansList,
    ScopeSpans,
    SpansList,
    Other,
}

impl Place {
    fn field(self, key: &str) -> Place {
        match (self, key) {
            (Place::Root, "resourceSpans" | "resource_spans") => Place::ResourceSpansList,
            (Place::ResourceSpans, "scopeSpans" | "scope_spans") => Place::ScopeSpansList,
            (Place::ScopeSpans, "spans") => Place::SpansList,
            _ => Place::Other,
        }
    }

    fn item(self) -> Place {
        match self {
            Place::ResourceSpansList => Place::ResourceSpans,
            Place::ScopeSpansList => Place::ScopeSpans,
            _ => Place::Other,
        }
    }
}

/// Counts an OTLP/JSON request's spans and values; a body that is not JSON is left for the
/// decoder to report.
pub fn check_json(body: &[u8], limits: &DecodeLimits) -> Result<Counts, OtlpError> {
    let mut counts = Counts::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = Counter {
        place: Place::Root,
        span: false,
        limits,
        counts: &mut counts,
    };
    let walked = seed.deserialize(&mut de);
    match walked {
        Ok(()) => Ok(counts),
        // Over a limit, or not JSON at all: in the second case the decoder says what is
        // wrong, with its path.
        Err(_) => counts_error(&counts, limits).map_or(Ok(counts), Err),
    }
}

fn counts_error(counts: &Counts, limits: &DecodeLimits) -> Option<OtlpError> {
    if counts.spans > limits.max_spans {
        Some(OtlpError::TooManyElements {
            what: "spans",
            limit: limits.max_spans,
        })
    } else if counts.elements > limits.max_elements {
        Some(OtlpError::TooManyElements {
            what: "elements",
            limit: limits.max_elements,
        })
    } else {
        None
    }
}

/// Counts one JSON value (and, through the visitor, everything inside it).
struct Counter<'a> {
    place: Place,
    /// The value is an element of a `spans` list.
    span: bool,
    limits: &'a DecodeLimits,
    counts: &'a mut Counts,
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.counts
            .add(self.limits, usize::from(self.span))
            .map_err(de::Error::custom)?;
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let item = self.place.item();
        let span = self.place == Place::SpansList;
        loop {
            let seed = Counter {
                place: item,
                span,
                limits: self.limits,
                counts: &mut *self.counts,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            map.next_value_seed(Counter {
                place: self.place.field(&key),
                span: false,
                limits: self.limits,
                counts: &mut *self.counts,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::ExportTraceServiceRequest;
    use prost::Message as _;

    fn small() -> DecodeLimits {
        DecodeLimits {
            max_spans: 3,
            max_elements: 100,
        }
    }

    /// `resource_spans { scope_spans { spans × n } }`, every span empty.
    fn empty_spans(n: usize) -> Vec<u8> {
        let mut scope = Vec::new();
        for _ in 0..n {
            scope.extend_from_slice(&[0x12, 0x00]);
        }
        let mut resource = vec![0x12];
        push_len(&mut resource, scope.len());
        resource.extend_from_slice(&scope);
        let mut body = vec![0x0a];
        push_len(&mut body, resource.len());
        body.extend_from_slice(&resource);
        body
    }

    fn push_len(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    #[test]
    fn protobuf_spans_are_counted_before_decoding() {
        assert!(check_protobuf(&empty_spans(3), &small()).is_ok());
        let err = check_protobuf(&empty_spans(4), &small()).unwrap_err();
        assert!(err.to_string().contains("more than 3 spans"), "{err}");
    }

    fn push_varint(out: &mut Vec<u8>, n: u64) {
        push_len(out, n as usize);
    }

    /// `message` as field `field` (length-delimited) of its parent.
    fn field(field: u64, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_varint(&mut out, field << 3 | 2);
        push_len(&mut out, message.len());
        out.extend_from_slice(message);
        out
    }

    #[test]
    fn spans_after_a_skipped_group_are_counted() {
        // A group in an unknown field of ScopeSpans (field 99): the decoder skips it and
        // decodes the spans after it, which the walker once stopped counting at the group.
        let mut scope = Vec::new();
        push_varint(&mut scope, 99 << 3 | 3);
        push_varint(&mut scope, 7 << 3 | 3); // a nested group
        scope.extend_from_slice(&[0x08, 0x01]); // a varint inside it
        push_varint(&mut scope, 7 << 3 | 4);
        push_varint(&mut scope, 99 << 3 | 4);
        for _ in 0..4 {
            scope.extend_from_slice(&[0x12, 0x00]);
        }
        let body = field(1, &field(2, &scope));
        let decoded = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 4);
        let err = check_protobuf(&body, &small()).unwrap_err();
        assert!(err.to_string().contains("more than 3 spans"), "{err}");
    }

    #[test]
    fn entity_ref_keys_are_counted() {
        // Resource.entity_refs[].id_keys: repeated strings, 2 bytes each on the wire and a
        // `String` each decoded; uncounted, 64 MB of them decoded to about a gigabyte.
        let keys: Vec<u8> = [0x1a, 0x00].repeat(200);
        let body = field(1, &field(1, &field(3, &keys)));
        let decoded = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let resource = decoded.resource_spans[0].resource.as_ref().unwrap();
        assert_eq!(resource.entity_refs[0].id_keys.len(), 200);
        let err = check_protobuf(&body, &small()).unwrap_err();
        assert!(err.to_string().contains("more than 100 elements"), "{err}");
    }

    #[test]
    fn json_spans_are_counted_in_both_spellings() {
        let body = |n: usize, key: &str| {
            format!(
                r#"{{"{key}":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
                vec!["{}"; n].join(",")
            )
        };
        assert!(check_json(body(3, "resourceSpans").as_bytes(), &small()).is_ok());
        assert!(check_json(body(4, "resourceSpans").as_bytes(), &small()).is_err());
        assert!(check_json(body(4, "resource_spans").as_bytes(), &small()).is_err());
    }

    #[test]
    fn nested_values_count_as_elements() {
        let limits = DecodeLimits {
            max_spans: 10,
            max_elements: 50,
        };
        let many = format!(
            r#"{{"resourceSpans":[],"x":[{}]}}"#,
            vec!["[]"; 60].join(",")
        );
        assert!(check_json(many.as_bytes(), &limits).is_err());
        // Malformed input is the decoder's to report, not a limit.
        assert!(check_json(b"{not json", &limits).is_ok());
        assert!(check_protobuf(b"\xff\xff\xff", &limits).is_ok());
    }
}
