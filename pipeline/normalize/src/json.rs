//! Lenient, typed reads from the `data` (decoded JSON) form.
//!
//! Producers disagree on spelling: the proto3 JSON mapping says `userId`, TikTokLive says `id`,
//! older TikTok-Live-Connector events are flattened, and int64 values arrive as numbers or as
//! strings. Every read therefore takes a list of accepted names (first present wins) and accepts
//! both number forms. What we do not accept is a value of the wrong kind (a string where an object
//! belongs): that is a broken payload and goes to the DLQ instead of being silently ignored.
//! Absent and `null` fields read as proto3 defaults, so both payload forms normalize the same.

use serde_json::{Map, Value};

/// A JSON object being read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
}

/// A wrong-kind value: which field, and what it should have been.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KindError {
    pub(crate) field: &'static str,
    pub(crate) expected: &'static str,
}

impl std::fmt::Display for KindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}` should be {}", self.field, self.expected)
    }
}

pub(crate) type Read<T> = Result<Option<T>, KindError>;

/// Why a JSON payload cannot be mapped; becomes `invalid_payload`.
#[derive(Debug)]
pub(crate) struct Invalid(pub(crate) String);

impl From<KindError> for Invalid {
    fn from(e: KindError) -> Self {
        Invalid(e.to_string())
    }
}

impl<'a> Obj<'a> {
    pub(crate) fn new(map: &'a Map<String, Value>) -> Self {
        Obj { map }
    }

    /// The first of `names` present with a non-null value, and the name it was found under.
    fn find(&self, names: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        names.iter().find_map(|n| match self.map.get(*n) {
            None | Some(Value::Null) => None,
            Some(v) => Some((*n, v)),
        })
    }

    /// True when any of `names` is present (even with a default value).
    pub(crate) fn has(&self, names: &[&'static str]) -> bool {
        self.find(names).is_some()
    }

    pub(crate) fn str(&self, names: &[&'static str]) -> Read<&'a str> {
        match self.find(names) {
            None => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.as_str())),
            Some((field, _)) => Err(KindError { field, expected: "a string" }),
        }
    }

    /// A string, or a number rendered as text (ids are often numbers in one producer and strings
    /// in another).
    pub(crate) fn id_text(&self, names: &[&'static str]) -> Read<String> {
        match self.find(names) {
            None => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.clone())),
            Some((_, Value::Number(n))) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            Some((field, _)) => Err(KindError { field, expected: "an integer or a string" }),
        }
    }

    pub(crate) fn i64(&self, names: &[&'static str]) -> Read<i64> {
        match self.find(names) {
            None => Ok(None),
            Some((field, v)) => {
                as_i64(v).map(Some).ok_or(KindError { field, expected: "an integer" })
            }
        }
    }

    /// A bool; TikTok's `repeatEnd` is an int32 flag, so 0/1 numbers count as bools too.
    /// An enum-valued field: a number, a numeric string, or a proto3 JSON enum name that
    /// `from_name` resolves (unknown names read as 0, the proto3 default).
    pub(crate) fn enum_value(
        &self,
        names: &[&'static str],
        from_name: fn(&str) -> i64,
    ) -> Read<i64> {
        match self.find(names) {
            None => Ok(None),
            Some((_, Value::String(s))) => {
                Ok(Some(s.trim().parse().unwrap_or_else(|_| from_name(s))))
            }
            Some((field, v)) => as_i64(v).map(Some).ok_or(KindError { field, expected: "an enum" }),
        }
    }

    /// Entries of a proto map field: the proto3 JSON form `{"123": {...}}`, or the list of
    /// `{key, value}` wrappers some producers emit instead.
    pub(crate) fn map_entries(
        &self,
        names: &[&'static str],
        key_names: &[&'static str],
        value_names: &[&'static str],
    ) -> Result<Vec<(i64, Obj<'a>)>, KindError> {
        let field = names.first().copied().unwrap_or("?");
        let bad = KindError { field, expected: "a map keyed by integer ids" };
        match self.find(names) {
            None => Ok(Vec::new()),
            Some((_, Value::Object(m))) => m
                .iter()
                .map(|(k, v)| match (k.trim().parse::<i64>(), v) {
                    (Ok(id), Value::Object(o)) => Ok((id, Obj { map: o })),
                    _ => Err(KindError { field, expected: "a map keyed by integer ids" }),
                })
                .collect(),
            Some((_, Value::Array(items))) => items
                .iter()
                .map(|item| {
                    let Value::Object(m) = item else { return Err(bad) };
                    let entry = Obj { map: m };
                    let id = entry.i64(key_names)?.unwrap_or(0);
                    let value = entry.obj(value_names)?.unwrap_or(entry);
                    Ok((id, value))
                })
                .collect(),
            Some(_) => Err(bad),
        }
    }

    pub(crate) fn bool(&self, names: &[&'static str]) -> Read<bool> {
        match self.find(names) {
            None => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some((field, v)) => match as_i64(v) {
                Some(n) => Ok(Some(n != 0)),
                None => Err(KindError { field, expected: "a boolean" }),
            },
        }
    }

    pub(crate) fn obj(&self, names: &[&'static str]) -> Read<Obj<'a>> {
        match self.find(names) {
            None => Ok(None),
            Some((_, Value::Object(m))) => Ok(Some(Obj { map: m })),
            Some((field, _)) => Err(KindError { field, expected: "an object" }),
        }
    }

    pub(crate) fn arr(&self, names: &[&'static str]) -> Read<&'a [Value]> {
        match self.find(names) {
            None => Ok(None),
            Some((_, Value::Array(a))) => Ok(Some(a.as_slice())),
            Some((field, _)) => Err(KindError { field, expected: "an array" }),
        }
    }

    /// The objects in an array field; non-object items are a kind error.
    pub(crate) fn objs(&self, names: &[&'static str]) -> Result<Vec<Obj<'a>>, KindError> {
        let Some(items) = self.arr(names)? else { return Ok(Vec::new()) };
        let field = names.first().copied().unwrap_or("?");
        items
            .iter()
            .map(|v| match v {
                Value::Object(m) => Ok(Obj { map: m }),
                _ => Err(KindError { field, expected: "an array of objects" }),
            })
            .collect()
    }

    /// The first usable URL of an image object (`urlList` in the proto3 mapping; `url`, `urls`,
    /// `mUrls` or a single `imageUrl` in other producers).
    pub(crate) fn image_url(&self) -> Read<String> {
        match self.find(&["urlList", "url_list", "url", "urls", "mUrls", "imageUrl", "uri"]) {
            None => Ok(None),
            Some((_, Value::Array(list))) => {
                Ok(list.iter().filter_map(Value::as_str).find(|u| is_http(u)).map(str::to_owned))
            }
            Some((_, Value::String(u))) => Ok(Some(u.clone()).filter(|u| is_http(u))),
            Some((field, _)) => Err(KindError { field, expected: "a URL or a list of URLs" }),
        }
    }
}

/// An integer from a JSON number or a decimal string (the proto3 JSON form of int64).
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            // Whole floats such as 3.0 appear when a producer went through a float type.
            n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Only absolute http(s) URLs that are valid URIs are passed on: the contract types avatar and
/// image URLs as `uri`, and one odd URL must not get a whole chat message dead-lettered. Anything
/// doubtful (spaces, non-ASCII, stray `%`, characters RFC 3986 never allows) is left out.
pub(crate) fn is_http(u: &str) -> bool {
    let rest = match u.strip_prefix("https://").or_else(|| u.strip_prefix("http://")) {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => rest,
        _ => return false,
    };
    let b = rest.as_bytes();
    let mut hashes = 0;
    for (i, c) in b.iter().enumerate() {
        match c {
            b'%' => {
                let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
            }
            b'#' => hashes += 1,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' | b'[' | b']' => {
                return false;
            }
            c if !c.is_ascii_graphic() => return false,
            _ => {}
        }
    }
    hashes <= 1
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: &Value) -> Obj<'_> {
        Obj::new(v.as_object().unwrap())
    }

    #[test]
    fn int64_as_number_or_string() {
        let v = json!({"a": 5, "b": "6812345678901234567", "c": 3.0, "d": "x"});
        let o = obj(&v);
        assert_eq!(o.i64(&["a"]).unwrap(), Some(5));
        assert_eq!(o.i64(&["b"]).unwrap(), Some(6_812_345_678_901_234_567));
        assert_eq!(o.i64(&["c"]).unwrap(), Some(3));
        assert!(o.i64(&["d"]).is_err());
        assert_eq!(o.i64(&["missing"]).unwrap(), None);
    }

    #[test]
    fn aliases_first_present_wins_and_null_is_absent() {
        let v = json!({"nickName": "b", "nickname": null});
        assert_eq!(obj(&v).str(&["nickname", "nickName"]).unwrap(), Some("b"));
    }

    #[test]
    fn only_valid_http_uris_pass() {
        for ok in [
            "https://p16.tiktokcdn.com/a~c5_100x100.webp?x-expires=1&x-signature=a%3D",
            "http://h/x#f",
        ] {
            assert!(is_http(ok), "{ok}");
        }
        for bad in [
            "",
            "//cdn/x",
            "ftp://h/x",
            "https://",
            "https:///x",
            "https://h/a b",
            "https://h/100%",
            "https://h/é",
            "https://h/{x}",
            "https://h/#a#b",
        ] {
            assert!(!is_http(bad), "{bad}");
        }
    }

    #[test]
    fn image_url_skips_non_http() {
        let v = json!({"urlList": ["", "//cdn/x.webp", "https://cdn/x.jpeg"]});
        assert_eq!(obj(&v).image_url().unwrap().as_deref(), Some("https://cdn/x.jpeg"));
    }
}
