//! `announce` actions: the rendered template posted to the stream's chat through the
//! [`ChatProvider`].

use ttlc_schemas::ActionRequest;

use crate::chat::ChatProvider;
use crate::error::ActionError;

/// TikTok LIVE chat messages are limited to 150 characters; longer text is cut (on a character
/// boundary) rather than refused by the provider.
pub const MAX_ANNOUNCE_CHARS: usize = 150;

pub(crate) async fn announce(
    chat: &dyn ChatProvider,
    action: &ActionRequest,
) -> Result<(), ActionError> {
    let text: String = action.rendered_template.chars().take(MAX_ANNOUNCE_CHARS).collect();
    if text.trim().is_empty() {
        return Err(ActionError::Permanent("the announcement rendered to empty text".into()));
    }
    chat.announce(&action.stream_id, &text).await
}
