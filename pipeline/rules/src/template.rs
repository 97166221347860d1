//! Action templates: plain `{token}` substitution from a fixed list, never code.
//!
//! A template is parsed once (when its rule is compiled) into literal text and tokens, so
//! rendering is a walk over a short list. `{{` and `}}` write literal braces. A token missing from
//! the event (e.g. `{giftName}` on a CHAT event) renders as the empty string.

use std::fmt::Write as _;

use ttlc_schemas::{Payload, UnifiedEvent};

/// Every token a template may use.
pub const TEMPLATE_TOKENS: [&str; 15] = [
    "userId",
    "username",
    "displayName",
    "giftName",
    "giftCount",
    "coins",
    "likeCount",
    "totalLikeCount",
    "subMonth",
    "emoteImageUrl",
    "message",
    "eventType",
    "timestamp",
    "streamId",
    "sessionId",
];

/// Longest template accepted, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 2_000;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    /// An index into [`TEMPLATE_TOKENS`].
    Token(usize),
}

/// A template parsed into segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    segments: Vec<Segment>,
}

/// Where and why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {at}: {message}")]
pub struct TemplateError {
    pub at: usize,
    pub message: String,
}

impl Template {
    /// Parses `text`, refusing unknown tokens and stray braces.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        Self::parse_inner(text, true)
    }

    /// Parses `text`, keeping unknown tokens and stray braces as literal text. For previews of
    /// templates that were never validated.
    pub fn parse_lenient(text: &str) -> Template {
        // Lenient parsing cannot fail: every problem becomes literal text.
        Self::parse_inner(text, false).unwrap_or_default()
    }

    fn parse_inner(text: &str, strict: bool) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut at = 0;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let tail = &rest[i..];
            let consumed = if tail.starts_with("{{") {
                literal.push('{');
                2
            } else if tail.starts_with("}}") {
                literal.push('}');
                2
            } else if tail.starts_with('}') {
                if strict {
                    return Err(err(at + i, "a lone `}`: write `}}` for a literal brace"));
                }
                literal.push('}');
                1
            } else {
                let close = tail.find('}');
                let name = close.map(|c| &tail[1..c]);
                match name.and_then(|n| TEMPLATE_TOKENS.iter().position(|t| *t == n)) {
                    Some(token) => {
                        if !literal.is_empty() {
                            segments.push(Segment::Text(std::mem::take(&mut literal)));
                        }
                        segments.push(Segment::Token(token));
                        close.map_or(1, |c| c + 1)
                    }
                    None if strict => {
                        return Err(match name {
                            Some(n) => err(
                                at + i,
                                format!(
                                    "unknown token {{{n}}}; allowed: {}",
                                    TEMPLATE_TOKENS.map(|t| format!("{{{t}}}")).join(" ")
                                ),
                            ),
                            None => {
                                err(at + i, "a `{` without `}`: write `{{` for a literal brace")
                            }
                        });
                    }
                    None => {
                        literal.push('{');
                        1
                    }
                }
            };
            at += i + consumed;
            rest = &rest[i + consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(Template { segments })
    }

    /// Substitutes every token with its value from `event`.
    pub fn render(&self, event: &UnifiedEvent) -> String {
        let mut out = String::with_capacity(64);
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Token(i) => token_value(*i, event, &mut out),
            }
        }
        out
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

/// Renders `template` for `event` (lenient: unknown tokens stay as written). Plain substitution;
/// nothing in the template or the event is ever executed.
pub fn render(template: &str, event: &UnifiedEvent) -> String {
    Template::parse_lenient(template).render(event)
}

fn err(at: usize, message: impl Into<String>) -> TemplateError {
    TemplateError { at, message: message.into() }
}

/// Appends the value of token `index` (into [`TEMPLATE_TOKENS`]) to `out`.
fn token_value(index: usize, e: &UnifiedEvent, out: &mut String) {
    let p = e.payload.as_ref();
    // Writing to a String cannot fail.
    let _ = match TEMPLATE_TOKENS.get(index).copied().unwrap_or_default() {
        "userId" => write!(out, "{}", e.user.user_id),
        "username" => write!(out, "{}", e.user.unique_id),
        "displayName" => {
            write!(out, "{}", e.user.display_name.as_deref().unwrap_or(&e.user.unique_id))
        }
        "giftName" => match p {
            Some(Payload::Gift(g)) => write!(out, "{}", g.gift_name),
            _ => Ok(()),
        },
        "giftCount" => match p {
            Some(Payload::Gift(g)) => write!(out, "{}", g.gift_count),
            _ => Ok(()),
        },
        "coins" => match p {
            Some(Payload::Gift(g)) => write!(out, "{}", g.coins),
            _ => Ok(()),
        },
        "likeCount" => match p {
            Some(Payload::Like(l)) => write!(out, "{}", l.like_count),
            _ => Ok(()),
        },
        "totalLikeCount" => match p {
            Some(Payload::Like(l)) => write!(out, "{}", l.total_like_count),
            _ => Ok(()),
        },
        "subMonth" => match p {
            Some(Payload::Subscribe(s)) => write!(out, "{}", s.sub_month.unwrap_or_default()),
            _ => Ok(()),
        },
        "emoteImageUrl" => {
            let url = match p {
                Some(Payload::Emote(m)) => m.emote_image_url.as_deref(),
                Some(Payload::Chat(c)) => c
                    .emotes
                    .as_ref()
                    .and_then(|list| list.iter().find_map(|m| m.emote_image_url.as_deref())),
                _ => None,
            };
            write!(out, "{}", url.unwrap_or_default())
        }
        "message" => match p {
            Some(Payload::Chat(c)) => write!(out, "{}", c.message),
            Some(Payload::Error(m)) => write!(out, "{}", m.message),
            _ => Ok(()),
        },
        "eventType" => write!(out, "{}", e.event_type),
        "timestamp" => {
            write!(out, "{}", e.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        "streamId" => write!(out, "{}", e.stream_id),
        "sessionId" => write!(out, "{}", e.session_id),
        _ => Ok(()),
    };
}
