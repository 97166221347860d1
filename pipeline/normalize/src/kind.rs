//! Which mapping a raw `type` selects.
//!
//! Resolved once per record from the envelope's `type` string; everything not listed is RAW
//! passthrough, so new TikTok methods flow through untouched until someone maps them.

/// The raw message kinds normalization knows how to map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Chat,
    Gift,
    Like,
    Member,
    Social,
    SubNotify,
    EmoteChat,
    LinkMicBattle,
    LinkMicArmies,
    Barrage,
    Connected,
    Disconnected,
    Error,
    /// Anything else: RAW with the decoded data.
    Other,
}

impl Kind {
    pub(crate) fn of(raw_type: &str) -> Kind {
        match raw_type {
            "WebcastChatMessage" => Kind::Chat,
            "WebcastGiftMessage" => Kind::Gift,
            "WebcastLikeMessage" => Kind::Like,
            "WebcastMemberMessage" => Kind::Member,
            "WebcastSocialMessage" => Kind::Social,
            "WebcastSubNotifyMessage" => Kind::SubNotify,
            "WebcastEmoteChatMessage" => Kind::EmoteChat,
            "WebcastLinkMicBattle" => Kind::LinkMicBattle,
            "WebcastLinkMicArmies" => Kind::LinkMicArmies,
            "WebcastBarrageMessage" => Kind::Barrage,
            "ControlEvent.CONNECTED" => Kind::Connected,
            "ControlEvent.DISCONNECTED" => Kind::Disconnected,
            "ControlEvent.ERROR" => Kind::Error,
            _ => Kind::Other,
        }
    }
}
